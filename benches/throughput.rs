//! Job throughput with 1, 2 and 4 `specbot serve` processes on one PostgreSQL database.
//!
//! Each process runs the real binary with `WORKERS` workers against the GitHub world (the test
//! simulator, in this process) and the LLM fake, which takes `LLM_LATENCY_MS` (default 1,000)
//! to answer every request with a valid one-component spec. `JOBS_PER_WORKER` (default 10)
//! spec jobs per worker slot of the largest run are queued at once; the figure is jobs
//! finished per second, from the first enqueue to the last job succeeding. Every job must
//! succeed exactly once (one PR per issue).
//!
//! ```sh
//! SPECBOT_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test cargo bench --bench throughput
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "../tests/support/child.rs"]
mod child;

use std::time::{Duration, Instant};

use child::Server;
use specbot::jobs::JobState;
use specbot::workflow::{RepoTarget, SpecRequest, SpecTrigger, Workflow};
use support::answers::good_answer;
use support::db::TestDb;
use support::github_world::GitHubWorld;
use support::llm_fake::{LlmFake, Reply};

const REPO: &str = "acme/widgets";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if std::env::var("SPECBOT_TEST_POSTGRES").is_err() {
        eprintln!("set SPECBOT_TEST_POSTGRES=postgres://…/test: this benchmark needs PostgreSQL");
        std::process::exit(2);
    }
    let workers = env_u64("WORKERS", 4);
    let latency = Duration::from_millis(env_u64("LLM_LATENCY_MS", 1000));
    let processes: Vec<u64> = std::env::var("PROCESSES")
        .unwrap_or_else(|_| "1,2,4".into())
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect();
    let max_slots = processes.iter().max().copied().unwrap_or(1) * workers;
    let jobs = env_u64("JOBS_PER_WORKER", 10) * max_slots;
    println!(
        "spec jobs: {jobs}; workers per process: {workers}; model latency: {} ms",
        latency.as_millis()
    );
    println!("| processes | jobs | seconds | jobs/s | speed-up |");
    println!("| --- | --- | --- | --- | --- |");
    let mut base_rate = None;
    for p in processes {
        let (secs, rate) = run(p, workers, jobs, latency).await;
        let speedup = rate / *base_rate.get_or_insert(rate);
        println!("| {p} | {jobs} | {secs:.2} | {rate:.2} | {speedup:.2}× |");
    }
}

async fn run(processes: u64, workers: u64, jobs: u64, latency: Duration) -> (f64, f64) {
    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    world.set_permission(REPO, "alice", "admin");
    let llm = LlmFake::start().await;
    llm.set_latency(latency);
    llm.set_default_reply(Reply {
        tool_calls: vec![("submit_spec".into(), good_answer(1))],
        ..Reply::default()
    });
    let db = TestDb::postgres().await.expect("SPECBOT_TEST_POSTGRES");
    let store = specbot::jobs::open(&db.url).await.expect("open store");
    store.migrate().await.expect("migrate");

    let dir = tempfile::tempdir().expect("temp dir");
    let key = child::test_key_path();
    let app_id = world.app_id().to_string();
    let api = world.base_url();
    let llm_url = llm.anthropic_base_url();
    let workers_s = workers.to_string();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("WEBHOOK_SECRET", "throughput"),
        ("WORKERS", workers_s.as_str()),
        ("APP_ID", app_id.as_str()),
        ("PRIVATE_KEY_PATH", key.as_str()),
        ("GITHUB_API_URL", api.as_str()),
        ("GITHUB_WRITE_GAP_MS", "0"),
        ("LLM_PROVIDER", "anthropic"),
        ("LLM_BASE_URL", llm_url.as_str()),
        ("LLM_API_KEY", "sk-bench"),
        ("LLM_MODEL", "bench-model"),
        // One person queues every job here: lift the abuse quotas.
        ("USER_JOBS_PER_HOUR", "100000"),
        ("REPO_JOBS_PER_HOUR", "100000"),
    ];
    let mut servers = Vec::new();
    for _ in 0..processes {
        servers.push(Server::start(dir.path(), &env).await);
    }

    let repo_id = world.repo_json(REPO)["id"].as_u64().expect("repo id");
    let target = RepoTarget {
        installation_id: world.installation_id(),
        owner: "acme".into(),
        name: "widgets".into(),
        repo_id,
    };
    let issues: Vec<u64> = (0..jobs)
        .map(|i| world.add_issue(REPO, &format!("Feature {i}"), "Please.", "alice"))
        .collect();
    let started = Instant::now();
    for (i, issue) in issues.iter().enumerate() {
        let job = SpecRequest {
            repo: target.clone(),
            issue_number: *issue,
            requested_by: "alice".into(),
            trigger: SpecTrigger::Label {
                name: "needs-spec".into(),
            },
            delivery_id: format!("bench-{i}"),
        }
        .into_job(3);
        store
            .enqueue(&job, specbot::jobs::now_ms())
            .await
            .expect("enqueue");
    }
    // Measured to the nearest 20 ms: the benchmark polls the database for the last job.
    let deadline = Instant::now() + Duration::from_secs(30 * 60);
    loop {
        let list = store.recent_jobs(100_000).await.expect("jobs");
        if list.iter().all(|j| !j.state.is_active()) && list.len() as u64 == jobs {
            let failed: Vec<_> = list
                .iter()
                .filter(|j| j.state != JobState::Succeeded)
                .map(|j| (j.id, j.last_error.clone()))
                .collect();
            assert!(failed.is_empty(), "jobs that did not succeed: {failed:?}");
            assert!(
                list.iter().all(|j| j.attempts == 1),
                "a job was claimed twice"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "jobs still running after 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(world.pulls(REPO).len() as u64, jobs, "one PR per issue");
    assert_eq!(llm.requests().len() as u64, jobs, "one model call per job");
    drop(servers);
    (secs, jobs as f64 / secs)
}
