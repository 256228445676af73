//! What the bot remembers between jobs, typed: a spec's state and components, an
//! implementation's branch and fix rounds, a component issue, an engineer transcript. Each kind
//! is one [`Record`] with its own namespace in the store; a stored record that does not decode
//! is an error, never "none" (which would, say, file a second component issue).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::jobs::{Millis, Store};
use crate::spec::Component;
use crate::workflow::job::SpecChange;
use crate::workflow::step::{StepError, StepResult};

/// One kind of record, kept under its namespace.
pub trait Record: Serialize + DeserializeOwned {
    const NAMESPACE: &'static str;
}

/// The record under `key`, if there is one.
pub async fn load<R: Record>(store: &dyn Store, key: &str) -> StepResult<Option<R>> {
    let Some(value) = store.get_record(R::NAMESPACE, key).await? else {
        return Ok(None);
    };
    serde_json::from_value(value).map(Some).map_err(|e| {
        StepError::permanent(format!(
            "the stored {} record `{key}` could not be read: {e}",
            R::NAMESPACE
        ))
    })
}

/// The spec record of `issue` when `pull` is its spec PR. `None` (and a log line) when the
/// issue has no spec, or when the PR only looks like its spec PR: a fork's PR may copy the
/// branch name, never the recorded PR number.
pub async fn spec_of_pull(
    store: &dyn Store,
    repo_id: u64,
    issue: u64,
    pull: u64,
) -> StepResult<Option<SpecRecord>> {
    let Some(rec) = load::<SpecRecord>(store, &issue_key(repo_id, issue)).await? else {
        tracing::info!(pull, "no spec recorded for this PR's issue");
        return Ok(None);
    };
    if rec.pull != Some(pull) {
        tracing::warn!(pull, spec_pull = ?rec.pull, "a PR named like a spec branch that is not the spec's PR: ignored");
        return Ok(None);
    }
    Ok(Some(rec))
}

/// Store `record` under `key`, replacing what was there.
pub async fn save<R: Record>(store: &dyn Store, key: &str, record: &R, now: Millis) -> StepResult {
    let value = serde_json::to_value(record).map_err(|e| {
        StepError::permanent(format!(
            "a {} record is not serialisable: {e}",
            R::NAMESPACE
        ))
    })?;
    store.put_record(R::NAMESPACE, key, &value, now).await?;
    Ok(())
}

/// The key of what belongs to one issue of one repository.
pub fn issue_key(repo_id: u64, issue_number: u64) -> String {
    format!("{repo_id}#{issue_number}")
}

/// Where a spec stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecState {
    /// Written, its PR not open yet.
    #[default]
    Drafted,
    /// Its PR is open for review.
    InReview,
    /// Revised after review, still open.
    Revised,
    /// Approved by a review.
    Approved,
    /// Its PR was merged.
    Merged,
    /// Its PR was closed without merging.
    Closed,
}

impl SpecState {
    /// The state in words, for replies.
    pub fn words(self) -> &'static str {
        match self {
            SpecState::Drafted => "drafted",
            SpecState::InReview => "in review",
            SpecState::Revised => "revised",
            SpecState::Approved => "approved",
            SpecState::Merged => "merged",
            SpecState::Closed => "closed",
        }
    }

    /// Its PR is merged or closed: nothing revises it any more.
    pub fn is_finished(self) -> bool {
        matches!(self, SpecState::Merged | SpecState::Closed)
    }

    /// `/implement` may go ahead without `--force`.
    pub fn is_accepted(self) -> bool {
        matches!(self, SpecState::Approved | SpecState::Merged)
    }

    /// The state after `change`.
    pub fn after(self, change: SpecChange) -> SpecState {
        match change {
            SpecChange::Approved if self == SpecState::Merged => self,
            SpecChange::Approved => SpecState::Approved,
            SpecChange::Merged => SpecState::Merged,
            SpecChange::Closed => SpecState::Closed,
            SpecChange::Reopened => SpecState::InReview,
        }
    }
}

/// A spec's state across jobs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SpecRecord {
    pub state: SpecState,
    pub branch: String,
    pub path: String,
    pub pull: Option<u64>,
    /// slug → issue number
    pub components: BTreeMap<String, u64>,
    /// The components as the current spec defines them.
    pub designed: Vec<Component>,
    pub pull_url: Option<String>,
    /// The spec's open questions (unticked items of its `## Open questions`), as the spec job,
    /// the revise job or the coverage job last read them; `/implement` waits while there are
    /// any.
    pub open_questions: Vec<String>,
    /// The spec PR's body holds the coverage (no `checks: write` when it was last checked).
    pub coverage_in_body: bool,
}

impl Record for SpecRecord {
    const NAMESPACE: &'static str = "spec";
}

/// An implementation's state across jobs, read by the CI-fix job.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImplementationRecord {
    pub branch: String,
    pub pull: Option<u64>,
    pub spec_issue: u64,
    pub spec_path: String,
    /// Where the spec was read (the default branch, or the spec PR's branch).
    pub spec_ref: String,
    pub component: Option<String>,
    /// Fix rounds run so far.
    pub fix_attempts: u32,
    /// Head commits whose CI failure was already handled (newest last, bounded).
    pub handled_heads: Vec<String>,
}

impl Record for ImplementationRecord {
    const NAMESPACE: &'static str = "implementation";
}

/// A component issue the bot filed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ComponentRecord {
    pub number: u64,
    pub id: u64,
    /// A revision dropped the component and the bot closed its issue: a later revision that
    /// brings it back reopens it (an issue someone else closed stays closed).
    #[serde(default)]
    pub dropped: bool,
}

impl Record for ComponentRecord {
    const NAMESPACE: &'static str = "component";
}

impl ComponentRecord {
    pub fn key(repo_id: u64, spec_issue: u64, slug: &str) -> String {
        format!("{}/{slug}", issue_key(repo_id, spec_issue))
    }
}

/// An engineer run's conversation, redacted, kept for the operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TranscriptRecord(pub serde_json::Value);

impl Record for TranscriptRecord {
    const NAMESPACE: &'static str = "transcript";
}

/// A command or review the bot has acted on: a delivery of it sent again (a replay, or a
/// redelivery after the job finished) acts on nothing.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ActedRecord {
    pub at: Millis,
    /// The job that acted (its own retries act again: they did not finish).
    pub job: i64,
}

impl Record for ActedRecord {
    const NAMESPACE: &'static str = "acted";
}

impl ActedRecord {
    /// The key of one command of one comment (`comment:55:/implement --force`) or one review
    /// (`review:9:revise`), in one repository.
    pub fn key(repo_id: u64, what: &str, id: u64, command: &str) -> String {
        format!("{repo_id}:{what}:{id}:{command}")
    }

    /// Whether a job other than `job` acted on it before.
    pub async fn seen(store: &dyn Store, key: &str, job: i64) -> StepResult<bool> {
        Ok(load::<ActedRecord>(store, key)
            .await?
            .is_some_and(|acted| acted.job != job))
    }

    /// Remember that `job` acted on it.
    pub async fn remember(store: &dyn Store, key: &str, job: i64, now: Millis) -> StepResult {
        save(store, key, &ActedRecord { at: now, job }, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_stored_as_before() {
        for (state, text) in [
            (SpecState::InReview, "\"in_review\""),
            (SpecState::Approved, "\"approved\""),
            (SpecState::Merged, "\"merged\""),
        ] {
            assert_eq!(serde_json::to_string(&state).unwrap(), text);
        }
    }

    #[test]
    fn an_approval_after_the_merge_leaves_it_merged() {
        assert_eq!(
            SpecState::Merged.after(SpecChange::Approved),
            SpecState::Merged
        );
        assert_eq!(
            SpecState::Revised.after(SpecChange::Approved),
            SpecState::Approved
        );
        assert_eq!(
            SpecState::Closed.after(SpecChange::Reopened),
            SpecState::InReview
        );
    }
}
