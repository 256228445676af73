//! Housekeeping: old deliveries, quota counters and finished jobs deleted hourly, and engineer
//! workspaces a killed process left behind.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::jobs::{self, Pruned};

/// Quota counters older than this are past any window they count.
const COUNTER_RETENTION: Duration = Duration::from_secs(2 * 86_400);

/// [`housekeep`] a minute after start (out of the way of start-up), then hourly.
pub async fn run(app: Arc<App>, stop: CancellationToken) {
    let first = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut tick = tokio::time::interval_at(first, Duration::from_secs(3600));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match housekeep(&app).await {
            Ok(pruned) if pruned != Pruned::default() => tracing::info!(
                deliveries = pruned.deliveries,
                counters = pruned.counters,
                jobs = pruned.jobs,
                usage = pruned.usage,
                transcripts = pruned.transcripts,
                acted = pruned.acted,
                "housekeeping: old rows deleted"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "housekeeping failed; trying again in an hour"),
        }
        let removed = tokio::task::spawn_blocking(|| {
            crate::agent::remove_abandoned(&std::env::temp_dir(), ABANDONED_WORKSPACE_AGE)
        })
        .await
        .unwrap_or(0);
        if removed > 0 {
            tracing::info!(
                removed,
                "housekeeping: abandoned engineer workspaces deleted"
            );
        }
    }
}

/// An engineer workspace still on disk this long after it was made was left by a killed
/// process (no implementation runs anywhere near this long).
const ABANDONED_WORKSPACE_AGE: Duration = Duration::from_secs(24 * 3600);

/// Delete deliveries past `DELIVERY_RETENTION_DAYS`, stale quota counters, and finished jobs
/// (with their model usage and transcripts) past `JOB_RETENTION_DAYS`, so the database does not
/// grow with every delivery and every job forever. Several instances may run it at once;
/// deleting is idempotent.
pub async fn housekeep(app: &App) -> Result<Pruned, jobs::StoreError> {
    let now = app.now();
    let before = |keep: Duration| now.saturating_sub(keep.as_millis() as i64);
    let deliveries_before = app.settings.retention.deliveries.map_or(i64::MIN, before);
    let jobs_before = app.settings.retention.jobs.map_or(i64::MIN, before);
    app.store
        .prune(deliveries_before, before(COUNTER_RETENTION), jobs_before)
        .await
}
