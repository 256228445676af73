//! The fluent tester: a GitHub world, an LLM fake and a specbot app wired together, driven by
//! real signed webhooks through the real router.
//!
//! ```ignore
//! let mut t = Tester::start().await;
//! let issue = t.open_issue("Add dark mode", "…");
//! t.label_issue(issue, "needs-spec").await;
//! t.run_jobs().await;
//! let pr = t.expect_pull("specbot/spec-1");
//! ```
//!
//! Waiting is never a sleep: `run_jobs` waits until the store has no runnable job, woken by the
//! app each time a job finishes. Every comment the bot posts must be looked at with
//! `bot_comments()`/`expect_comment()`; a test that leaves one unasserted fails when the tester
//! is dropped.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use specbot::app::App;
use specbot::config::Settings;
use specbot::runtime::Running;
use specbot::server::webhook::sign;

use super::db::TestDb;
use super::github_world::GitHubWorld;
use super::llm_fake::LlmFake;

pub const SECRET: &str = "tester-webhook-secret";
pub const REPO: &str = "acme/widgets";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    Anthropic,
    OpenAi,
}

pub struct TesterBuilder {
    provider: Provider,
    settings: Box<dyn FnOnce(&mut Settings)>,
    db: Option<TestDb>,
}

impl TesterBuilder {
    pub fn provider(mut self, p: Provider) -> Self {
        self.provider = p;
        self
    }

    pub fn settings(mut self, f: impl FnOnce(&mut Settings) + 'static) -> Self {
        self.settings = Box::new(f);
        self
    }

    pub async fn start(self) -> Tester {
        let world = GitHubWorld::start().await;
        world.add_repo(REPO);
        world.set_permission(REPO, "alice", "admin");
        world.set_permission(REPO, "bob", "write");
        world.set_permission(REPO, "rita", "read");
        let llm = LlmFake::start().await;
        let db = match self.db {
            Some(db) => db,
            None => TestDb::new().await,
        };
        let mut settings = base_settings(&world, &llm, self.provider, &db);
        (self.settings)(&mut settings);
        let mut t = Tester {
            world,
            llm,
            provider: self.provider,
            db,
            settings: settings.clone(),
            app: None,
            running: None,
            http: reqwest::Client::new(),
            deliveries: 0,
            asserted: HashSet::new(),
            checked: false,
        };
        t.boot(settings).await;
        t
    }
}

fn base_settings(world: &GitHubWorld, llm: &LlmFake, provider: Provider, db: &TestDb) -> Settings {
    let mut s = Settings::base();
    s.webhook_secrets = vec![SECRET.to_string().into()];
    s.database_url = db.url.clone().into();
    s.github_api_url = world.base_url();
    s.app = Some(specbot::config::AppCredentials {
        app_id: world.app_id(),
        private_key: world.private_key_pem().into(),
    });
    s.github.write_gap = Duration::ZERO;
    // No progress edits unless a test asks for them (then with no wall-time throttle).
    s.github.status_edit_gap = None;
    s.github.retry_base = Duration::from_millis(1);
    s.github.secondary_limit_wait = Duration::from_millis(5);
    s.github.request_timeout = Duration::from_secs(5);
    s.jobs.workers = 2;
    s.jobs.retry_base = Duration::ZERO;
    s.jobs.heartbeat = Duration::from_millis(50);
    s.llm.provider = match provider {
        Provider::Anthropic => "anthropic".into(),
        Provider::OpenAi => "openai".into(),
    };
    s.llm.base_url = Some(match provider {
        Provider::Anthropic => llm.anthropic_base_url(),
        Provider::OpenAi => llm.openai_base_url(),
    });
    s.llm.model = Some("test-model".into());
    s.llm.prices = Some(r#"{"test-model": {"input": 3, "output": 15}}"#.into());
    s.llm.api_key = Some("sk-test-llm-key-never-logged".to_string().into());
    s
}

pub struct Tester {
    pub world: GitHubWorld,
    pub llm: LlmFake,
    pub provider: Provider,
    pub db: TestDb,
    pub settings: Settings,
    app: Option<Arc<App>>,
    running: Option<Running>,
    http: reqwest::Client,
    deliveries: u64,
    asserted: HashSet<u64>,
    /// Set by [`Tester::finish`]: the checks ran.
    checked: bool,
}

impl Tester {
    pub fn builder() -> TesterBuilder {
        TesterBuilder {
            provider: Provider::Anthropic,
            settings: Box::new(|_| {}),
            db: None,
        }
    }

    pub async fn start() -> Tester {
        Self::builder().start().await
    }

    /// A tester whose settings `f` changes from the defaults.
    pub async fn with_settings(f: impl FnOnce(&mut Settings) + 'static) -> Tester {
        Self::builder().settings(f).start().await
    }

    async fn boot(&mut self, settings: Settings) {
        let app = specbot::app::build(settings).await.expect("app builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = specbot::runtime::start(app.clone(), listener).expect("app starts");
        self.app = Some(app);
        self.running = Some(running);
    }

    /// `http://127.0.0.1:PORT` of the running app.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.running.as_ref().expect("running").addr)
    }

    pub fn app(&self) -> &Arc<App> {
        self.app.as_ref().expect("app is running")
    }

    /// Simulate `kill -9` and a restart: the old process's workers vanish without releasing
    /// anything; a new process (same database) starts with `settings`; its clock is moved past
    /// the old leases.
    pub async fn crash_and_restart(&mut self, f: impl FnOnce(&mut Settings)) {
        if let Some(running) = self.running.take() {
            running.abort();
        }
        let mut settings = self.settings.clone();
        f(&mut settings);
        self.boot(settings).await;
        self.app()
            .clock
            .advance(self.settings.jobs.lease + Duration::from_secs(1));
        self.app().kick();
    }

    /// Send a signed delivery through the real router.
    pub async fn send(&mut self, event: &str, payload: Value) -> reqwest::StatusCode {
        self.deliveries += 1;
        let body = serde_json::to_vec(&payload).unwrap();
        let url = format!(
            "http://{}/api/github/webhooks",
            self.running.as_ref().unwrap().addr
        );
        self.http
            .post(url)
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", format!("delivery-{}", self.deliveries))
            .header("X-Hub-Signature-256", sign(SECRET, &body))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("webhook request")
            .status()
    }

    pub fn envelope(&self, action: &str, sender: &str) -> Value {
        json!({
            "action": action,
            "repository": self.world.repo_json(REPO),
            "sender": self.world.user_json(sender),
            "installation": {"id": self.world.installation_id()},
        })
    }

    /// Issue "Add dark mode" labelled `needs-spec` → a spec PR designed with `components`
    /// components (its status comment asserted); returns (issue, pr).
    pub async fn spec_pr(&mut self, components: usize) -> (u64, u64) {
        self.spec_pr_from(super::answers::good_answer(components))
            .await
    }

    /// Issue "Add dark mode" labelled `needs-spec` → a spec PR from the architect's `answer`
    /// (its status comment asserted); returns (issue, pr).
    pub async fn spec_pr_from(&mut self, answer: Value) -> (u64, u64) {
        let issue = self.open_issue("Add dark mode", "Night theme please.");
        self.llm.push_tool_call("submit_spec", answer);
        self.label_issue(issue, "needs-spec").await;
        self.run_jobs().await;
        let _ = self.expect_one_comment(issue);
        let pr = self.world.pulls(REPO)[0].number;
        (issue, pr)
    }

    /// The one implementation PR of `issue` (from `specbot/implement-<issue>`).
    pub fn implementation_pull(&self, issue: u64) -> super::github_world::PullInfo {
        let branch = format!("specbot/implement-{issue}");
        let pulls: Vec<_> = self
            .world
            .pulls(REPO)
            .into_iter()
            .filter(|p| p.head == branch)
            .collect();
        assert_eq!(pulls.len(), 1, "one implementation PR");
        pulls[0].clone()
    }

    pub fn open_issue(&self, title: &str, body: &str) -> u64 {
        self.world.add_issue(REPO, title, body, "alice")
    }

    /// Bob asks for a revision of spec PR `pr` with `command` (`/revise …`); the model answers
    /// `answer`; the jobs run.
    pub async fn revise(&mut self, pr: u64, command: &str, answer: Value) {
        self.llm.push_tool_call("submit_spec", answer);
        self.comment_as(pr, "bob", command).await;
        self.run_jobs().await;
    }

    /// The spec file of feature issue `n` on its spec branch, as the bot committed it there.
    pub fn spec_on_branch(&self, n: u64) -> String {
        let (branch, path) = (
            format!("specbot/spec-{n}"),
            format!("specs/IMPLEMENT-{n}.md"),
        );
        self.world
            .file(REPO, &branch, &path)
            .unwrap_or_else(|| panic!("no {path} on {branch}"))
    }

    /// The body of issue (or pull request) `n`, empty when it has none.
    pub fn issue_body(&self, n: u64) -> String {
        let issue = self.world.issue(REPO, n);
        issue.and_then(|i| i.body).unwrap_or_default()
    }

    /// `sender` labels issue `n`.
    pub async fn label_issue_as(&mut self, n: u64, label: &str, sender: &str) {
        let mut p = self.envelope("labeled", sender);
        p["issue"] = self.world.issue_json(REPO, n);
        p["label"] = json!({"name": label, "color": "ededed"});
        let status = self.send("issues", p).await;
        assert!(status.is_success(), "labeled delivery answered {status}");
    }

    pub async fn label_issue(&mut self, n: u64, label: &str) {
        self.label_issue_as(n, label, "alice").await
    }

    /// `author` comments `body` on issue or PR `n`; returns the comment id.
    pub async fn comment_as(&mut self, n: u64, author: &str, body: &str) -> u64 {
        let id = self.world.add_comment(REPO, n, author, body);
        let mut p = self.envelope("created", author);
        p["issue"] = self.world.issue_json(REPO, n);
        p["comment"] = self.world.comment_json(REPO, id);
        let status = self.send("issue_comment", p).await;
        assert!(status.is_success(), "comment delivery answered {status}");
        id
    }

    pub async fn comment(&mut self, n: u64, body: &str) -> u64 {
        self.comment_as(n, "alice", body).await
    }

    /// `author` edits comment `id` on `n` to `body` (GitHub sends the old body in `changes`).
    pub async fn edit_comment_as(&mut self, n: u64, id: u64, author: &str, body: &str) {
        let old = self
            .world
            .with_state(|st| {
                let c = st.repo_mut(REPO)?.comments.get_mut(&id)?;
                Some(std::mem::replace(&mut c.body, body.to_string()))
            })
            .expect("comment exists");
        let mut p = self.envelope("edited", author);
        p["issue"] = self.world.issue_json(REPO, n);
        p["comment"] = self.world.comment_json(REPO, id);
        p["changes"] = json!({"body": {"from": old}});
        let status = self.send("issue_comment", p).await;
        assert!(status.is_success());
    }

    /// `reviewer` submits a review on PR `pr`: state `APPROVE`, `REQUEST_CHANGES` or `COMMENT`,
    /// with inline comments `(path, line, body)`.
    pub async fn review(
        &mut self,
        pr: u64,
        reviewer: &str,
        state: &str,
        body: &str,
        inline: &[(&str, u64, &str)],
    ) -> u64 {
        let id = self
            .world
            .add_review(REPO, pr, reviewer, state, body, inline);
        let mut p = self.envelope("submitted", reviewer);
        p["pull_request"] = self.world.pull_json(REPO, pr);
        let mut review = self.world.review_json(REPO, id);
        // Webhooks spell review states in lower case.
        if let Some(s) = review["state"].as_str() {
            review["state"] = json!(s.to_ascii_lowercase());
        }
        p["review"] = review;
        let status = self.send("pull_request_review", p).await;
        assert!(status.is_success());
        id
    }

    /// `who` merges (or closes) PR `pr`.
    pub async fn merge_pull(&mut self, pr: u64, who: &str) {
        self.world.merge_pull(REPO, pr);
        let mut p = self.envelope("closed", who);
        p["pull_request"] = self.world.pull_json(REPO, pr);
        let status = self.send("pull_request", p).await;
        assert!(status.is_success());
    }

    pub async fn close_pull(&mut self, pr: u64, who: &str) {
        self.world.close_pull(REPO, pr);
        let mut p = self.envelope("closed", who);
        p["pull_request"] = self.world.pull_json(REPO, pr);
        let status = self.send("pull_request", p).await;
        assert!(status.is_success());
    }

    /// The `pull_request` delivery GitHub sends when PR `pr` is `opened`, `reopened` or pushed
    /// to (`synchronize`, with the heads before and after the push) by `sender`.
    pub async fn send_pull_request(&mut self, pr: u64, action: &str, sender: &str) {
        let mut p = self.envelope(action, sender);
        p["number"] = json!(pr);
        p["pull_request"] = self.world.pull_json(REPO, pr);
        if action == "synchronize" {
            let head = self.world.pull(REPO, pr).expect("pull exists").head;
            let commits = self.world.commits_on(REPO, &head);
            p["after"] = json!(commits[0].sha);
            p["before"] = json!(commits[0].parents.first());
        }
        let status = self.send("pull_request", p).await;
        assert!(
            status.is_success(),
            "pull_request delivery answered {status}"
        );
    }

    /// CI fails on `branch`'s head: a failing check run `check` whose output is `log`, with
    /// one annotation, then the `check_suite.completed` delivery GitHub would send (from
    /// GitHub Actions, a bot). Returns (head sha, check run id).
    pub async fn fail_ci(&mut self, branch: &str, check: &str, log: &str) -> (String, u64) {
        let sha = self.world.ref_sha(REPO, branch).expect("branch exists");
        let run = self.world.add_check_run(
            REPO,
            &sha,
            check,
            Some("failure"),
            log,
            vec![super::github_world::Annotation {
                path: "src/lib.rs".into(),
                start_line: 3,
                end_line: 3,
                level: "failure".into(),
                title: Some("test failed".into()),
                message: "assertion `left == right` failed: dark != light".into(),
            }],
        );
        self.send_check_suite(run, branch).await;
        (sha, run)
    }

    /// Deliver `check_suite.completed` for the suite of check run `run` on `branch`.
    pub async fn send_check_suite(&mut self, run: u64, branch: &str) {
        let r = self.world.check_run_json(REPO, run);
        let mut p = self.envelope("completed", "github-actions[bot]");
        p["check_suite"] = json!({
            "id": r["check_suite"]["id"],
            "head_branch": branch,
            "head_sha": r["head_sha"],
            "status": "completed",
            "conclusion": r["conclusion"],
            "pull_requests": r["pull_requests"],
            "app": r["app"],
        });
        let status = self.send("check_suite", p).await;
        assert!(status.is_success());
    }

    /// Deliver `check_run.completed` for check run `run` on `branch`.
    pub async fn send_check_run(&mut self, run: u64, branch: &str) {
        let mut r = self.world.check_run_json(REPO, run);
        r["check_suite"]["head_branch"] = json!(branch);
        let mut p = self.envelope("completed", "github-actions[bot]");
        p["check_run"] = r;
        let status = self.send("check_run", p).await;
        assert!(status.is_success());
    }

    /// `sender` presses "Re-run" on check run `run`: `check_run.rerequested`.
    pub async fn rerun_check(&mut self, run: u64, sender: &str) {
        let mut p = self.envelope("rerequested", sender);
        p["check_run"] = self.world.check_run_json(REPO, run);
        let status = self.send("check_run", p).await;
        assert!(status.is_success());
    }

    /// Wait until no job is runnable. Never sleeps: woken when a job finishes.
    pub async fn run_jobs(&self) {
        let app = self.app().clone();
        let mut finished = app.finished.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            finished.borrow_and_update();
            let pending = app
                .store
                .pending_jobs(app.now())
                .await
                .expect("store answers");
            if pending == 0 {
                return;
            }
            app.kick();
            // The timeout is a failsafe for a hung test, not a synchronisation point.
            match tokio::time::timeout_at(deadline, finished.changed()).await {
                Ok(_) => {}
                Err(_) => panic!("jobs still pending after 60 s: {pending}"),
            }
        }
    }

    /// Wait until a fault point has "killed" a worker mid-job.
    pub async fn run_jobs_until_crash(&self) {
        let mut crashed = self.app().crashed.subscribe();
        self.app().kick();
        tokio::time::timeout(Duration::from_secs(60), crashed.wait_for(|c| *c))
            .await
            .expect("the fault point was reached within 60 s")
            .expect("app alive");
    }

    /// Comments specbot posted on `n`, marking them as looked at.
    pub fn bot_comments(&mut self, n: u64) -> Vec<String> {
        let comments = self.world.comments(REPO, n);
        let bot = self.world.bot_login();
        let mut out = Vec::new();
        for c in comments {
            if c.user == bot {
                self.asserted.insert(c.id);
                out.push(c.body.clone());
            }
        }
        out
    }

    /// Exactly one bot comment on `n`, returned.
    pub fn expect_one_comment(&mut self, n: u64) -> String {
        let comments = self.bot_comments(n);
        assert_eq!(
            comments.len(),
            1,
            "expected one bot comment on #{n}, got {comments:#?}"
        );
        comments.into_iter().next().unwrap()
    }

    /// The bot's comments on `n`: one for each of `expected`, in order, each containing its
    /// text.
    pub fn expect_comments(&mut self, n: u64, expected: &[&str]) -> Vec<String> {
        let comments = self.bot_comments(n);
        assert_eq!(
            comments.len(),
            expected.len(),
            "expected {expected:?} on #{n}, got {comments:#?}"
        );
        for (comment, text) in comments.iter().zip(expected) {
            assert!(
                comment.contains(text),
                "expected {text:?} on #{n} in {comment}"
            );
        }
        comments
    }

    /// A component issue the last revision dropped is closed with one comment saying so; one
    /// it kept has no comment.
    pub fn expect_dropped_or_silent(&mut self, n: u64) {
        let closed = self
            .world
            .issue(REPO, n)
            .is_some_and(|i| i.state == "closed");
        if closed {
            let said = self.expect_one_comment(n);
            assert!(said.contains("no longer part of the spec"), "#{n}: {said}");
        } else {
            self.expect_no_comment(n);
        }
    }

    /// No bot comment on `n`.
    pub fn expect_no_comment(&mut self, n: u64) {
        let comments = self.bot_comments(n);
        assert!(
            comments.is_empty(),
            "expected no bot comment on #{n}, got {comments:#?}"
        );
    }

    /// Call at the end of a test: every bot comment was looked at and every request matched
    /// GitHub's OpenAPI description.
    pub fn finish(mut self) {
        self.check_unasserted();
        self.world.assert_no_violations();
        self.checked = true;
    }

    fn check_unasserted(&mut self) {
        let mut missed = Vec::new();
        let bot = self.world.bot_login();
        let numbers = self
            .world
            .issues(REPO)
            .into_iter()
            .map(|i| i.number)
            .chain(self.world.pulls(REPO).into_iter().map(|p| p.number));
        for number in numbers {
            for c in self.world.comments(REPO, number) {
                if c.user == bot && !self.asserted.contains(&c.id) {
                    missed.push(format!("#{number}: {}", c.body));
                }
            }
        }
        if !missed.is_empty() {
            panic!(
                "the bot posted comments the test did not assert:\n{}",
                missed.join("\n---\n")
            );
        }
    }
}

impl Drop for Tester {
    /// Checks (unless [`Tester::finish`] did: unasserted comments and OpenAPI violations), then stops the app, so its database
    /// connections are closed before the next test (or the next loop iteration) opens its own.
    fn drop(&mut self) {
        if !self.checked && !std::thread::panicking() {
            self.check_unasserted();
            self.world.assert_no_violations();
        }
        if let Some(running) = self.running.take() {
            running.abort();
        }
    }
}
