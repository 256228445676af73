//! The GitHub shapes the bot reads, one set for webhook payloads ([`crate::event`]) and REST
//! answers ([`super::Repo`]) alike: accounts, repositories, issues, comments, pull requests,
//! reviews, check runs, git objects and permissions.
//!
//! Thin serde types of our own (octocrab's payload types are incomplete): only the fields the
//! bot reads, lenient where GitHub sends `null` or omits a field. The rules that belong to a
//! shape live beside it: who counts as a bot ([`User::is_bot`]) and which CI conclusions are
//! failures ([`is_failing_conclusion`]).

use serde::{Deserialize, Deserializer, Serialize};

/// A field GitHub may omit or send as `null`: either way it reads as the type's default.
pub(crate) fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A `user` GitHub may send as `null` (a deleted account): GitHub shows it as `ghost`.
fn ghost_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<User, D::Error> {
    Ok(Option::<User>::deserialize(d)?.unwrap_or_else(|| User {
        login: "ghost".into(),
        id: 0,
        kind: "User".into(),
    }))
}

/// A GitHub account: a person, an organisation or a bot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub login: String,
    pub id: u64,
    /// `User`, `Organization` or `Bot`.
    #[serde(rename = "type", default)]
    pub kind: String,
}

impl User {
    /// Bots never trigger anything and are not heard in a prompt: by account type (in any
    /// case), and by the `[bot]` login suffix GitHub gives App accounts.
    pub fn is_bot(&self) -> bool {
        self.kind.eq_ignore_ascii_case("bot") || self.login.ends_with("[bot]")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    pub id: u64,
    pub name: String,
    pub full_name: String,
    pub owner: User,
    #[serde(default, deserialize_with = "or_default")]
    pub default_branch: String,
    #[serde(default)]
    pub private: bool,
    /// The repository's web address (`https://github.com/o/r`, or the Enterprise Server's host).
    #[serde(default, deserialize_with = "or_default")]
    pub html_url: String,
}

/// The App's own description (`GET /app`), or the App behind a check suite or run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub id: u64,
    #[serde(default)]
    pub slug: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationRef {
    pub id: u64,
}

/// A repository an installation was given or lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationRepo {
    pub id: u64,
    pub full_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub name: String,
}

/// An issue, or a pull request seen through the issues API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub id: u64,
    pub number: u64,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(deserialize_with = "ghost_if_null")]
    pub user: User,
    #[serde(default)]
    pub labels: Vec<Label>,
    /// `open` or `closed`.
    #[serde(default, deserialize_with = "or_default")]
    pub state: String,
    /// Present when the "issue" is a pull request.
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
}

impl Issue {
    pub fn is_pull_request(&self) -> bool {
        self.pull_request.is_some()
    }
}

/// A comment on an issue or pull request (or a review's inline comment, in an event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(deserialize_with = "ghost_if_null")]
    pub user: User,
    /// When it was last written (ISO 8601).
    #[serde(default)]
    pub updated_at: Option<String>,
    /// The App that wrote it on someone's behalf (GitHub fills it for App-made comments).
    #[serde(default)]
    pub performed_via_github_app: Option<App>,
}

/// One side of a pull request: a branch and its head commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitRef {
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub sha: String,
    /// The repository the branch is in (a fork's, for a PR from a fork; `null` once that
    /// fork is deleted).
    #[serde(default)]
    pub repo: Option<RepoId>,
}

/// A repository, by id only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoId {
    pub id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    pub id: u64,
    pub number: u64,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(deserialize_with = "ghost_if_null")]
    pub user: User,
    pub head: GitRef,
    pub base: GitRef,
    /// `open` or `closed`.
    #[serde(default, deserialize_with = "or_default")]
    pub state: String,
    #[serde(default, deserialize_with = "or_default")]
    pub html_url: String,
    /// Sent in events and single-PR answers, not in lists.
    #[serde(default)]
    pub merged: Option<bool>,
    #[serde(default)]
    pub merged_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    /// `approved`, `changes_requested`, `commented`, `dismissed` (any case).
    #[serde(default)]
    pub state: String,
    #[serde(deserialize_with = "ghost_if_null")]
    pub user: User,
    /// When it was submitted (ISO 8601).
    #[serde(default)]
    pub submitted_at: Option<String>,
}

/// A review's inline comment, as the REST API lists them.
#[derive(Debug, Clone, Deserialize)]
pub struct ReviewComment {
    pub id: u64,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default)]
    pub original_line: Option<u64>,
    #[serde(deserialize_with = "ghost_if_null")]
    pub user: User,
}

/// A pull request as check suites and runs list them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRef {
    pub number: u64,
    pub head: GitRef,
}

/// Whether a completed check's conclusion is a failure worth fixing: `failure`, `timed_out`,
/// `action_required` or `startup_failure` (not `cancelled`, `neutral`, `skipped`, `stale`).
pub fn is_failing_conclusion(conclusion: &str) -> bool {
    matches!(
        conclusion,
        "failure" | "timed_out" | "action_required" | "startup_failure"
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSuite {
    pub id: u64,
    #[serde(default)]
    pub head_branch: Option<String>,
    pub head_sha: String,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub pull_requests: Vec<PullRef>,
    #[serde(default)]
    pub app: Option<App>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSuiteRef {
    pub id: u64,
    #[serde(default)]
    pub head_branch: Option<String>,
}

/// One check run, from a `check_run` event or
/// `GET /repos/{owner}/{repo}/commits/{ref}/check-runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRun {
    pub id: u64,
    pub name: String,
    pub head_sha: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub output: Option<CheckOutput>,
    #[serde(default)]
    pub check_suite: Option<CheckSuiteRef>,
    #[serde(default)]
    pub pull_requests: Vec<PullRef>,
    #[serde(default)]
    pub app: Option<App>,
    /// The CI system's page for the run (`…/actions/runs/<run>/job/<job_id>` for Actions).
    #[serde(default)]
    pub details_url: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
}

impl CheckRun {
    /// Completed with a failing conclusion ([`is_failing_conclusion`]).
    pub fn failed(&self) -> bool {
        self.status.as_deref() == Some("completed")
            && self
                .conclusion
                .as_deref()
                .is_some_and(is_failing_conclusion)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckOutput {
    pub title: Option<String>,
    pub summary: Option<String>,
    pub text: Option<String>,
    pub annotations_count: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckRunList {
    pub check_runs: Vec<CheckRun>,
}

/// A check run's annotation (a file, a line, a message).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Annotation {
    pub path: String,
    pub start_line: Option<u64>,
    pub annotation_level: Option<String>,
    pub title: Option<String>,
    /// May be `null`.
    #[serde(default, deserialize_with = "or_default")]
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TreeEntry {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub sha: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub mode: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Tree {
    pub sha: String,
    #[serde(default)]
    pub tree: Vec<TreeEntry>,
    #[serde(default)]
    pub truncated: bool,
}

/// A git object named by its hash alone (a tree, a commit, a ref's target).
#[derive(Debug, Clone, Deserialize)]
pub struct ShaOnly {
    pub sha: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Commit {
    pub sha: String,
    pub tree: ShaOnly,
    #[serde(default)]
    pub parents: Vec<ShaOnly>,
}

/// A git reference (`refs/heads/…`) and the commit it points at.
#[derive(Debug, Clone, Deserialize)]
pub struct Reference {
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub object: ShaOnly,
}

/// A file (or a blob) from the contents API, base64 inside.
#[derive(Debug, Clone, Deserialize)]
pub struct ContentFile {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub encoding: Option<String>,
    pub sha: String,
    #[serde(default)]
    pub size: u64,
    #[serde(rename = "type", default)]
    pub kind: String,
}

/// A user's permission on a repository, as GitHub answers it.
#[derive(Debug, Clone, Deserialize)]
pub struct CollaboratorPermission {
    pub permission: String,
    #[serde(default)]
    pub role_name: Option<String>,
}

/// A repository permission level, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    None,
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl CollaboratorPermission {
    pub fn level(&self) -> Permission {
        let role = self.role_name.as_deref().unwrap_or("");
        match (self.permission.as_str(), role) {
            (_, "maintain") => Permission::Maintain,
            (_, "triage") => Permission::Triage,
            ("admin", _) => Permission::Admin,
            ("maintain", _) => Permission::Maintain,
            ("write", _) => Permission::Write,
            ("triage", _) => Permission::Triage,
            ("read", _) => Permission::Read,
            _ => Permission::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(login: &str, kind: &str) -> User {
        User {
            login: login.into(),
            id: 1,
            kind: kind.into(),
        }
    }

    #[test]
    fn nullable_fields_of_the_openapi_description_decode() {
        let issue: Issue = serde_json::from_value(serde_json::json!({
            "id": 1, "number": 2, "title": "t", "body": null, "user": null, "labels": [],
            "state": "open"
        }))
        .expect("an issue whose author was deleted");
        assert_eq!(issue.user.login, "ghost");
        let note: Annotation = serde_json::from_value(serde_json::json!({
            "path": "src/lib.rs", "start_line": 3, "annotation_level": "failure",
            "title": null, "message": null
        }))
        .expect("an annotation without a message");
        assert_eq!(note.message, "");
    }

    #[test]
    fn a_user_is_a_bot_by_type_in_any_case_or_by_login() {
        assert!(user("specbot[bot]", "Bot").is_bot());
        assert!(user("renovate[bot]", "User").is_bot());
        for kind in ["Bot", "bot", "BOT"] {
            assert!(user("ci", kind).is_bot(), "{kind}");
        }
        assert!(!user("alice", "User").is_bot());
        assert!(!user("bot-lover", "User").is_bot());
    }

    #[test]
    fn only_failing_conclusions_of_completed_runs_are_failures() {
        for c in ["failure", "timed_out", "action_required", "startup_failure"] {
            assert!(is_failing_conclusion(c), "{c}");
        }
        for c in ["success", "cancelled", "neutral", "skipped", "stale", ""] {
            assert!(!is_failing_conclusion(c), "{c}");
        }
        let run: CheckRun = serde_json::from_value(serde_json::json!({
            "id": 1, "name": "test", "head_sha": "abc", "status": "completed",
            "conclusion": "timed_out", "output": {"title": null}
        }))
        .expect("a check run");
        assert!(run.failed());
        assert_eq!(run.output.as_ref().map(|o| o.annotations_count), Some(0));
        let queued = CheckRun {
            status: Some("queued".into()),
            ..run.clone()
        };
        assert!(!queued.failed());
    }

    #[test]
    fn null_or_missing_strings_read_as_empty() {
        let pull: PullRequest = serde_json::from_value(serde_json::json!({
            "id": 1, "number": 2, "user": {"login": "a", "id": 1}, "state": null,
            "head": {"ref": "h", "sha": "1"}, "base": {"ref": "main", "sha": "0"}
        }))
        .expect("a pull request");
        assert_eq!((pull.state.as_str(), pull.html_url.as_str()), ("", ""));
    }
}
