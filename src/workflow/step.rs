//! What a running workflow works with: its context ([`JobCtx`]: the app, the claimed job, the
//! means to checkpoint and stop), how a step fails ([`StepError`], [`JobError`]) and how a run
//! ends ([`Outcome`]).

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::repo::RepoConfig;
use crate::github::{GitHubError, Repo};
use crate::jobs::{Job, StoreError};
use crate::llm::ChatModel;
use crate::workflow::job::RepoTarget;

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
    /// The message says what failed in plain words, since it is posted on the issue; the
    /// server's address and the provider's own error text go to the log only.
    pub fn from_llm(e: &crate::llm::LlmError) -> Self {
        use crate::llm::LlmError as E;
        tracing::warn!(error = %e, "the language model call failed");
        #[allow(unreachable_patterns)] // a variant added later falls back to the plain words
        let what = match e {
            E::RateLimited { .. } => "the language model's provider is rate limiting specbot",
            E::Overloaded => "the language model's provider is overloaded",
            E::Server { .. } => "the language model's provider had an internal error",
            E::Timeout => "the language model did not answer in time",
            E::Cancelled => "the call to the language model was cancelled",
            E::Malformed(_) => "the language model's answer could not be read",
            E::Http(_) => "the language model's server could not be reached",
            E::Auth(_) => "the language model's provider refused specbot's credentials",
            E::BadRequest(_) | E::Status { .. } => {
                "the language model's provider refused the request"
            }
            E::Config(_) => "the language model is not configured correctly",
            _ => "the call to the language model failed",
        };
        JobError {
            message: format!("{what} (the details are in specbot's log)"),
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

impl StepError {
    /// A failure no retry can mend.
    pub fn permanent(message: impl Into<String>) -> Self {
        StepError::Failed(JobError::permanent(message))
    }
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
        tracing::warn!(error = %e, "a GitHub request failed");
        // GitHub's own answers (a status and its message) are public words; a transport
        // failure's text can name the server, so it stays in the log.
        #[allow(unreachable_patterns)] // a variant added later falls back to the plain words
        let message = match &e {
            GitHubError::Status { .. } | GitHubError::RateLimited { .. } => format!("GitHub: {e}"),
            GitHubError::Uncertain { route, .. } => format!(
                "GitHub: {route}: no clear answer from GitHub; it may or may not have been applied"
            ),
            GitHubError::Transport { route, .. } => {
                format!("GitHub: {route}: GitHub could not be reached")
            }
            GitHubError::Decode { route, .. } => {
                format!("GitHub: {route}: GitHub's answer could not be read")
            }
            _ => "GitHub: the request failed (the details are in specbot's log)".into(),
        };
        StepError::Failed(JobError {
            message,
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

/// The repository client for a target; `None` while no App credentials are configured.
pub fn repo_client(app: &App, target: &RepoTarget) -> Result<Option<Repo>, GitHubError> {
    let Some(github) = &app.github else {
        return Ok(None);
    };
    let installation = github.installation(target.installation_id)?;
    Ok(Some(installation.repo(&target.owner, &target.name)))
}

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

    /// Whether something written at `written_at` (ISO 8601, as the delivery said) is older
    /// than what the bot remembers acting on (the deliveries kept): a delivery of it now can
    /// only be a replay from before that memory.
    pub fn is_before_memory(&self, written_at: Option<&str>) -> bool {
        let (Some(keep), Some(at)) = (self.app.settings.retention.deliveries, written_at) else {
            return false;
        };
        let Ok(at) = chrono::DateTime::parse_from_rfc3339(at) else {
            return false;
        };
        let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        at.timestamp_millis() < self.app.now().saturating_sub(keep_ms)
    }

    /// The workflow's progress so far (from an earlier, interrupted attempt too). A checkpoint
    /// that does not decode is an error: starting over would do (and pay for) the work twice.
    pub fn progress<T: DeserializeOwned + Default>(&self) -> StepResult<T> {
        if self.job.checkpoint.is_null() {
            return Ok(T::default());
        }
        serde_json::from_value(self.job.checkpoint.clone()).map_err(|e| {
            StepError::permanent(format!("this job's saved progress could not be read: {e}"))
        })
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

    /// Keep a step's result in `progress` (in the slot `field` picks) and checkpoint it as
    /// `step`; the result back.
    pub async fn keep<P, T>(
        &mut self,
        step: &str,
        progress: &mut P,
        field: impl FnOnce(&mut P) -> &mut Option<T> + Send,
        value: T,
    ) -> StepResult<T>
    where
        P: Serialize + Send + Sync,
        T: Clone + Send,
    {
        *field(progress) = Some(value.clone());
        self.save(step, progress).await?;
        Ok(value)
    }

    /// The repository client for a target.
    pub fn repo(&self, target: &RepoTarget) -> StepResult<Repo> {
        repo_client(&self.app, target)?
            .ok_or_else(|| StepError::permanent("no GitHub App credentials are configured"))
    }

    /// The model for this job: the configured one, or the repository's `model` override.
    /// Refused when its price is unknown on a paid provider (see [`App::model_price`]).
    pub fn model(&self, model_override: Option<&str>) -> StepResult<Arc<dyn ChatModel>> {
        let model = self
            .app
            .model_for(model_override)
            .map_err(StepError::permanent)?;
        self.app
            .model_price(model.model())
            .map_err(StepError::permanent)?;
        Ok(model)
    }
}

/// For a job's report on how it ended: the repository's client (`None` when the App has no
/// GitHub credentials) and the job's latest progress. The claimed copy of the job predates this
/// attempt's checkpoints, so the store is read again; progress that cannot be read reports as
/// none: the report is the last word on a job that has already failed.
pub async fn last_progress<T: DeserializeOwned + Default>(
    app: &App,
    job: &Job,
    target: &RepoTarget,
) -> Result<Option<(Repo, T)>, GitHubError> {
    let Some(repo) = repo_client(app, target)? else {
        return Ok(None);
    };
    let checkpoint = match app.store.job(job.id).await {
        Ok(Some(fresh)) => fresh.checkpoint,
        _ => job.checkpoint.clone(),
    };
    Ok(Some((
        repo,
        serde_json::from_value(checkpoint).unwrap_or_default(),
    )))
}

/// The repository's config from its default branch (defaults and problems when absent/bad).
pub async fn load_config(
    repo: &Repo,
    default_branch: &str,
) -> StepResult<(RepoConfig, Vec<String>)> {
    let text = repo
        .file(crate::config::repo::PATH, default_branch)
        .await?
        .unwrap_or_default();
    let (cfg, problems) = RepoConfig::parse(&text);
    Ok((cfg, problems.into_iter().map(|p| p.0).collect()))
}
