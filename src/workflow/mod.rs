//! What the bot does: one module per job kind, each a list of named, checkpointed,
//! idempotent steps. This file holds the job inputs (what [`crate::trigger`] queues) and the
//! dispatcher that runs a claimed job.

use serde::{Deserialize, Serialize};

use crate::jobs::NewJob;

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
}

/// Something happened to a spec PR (approved, merged, closed, reopened).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecEvent {
    pub repo: RepoTarget,
    pub pull_number: u64,
    pub issue_number: u64,
    /// `approved`, `merged`, `closed` or `reopened`.
    pub what: String,
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

/// The dedupe key of an issue's implementation job (`/cancel` finds it by this key).
pub fn implement_job_key(repo_id: u64, issue_number: u64) -> String {
    format!("implement:{repo_id}#{issue_number}")
}

/// The issue an implementation branch belongs to: `specbot/implement-7` → 7.
pub fn implement_issue_of_branch(branch: &str) -> Option<u64> {
    branch.strip_prefix("specbot/implement-")?.parse().ok()
}

/// The dedupe key of an issue's spec job (a label and a `/spec` collapse into it; `/cancel`
/// finds it by this key).
pub fn spec_job_key(repo_id: u64, issue_number: u64) -> String {
    format!("spec:{repo_id}#{issue_number}")
}

/// The serial key of the jobs that write the spec branch of one feature issue.
fn spec_branch_key(repo_id: u64, issue_number: u64) -> String {
    format!("spec-branch:{repo_id}#{issue_number}")
}

/// The feature issue a spec branch belongs to: `specbot/spec-7` → 7.
pub fn spec_issue_of_branch(branch: &str) -> Option<u64> {
    branch.strip_prefix("specbot/spec-")?.parse().ok()
}

/// Every job's input; `kind` is the job kind stored beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobInput {
    Spec(SpecRequest),
    Command(CommandRequest),
    Revise(ReviseRequest),
    SpecEvent(SpecEvent),
    Implement(ImplementRequest),
    CiFix(CiFixRequest),
}

impl JobInput {
    pub fn kind(&self) -> &'static str {
        match self {
            JobInput::Spec(_) => "spec",
            JobInput::Command(_) => "command",
            JobInput::Revise(_) => "revise",
            JobInput::SpecEvent(_) => "spec_event",
            JobInput::Implement(_) => "implement",
            JobInput::CiFix(_) => "ci_fix",
        }
    }

    /// Two jobs with one key never run at once; the second collapses into the first.
    pub fn dedupe_key(&self) -> String {
        match self {
            JobInput::Spec(r) => spec_job_key(r.repo.repo_id, r.issue_number),
            JobInput::Command(r) => format!("command:{}:{}", r.repo.repo_id, r.comment_id),
            // One revision per piece of feedback (see `serial_key` for their order).
            JobInput::Revise(r) => match &r.source {
                FeedbackSource::Review { review_id } => {
                    format!(
                        "revise:{}#{}:review:{review_id}",
                        r.repo.repo_id, r.pull_number
                    )
                }
                FeedbackSource::Command { comment_id, .. } => {
                    format!(
                        "revise:{}#{}:comment:{comment_id}",
                        r.repo.repo_id, r.pull_number
                    )
                }
            },
            JobInput::SpecEvent(e) => {
                format!("spec_event:{}#{}:{}", e.repo.repo_id, e.pull_number, e.what)
            }
            JobInput::Implement(r) => implement_job_key(r.repo.repo_id, r.issue_number),
            // One fix round at a time per PR; the job itself skips heads already handled.
            JobInput::CiFix(r) => format!("ci_fix:{}#{}", r.repo.repo_id, r.issue_number),
        }
    }

    /// Jobs that must not overlap run one after the other, in the order they came:
    /// - the jobs that write one spec's branch: each revision builds on the spec the previous
    ///   one left, so two reviewers' feedback both land (run side by side, the later commit
    ///   would drop the earlier revision's changes);
    /// - the commands written on one issue or PR, so that what they queue is queued in the
    ///   order they were written.
    pub fn serial_key(&self) -> Option<String> {
        match self {
            JobInput::Spec(r) => Some(spec_branch_key(r.repo.repo_id, r.issue_number)),
            JobInput::Revise(r) => Some(spec_branch_key(r.repo.repo_id, r.issue_number)),
            JobInput::Command(r) => Some(format!("commands:{}#{}", r.repo.repo_id, r.issue_number)),
            _ => None,
        }
    }

    pub fn into_job(self) -> NewJob {
        NewJob {
            kind: self.kind().to_string(),
            dedupe_key: Some(self.dedupe_key()),
            serial_key: self.serial_key(),
            payload: serde_json::to_value(&self).unwrap_or(serde_json::Value::Null),
            max_attempts: crate::trigger::MAX_ATTEMPTS,
            run_at: 0,
        }
    }

    pub fn from_payload(payload: &serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(payload.clone())
    }
}

pub mod ci_fix;
pub mod command;
pub mod context;
pub mod implement;
pub mod revise;
pub mod spec;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::github::{GitHubError, Repo};
use crate::jobs::{Job, StoreError};

/// How a job run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Stopped on `/cancel`.
    Cancelled,
    /// Interrupted (shutdown or lost lease) at a step boundary; nothing was half-written.
    Stopped,
    Failed(JobError),
}

/// Why the runtime stopped a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Cancelled,
    LeaseLost,
}

/// A job failure, in words a user can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    pub message: String,
    /// Worth another attempt (GitHub or the model had trouble), or final (our input is bad).
    pub retryable: bool,
    /// Not before this long (GitHub's rate limit resets later): the job waits in the queue.
    pub retry_after: Option<std::time::Duration>,
}

impl JobError {
    pub fn permanent(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            retryable: false,
            retry_after: None,
        }
    }

    /// The model failed: worth another attempt when the provider said so (429, 5xx, a cut stream).
    pub fn from_llm(e: &crate::llm::LlmError) -> Self {
        JobError {
            message: format!("the language model: {e}"),
            retryable: e.is_retryable(),
            retry_after: None,
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            retryable: true,
            retry_after: None,
        }
    }
}

/// Why a step did not complete.
#[derive(Debug)]
pub enum StepError {
    /// The job was asked to stop; the step wrote nothing.
    Stopped,
    Failed(JobError),
}

impl From<JobError> for StepError {
    fn from(e: JobError) -> Self {
        StepError::Failed(e)
    }
}

impl From<GitHubError> for StepError {
    fn from(e: GitHubError) -> Self {
        let retryable = e.is_transient();
        let retry_after = match &e {
            GitHubError::RateLimited { wait, .. } => Some(*wait),
            _ => None,
        };
        StepError::Failed(JobError {
            message: format!("GitHub: {e}"),
            retryable,
            retry_after,
        })
    }
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        StepError::Failed(JobError::transient(format!("database: {e}")))
    }
}

pub type StepResult<T = ()> = Result<T, StepError>;

/// What a running workflow can reach: the app, its job, and the means to checkpoint and stop.
pub struct JobCtx {
    pub app: Arc<App>,
    pub job: Job,
    pub owner: String,
    pub cancel: CancellationToken,
}

impl JobCtx {
    /// Stop here if the job was cancelled or interrupted.
    pub fn check(&self) -> StepResult {
        if self.cancel.is_cancelled() {
            Err(StepError::Stopped)
        } else {
            Ok(())
        }
    }

    /// The workflow's progress so far (from an earlier, interrupted attempt too).
    pub fn progress<T: serde::de::DeserializeOwned + Default>(&self) -> T {
        serde_json::from_value(self.job.checkpoint.clone()).unwrap_or_default()
    }

    /// Record progress after a step, then give a crash point (tests) and `/cancel` a chance.
    pub async fn save<T: Serialize>(&mut self, step: &str, progress: &T) -> StepResult {
        let value = serde_json::to_value(progress)
            .map_err(|e| JobError::permanent(format!("progress not serialisable: {e}")))?;
        let now = self.app.now();
        if !self
            .app
            .store
            .save_checkpoint(self.job.id, &self.owner, &value, now)
            .await?
        {
            return Err(StepError::Stopped);
        }
        self.job.checkpoint = value;
        tracing::debug!(step, "checkpoint");
        self.app.fault_point(step);
        self.check()
    }

    /// The repository client for a target.
    pub fn repo(&self, target: &RepoTarget) -> StepResult<Repo> {
        let github = self
            .app
            .github
            .as_ref()
            .ok_or_else(|| JobError::permanent("no GitHub App credentials are configured"))?;
        let inst = github.installation(target.installation_id)?;
        Ok(inst.repo(&target.owner, &target.name))
    }
}

/// Whether a job that calls the model may start.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    Go,
    /// Over a quota that was already explained once in this window: drop it quietly.
    Drop,
}

const HOUR_MS: i64 = 3_600_000;

/// Quotas and the global spend cap, checked once, when a model-calling job first starts (a
/// retried or resumed attempt is not counted again). `requester` is `None` for jobs nobody
/// asked for (CI fix rounds), which count against the repository only.
///
/// Over a quota, the first refused job in the hour fails with a message saying which quota and
/// when it frees up (the user sees it in the status comment or reply); later ones in the same
/// hour are dropped with a log line, so a flood of triggers cannot become a flood of comments.
/// Over the spend cap, every job fails with the message.
pub async fn admit(
    ctx: &JobCtx,
    target: &RepoTarget,
    requester: Option<&str>,
) -> StepResult<Admission> {
    if ctx.job.attempts > 1 {
        return Ok(Admission::Go);
    }
    let settings = &ctx.app.settings;
    let now = ctx.app.now();
    if let Some(budget) = settings.llm_daily_budget_usd {
        let spent = ctx.app.store.spent_since(now - 24 * HOUR_MS).await?;
        if spent >= budget {
            metrics::counter!("specbot_quota_refusals_total", "quota" => "spend").increment(1);
            return Err(StepError::Failed(JobError::permanent(format!(
                "this specbot installation has spent ${spent:.2} on the language model in the last 24 hours, \
                 its limit (LLM_DAILY_BUDGET_USD = ${budget:.2}); try again later or ask its operator to raise the limit"
            ))));
        }
    }
    let hour = now / HOUR_MS;
    let next_hour = chrono_hour((hour + 1) * HOUR_MS);
    let mut checks: Vec<(String, u32, String)> = Vec::new();
    if let Some(login) = requester {
        checks.push((
            format!(
                "user:{}:{}:{hour}",
                target.installation_id,
                login.to_ascii_lowercase()
            ),
            settings.user_jobs_per_hour,
            format!("@{login} has started {{n}} jobs this hour, the most one person may (USER_JOBS_PER_HOUR = {{limit}})"),
        ));
    }
    checks.push((
        format!("repo:{}:{hour}", target.repo_id),
        settings.repo_jobs_per_hour,
        format!(
            "{} has started {{n}} jobs this hour, the most one repository may (REPO_JOBS_PER_HOUR = {{limit}})",
            target.full_name()
        ),
    ));
    for (key, limit, text) in checks {
        let n = ctx
            .app
            .store
            .bump_counter(&format!("quota:{key}"), now)
            .await?;
        if n <= i64::from(limit) {
            continue;
        }
        let quota = key.split(':').next().unwrap_or("quota").to_string();
        metrics::counter!("specbot_quota_refusals_total", "quota" => quota).increment(1);
        if n > i64::from(limit) + 1 {
            tracing::warn!(%key, n, limit, "over quota again this hour; dropped without a comment");
            return Ok(Admission::Drop);
        }
        let text = text
            .replace("{n}", &limit.to_string())
            .replace("{limit}", &limit.to_string());
        return Err(StepError::Failed(JobError::permanent(format!(
            "{text}. Try again after {next_hour} UTC."
        ))));
    }
    Ok(Admission::Go)
}

/// `HH:00` of a time in milliseconds since the epoch (UTC).
fn chrono_hour(ms: i64) -> String {
    format!("{:02}:00", (ms / HOUR_MS).rem_euclid(24))
}

/// Run a claimed job to its outcome.
pub async fn run(app: Arc<App>, owner: String, job: Job, cancel: CancellationToken) -> Outcome {
    let input = match JobInput::from_payload(&job.payload) {
        Ok(input) => input,
        Err(e) => {
            return Outcome::Failed(JobError::permanent(format!(
                "job input could not be read: {e}"
            )));
        }
    };
    let mut ctx = JobCtx {
        app,
        job,
        owner,
        cancel,
    };
    let result = match input {
        JobInput::Spec(request) => spec::run(&mut ctx, request).await,
        JobInput::Command(request) => command::run(&mut ctx, request).await,
        JobInput::Revise(request) => revise::run(&mut ctx, request).await,
        JobInput::SpecEvent(event) => revise::on_spec_event(&mut ctx, event).await,
        JobInput::Implement(request) => implement::run(&mut ctx, request).await,
        JobInput::CiFix(request) => ci_fix::run(&mut ctx, request).await,
    };
    match result {
        Ok(()) => Outcome::Succeeded,
        Err(StepError::Stopped) => Outcome::Stopped,
        Err(StepError::Failed(e)) => Outcome::Failed(e),
    }
}

/// A job was cancelled: update what the user sees.
pub async fn report_cancelled(app: Arc<App>, job: &Job) {
    let Ok(input) = JobInput::from_payload(&job.payload) else {
        return;
    };
    let result = match input {
        JobInput::Spec(request) => spec::report_cancelled(&app, job, &request).await,
        JobInput::Implement(request) => implement::report_cancelled(&app, job, &request).await,
        _ => Ok(()),
    };
    if let Err(error) = result {
        tracing::error!(%error, "could not report the cancellation on GitHub");
    }
}

/// A job failed for good: tell the user once (retries before this said nothing).
pub async fn report_failure(app: Arc<App>, job: &Job, message: &str) {
    let Ok(input) = JobInput::from_payload(&job.payload) else {
        return;
    };
    let result = match input {
        JobInput::Spec(request) => spec::report_failure(&app, job, &request, message).await,
        JobInput::Revise(request) => revise::report_failure(&app, &request, message).await,
        JobInput::Implement(request) => {
            implement::report_failure(&app, job, &request, message).await
        }
        JobInput::CiFix(request) => ci_fix::report_failure(&app, &request, message).await,
        JobInput::Command(_) | JobInput::SpecEvent(_) => Ok(()),
    };
    if let Err(error) = result {
        tracing::error!(%error, "could not report the failure on GitHub");
    }
}
