//! Several real `specbot serve` processes on one PostgreSQL database: every job is claimed and
//! finished exactly once, also when one process is killed with `kill -9` while it holds jobs:
//! the others take those over at once (leases are an hour long there, so only the takeover can
//! let them finish), and never while their owner lives.
//!
//! The processes have no App credentials or model, so the bulk of the jobs is of a kind no
//! workflow knows (`noop`): each fails permanently at once ("unknown job kind `noop`"),
//! which is enough to count claims (`attempts`) and finishes (each process's
//! `specbot_jobs_finished_total`). Skipped, with a note, when `SPECBOT_TEST_POSTGRES` is unset.

#[path = "support/child.rs"]
mod child;
#[path = "support/db.rs"]
mod db;

use std::sync::Arc;

use child::{Server, Silent, wait_until};
use db::TestDb;
use specbot::jobs::{Job, JobState, NewJob, Store};
use specbot::workflow::{RepoTarget, SpecRequest, SpecTrigger, Workflow};

/// A webhook secret as long as `serve` asks for.
const MULTIPROCESS_SECRET: &str = "multiprocess-suite-webhook-secret-0123";
const JOBS: usize = 300;

async fn postgres() -> Option<(TestDb, Arc<dyn Store>)> {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("note: SPECBOT_TEST_POSTGRES is not set; skipping the multi-process test");
        return None;
    };
    let store = specbot::jobs::open(&db.url).await.expect("open store");
    store.migrate().await.expect("migrate");
    Some((db, store))
}

fn noop(n: usize) -> NewJob {
    NewJob {
        kind: "noop".into(),
        dedupe_key: None,
        serial_key: None,
        payload: serde_json::json!({ "kind": "noop", "n": n }),
        max_attempts: 3,
        run_at: 0,
    }
}

/// A spec job: with a GitHub that never answers, whoever claims it holds it.
fn spec(issue: u64) -> NewJob {
    let mut job = SpecRequest {
        repo: RepoTarget {
            installation_id: 1,
            owner: "acme".into(),
            name: "widgets".into(),
            repo_id: 42,
        },
        issue_number: issue,
        requested_by: "octocat".into(),
        trigger: SpecTrigger::Label {
            name: "needs-spec".into(),
        },
        delivery_id: format!("multiprocess-{issue}"),
    }
    .into_job(3);
    job.max_attempts = 3;
    job
}

async fn all_jobs(store: &Arc<dyn Store>) -> Vec<Job> {
    store.recent_jobs(100_000).await.expect("list jobs")
}

async fn count_final(store: &Arc<dyn Store>) -> usize {
    all_jobs(store)
        .await
        .iter()
        .filter(|j| !j.state.is_active())
        .count()
}

async fn finished_total(servers: &[&Server], kind: &str) -> u64 {
    let mut sum = 0;
    for s in servers {
        sum += s.finished(kind).await;
    }
    sum
}

fn assert_noop_once(jobs: &[Job]) {
    let noops: Vec<&Job> = jobs.iter().filter(|j| j.kind == "noop").collect();
    assert_eq!(noops.len(), JOBS);
    for j in noops {
        assert_eq!(j.state, JobState::Failed, "job {} state", j.id);
        assert_eq!(
            j.attempts, 1,
            "job {} was claimed {} times",
            j.id, j.attempts
        );
        let error = j.last_error.as_deref().unwrap_or_default();
        assert!(
            error.contains("unknown job kind `noop`"),
            "job {}: {error}",
            j.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_finish_every_job_exactly_once() {
    let Some((db, store)) = postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("WEBHOOK_SECRET", MULTIPROCESS_SECRET),
        ("WORKERS", "2"),
    ];
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(Server::start(dir.path(), &env).await);
    }
    for s in &servers {
        assert_eq!(s.status("/readyz").await, Some(200));
    }
    for n in 0..JOBS {
        store
            .enqueue(&noop(n), specbot::jobs::now_ms())
            .await
            .expect("enqueue");
    }
    wait_until("every job finished", || async {
        count_final(&store).await == JOBS
    })
    .await;
    let refs: Vec<&Server> = servers.iter().collect();
    wait_until("every finish counted", || async {
        finished_total(&refs, "noop").await >= JOBS as u64
    })
    .await;

    assert_noop_once(&all_jobs(&store).await);
    let mut per_process = Vec::new();
    for s in &servers {
        per_process.push(s.finished("noop").await);
    }
    eprintln!("jobs finished per process: {per_process:?}");
    assert_eq!(
        per_process.iter().sum::<u64>(),
        JOBS as u64,
        "the processes together finished each job once"
    );

    for s in &servers {
        s.sigterm();
    }
    for s in &mut servers {
        let status = s.wait(child::WAIT_CAP).await.expect("exits after SIGTERM");
        assert!(status.success(), "exit status {status:?}\n{}", s.log_text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_jobs_held_the_others_take_them_over_at_once() {
    let Some((db, store)) = postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let silent = Silent::start().await;
    let key = child::test_key_path();

    // The victim holds two spec jobs: its GitHub never answers, its heartbeats keep the leases.
    let mut victim = Server::start(
        dir.path(),
        &[
            ("DATABASE_URL", db.url.as_str()),
            ("WEBHOOK_SECRET", MULTIPROCESS_SECRET),
            ("WORKERS", "2"),
            ("JOB_LEASE_SECS", "3600"),
            ("HOSTNAME", "victim"),
            ("APP_ID", "1"),
            ("PRIVATE_KEY_PATH", key.as_str()),
            ("GITHUB_API_URL", silent.url.as_str()),
        ],
    )
    .await;
    let mut held = Vec::new();
    for issue in [1, 2] {
        let now = specbot::jobs::now_ms();
        held.push(
            store
                .enqueue(&spec(issue), now)
                .await
                .expect("enqueue")
                .expect("queued"),
        );
    }
    wait_until("the victim holds both spec jobs", || async {
        let jobs = all_jobs(&store).await;
        held.iter().all(|id| {
            jobs.iter().any(|j| {
                j.id == *id
                    && j.state == JobState::Running
                    && j.lease_owner
                        .as_deref()
                        .is_some_and(|o| o.starts_with("victim-"))
            })
        })
    })
    .await;

    // Two survivors without credentials: they run the noop jobs while the victim is alive.
    let survivor_env = |name: &'static str| {
        [
            ("DATABASE_URL", db.url.clone()),
            ("WEBHOOK_SECRET", MULTIPROCESS_SECRET.to_string()),
            ("WORKERS", "2".to_string()),
            ("JOB_LEASE_SECS", "3600".to_string()),
            ("HOSTNAME", name.to_string()),
        ]
    };
    let mut survivors = Vec::new();
    for name in ["survivor1", "survivor2"] {
        let env = survivor_env(name);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        survivors.push(Server::start(dir.path(), &env).await);
    }
    for n in 0..JOBS {
        store
            .enqueue(&noop(n), specbot::jobs::now_ms())
            .await
            .expect("enqueue");
    }
    wait_until("some noop jobs finished", || async {
        count_final(&store).await >= JOBS / 4
    })
    .await;
    // The survivors have been claiming all along, and the victim's jobs stayed the victim's.
    let jobs = all_jobs(&store).await;
    for id in &held {
        let j = jobs.iter().find(|j| j.id == *id).expect("held job");
        assert_eq!(j.attempts, 1, "job {id} taken from a live process: {j:?}");
        let owner = j.lease_owner.as_deref().unwrap_or_default();
        assert!(owner.starts_with("victim-"), "job {id}: {j:?}");
    }
    let status = victim.kill9().await;
    assert!(!status.success(), "the victim was killed: {status:?}");

    wait_until("every job finished after the kill", || async {
        count_final(&store).await == JOBS + held.len()
    })
    .await;
    let refs: Vec<&Server> = survivors.iter().collect();
    wait_until("every finish counted", || async {
        finished_total(&refs, "noop").await >= JOBS as u64
            && finished_total(&refs, "spec").await >= held.len() as u64
    })
    .await;

    let jobs = all_jobs(&store).await;
    assert_noop_once(&jobs);
    for id in &held {
        let j = jobs.iter().find(|j| j.id == *id).expect("held job");
        // Claimed once by the victim, once more when a survivor took it over, and finished then.
        assert_eq!(j.attempts, 2, "job {id}: {j:?}");
        assert_eq!(j.state, JobState::Failed, "job {id}: {j:?}");
        let error = j.last_error.as_deref().unwrap_or_default();
        assert!(
            error.contains("no GitHub App credentials"),
            "job {id}: {error}"
        );
    }
    assert_eq!(finished_total(&refs, "noop").await, JOBS as u64);
    assert_eq!(finished_total(&refs, "spec").await, held.len() as u64);

    for s in &survivors {
        s.sigterm();
    }
    for s in &mut survivors {
        let status = s.wait(child::WAIT_CAP).await.expect("exits after SIGTERM");
        assert!(status.success(), "exit status {status:?}\n{}", s.log_text());
    }
}
