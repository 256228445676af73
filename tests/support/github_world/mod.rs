//! GitHub simulator for end-to-end tests: a stateful in-process axum server on `127.0.0.1:0`
//! that plays api.github.com for one GitHub App and one installation. This file owns starting it,
//! the handle tests hold, the Rust API to arrange a world (repos, pushes, issues, comments,
//! reviews, checks, permissions, faults) and to inspect it afterwards (issues, comments, pulls,
//! branches, files, history, logs, OpenAPI violations), and the webhook JSON builders.
//!
//! Every request is checked against GitHub's OpenAPI description (see `openapi.rs`); tests end
//! with `world.assert_no_violations()`. It does not depend on the `specbot` crate.
#![allow(dead_code, unused_imports)]

mod faults;
mod git;
mod json;
mod openapi;
mod routes_apps;
mod routes_checks;
mod routes_git;
mod routes_issues;
mod routes_pulls;
mod routes_repos;
mod routes_web;
mod server;
mod state;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

pub use faults::{Fault, FaultRule};
pub use openapi::Violation;
pub use routes_web::RegisteredManifest;
pub use state::{Annotation, CheckRun, Comment, Issue, Pull, RequestRecord, ReviewComment, State};

use git::{Commit, Signature};
use json::View;
use server::Shared;
use state::{CheckSuite, ReactionTarget};

const PRIVATE_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/test-app-key.pem"
);
const PUBLIC_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/test-app-key.pub.pem"
);

/// A pull request as tests see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullInfo {
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    pub user: String,
    /// `open` or `closed`.
    pub state: String,
    pub merged: bool,
    pub head: String,
    pub head_sha: String,
    pub base: String,
    pub draft: bool,
}

/// A commit as tests see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    pub sha: String,
    pub message: String,
    pub author: String,
    pub parents: Vec<String>,
}

/// The running simulator. Dropping it stops the server.
pub struct GitHubWorld {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GitHubWorld {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GitHubWorld {
    /// Starts an empty world (no repos) on a free loopback port.
    pub async fn start() -> GitHubWorld {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the GitHub simulator");
        let addr = listener.local_addr().expect("local addr");
        let _ = openapi::checker();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new()),
            base: format!("http://{addr}"),
            public_key_pem: std::fs::read_to_string(PUBLIC_KEY).expect("read the test public key"),
        });
        let handler_shared = shared.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let shared = handler_shared.clone();
            async move { server::handle(shared, req).await }
        });
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("GitHub simulator serves");
        });
        GitHubWorld { shared, task }
    }

    fn st(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().expect("world state")
    }

    /// Runs `f` with the whole state locked (an escape hatch for unusual arrangements).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.st())
    }

    fn with_view<R>(&self, f: impl FnOnce(&View) -> R) -> R {
        let st = self.st();
        f(&View {
            st: &st,
            base: &self.shared.base,
        })
    }

    // ----- identity -----

    /// `http://127.0.0.1:PORT` — use it as `GITHUB_API_URL`.
    pub fn base_url(&self) -> String {
        self.shared.base.clone()
    }

    pub fn app_id(&self) -> u64 {
        self.st().app_id
    }

    pub fn app_slug(&self) -> String {
        self.st().app_slug.clone()
    }

    /// The App's bot user, the author of everything written with an installation token.
    pub fn bot_login(&self) -> String {
        self.st().bot_login()
    }

    /// The App's private key (PEM, PKCS#1), from `tests/fixtures/test-app-key.pem`.
    pub fn private_key_pem(&self) -> String {
        std::fs::read_to_string(PRIVATE_KEY).expect("read the test private key")
    }

    pub fn public_key_pem(&self) -> String {
        self.shared.public_key_pem.clone()
    }

    pub fn installation_id(&self) -> u64 {
        self.st().installation_id
    }

    /// A one-time code for `POST /app-manifests/{code}/conversions`.
    /// Manifests browsers posted to the registration form, oldest first.
    pub fn registered_manifests(&self) -> Vec<RegisteredManifest> {
        self.st().registered_manifests.clone()
    }

    pub fn manifest_code(&self) -> String {
        let mut st = self.st();
        let code = format!("manifest-code-{}", st.manifest_codes.len() + 1);
        st.manifest_codes.insert(code.clone());
        code
    }

    // ----- tokens -----

    /// How many installation tokens were minted for `installation_id`.
    pub fn token_mints(&self, installation_id: u64) -> usize {
        self.st().mints.get(&installation_id).copied().unwrap_or(0)
    }

    /// Makes every token minted so far expire now (the next use answers 401 `Bad credentials`).
    pub fn expire_tokens(&self) {
        for t in self.st().tokens.values_mut() {
            t.expires_at = 0;
        }
    }

    /// Mints a token without HTTP (for tests that need to call the API as the App directly).
    pub fn mint_token(&self) -> String {
        let mut st = self.st();
        let token = format!("ghs_test{:032}", st.tokens.len() + 1);
        let installation_id = st.installation_id;
        st.tokens.insert(
            token.clone(),
            state::Token {
                installation_id,
                expires_at: git::now() + 3600,
            },
        );
        token
    }

    // ----- arrange -----

    /// Adds a repository `owner/name` with one commit (`README.md`) on `main`; the owner is admin.
    pub fn add_repo(&self, full_name: &str) {
        self.st().add_repo(full_name);
    }

    /// Commits `content` at `path` on `branch` (created from the default branch if missing) as a
    /// human push by the repo owner. Returns the new commit's sha.
    pub fn put_file(&self, repo: &str, branch: &str, path: &str, content: &str) -> String {
        self.put_files(
            repo,
            branch,
            &[(path, Some(content))],
            &format!("Update {path}"),
            None,
        )
    }

    /// Commits several changes at once (`None` deletes), with a message and an author login.
    pub fn put_files(
        &self,
        repo: &str,
        branch: &str,
        changes: &[(&str, Option<&str>)],
        message: &str,
        author: Option<&str>,
    ) -> String {
        let mut st = self.st();
        let author = author
            .map(String::from)
            .unwrap_or_else(|| st.repo(repo).expect("unknown repo").owner.clone());
        let changes: Vec<(&str, Option<&[u8]>)> = changes
            .iter()
            .map(|(p, c)| (*p, c.map(str::as_bytes)))
            .collect();
        st.commit_files(repo, branch, &changes, message, &author)
    }

    /// Commits `path` on `branch` again with `mode` (`100755` makes it executable).
    pub fn set_mode(&self, repo: &str, branch: &str, path: &str, mode: &str) {
        let mut st = self.st();
        let t = st.tick();
        let r = st.repo_mut(repo).expect("unknown repo");
        let parent = r.branch_sha(branch).expect("unknown branch");
        let base = r.tree_of(&parent).expect("commit has a tree");
        let mut flat = r.objects.flatten(&base);
        flat.get_mut(path).expect("no such file").0 = mode.to_string();
        let tree = r.objects.build(&flat);
        let sig = Signature {
            name: r.owner.clone(),
            email: format!("{}@users.noreply.github.com", r.owner),
            date: t,
        };
        let sha = r.objects.put_commit(Commit {
            tree,
            parents: vec![parent],
            author: sig.clone(),
            committer: sig,
            message: format!("Make {path} {mode}"),
        });
        r.refs.insert(format!("refs/heads/{branch}"), sha);
    }

    /// The mode of the file at `path` on `git_ref` (`100644`, `100755`, …).
    pub fn file_mode(&self, repo: &str, git_ref: &str, path: &str) -> Option<String> {
        let st = self.st();
        let r = st.repo(repo)?;
        let tree = r.tree_of(&r.resolve(git_ref)?)?;
        r.objects
            .flatten(&tree)
            .get(path)
            .map(|(mode, _)| mode.clone())
    }

    /// A repository with no commits: its `git/ref` answers 409 like github.com's.
    pub fn add_empty_repo(&self, full_name: &str) {
        let mut st = self.st();
        st.add_repo(full_name);
        st.repo_mut(full_name).expect("just added").refs.clear();
    }

    /// The primary rate limit: `limit` requests per window of `window_secs`, starting now; over
    /// it every request answers 403 with `x-ratelimit-remaining: 0` until the reset.
    pub fn set_rate_limit(&self, limit: u64, window_secs: i64) {
        let mut st = self.st();
        st.rate_limit = limit;
        st.rate_window = window_secs;
        st.rate_used = 0;
        st.rate_reset = git::now() + window_secs;
    }

    /// Recursive trees longer than `limit` entries come back `truncated`.
    pub fn truncate_trees_over(&self, limit: usize) {
        self.st().tree_entry_limit = limit;
    }

    /// Creates a branch at the tip of `from`.
    pub fn create_branch(&self, repo: &str, branch: &str, from: &str) {
        let mut st = self.st();
        let r = st.repo_mut(repo).expect("unknown repo");
        let sha = r.resolve(from).expect("unknown ref");
        r.refs.insert(format!("refs/heads/{branch}"), sha);
    }

    /// A human deletes `branch`; as on GitHub, open pull requests from it are closed.
    pub fn delete_branch(&self, repo: &str, branch: &str) {
        let mut st = self.st();
        let t = st.tick();
        let r = st.repo_mut(repo).expect("unknown repo");
        let old = r.refs.remove(&format!("refs/heads/{branch}"));
        for i in r.issues.values_mut() {
            if let (Some(p), Some(old)) = (i.pull.as_mut(), &old)
                && p.head_ref == branch
            {
                p.head_sha = old.clone();
            }
            if i.state == "open" && i.pull.as_ref().is_some_and(|p| p.head_ref == branch) {
                i.state = "closed".into();
                i.closed_at = Some(t);
            }
        }
    }

    pub fn add_issue(&self, repo: &str, title: &str, body: &str, author: &str) -> u64 {
        self.st().new_issue(repo, title, Some(body), author, None)
    }

    /// Adds a comment on issue or pull request `number`; returns the comment id.
    pub fn add_comment(&self, repo: &str, number: u64, author: &str, body: &str) -> u64 {
        self.st()
            .new_comment(repo, number, author, body)
            .expect("unknown repo or issue")
    }

    /// Puts a label on an issue or pull request (creating the label in the repo if needed).
    pub fn add_label(&self, repo: &str, number: u64, label: &str) {
        let mut st = self.st();
        let name = st.ensure_label(repo, label);
        let issue = st
            .repo_mut(repo)
            .expect("unknown repo")
            .issues
            .get_mut(&number)
            .expect("unknown issue");
        if !issue.labels.contains(&name) {
            issue.labels.push(name);
        }
    }

    /// Locks an issue's conversation, as a maintainer would: only collaborators may write in it,
    /// and the App is none.
    pub fn lock_issue(&self, repo: &str, number: u64) {
        let mut st = self.st();
        st.repo_mut(repo)
            .expect("unknown repo")
            .issues
            .get_mut(&number)
            .expect("unknown issue")
            .locked = true;
    }

    /// Closes an issue as a human would (`completed`).
    pub fn close_issue(&self, repo: &str, number: u64, by: &str) {
        let mut st = self.st();
        let t = st.tick();
        let issue = st
            .repo_mut(repo)
            .expect("unknown repo")
            .issues
            .get_mut(&number)
            .expect("unknown issue");
        issue.state = "closed".into();
        issue.state_reason = Some("completed".into());
        issue.closed_at = Some(t);
        issue.closed_by = Some(by.into());
        issue.updated_at = t;
    }

    /// Adds a reaction as `user` on an issue (`comment_id: None`) or a comment.
    pub fn add_reaction(
        &self,
        repo: &str,
        number: u64,
        comment_id: Option<u64>,
        user: &str,
        content: &str,
    ) {
        let target = match comment_id {
            Some(c) => ReactionTarget::Comment(c),
            None => ReactionTarget::Issue(number),
        };
        self.st()
            .react(repo, target, user, content)
            .expect("unknown target");
    }

    /// Sets a collaborator's role: `admin`, `maintain`, `write`, `triage`, `read` or `none`.
    pub fn set_permission(&self, repo: &str, login: &str, permission: &str) {
        self.st()
            .repo_mut(repo)
            .expect("unknown repo")
            .permissions
            .insert(login.to_ascii_lowercase(), permission.into());
    }

    /// Opens a pull request as a human (`author`) from `head` into `base`.
    pub fn add_pull(
        &self,
        repo: &str,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
        author: &str,
    ) -> u64 {
        let mut st = self.st();
        let r = st.repo(repo).expect("unknown repo");
        let pull = Pull {
            head_ref: head.into(),
            head_sha: r.branch_sha(head).expect("head branch exists"),
            base_ref: base.into(),
            base_sha: r.branch_sha(base).expect("base branch exists"),
            merged: false,
            merged_at: None,
            merged_by: None,
            merge_commit_sha: None,
            draft: false,
            maintainer_can_modify: false,
        };
        st.new_issue(repo, title, Some(body), author, Some(pull))
    }

    /// Submits a review on pull `pr`. `state`: `APPROVED`, `CHANGES_REQUESTED` or `COMMENTED`
    /// (the event names `APPROVE`, `REQUEST_CHANGES`, `COMMENT` work too). Inline comments are
    /// `(path, line, body)`. Returns the review id.
    pub fn add_review(
        &self,
        repo: &str,
        pr: u64,
        reviewer: &str,
        state: &str,
        body: &str,
        comments: &[(&str, u64, &str)],
    ) -> u64 {
        let state = match state {
            "APPROVE" => "APPROVED",
            "REQUEST_CHANGES" => "CHANGES_REQUESTED",
            "COMMENT" => "COMMENTED",
            s => s,
        };
        let comments: Vec<(String, Option<u64>, String)> = comments
            .iter()
            .map(|(p, l, b)| ((*p).to_string(), Some(*l), (*b).to_string()))
            .collect();
        let mut st = self.st();
        let key = st.repo(repo).expect("unknown repo").full_name();
        routes_pulls::add_review(&mut st, &key, pr, reviewer, state, body, &comments)
    }

    /// Ids of the inline comments of a review, in order.
    pub fn review_comment_ids(&self, repo: &str, review_id: u64) -> Vec<u64> {
        self.st()
            .repo(repo)
            .expect("unknown repo")
            .review_comments
            .values()
            .filter(|c| c.review_id == Some(review_id))
            .map(|c| c.id)
            .collect()
    }

    /// Merges pull `n` with a merge commit, merged by the repo owner; closes the issues
    /// its body closes with a keyword (`Closes #n`, `Fixes #n`, …) when the base is the default
    /// branch. Returns the merge commit's sha.
    pub fn merge_pull(&self, repo: &str, n: u64) -> String {
        let mut st = self.st();
        let t = st.tick();
        let r = st.repo_mut(repo).expect("unknown repo");
        let owner = r.owner.clone();
        let issue = r.issues.get(&n).expect("unknown pull").clone();
        let p = issue.pull.clone().expect("a pull request");
        assert!(issue.state == "open", "pull #{n} is not open");
        let head_sha = r.pull_head_sha(&p);
        let base_sha = r.branch_sha(&p.base_ref).expect("base branch");
        let tree = r.tree_of(&head_sha).expect("head tree");
        let sig = Signature {
            name: "GitHub".into(),
            email: "noreply@github.com".into(),
            date: t,
        };
        let sha = r.objects.put_commit(Commit {
            tree,
            parents: vec![base_sha.clone(), head_sha.clone()],
            author: Signature {
                name: owner.clone(),
                email: format!("{owner}@users.noreply.github.com"),
                date: t,
            },
            committer: sig,
            message: format!(
                "Merge pull request #{n} from {owner}/{}\n\n{}",
                p.head_ref, issue.title
            ),
        });
        r.refs
            .insert(format!("refs/heads/{}", p.base_ref), sha.clone());
        let to_default = p.base_ref == r.default_branch;
        let i = r.issues.get_mut(&n).expect("exists");
        i.state = "closed".into();
        i.closed_at = Some(t);
        i.updated_at = t;
        let pm = i.pull.as_mut().expect("pull");
        pm.merged = true;
        pm.merged_at = Some(t);
        pm.merged_by = Some(owner.clone());
        pm.merge_commit_sha = Some(sha.clone());
        pm.head_sha = head_sha;
        pm.base_sha = base_sha;
        if to_default {
            for closed in closing_references(issue.body.as_deref().unwrap_or_default()) {
                if let Some(target) = r
                    .issues
                    .get_mut(&closed)
                    .filter(|x| x.pull.is_none() && x.state == "open")
                {
                    target.state = "closed".into();
                    target.state_reason = Some("completed".into());
                    target.closed_at = Some(t);
                    target.closed_by = Some(owner.clone());
                    target.updated_at = t;
                }
            }
        }
        sha
    }

    /// Closes pull `n` without merging.
    pub fn close_pull(&self, repo: &str, n: u64) {
        let mut st = self.st();
        let t = st.tick();
        let r = st.repo_mut(repo).expect("unknown repo");
        let tip = r
            .issues
            .get(&n)
            .and_then(|i| i.pull.as_ref())
            .and_then(|p| r.branch_sha(&p.head_ref));
        let i = r.issues.get_mut(&n).expect("unknown pull");
        let pull = i.pull.as_mut().expect("a pull request");
        if let Some(tip) = tip {
            // The head it closed with: reopening needs it still in the branch.
            pull.head_sha = tip;
        }
        i.state = "closed".into();
        i.closed_at = Some(t);
        i.updated_at = t;
    }

    /// Adds a completed check run (`conclusion` e.g. `failure`, `success`; `None` = in progress)
    /// on `head_sha`, in that commit's check suite. Returns the run id.
    pub fn add_check_run(
        &self,
        repo: &str,
        head_sha: &str,
        name: &str,
        conclusion: Option<&str>,
        output_text: &str,
        annotations: Vec<Annotation>,
    ) -> u64 {
        let mut st = self.st();
        let t = st.tick();
        let run_id = st.next_id();
        let new_suite = st.next_id();
        let r = st.repo_mut(repo).expect("unknown repo");
        let head_branch = r
            .refs
            .iter()
            .find(|(_, s)| *s == head_sha)
            .and_then(|(k, _)| k.strip_prefix("refs/heads/").map(String::from));
        let suite = match r
            .check_suites
            .values()
            .find(|s| s.head_sha == head_sha && !s.by_app)
        {
            Some(s) => s.id,
            None => {
                r.check_suites.insert(
                    new_suite,
                    CheckSuite {
                        id: new_suite,
                        head_sha: head_sha.into(),
                        head_branch,
                        by_app: false,
                    },
                );
                new_suite
            }
        };
        r.check_runs.insert(
            run_id,
            CheckRun {
                id: run_id,
                suite,
                head_sha: head_sha.into(),
                name: name.into(),
                conclusion: conclusion.map(String::from),
                title: Some(format!("{name}: {}", conclusion.unwrap_or("in progress"))),
                summary: Some(format!("{name} {}", conclusion.unwrap_or("is running"))),
                text: Some(output_text.into()),
                annotations,
                started_at: t,
                log: Some(job_log(t, name, output_text)),
                by_app: false,
                status: if conclusion.is_some() {
                    "completed"
                } else {
                    "in_progress"
                }
                .into(),
                external_id: String::new(),
                completed_at: conclusion.map(|_| t + 60),
            },
        );
        run_id
    }

    /// The check runs on commit `sha`, oldest first (the App's own and the CI system's).
    pub fn check_runs(&self, repo: &str, sha: &str) -> Vec<CheckRun> {
        self.st()
            .repo(repo)
            .map(|r| {
                r.check_runs
                    .values()
                    .filter(|c| c.head_sha == sha)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Set one of the permissions the installation granted the App: `("checks", "read")` is an
    /// installation that has not accepted `checks: write` yet.
    pub fn set_app_permission(&self, permission: &str, level: &str) {
        self.st()
            .app_permissions
            .insert(permission.into(), level.into());
    }

    /// Replace the GitHub Actions job log of check run `run_id` (plain lines; timestamps are
    /// added as GitHub writes them). `None`: the log expired.
    pub fn set_job_log(&self, repo: &str, run_id: u64, log: Option<&str>) {
        let mut st = self.st();
        let t = st.clock;
        let r = st.repo_mut(repo).expect("unknown repo");
        let run = r.check_runs.get_mut(&run_id).expect("unknown check run");
        run.log = log.map(|l| stamped(t, l));
    }

    /// Take a permission away from the App's installation (`actions`: an installation that has
    /// not accepted `actions: read` yet).
    pub fn revoke_app_permission(&self, permission: &str) {
        self.st().app_permissions.remove(permission);
    }

    /// The check suite a run belongs to.
    pub fn check_suite_of(&self, repo: &str, run_id: u64) -> u64 {
        self.st().repo(repo).expect("unknown repo").check_runs[&run_id].suite
    }

    // ----- faults -----

    pub fn inject(&self, rule: FaultRule) {
        self.st().faults.push(rule);
    }

    pub fn clear_faults(&self) {
        self.st().faults.clear();
    }

    // ----- inspect -----

    pub fn issue(&self, repo: &str, n: u64) -> Option<Issue> {
        self.st().repo(repo)?.issues.get(&n).cloned()
    }

    /// Issues (not pull requests), by number.
    pub fn issues(&self, repo: &str) -> Vec<Issue> {
        self.st()
            .repo(repo)
            .map(|r| {
                r.issues
                    .values()
                    .filter(|i| i.pull.is_none())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Comments on issue or pull `n`, oldest first.
    pub fn comments(&self, repo: &str, n: u64) -> Vec<Comment> {
        self.st()
            .repo(repo)
            .map(|r| {
                r.comments
                    .values()
                    .filter(|c| c.issue == n)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every body comment `comment_id` had, oldest first (the last is the current one).
    pub fn comment_bodies(&self, repo: &str, comment_id: u64) -> Vec<String> {
        self.comment(repo, comment_id)
            .map(|c| c.history.iter().cloned().chain([c.body]).collect())
            .unwrap_or_default()
    }

    pub fn comment(&self, repo: &str, comment_id: u64) -> Option<Comment> {
        self.st().repo(repo)?.comments.get(&comment_id).cloned()
    }

    fn pull_info(r: &state::Repo, i: &Issue) -> Option<PullInfo> {
        let p = i.pull.as_ref()?;
        Some(PullInfo {
            number: i.number,
            title: i.title.clone(),
            body: i.body.clone(),
            user: i.user.clone(),
            state: i.state.clone(),
            merged: p.merged,
            head: p.head_ref.clone(),
            head_sha: r.pull_head_sha(p),
            base: p.base_ref.clone(),
            draft: p.draft,
        })
    }

    pub fn pulls(&self, repo: &str) -> Vec<PullInfo> {
        let st = self.st();
        let Some(r) = st.repo(repo) else {
            return vec![];
        };
        r.issues
            .values()
            .filter_map(|i| Self::pull_info(r, i))
            .collect()
    }

    pub fn pull(&self, repo: &str, n: u64) -> Option<PullInfo> {
        let st = self.st();
        let r = st.repo(repo)?;
        Self::pull_info(r, r.issues.get(&n)?)
    }

    /// Review comments (inline and replies) on pull `n`.
    pub fn review_comments(&self, repo: &str, n: u64) -> Vec<ReviewComment> {
        self.st()
            .repo(repo)
            .map(|r| {
                r.review_comments
                    .values()
                    .filter(|c| c.pull == n)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Branch names, sorted.
    pub fn branches(&self, repo: &str) -> Vec<String> {
        self.st()
            .repo(repo)
            .map(|r| {
                r.refs
                    .keys()
                    .filter_map(|k| k.strip_prefix("refs/heads/").map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn ref_sha(&self, repo: &str, branch: &str) -> Option<String> {
        self.st().repo(repo)?.branch_sha(branch)
    }

    /// A file's text at a branch, tag or sha.
    pub fn file(&self, repo: &str, git_ref: &str, path: &str) -> Option<String> {
        let data = self.st().repo(repo)?.file_at(git_ref, path)?;
        Some(String::from_utf8_lossy(&data).into_owned())
    }

    /// Every file path at a ref, sorted.
    pub fn tree_paths(&self, repo: &str, git_ref: &str) -> Vec<String> {
        let st = self.st();
        let Some(r) = st.repo(repo) else {
            return vec![];
        };
        let Some(tree) = r.resolve(git_ref).and_then(|c| r.tree_of(&c)) else {
            return vec![];
        };
        r.objects.flatten(&tree).into_keys().collect()
    }

    /// First-parent history of a branch, newest first.
    pub fn commits_on(&self, repo: &str, branch: &str) -> Vec<CommitInfo> {
        let st = self.st();
        let Some(r) = st.repo(repo) else {
            return vec![];
        };
        let Some(tip) = r.resolve(branch) else {
            return vec![];
        };
        r.objects
            .history(&tip)
            .into_iter()
            .map(|sha| {
                let c = r.objects.commit(&sha).expect("history holds commits");
                CommitInfo {
                    sha,
                    message: c.message.clone(),
                    author: c.author.name.clone(),
                    parents: c.parents.clone(),
                }
            })
            .collect()
    }

    /// Numbers of the sub-issues of `n`, in the order they were added.
    pub fn sub_issues(&self, repo: &str, n: u64) -> Vec<u64> {
        self.issue(repo, n)
            .map(|i| i.sub_issues)
            .unwrap_or_default()
    }

    /// Numbers of the issues `n` is blocked by.
    pub fn blocked_by(&self, repo: &str, n: u64) -> Vec<u64> {
        self.issue(repo, n)
            .map(|i| i.blocked_by)
            .unwrap_or_default()
    }

    /// `(user, content)` of the reactions on issue or pull `n`.
    pub fn reactions(&self, repo: &str, n: u64) -> Vec<(String, String)> {
        self.issue(repo, n)
            .map(|i| {
                i.reactions
                    .into_iter()
                    .map(|r| (r.user, r.content))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `(user, content)` of the reactions on a comment.
    pub fn comment_reactions(&self, repo: &str, comment_id: u64) -> Vec<(String, String)> {
        self.comment(repo, comment_id)
            .map(|c| {
                c.reactions
                    .into_iter()
                    .map(|r| (r.user, r.content))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn labels_of(&self, repo: &str, n: u64) -> Vec<String> {
        self.issue(repo, n).map(|i| i.labels).unwrap_or_default()
    }

    // ----- logs -----

    /// Requests in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.st().requests.clone()
    }

    /// Request counts keyed by `METHOD /route/{template}` (unmatched paths by their own path).
    pub fn request_counts(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in self.st().requests.iter() {
            let route = r
                .route
                .clone()
                .unwrap_or_else(|| r.path.split('?').next().unwrap_or_default().to_string());
            *out.entry(format!("{} {route}", r.method)).or_insert(0) += 1;
        }
        out
    }

    /// How many requests hit `method` + route template.
    pub fn request_count(&self, method: &str, template: &str) -> usize {
        self.st()
            .requests
            .iter()
            .filter(|r| {
                r.method.eq_ignore_ascii_case(method) && r.route.as_deref() == Some(template)
            })
            .count()
    }

    pub fn clear_requests(&self) {
        self.st().requests.clear();
    }

    /// Requests that did not match GitHub's OpenAPI description.
    pub fn violations(&self) -> Vec<Violation> {
        self.st().violations.clone()
    }

    /// Panics listing every request that did not match the OpenAPI description.
    pub fn assert_no_violations(&self) {
        let v = self.violations();
        assert!(
            v.is_empty(),
            "{} request(s) did not match GitHub's OpenAPI description:\n{}",
            v.len(),
            v.iter()
                .map(|v| format!("  {v}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// Answers of the simulator itself that do not match the response schemas (simulator bugs).
    pub fn response_problems(&self) -> Vec<Violation> {
        self.st().response_problems.clone()
    }

    pub fn assert_responses_conform(&self) {
        let v = self.response_problems();
        assert!(
            v.is_empty(),
            "simulator answers that break GitHub's response schemas:\n{}",
            v.iter()
                .map(|v| format!("  {v}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// Every `METHOD /template` the checker knows.
    pub fn operations(&self) -> Vec<String> {
        openapi::checker().operations()
    }

    // ----- webhook JSON -----

    pub fn repo_json(&self, repo: &str) -> Value {
        self.with_view(|v| v.repo(v.st.repo(repo).expect("unknown repo")))
    }

    pub fn issue_json(&self, repo: &str, n: u64) -> Value {
        self.with_view(|v| v.issue(v.st.repo(repo).expect("unknown repo"), n))
    }

    pub fn pull_json(&self, repo: &str, n: u64) -> Value {
        self.with_view(|v| v.pull(v.st.repo(repo).expect("unknown repo"), n))
    }

    /// The world's time less `secs`, as GitHub writes timestamps.
    pub fn now_iso_minus(&self, secs: i64) -> String {
        self.with_state(|st| git::iso(st.clock - secs))
    }

    pub fn comment_json(&self, repo: &str, comment_id: u64) -> Value {
        self.with_view(|v| v.comment(v.st.repo(repo).expect("unknown repo"), comment_id))
    }

    pub fn review_json(&self, repo: &str, review_id: u64) -> Value {
        self.with_view(|v| v.review(v.st.repo(repo).expect("unknown repo"), review_id))
    }

    pub fn review_comment_json(&self, repo: &str, comment_id: u64) -> Value {
        self.with_view(|v| v.review_comment(v.st.repo(repo).expect("unknown repo"), comment_id))
    }

    pub fn check_run_json(&self, repo: &str, run_id: u64) -> Value {
        self.with_view(|v| v.check_run(v.st.repo(repo).expect("unknown repo"), run_id))
    }

    pub fn user_json(&self, login: &str) -> Value {
        self.with_view(|v| v.user(login))
    }

    /// The `installation` object of webhook payloads.
    pub fn installation_json(&self) -> Value {
        let id = self.installation_id();
        json!({ "id": id, "node_id": format!("MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u{id}") })
    }

    pub fn app_json(&self) -> Value {
        self.with_view(|v| v.app())
    }
}

/// Issue numbers closed by keywords in a pull request body (`closes #3`, `Fixes #4`, …).
fn closing_references(body: &str) -> Vec<u64> {
    const KEYWORDS: &[&str] = &[
        "close", "closes", "closed", "fix", "fixes", "fixed", "resolve", "resolves", "resolved",
    ];
    let words: Vec<&str> = body.split_whitespace().collect();
    let mut out = Vec::new();
    for pair in words.windows(2) {
        let kw = pair[0].trim_end_matches(':').to_ascii_lowercase();
        if KEYWORDS.contains(&kw.as_str())
            && let Some(n) = pair[1].strip_prefix('#')
        {
            let digits: String = n.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = digits.parse() {
                out.push(n);
            }
        }
    }
    out
}

/// A GitHub Actions job log for a failed step `name` printing `output`: checkout, the step's
/// `##[group]Run` header, its output, `##[error]`, cleanup; each line timestamped.
fn job_log(t: i64, name: &str, output: &str) -> String {
    let plain = format!(
        "##[group]Run actions/checkout@v4\nwith:\n  fetch-depth: 1\n##[endgroup]\n\
         ##[group]Run {name}\n{name}\nshell: /usr/bin/bash -e {{0}}\n##[endgroup]\n\
         {output}\n##[error]Process completed with exit code 1.\nPost job cleanup.\n"
    );
    stamped(t, &plain)
}

/// Prefix each line with a timestamp, as job logs have them (and a BOM, as GitHub sends).
fn stamped(t: i64, plain: &str) -> String {
    let stamp = git::iso(t).replace('Z', ".0000000Z");
    let mut out = String::from("\u{feff}");
    for line in plain.lines() {
        out.push_str(&format!("{stamp} {line}\n"));
    }
    out
}
