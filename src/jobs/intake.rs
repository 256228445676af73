//! The intake writer: the one task (or thread) that stores the webhook's deliveries, batching
//! whoever is waiting when it is free into one transaction, so under load the commit cost is
//! shared and when idle nothing waits.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{Delivery, NewJob, Recorded, Store, StoreError, now_ms};

/// How long the writer on its own thread waits for more deliveries before it commits, when
/// the batch before had more than one (that is, under load; a lone delivery never waits).
///
/// Fewer, larger commits mean fewer syncs, and on a virtual machine a sync costs more than its
/// own time: on the project's 2-core VMs a loop of 6,000 `fdatasync`/s paused the whole
/// machine for ~12 ms in every 100 ms, and fewer syncs paused it less (BENCHMARKS.md). At 16
/// connections those pauses were specbot's p99 (~11 ms at 3,500 commits/s); with this wait,
/// 1,900 commits/s of ~11 deliveries gave a p99 of 1.5–2.3 ms, for 6–11 % less throughput at
/// 16 connections and none at 64. 50 µs left p99 at 2.6–3.9 ms; 200 µs cost 20 % throughput.
const GATHER_UNDER_LOAD: std::time::Duration = std::time::Duration::from_micros(100);

type Pending = (
    Delivery,
    Vec<NewJob>,
    oneshot::Sender<Result<Recorded, String>>,
);

/// Writes deliveries in batches: whoever is waiting when the writer is free goes into the next
/// transaction together, so the commit cost is shared under load and nothing waits when idle.
#[derive(Clone)]
pub struct IntakeWriter {
    tx: mpsc::Sender<Pending>,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("the intake writer has stopped")]
    Stopped,
    #[error("{0}")]
    Store(String),
}

impl IntakeWriter {
    /// Start the writer; it ends when every `IntakeWriter` clone is dropped. Fails only when the
    /// system refuses a thread.
    ///
    /// For an embedded database the writer runs on a thread of its own (`specbot-intake`, with a
    /// single-threaded runtime), not as one task among the request tasks: it is the one serial
    /// step of intake, and as a task its turn to hand in the next batch, or to answer the one
    /// just committed, came behind every request waiting on the same two worker threads
    /// (commits took 1.2–1.3 ms instead of 0.9 ms at 64 connections). There, under load, it
    /// also gathers for [`GATHER_UNDER_LOAD`] before each commit. A server database keeps it a
    /// task: its connections belong to the runtime that opened them.
    pub fn start(store: Arc<dyn Store>, max_batch: usize) -> std::io::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Pending>(max_batch.max(1) * 4);
        let max_batch = max_batch.max(1);
        let own_thread = store.is_embedded();
        // A blocking sleep is fine on the writer's own thread, not on a runtime's worker.
        let gather = own_thread.then_some(GATHER_UNDER_LOAD);
        let writer = async move {
            let mut batch: Vec<Pending> = Vec::with_capacity(max_batch);
            let mut last_batch = 0;
            while rx.recv_many(&mut batch, max_batch).await > 0 {
                if let Some(wait) = gather
                    && last_batch > 1
                    && batch.len() < max_batch
                {
                    std::thread::sleep(wait);
                    while batch.len() < max_batch {
                        let Ok(pending) = rx.try_recv() else { break };
                        batch.push(pending);
                    }
                }
                last_batch = batch.len();
                let (items, replies): (Vec<_>, Vec<_>) = batch
                    .drain(..)
                    .map(|(delivery, jobs, reply)| ((delivery, jobs), reply))
                    .unzip();
                let started = std::time::Instant::now();
                let result: Result<Vec<Recorded>, StoreError> =
                    store.record_deliveries(&items, now_ms()).await;
                metrics::histogram!("specbot_intake_commit_seconds")
                    .record(started.elapsed().as_secs_f64());
                metrics::histogram!("specbot_intake_batch_size").record(items.len() as f64);
                match result {
                    Ok(outcomes) if outcomes.len() == replies.len() => {
                        for (reply, outcome) in replies.into_iter().zip(outcomes) {
                            let _ = reply.send(Ok(outcome));
                        }
                    }
                    Ok(_) => {
                        for reply in replies {
                            let _ = reply.send(Err("store returned a short batch".into()));
                        }
                    }
                    Err(error) => {
                        let message = error.to_string();
                        for reply in replies {
                            let _ = reply.send(Err(message.clone()));
                        }
                    }
                }
            }
        };
        if own_thread {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            std::thread::Builder::new()
                .name("specbot-intake".into())
                .spawn(move || runtime.block_on(writer))?;
        } else {
            tokio::spawn(writer);
        }
        Ok(IntakeWriter { tx })
    }

    pub async fn record(
        &self,
        delivery: Delivery,
        jobs: Vec<NewJob>,
    ) -> Result<Recorded, IntakeError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((delivery, jobs, reply))
            .await
            .map_err(|_| IntakeError::Stopped)?;
        answer
            .await
            .map_err(|_| IntakeError::Stopped)?
            .map_err(IntakeError::Store)
    }
}
