//! Thin response types: only the fields the bot reads, lenient about the rest.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Account {
    pub login: String,
    pub id: u64,
    #[serde(rename = "type", default)]
    pub kind: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AppInfo {
    pub id: u64,
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RepoInfo {
    pub id: u64,
    pub full_name: String,
    pub default_branch: String,
    #[serde(default)]
    pub html_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LabelInfo {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IssueInfo {
    pub id: u64,
    pub number: u64,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub html_url: String,
    pub user: Account,
    #[serde(default)]
    pub labels: Vec<LabelInfo>,
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CommentInfo {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    pub user: Account,
    #[serde(default)]
    pub html_url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BranchRef {
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub sha: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullInfo {
    pub id: u64,
    pub number: u64,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub html_url: String,
    #[serde(default)]
    pub merged_at: Option<String>,
    pub head: BranchRef,
    pub base: BranchRef,
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

#[derive(Debug, Clone, Deserialize)]
pub struct ShaOnly {
    pub sha: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CommitInfo {
    pub sha: String,
    pub tree: ShaOnly,
    #[serde(default)]
    pub parents: Vec<ShaOnly>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RefInfo {
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub object: ShaOnly,
}

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

#[derive(Debug, Clone, Deserialize)]
pub struct PermissionInfo {
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

impl PermissionInfo {
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

#[derive(Debug, Clone, Deserialize)]
pub struct ReviewInfo {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub state: String,
    pub user: Account,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReviewCommentInfo {
    pub id: u64,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default)]
    pub original_line: Option<u64>,
    pub user: Account,
}

/// One check run (`GET /repos/{owner}/{repo}/commits/{ref}/check-runs`).
#[derive(Debug, Clone, Deserialize)]
pub struct CheckRunInfo {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub output: Option<CheckOutput>,
}

impl CheckRunInfo {
    /// Completed and not green (`failure`, `timed_out`, `cancelled`, `action_required`, `startup_failure`).
    pub fn failed(&self) -> bool {
        self.status.as_deref() == Some("completed")
            && matches!(
                self.conclusion.as_deref(),
                Some("failure" | "timed_out" | "action_required" | "startup_failure")
            )
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CheckOutput {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub annotations_count: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckRunList {
    pub check_runs: Vec<CheckRunInfo>,
}

/// A check run's annotation (a file, a line, a message).
#[derive(Debug, Clone, Deserialize)]
pub struct AnnotationInfo {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub start_line: Option<u64>,
    #[serde(default)]
    pub annotation_level: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub message: String,
}
