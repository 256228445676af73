//! What a job is asked to do: the inputs [`crate::trigger`] and the command job queue, stored
//! as the job's payload (the kind name beside the fields, as `{"kind": "spec", …}`), and the
//! keys that keep two jobs for one thing from running at once.

use serde::{Deserialize, Serialize};

/// The repository a job acts on, and the installation that may act on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoTarget {
    pub installation_id: u64,
    pub owner: String,
    pub name: String,
    pub repo_id: u64,
}

impl RepoTarget {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// What asked for a spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum SpecTrigger {
    Label { name: String },
    Command { comment_id: u64 },
}

/// Draft (or redraft) the spec for an issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecRequest {
    pub repo: RepoTarget,
    pub issue_number: u64,
    pub requested_by: String,
    pub trigger: SpecTrigger,
    pub delivery_id: String,
}

/// The commands of one comment, to run after the author's permission is checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRequest {
    pub repo: RepoTarget,
    pub issue_number: u64,
    pub is_pull_request: bool,
    pub comment_id: u64,
    pub author: String,
    /// Canonical command texts (`/implement --force`), parsed again when the job runs.
    pub commands: Vec<String>,
    /// Friendly parse errors to answer.
    pub errors: Vec<String>,
    pub delivery_id: String,
    /// When the comment was last written (ISO 8601): older than the deliveries kept, it acts
    /// on nothing (a replay from before what the bot remembers).
    #[serde(default)]
    pub written_at: Option<String>,
}

/// Where revision feedback comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum FeedbackSource {
    /// A review submitted with "Request changes" (its body and its inline comments).
    Review { review_id: u64 },
    /// `/revise <feedback>` on the spec PR.
    Command { comment_id: u64, feedback: String },
}

/// Revise a spec on its PR's branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviseRequest {
    pub repo: RepoTarget,
    pub pull_number: u64,
    /// The feature issue the spec is for (from the branch name).
    pub issue_number: u64,
    pub requested_by: String,
    pub source: FeedbackSource,
    pub delivery_id: String,
    /// When the review or comment was written (ISO 8601); see [`CommandRequest::written_at`].
    #[serde(default)]
    pub written_at: Option<String>,
}

/// Something happened to a spec PR (approved, merged, closed, reopened).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecEvent {
    pub repo: RepoTarget,
    pub pull_number: u64,
    pub issue_number: u64,
    pub what: SpecChange,
    /// Who approved, merged, closed or reopened it (only people with write access move a
    /// spec; empty in jobs queued before this was recorded, which then move nothing).
    #[serde(default)]
    pub by: String,
}

/// What happened to a spec PR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecChange {
    /// A review with "Approve".
    Approved,
    Merged,
    /// Closed without merging.
    Closed,
    Reopened,
}

impl SpecChange {
    /// The word for it, as in logs and dedupe keys.
    pub fn as_str(self) -> &'static str {
        match self {
            SpecChange::Approved => "approved",
            SpecChange::Merged => "merged",
            SpecChange::Closed => "closed",
            SpecChange::Reopened => "reopened",
        }
    }
}

/// Implement a spec, or one component of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImplementRequest {
    pub repo: RepoTarget,
    /// The issue the PR closes: the feature issue, or a component issue.
    pub issue_number: u64,
    /// The feature issue whose spec is implemented.
    pub spec_issue: u64,
    /// The component's slug, when the command was on a component issue.
    pub component: Option<String>,
    /// Read the spec from its PR's branch (not merged yet) instead of the default branch.
    pub from_spec_branch: bool,
    pub requested_by: String,
    pub comment_id: u64,
    pub delivery_id: String,
}

/// CI failed on an implementation PR's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiFixRequest {
    pub repo: RepoTarget,
    pub branch: String,
    /// The implemented issue (from the branch name).
    pub issue_number: u64,
    pub head_sha: String,
}

/// Check the spec file on a spec PR's head commit: the "spec coverage" check run, and the open
/// questions it lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageRequest {
    pub repo: RepoTarget,
    pub pull_number: u64,
    /// The feature issue the spec is for (from the branch name).
    pub issue_number: u64,
    /// The commit checked.
    pub head_sha: String,
    /// Asked for with the check's "Re-run" button: GitHub queued the check's suite again, so
    /// the run is written even where it already says the same.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rerun: bool,
}

/// The dedupe key of an issue's implementation job (`/cancel` finds it by this key).
pub fn implement_job_key(repo_id: u64, issue_number: u64) -> String {
    format!("implement:{repo_id}#{issue_number}")
}

/// The dedupe key of an issue's spec job (a label and a `/spec` collapse into it; `/cancel`
/// finds it by this key).
pub fn spec_job_key(repo_id: u64, issue_number: u64) -> String {
    format!("spec:{repo_id}#{issue_number}")
}

/// The serial key of the jobs that write the spec branch of one feature issue: each revision
/// builds on the spec the previous one left, so two reviewers' feedback both land (run side by
/// side, the later commit would drop the earlier revision's changes).
pub fn spec_branch_key(repo_id: u64, issue_number: u64) -> String {
    format!("spec-branch:{repo_id}#{issue_number}")
}
