//! What the bot does: one [`Workflow`] per job kind, each in its own file and each a list of
//! named, checkpointed, idempotent steps, and the one table ([`KINDS`]) that runs a claimed job
//! by its kind.
//!
//! Adding a job kind: write its input type (in [`job`]) and a file that implements
//! [`Workflow`] for it, then add one row to [`KINDS`].

pub mod branch;
pub mod ci_fix;
pub mod command;
pub mod components;
pub mod context;
pub mod coverage;
pub mod engineer;
pub mod implement;
pub mod job;
pub mod quota;
pub mod records;
pub mod revise;
pub mod spec;
pub mod spec_event;
pub mod spend;
pub mod step;
pub mod watch;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::github::GitHubError;
use crate::jobs::{Job, NewJob};

pub use job::{
    CiFixRequest, CommandRequest, CoverageRequest, FeedbackSource, ImplementRequest, RepoTarget,
    ReviseRequest, SpecChange, SpecEvent, SpecRequest, SpecTrigger,
};
pub use step::{JobCtx, JobError, Outcome, StepError, StepResult, StopReason};

/// One kind of job: its input is its payload, and it knows how it is keyed, how it runs and
/// what it tells the user when it ends badly.
pub trait Workflow: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The kind's name, stored beside the job (`spec`, `implement`, …).
    const KIND: &'static str;

    /// Two jobs with one key never run at once; the second collapses into the first.
    fn dedupe_key(&self) -> String;

    /// Jobs with one serial key run one after the other, in the order they came.
    fn serial_key(&self) -> Option<String> {
        None
    }

    /// Run the job's steps, continuing from its checkpoint.
    fn run(self, ctx: &mut JobCtx) -> impl Future<Output = StepResult> + Send;

    /// The job failed for good or was cancelled: tell the user once (retries before a final
    /// failure said nothing).
    fn report(
        &self,
        _app: &App,
        _job: &Job,
        _end: Ending<'_>,
    ) -> impl Future<Output = Result<(), GitHubError>> + Send {
        async { Ok(()) }
    }

    /// The job to queue for this input, tried at most `max_attempts` times.
    fn into_job(self, max_attempts: i32) -> NewJob {
        let mut payload = serde_json::to_value(&self).unwrap_or(serde_json::Value::Null);
        if let Some(fields) = payload.as_object_mut() {
            fields.insert("kind".into(), Self::KIND.into());
        }
        NewJob {
            kind: Self::KIND.to_string(),
            dedupe_key: Some(self.dedupe_key()),
            serial_key: self.serial_key(),
            payload,
            max_attempts,
            run_at: 0,
        }
    }
}

/// How a job ended, when it did not succeed.
#[derive(Debug, Clone, Copy)]
pub enum Ending<'a> {
    /// Failed for good, with what went wrong in words a user can read.
    Failed(&'a str),
    /// Stopped on `/cancel`.
    Cancelled,
}

impl<'a> Ending<'a> {
    /// The stage a status comment shows for this ending, and the error it prints.
    pub fn shown_as<S>(self, failed: S, cancelled: S) -> (S, Option<&'a str>) {
        match self {
            Ending::Failed(error) => (failed, Some(error)),
            Ending::Cancelled => (cancelled, None),
        }
    }
}

type ReportFuture<'a> = BoxFuture<'a, Result<(), GitHubError>>;

/// A row of the dispatch table: one job kind, with its input decoded from the payload.
pub struct Kind {
    pub name: &'static str,
    decode: fn(&serde_json::Value) -> Result<(), serde_json::Error>,
    run: for<'a> fn(&'a mut JobCtx, &'a serde_json::Value) -> BoxFuture<'a, StepResult>,
    report: for<'a> fn(&'a App, &'a Job, Ending<'a>) -> ReportFuture<'a>,
}

/// Every job kind the bot runs.
pub static KINDS: [Kind; 7] = [
    Kind::of::<SpecRequest>(),
    Kind::of::<CommandRequest>(),
    Kind::of::<ReviseRequest>(),
    Kind::of::<SpecEvent>(),
    Kind::of::<ImplementRequest>(),
    Kind::of::<CiFixRequest>(),
    Kind::of::<CoverageRequest>(),
];

/// A job's input, decoded from its payload.
pub fn input<W: Workflow>(job: &Job) -> Result<W, JobError> {
    serde_json::from_value(job.payload.clone())
        .map_err(|e| JobError::permanent(format!("job input could not be read: {e}")))
}

impl Kind {
    const fn of<W: Workflow>() -> Kind {
        Kind {
            name: W::KIND,
            decode: |payload| W::deserialize(payload).map(|_| ()),
            run: run_erased::<W>,
            report: report_erased::<W>,
        }
    }

    /// The row for a stored job's kind.
    pub fn of_job(job: &Job) -> Option<&'static Kind> {
        KINDS.iter().find(|k| k.name == job.kind)
    }
}

fn run_erased<'a, W: Workflow>(
    ctx: &'a mut JobCtx,
    payload: &'a serde_json::Value,
) -> BoxFuture<'a, StepResult> {
    Box::pin(async move {
        let input: W = serde_json::from_value(payload.clone())
            .map_err(|e| StepError::permanent(format!("job input could not be read: {e}")))?;
        input.run(ctx).await
    })
}

fn report_erased<'a, W: Workflow>(app: &'a App, job: &'a Job, end: Ending<'a>) -> ReportFuture<'a> {
    Box::pin(async move {
        match input::<W>(job) {
            Ok(w) => w.report(app, job, end).await,
            Err(_) => Ok(()),
        }
    })
}

/// Whether a stored job's input is one this version can run.
pub fn check_input(job: &Job) -> Result<(), String> {
    let kind = Kind::of_job(job).ok_or_else(|| format!("unknown job kind `{}`", job.kind))?;
    (kind.decode)(&job.payload).map_err(|e| e.to_string())
}

/// Run a claimed job to its outcome.
pub async fn run(app: Arc<App>, owner: String, job: Job, cancel: CancellationToken) -> Outcome {
    let Some(kind) = Kind::of_job(&job) else {
        return Outcome::Failed(JobError::permanent(format!(
            "unknown job kind `{}`",
            job.kind
        )));
    };
    let payload = job.payload.clone();
    let mut ctx = JobCtx {
        app,
        job,
        owner,
        cancel,
    };
    match (kind.run)(&mut ctx, &payload).await {
        Ok(()) => Outcome::Succeeded,
        Err(StepError::Stopped) => Outcome::Stopped,
        Err(StepError::Failed(e)) => Outcome::Failed(e),
    }
}

/// A job failed for good or was cancelled: update what the user sees.
pub async fn report(app: &App, job: &Job, end: Ending<'_>) {
    if let Some(kind) = Kind::of_job(job)
        && let Err(error) = (kind.report)(app, job, end).await
    {
        tracing::error!(%error, ?end, "could not report how the job ended on GitHub");
    }
}
