//! The crash suite with the real binary: `specbot serve` as a child process, aborted (like
//! `kill -9`: no cleanup, no lease released) at each step boundary of the spec and implement
//! flows by the `SPECBOT_CRASH_AT` fault point, or killed with SIGKILL while the model thinks,
//! then started again. Each time there is exactly one branch, one PR, one set of component
//! issues and one status comment, and the model's answer, once checkpointed, is never paid for
//! twice.
//!
//! Leases are an hour long (`JOB_LEASE_SECS=3600`), longer than any wait here: only the
//! restarted process taking the dead one's jobs over at once can let a job finish. On SQLite, a
//! second `serve` on the same file while the first runs is refused; on Postgres, a process
//! whose lock session the database ends stops its job, which then finishes once.

mod support;

#[path = "support/child.rs"]
mod child;

use std::sync::Arc;

use child::{Server, wait_until};
use serde_json::{Value, json};
use specbot::jobs::Store;
use specbot::server::webhook::sign;
use support::answers::good_answer;
use support::db::TestDb;
use support::github_world::GitHubWorld;
use support::llm_fake::LlmFake;

const REPO: &str = "acme/widgets";
const SECRET: &str = "crash-suite-webhook-secret-0123456789";

struct Rig {
    world: GitHubWorld,
    llm: LlmFake,
    db: TestDb,
    store: Arc<dyn Store>,
    dir: tempfile::TempDir,
    http: reqwest::Client,
    deliveries: u64,
}

impl Rig {
    async fn new() -> Rig {
        let world = GitHubWorld::start().await;
        world.add_repo(REPO);
        world.set_permission(REPO, "alice", "admin");
        world.put_file(REPO, "main", "src/lib.rs", "pub fn theme() {}\n");
        let llm = LlmFake::start().await;
        let db = TestDb::new().await;
        let store = specbot::jobs::open(&db.url).await.expect("store");
        store.migrate().await.expect("migrate");
        Rig {
            world,
            llm,
            db,
            store,
            dir: tempfile::tempdir().expect("temp dir"),
            http: reqwest::Client::new(),
            deliveries: 0,
        }
    }

    async fn serve(&self, crash_at: Option<&str>) -> Server {
        let key = child::test_key_path();
        let app_id = self.world.app_id().to_string();
        let api = self.world.base_url();
        let llm = self.llm.anthropic_base_url();
        let mut env = vec![
            ("DATABASE_URL", self.db.url.as_str()),
            ("WEBHOOK_SECRET", SECRET),
            ("WORKERS", "1"),
            ("APP_ID", app_id.as_str()),
            ("PRIVATE_KEY_PATH", key.as_str()),
            ("GITHUB_API_URL", api.as_str()),
            ("GITHUB_WRITE_GAP_MS", "0"),
            // Only a takeover, never an expired lease, lets a dead process's job go on.
            ("JOB_LEASE_SECS", "3600"),
            ("LLM_PROVIDER", "anthropic"),
            ("LLM_BASE_URL", llm.as_str()),
            ("LLM_API_KEY", "sk-crash-suite"),
            ("LLM_MODEL", "crash-model"),
        ];
        if let Some(step) = crash_at {
            env.push(("SPECBOT_CRASH_AT", step));
        }
        Server::start(self.dir.path(), &env).await
    }

    async fn deliver(&mut self, server: &Server, event: &str, payload: Value) {
        self.deliveries += 1;
        let body = serde_json::to_vec(&payload).unwrap();
        let status = self
            .http
            .post(server.url("/api/github/webhooks"))
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", format!("crash-{}", self.deliveries))
            .header("X-Hub-Signature-256", sign(SECRET, &body))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("delivery")
            .status();
        assert!(status.is_success(), "delivery answered {status}");
    }

    fn envelope(&self, action: &str, sender: &str) -> Value {
        json!({
            "action": action,
            "repository": self.world.repo_json(REPO),
            "sender": self.world.user_json(sender),
            "installation": {"id": self.world.installation_id()},
        })
    }

    async fn label(&mut self, server: &Server, issue: u64) {
        let mut p = self.envelope("labeled", "alice");
        p["issue"] = self.world.issue_json(REPO, issue);
        p["label"] = json!({"name": "needs-spec", "color": "ededed"});
        self.deliver(server, "issues", p).await;
    }

    async fn comment(&mut self, server: &Server, issue: u64, body: &str) {
        let id = self.world.add_comment(REPO, issue, "alice", body);
        let mut p = self.envelope("created", "alice");
        p["issue"] = self.world.issue_json(REPO, issue);
        p["comment"] = self.world.comment_json(REPO, id);
        self.deliver(server, "issue_comment", p).await;
    }

    async fn merge(&mut self, server: &Server, pr: u64) {
        self.world.merge_pull(REPO, pr);
        let mut p = self.envelope("closed", "alice");
        p["pull_request"] = self.world.pull_json(REPO, pr);
        self.deliver(server, "pull_request", p).await;
    }

    async fn idle(&self) {
        wait_until("every job finished", || async {
            self.store
                .recent_jobs(1000)
                .await
                .expect("jobs")
                .iter()
                .all(|j| !j.state.is_active())
        })
        .await;
    }

    fn bot_comments(&self, issue: u64, marker: &str) -> usize {
        let bot = self.world.bot_login();
        self.world
            .comments(REPO, issue)
            .iter()
            .filter(|c| c.user == bot && c.body.contains(marker))
            .count()
    }
}

/// The process aborted itself at the fault point; returns its log.
async fn crashed(mut server: Server, step: &str) -> String {
    let status = server
        .wait(child::WAIT_CAP)
        .await
        .unwrap_or_else(|| panic!("the process did not stop at `{step}`"));
    assert!(!status.success(), "aborted at `{step}`: {status:?}");
    server.log_text()
}

/// No secret of the process appears in its log.
fn assert_log_clean(log: &str, world: &GitHubWorld) {
    assert!(!log.is_empty());
    for secret in [SECRET, "sk-crash-suite"] {
        assert!(!log.contains(secret), "the log holds a secret");
    }
    for line in world
        .private_key_pem()
        .lines()
        .filter(|l| l.len() > 20 && !l.starts_with("-----"))
    {
        assert!(!log.contains(line), "the log holds a line of the App key");
    }
    assert!(!log.contains("ghs_"), "the log holds an installation token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_at_each_step_of_the_spec_flow_then_restart() {
    for step in [
        "ack",
        "draft",
        "commit",
        "pull",
        "component:component-1",
        "component:component-2",
        "done",
    ] {
        let mut rig = Rig::new().await;
        let issue = rig
            .world
            .add_issue(REPO, "Add dark mode", "Please.", "alice");
        rig.llm.push_tool_call("submit_spec", good_answer(2));
        let server = rig.serve(Some(step)).await;
        rig.label(&server, issue).await;
        let log = crashed(server, step).await;
        assert_log_clean(&log, &rig.world);

        let server = rig.serve(None).await;
        rig.idle().await;
        assert_log_clean(&server.log_text(), &rig.world);
        assert_eq!(rig.world.pulls(REPO).len(), 1, "one PR, step {step}");
        assert_eq!(
            rig.world
                .branches(REPO)
                .iter()
                .filter(|b| b.starts_with("specbot/"))
                .count(),
            1,
            "one branch, step {step}"
        );
        assert_eq!(rig.world.sub_issues(REPO, issue).len(), 2, "step {step}");
        assert_eq!(
            rig.world.issues(REPO).len(),
            1 + 2,
            "feature and components; step {step}"
        );
        assert_eq!(
            rig.bot_comments(issue, "specbot:status"),
            1,
            "one status comment, step {step}"
        );
        assert_eq!(rig.llm.requests().len(), 1, "one model call, step {step}");
        rig.world.assert_no_violations();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_at_each_step_of_the_implement_flow_then_restart() {
    for step in [
        "implement:ack",
        "implement:spec",
        "implement:engineer",
        "implement:commit",
        "implement:pull",
        "implement:done",
    ] {
        let mut rig = Rig::new().await;
        let issue = rig
            .world
            .add_issue(REPO, "Add dark mode", "Please.", "alice");
        rig.llm.push_tool_call("submit_spec", good_answer(1));
        let server = rig.serve(Some(step)).await;
        rig.label(&server, issue).await;
        rig.idle().await;
        let spec_pr = rig.world.pulls(REPO)[0].number;
        rig.merge(&server, spec_pr).await;
        rig.idle().await;
        rig.llm.push_tool_call(
            "write_file",
            json!({"path": "src/dark.rs", "content": "pub const DARK: bool = true;\n"}),
        );
        rig.llm
            .push_tool_call("finish", json!({"summary": "Dark flag.", "criteria": []}));
        rig.comment(&server, issue, "/implement").await;
        let log = crashed(server, step).await;
        assert_log_clean(&log, &rig.world);

        let server = rig.serve(None).await;
        rig.idle().await;
        assert_log_clean(&server.log_text(), &rig.world);
        let branch = format!("specbot/implement-{issue}");
        let pulls: Vec<_> = rig
            .world
            .pulls(REPO)
            .into_iter()
            .filter(|p| p.head == branch)
            .collect();
        assert_eq!(pulls.len(), 1, "one implementation PR, step {step}");
        assert_eq!(
            rig.world.commits_on(REPO, &branch).len(),
            rig.world.commits_on(REPO, "main").len() + 1,
            "one commit, step {step}"
        );
        assert_eq!(
            rig.bot_comments(issue, "specbot:implement-status"),
            1,
            "one status comment, step {step}"
        );
        assert_eq!(
            rig.llm.requests().len(),
            3,
            "spec + two engineer calls, each paid once; step {step}"
        );
        rig.world.assert_no_violations();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_job_then_restart_takes_the_job_over_at_once() {
    let mut rig = Rig::new().await;
    let issue = rig
        .world
        .add_issue(REPO, "Add dark mode", "Please.", "alice");
    // The first answer goes to the process that is killed while it waits for it.
    rig.llm.push_tool_call("submit_spec", good_answer(2));
    rig.llm.push_tool_call("submit_spec", good_answer(2));
    rig.llm.hold_answers();
    let mut server = rig.serve(None).await;
    rig.label(&server, issue).await;
    tokio::time::timeout(child::WAIT_CAP, rig.llm.wait_for_request(1))
        .await
        .expect("the model was asked");
    let status = server.kill9().await;
    assert!(!status.success(), "killed: {status:?}");
    rig.llm.release_answers();

    let server = rig.serve(None).await;
    rig.idle().await;
    assert_log_clean(&server.log_text(), &rig.world);
    let jobs = rig.store.recent_jobs(10).await.expect("jobs");
    let job = the_spec_job(&jobs);
    assert_eq!(job.state, specbot::jobs::JobState::Succeeded, "{job:?}");
    assert_eq!(
        job.attempts, 2,
        "claimed by the killed process, then once more: {job:?}"
    );
    assert_eq!(rig.world.pulls(REPO).len(), 1, "one PR");
    assert_eq!(rig.world.sub_issues(REPO, issue).len(), 2);
    assert_eq!(
        rig.bot_comments(issue, "specbot:status"),
        1,
        "one status comment"
    );
    assert_eq!(rig.llm.requests().len(), 2, "asked once by each process");
    rig.world.assert_no_violations();
}

/// The one spec job of a run, which also queued one coverage check for its push (that one
/// succeeded too).
fn the_spec_job(jobs: &[specbot::jobs::Job]) -> &specbot::jobs::Job {
    let (spec, coverage): (Vec<_>, Vec<_>) = jobs.iter().partition(|j| j.kind == "spec");
    assert_eq!(spec.len(), 1, "{jobs:?}");
    assert!(
        coverage.len() == 1
            && coverage[0].kind == "coverage"
            && coverage[0].state == specbot::jobs::JobState::Succeeded,
        "{jobs:?}"
    );
    spec[0]
}

/// How a `specbot serve` that should not start ended: its exit status and its log.
async fn refused(mut cmd: tokio::process::Command) -> (std::process::ExitStatus, String) {
    let child = cmd.spawn().expect("spawn specbot");
    let out = tokio::time::timeout(child::WAIT_CAP, child.wait_with_output())
        .await
        .expect("the second serve exits instead of serving")
        .expect("wait for specbot");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_serve_on_the_same_sqlite_database_is_refused() {
    let db = TestDb::new().await;
    if db.is_postgres() {
        eprintln!("note: several processes share a Postgres database by design; nothing to refuse");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("WEBHOOK_SECRET", SECRET),
        ("WORKERS", "1"),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
    ];
    let first = Server::start(dir.path(), &env).await;

    let (status, log) = refused(child::command(dir.path(), &["serve"], &env)).await;
    assert!(!status.success(), "{status:?}\n{log}");
    assert!(
        log.contains("another `specbot serve` is running on this database"),
        "{log}"
    );
    assert!(log.contains(&format!("pid {}", first.pid())), "{log}");
    assert!(!log.contains("specbot is serving"), "{log}");

    // The first one is unaffected, and a one-shot command still reads the database.
    assert_eq!(first.status("/readyz").await, Some(200));
    let out = child::command(dir.path(), &["delivery", "no-such-delivery"], &env)
        .output()
        .await
        .expect("run specbot delivery");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no delivery"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_process_whose_lock_drops_stops_its_job_and_it_finishes_once() {
    let mut rig = Rig::new().await;
    if !rig.db.is_postgres() {
        eprintln!("note: SPECBOT_TEST_POSTGRES is not set; skipping the lock-loss test");
        return;
    }
    let issue = rig
        .world
        .add_issue(REPO, "Add dark mode", "Please.", "alice");
    rig.llm.push_tool_call("submit_spec", good_answer(2));
    rig.llm.push_tool_call("submit_spec", good_answer(2));
    rig.llm.hold_answers();
    let victim = rig.serve(None).await;
    rig.label(&victim, issue).await;
    tokio::time::timeout(child::WAIT_CAP, rig.llm.wait_for_request(1))
        .await
        .expect("the model was asked");
    let jobs = rig.store.recent_jobs(10).await.expect("jobs");
    let owner = jobs[0]
        .lease_owner
        .clone()
        .expect("the victim holds the job");
    let instance = owner
        .rsplit_once('/')
        .map(|(i, _)| i)
        .expect("owner/worker");
    let other = rig.serve(None).await;

    // The database ends the victim's lock session (a failover, an administrator), and only it.
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&rig.db.url)
        .await
        .expect("connect");
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_locks \
         WHERE locktype = 'advisory' AND classid = 1397769539 AND objsubid = 2 \
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND objid = (SELECT CAST(id AS oid) FROM instances WHERE name = $1)",
    )
    .bind(instance)
    .fetch_all(&mut conn)
    .await
    .expect("terminate the victim's lock session");
    assert_eq!(ended, [true]);
    wait_until("the victim stops its job", || async {
        victim.log_text().contains("lapsed: stopping the job")
    })
    .await;
    rig.llm.release_answers();

    rig.idle().await;
    let jobs = rig.store.recent_jobs(10).await.expect("jobs");
    assert_eq!(
        the_spec_job(&jobs).state,
        specbot::jobs::JobState::Succeeded,
        "{jobs:?}"
    );
    assert_eq!(rig.world.pulls(REPO).len(), 1, "one PR");
    assert_eq!(rig.world.sub_issues(REPO, issue).len(), 2);
    assert_eq!(
        rig.bot_comments(issue, "specbot:status"),
        1,
        "one status comment"
    );
    assert_log_clean(&victim.log_text(), &rig.world);
    assert_log_clean(&other.log_text(), &rig.world);
    rig.world.assert_no_violations();
}
