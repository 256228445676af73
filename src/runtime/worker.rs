//! Job workers: claim a job by lease, keep the lease alive while its workflow runs, and record
//! how it ended. A worker that hangs simply stops renewing; another takes the job over when the
//! lease expires. A process that dies lets go of its hold on the database, and its jobs are
//! taken over at once ([`crate::jobs::Store::serve_as`]); while this process's hold has lapsed,
//! its workers claim nothing and the jobs they run stop at their next checkpoint.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::jobs::{Job, Lease};
use crate::workflow::{self, Ending, JobError, Outcome, StopReason};

/// What stops a worker and its job.
pub struct Stops {
    /// Claim no more jobs; finish the one at hand.
    pub stop: CancellationToken,
    /// Stop the job at hand at its next checkpoint.
    pub interrupt: CancellationToken,
    /// This process's hold on the database ([`crate::jobs::Tenure::term`]): claim only while
    /// it is held, and stop a job claimed in a term that has ended.
    pub term: watch::Receiver<Option<u64>>,
}

/// Run one worker until `stops.stop` (then finish the job at hand) or `stops.interrupt` (stop
/// the job at its next checkpoint).
pub async fn run(app: Arc<App>, owner: String, mut stops: Stops) {
    let idle_poll = Duration::from_millis(1000);
    let stop = stops.stop.clone();
    while !stop.is_cancelled() {
        let Some(term) = held(&mut stops.term, &stop).await else {
            break;
        };
        match app
            .store
            .claim(&owner, app.now(), app.settings.jobs.lease)
            .await
        {
            Ok(Some(job)) => run_job(&app, &owner, job, &stops, term).await,
            Ok(None) => {
                let wait = match app.store.next_run_at().await {
                    Ok(Some(at)) => Duration::from_millis((at - app.now()).clamp(0, 1000) as u64),
                    _ => idle_poll,
                };
                tokio::select! {
                    _ = app.store.wait_for_work(wait) => {}
                    _ = app.wake.notified() => {}
                    _ = stop.cancelled() => {}
                }
            }
            Err(error) => {
                tracing::error!(%error, "could not claim a job");
                tokio::select! {
                    _ = tokio::time::sleep(idle_poll) => {}
                    _ = stop.cancelled() => {}
                }
            }
        }
    }
}

/// The current term once this process holds its database; `None` when `stop` came first.
async fn held(term: &mut watch::Receiver<Option<u64>>, stop: &CancellationToken) -> Option<u64> {
    tokio::select! {
        held = term.wait_for(Option::is_some) => held.ok().and_then(|t| *t),
        _ = stop.cancelled() => None,
    }
}

async fn run_job(app: &Arc<App>, owner: &str, job: Job, stops: &Stops, term: u64) {
    let span = tracing::info_span!("job", job = job.id, kind = %job.kind, attempt = job.attempts);
    let _guard = span.enter();
    drop(_guard);
    let started = Instant::now();
    let cancel = stops.interrupt.child_token();
    let stop_reason = Arc::new(std::sync::Mutex::new(None::<StopReason>));
    let heartbeat = keep_lease(app, owner, &job, &cancel, &stop_reason);
    // The hold lapsed: the job stops at its next checkpoint and is handed back, like at
    // shutdown (if no other process took it meanwhile; then its writes are refused anyway).
    let lapse = {
        let mut terms = stops.term.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = terms.wait_for(|t| *t != Some(term)) => {
                    tracing::warn!("this process's hold on the database lapsed: stopping the job");
                    cancel.cancel();
                }
                _ = cancel.cancelled() => {}
            }
        })
    };

    // Dropped on every exit path, unwinding included: a dead worker stops renewing its lease.
    let heartbeat = (AbortOnDrop(heartbeat), AbortOnDrop(lapse));
    let outcome = {
        use tracing::Instrument;
        workflow::run(app.clone(), owner.to_string(), job.clone(), cancel.clone())
            .instrument(span.clone())
            .await
    };
    drop(heartbeat);
    let reason = stop_reason.lock().ok().and_then(|r| *r);
    let outcome = match (outcome, reason) {
        (Outcome::Stopped, Some(StopReason::Cancelled)) => Outcome::Cancelled,
        (Outcome::Stopped, Some(StopReason::LeaseLost)) => {
            tracing::warn!(parent: &span, "lease lost: another worker owns this job now");
            return;
        }
        (other, _) => other,
    };
    let now = app.now();
    let store = &app.store;
    let state = match &outcome {
        Outcome::Succeeded => {
            let _ = store.complete(job.id, owner, now).await;
            "succeeded"
        }
        Outcome::Cancelled => {
            workflow::report(app, &job, Ending::Cancelled).await;
            let _ = store.mark_cancelled(job.id, owner, now).await;
            "cancelled"
        }
        Outcome::Stopped => {
            // Interrupted by shutdown: hand the job back untouched. Said here too, since the
            // shutdown's own release then finds nothing left to hand back.
            if let Ok(released @ 1..) = store.release_all(owner, now).await {
                tracing::info!(parent: &span, released, "unfinished jobs handed back to the queue");
            }
            "released"
        }
        Outcome::Failed(JobError {
            message,
            retryable,
            retry_after,
        }) => {
            let attempts_left = job.attempts < job.max_attempts;
            if *retryable && attempts_left {
                let backoff = app.settings.jobs.retry_base.as_millis() as i64
                    * (1i64 << (job.attempts - 1).clamp(0, 10));
                let delay = backoff.max(retry_after.map_or(0, |w| w.as_millis() as i64));
                tracing::warn!(parent: &span, error = %message, retry_in_ms = delay, "job failed; will retry");
                let _ = store
                    .fail(job.id, owner, message, Some(now + delay), now)
                    .await;
                "retrying"
            } else {
                tracing::error!(parent: &span, error = %message, "job failed");
                workflow::report(app, &job, Ending::Failed(message)).await;
                let _ = store.fail(job.id, owner, message, None, app.now()).await;
                "failed"
            }
        }
    };
    metrics::counter!("specbot_jobs_finished_total", "kind" => job.kind.clone(), "state" => state)
        .increment(1);
    metrics::histogram!("specbot_job_duration_seconds", "kind" => job.kind.clone())
        .record(started.elapsed().as_secs_f64());
    app.job_finished();
    tracing::info!(parent: &span, state, elapsed_ms = started.elapsed().as_millis() as u64, "job finished");
}

/// Heartbeat: renew the lease and notice `/cancel` while the workflow runs; `cancel` the job
/// when it is cancelled or the lease was lost, with the reason in `reason`.
fn keep_lease(
    app: &Arc<App>,
    owner: &str,
    job: &Job,
    cancel: &CancellationToken,
    reason: &Arc<std::sync::Mutex<Option<StopReason>>>,
) -> tokio::task::JoinHandle<()> {
    let app = app.clone();
    let owner = owner.to_string();
    let cancel = cancel.clone();
    let reason = reason.clone();
    let id = job.id;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(app.settings.jobs.heartbeat);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = cancel.cancelled() => return,
            }
            match app
                .store
                .heartbeat(id, &owner, app.now(), app.settings.jobs.lease)
                .await
            {
                Ok(Lease::Held {
                    cancel_requested: false,
                }) => {}
                Ok(Lease::Held {
                    cancel_requested: true,
                }) => {
                    set_reason(&reason, StopReason::Cancelled);
                    cancel.cancel();
                    return;
                }
                Ok(Lease::Lost) => {
                    set_reason(&reason, StopReason::LeaseLost);
                    cancel.cancel();
                    return;
                }
                Err(error) => tracing::warn!(%error, "heartbeat failed"),
            }
        }
    })
}

fn set_reason(slot: &std::sync::Mutex<Option<StopReason>>, reason: StopReason) {
    if let Ok(mut r) = slot.lock() {
        r.get_or_insert(reason);
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
