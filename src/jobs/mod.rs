//! The durable queue: deliveries, jobs, their states and leases, and the small key-value
//! records that workflows keep between steps.
//!
//! A job is a little state machine:
//!
//! ```text
//! queued ──claim──▶ running (leased) ──▶ succeeded
//!    ▲                 │  │  └────────▶ failed      (attempts exhausted or a permanent error)
//!    └──retry/release──┘  └───────────▶ cancelled   (`/cancel`)
//! ```
//!
//! A running job whose lease expires (its worker hung or died) is claimable again. A serving
//! process holds its database ([`Store::serve_as`]); the running jobs of a process that no
//! longer holds it (it died) are claimable at once, without waiting for their leases: on SQLite
//! a starting `serve` takes over those of the process before it, on Postgres any process takes
//! over those of one whose lock is free. Two jobs with the
//! same `dedupe_key` are never active (queued or running) at once: the second one collapses into
//! the first. Jobs with the same `serial_key` all run, but one at a time and in the order they
//! were queued. Every method takes the current time (`now`, Unix milliseconds) from the caller so
//! that tests drive time with a manual clock and instances agree on one notion of "now".
//!
//! The [`Store`] trait has two implementations: [`sqlite::SqliteStore`] (the default, one
//! process) and [`postgres::PgStore`] (several processes, `FOR UPDATE SKIP LOCKED`). The SQL
//! they share is written once, in `sql`; each backend keeps only where statements run, how a
//! job is claimed, how a batch of deliveries goes in, and how workers are woken.
//! [`intake::IntakeWriter`] batches the webhook's deliveries into [`Store::record_deliveries`].

pub mod intake;
pub mod postgres;
mod sql;
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

/// Unix time in milliseconds.
pub type Millis = i64;

/// A verified webhook delivery: what its headers and payload name, and its body — packed for
/// storage on the way in, the bytes GitHub sent once read back (in a [`StoredDelivery`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<Body = PackedBody> {
    /// `X-GitHub-Delivery`, unique.
    pub id: String,
    /// `X-GitHub-Event`.
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
    /// `owner/name` where the payload has a repository.
    pub repository: Option<String>,
    pub body: Body,
}

/// The largest body stored: GitHub caps a delivery's payload at 25 MB, and the webhook route
/// refuses anything larger.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// A delivery's body as it is stored: LZ4-compressed, its length first. Packed as the webhook
/// arrives, on the request's own task rather than the one writer's, it makes GitHub's JSON about
/// four times smaller (4.3× over the 329 recorded payloads in `tests/fixtures`), so each commit
/// writes and syncs a quarter of the bytes. [`Store::delivery`] gives back the bytes as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedBody(bytes::Bytes);

impl PackedBody {
    /// `deliveries.body_encoding` of a packed body; `NULL` marks a body stored as sent, by a
    /// version before migration 5.
    pub const ENCODING: &'static str = "lz4";

    pub fn pack(raw: &[u8]) -> Self {
        PackedBody(lz4_flex::block::compress_prepend_size(raw).into())
    }

    /// The bytes that go into `deliveries.body`.
    pub fn stored(&self) -> &[u8] {
        &self.0
    }
}

/// A stored body (`deliveries.body`, `body_encoding`) as GitHub sent it. A packed body claiming
/// more than [`MAX_BODY_BYTES`] is refused before anything is allocated, since a damaged row
/// could claim up to 4 GiB.
pub fn unpack_body(stored: Vec<u8>, encoding: Option<&str>) -> Result<Vec<u8>> {
    match encoding {
        None => Ok(stored),
        Some(PackedBody::ENCODING) => {
            let (size, packed) = lz4_flex::block::uncompressed_size(&stored)
                .map_err(|e| StoreError::Decode(format!("delivery body: {e}")))?;
            if size > MAX_BODY_BYTES {
                return Err(StoreError::Decode(format!(
                    "delivery body claims {size} bytes, more than any delivery"
                )));
            }
            lz4_flex::block::decompress(packed, size)
                .map_err(|e| StoreError::Decode(format!("delivery body: {e}")))
        }
        Some(other) => Err(StoreError::Decode(format!(
            "delivery body encoded as {other:?}, which this version does not know"
        ))),
    }
}

/// A delivery as [`Store::delivery`] reads it back: the bytes GitHub sent, and when they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDelivery {
    pub delivery: Delivery<Vec<u8>>,
    pub received_at: Millis,
}

/// A job to be queued.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// What to run, e.g. `spec`, `revise`, `implement`, `ci_fix`, `reply`.
    pub kind: String,
    /// Two jobs with the same key never run at once; a second collapses into the active one.
    pub dedupe_key: Option<String>,
    /// Jobs with the same serial key all run, one at a time, oldest first: a job is not claimed
    /// while an older one with its key is queued or running (e.g. two revisions of one spec).
    pub serial_key: Option<String>,
    /// The job's input, as the workflow for `kind` reads it.
    pub payload: serde_json::Value,
    pub max_attempts: i32,
    /// Earliest time to run; `0` means now.
    pub run_at: Millis,
}

/// What storing one delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// New delivery: its jobs were queued (ids), and `collapsed` jobs merged into active ones.
    Stored { jobs: Vec<i64>, collapsed: usize },
    /// The delivery id was seen before: nothing was stored or queued.
    Duplicate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }

    pub fn is_active(self) -> bool {
        matches!(self, JobState::Queued | JobState::Running)
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub state: JobState,
    pub dedupe_key: Option<String>,
    pub payload: serde_json::Value,
    /// Claims so far (the running one included).
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: Millis,
    pub lease_owner: Option<String>,
    pub lease_until: Option<Millis>,
    /// Workflow progress: which idempotent steps are done and what they produced.
    pub checkpoint: serde_json::Value,
    pub cancel_requested: bool,
    pub last_error: Option<String>,
    pub delivery_id: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// What a heartbeat learned about a running job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Still ours, lease extended.
    Held { cancel_requested: bool },
    /// Someone else holds it now, or it is no longer running: stop without writing.
    Lost,
}

/// Counts for `/metrics` and the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCount {
    pub kind: String,
    pub state: JobState,
    pub count: i64,
}

/// Token usage and cost of one model call, recorded per job.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRecord {
    pub job_id: i64,
    pub provider: String,
    pub model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_usd: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data could not be decoded: {0}")]
    Decode(String),
    /// The database answered against a rule the store relies on (a bug to report, not a
    /// condition to retry).
    #[error("the database answered inconsistently: {0}")]
    Inconsistent(String),
    #[error("unsupported DATABASE_URL (expected sqlite:// or postgres://): {0}")]
    UnsupportedUrl(String),
    #[error("DATABASE_URL: {0}")]
    BadUrl(String),
    /// `serve` found another live `serve` on its SQLite database.
    #[error(
        "another `specbot serve` is running on this database ({0}); stop it first: a SQLite \
         database is served by one process (use Postgres for several)"
    )]
    AlreadyServed(String),
    /// The lock that marks a database as served could not be taken.
    #[error("could not lock the database for serving: {0}")]
    ServeLock(String),
}

/// A serving process's hold on its database, from [`Store::serve_as`] until dropped. While it
/// is held, the jobs this process leases are its own: no other process takes them over before
/// their leases run out. Its [`Tenure::term`] says when it lapses (Postgres: the lock's
/// connection dropped), so that the process stops its jobs, and when it is held again.
pub struct Tenure {
    term: watch::Receiver<Option<u64>>,
    _keep: Box<dyn std::any::Any + Send + Sync>,
}

impl Tenure {
    /// A hold that lasts as long as `keep` does (SQLite's file lock; `()` for a process that
    /// holds nothing, like the in-process test servers).
    pub fn lasting(keep: impl std::any::Any + Send + Sync) -> Tenure {
        let (held, term) = watch::channel(Some(1));
        Tenure {
            term,
            _keep: Box::new((held, keep)),
        }
    }

    /// A hold whose term `keep` announces (and ends when `keep` is dropped).
    pub(crate) fn watched(
        term: watch::Receiver<Option<u64>>,
        keep: impl std::any::Any + Send + Sync,
    ) -> Tenure {
        Tenure {
            term,
            _keep: Box::new(keep),
        }
    }

    /// `Some(n)` while held (the n-th time it was taken), `None` while it has lapsed. A job
    /// claimed in term `n` stops when the term is no longer `Some(n)`.
    pub fn term(&self) -> watch::Receiver<Option<u64>> {
        self.term.clone()
    }
}

impl std::fmt::Debug for Tenure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenure")
            .field("term", &*self.term.borrow())
            .finish()
    }
}

/// What [`Store::prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub deliveries: u64,
    pub counters: u64,
    /// Finished jobs.
    pub jobs: u64,
    /// Model usage rows.
    pub usage: u64,
    /// Engineer transcripts.
    pub transcripts: u64,
    /// Commands and reviews remembered as acted on (kept as long as deliveries are).
    pub acted: u64,
}

/// Rows one housekeeping `DELETE` removes at most.
pub(crate) const PRUNE_SLICE: i64 = 1000;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The durable store. All methods are safe to call from many tasks (and, for Postgres, from
/// many processes) at once.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Apply pending migrations.
    async fn migrate(&self) -> Result<()>;

    /// Take the database for `specbot serve` running as `instance` (the lease owner of its
    /// workers is `"{instance}/{n}"`), until the returned [`Tenure`] is dropped; applies pending
    /// migrations first. SQLite: locks the database file for this process's life (refused with
    /// [`StoreError::AlreadyServed`] while another `serve` holds it; a killed process's lock goes
    /// with it), and makes the running jobs of the process before it claimable at once.
    /// Postgres: registers `instance` and holds a session advisory lock for it on a connection
    /// of its own; the running jobs of a registered instance whose lock is free are claimable
    /// at once by any process. Other openers of the store (tools, tests) take nothing.
    async fn serve_as(&self, instance: &str, now: Millis) -> Result<Tenure>;

    /// A cheap round trip, for `/readyz`.
    async fn ping(&self) -> Result<()>;

    /// True when the database lives in this process (SQLite): its writes cost this process's
    /// threads, not a round trip to a server, so the intake writer gets a thread of its own
    /// (see [`intake::IntakeWriter::start`]).
    fn is_embedded(&self) -> bool {
        false
    }

    /// Store deliveries and queue their jobs, all in one transaction. One result per input, in
    /// order. A delivery id already stored (also earlier in the same batch) is `Duplicate` and
    /// queues nothing. A job whose `dedupe_key` matches an active job is not queued (`collapsed`).
    async fn record_deliveries(
        &self,
        batch: &[(Delivery, Vec<NewJob>)],
        now: Millis,
    ) -> Result<Vec<Recorded>>;

    /// Queue one job outside a delivery (a workflow queuing a follow-up). `None`: collapsed
    /// into the active job with the same dedupe key.
    async fn enqueue(&self, job: &NewJob, now: Millis) -> Result<Option<i64>>;

    /// Lease the next runnable job: queued with `run_at <= now`, or running with an expired
    /// lease or (Postgres) an owner whose process no longer holds its lock.
    /// Increments `attempts`. A job with an expired lease and no attempts left becomes `failed`
    /// ("worker lost") instead of being returned.
    async fn claim(&self, owner: &str, now: Millis, lease: Duration) -> Result<Option<Job>>;

    /// Extend the lease of a job `owner` holds and report whether `/cancel` was requested.
    async fn heartbeat(&self, id: i64, owner: &str, now: Millis, lease: Duration) -> Result<Lease>;

    /// Save workflow progress. Returns false (and writes nothing) if `owner` lost the lease.
    async fn save_checkpoint(
        &self,
        id: i64,
        owner: &str,
        checkpoint: &serde_json::Value,
        now: Millis,
    ) -> Result<bool>;

    /// Mark a held job succeeded. Returns false if the lease was lost.
    async fn complete(&self, id: i64, owner: &str, now: Millis) -> Result<bool>;

    /// A held job failed with `error`: back to queued at `retry_at`, or `failed` when `None`.
    async fn fail(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        retry_at: Option<Millis>,
        now: Millis,
    ) -> Result<bool>;

    /// A held job stopped because it was cancelled.
    async fn mark_cancelled(&self, id: i64, owner: &str, now: Millis) -> Result<bool>;

    /// Ask the active job with this dedupe key to stop. A queued job is cancelled at once; a
    /// running one gets `cancel_requested` and stops at its next heartbeat. Returns the job's id
    /// and the state it was in, or `None` when no job with that key is active.
    async fn request_cancel(
        &self,
        dedupe_key: &str,
        now: Millis,
    ) -> Result<Option<(i64, JobState)>>;

    /// Graceful shutdown: running jobs leased by `owner` go back to queued at once, and the
    /// attempt they used is given back. Returns how many were released.
    async fn release_all(&self, owner: &str, now: Millis) -> Result<u64>;

    async fn job(&self, id: i64) -> Result<Option<Job>>;

    /// The active job with this dedupe key, if any.
    async fn active_job(&self, dedupe_key: &str) -> Result<Option<Job>>;

    /// Most recent jobs first.
    async fn recent_jobs(&self, limit: i64) -> Result<Vec<Job>>;

    async fn job_counts(&self) -> Result<Vec<JobCount>>;

    /// Jobs that are queued and due by `now`, plus running ones: zero means "idle".
    async fn pending_jobs(&self, now: Millis) -> Result<i64>;

    /// Earliest `run_at` among queued jobs, so a worker knows how long it may sleep.
    async fn next_run_at(&self) -> Result<Option<Millis>>;

    /// How many deliveries are stored.
    async fn delivery_count(&self) -> Result<i64>;

    /// One stored delivery, with its body as GitHub sent it.
    async fn delivery(&self, id: &str) -> Result<Option<StoredDelivery>>;

    /// A small durable record a workflow keeps across jobs (a spec's state, its component issues).
    async fn get_record(&self, namespace: &str, key: &str) -> Result<Option<serde_json::Value>>;

    async fn put_record(
        &self,
        namespace: &str,
        key: &str,
        value: &serde_json::Value,
        now: Millis,
    ) -> Result<()>;

    /// All records in a namespace whose key starts with `prefix`.
    async fn list_records(
        &self,
        namespace: &str,
        prefix: &str,
    ) -> Result<Vec<(String, serde_json::Value)>>;

    async fn record_usage(&self, usage: &UsageRecord, now: Millis) -> Result<()>;

    /// Add one to the counter `key` (created at 1) and return its new value, atomically: two
    /// processes bumping it at once both count.
    async fn bump_counter(&self, key: &str, now: Millis) -> Result<i64>;

    /// Housekeeping: delete deliveries received before `deliveries_before` (their jobs stay,
    /// without the link), quota counters last bumped before `counters_before`, and finished
    /// jobs last updated before `jobs_before` together with the model usage and engineer
    /// transcripts recorded before it. Queued and running jobs are never deleted.
    async fn prune(
        &self,
        deliveries_before: Millis,
        counters_before: Millis,
        jobs_before: Millis,
    ) -> Result<Pruned>;

    /// What every model call since `since` cost, in USD.
    async fn spent_since(&self, since: Millis) -> Result<f64>;

    /// Total cost recorded for a job so far.
    async fn job_cost(&self, job_id: i64) -> Result<f64>;

    /// Wait until a job may have become runnable (a job was queued in this process or, for
    /// Postgres, by any process), or `max` has passed.
    async fn wait_for_work(&self, max: Duration);
}

/// Open the store named by `DATABASE_URL`: `sqlite://…` (created if missing) or `postgres://…`.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    open_as(url, true).await
}

/// [`open`] for commands that only read: a SQLite file that does not exist is an error rather
/// than a new empty database. (A server database is never created by connecting.)
pub async fn open_existing(url: &str) -> Result<Arc<dyn Store>> {
    open_as(url, false).await
}

async fn open_as(url: &str, create: bool) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open_with(url, create).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(postgres::PgStore::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(
            url.split(':').next().unwrap_or("").to_string(),
        ))
    }
}

/// In-process wake-up for [`Store::wait_for_work`].
#[derive(Debug, Default)]
pub(crate) struct Wake(Notify);

impl Wake {
    /// Wake every current waiter, and let the next one through at once (so a worker between
    /// "nothing to claim" and "wait" does not miss the news).
    pub(crate) fn wake(&self) {
        self.0.notify_waiters();
        self.0.notify_one();
    }

    pub(crate) async fn wait(&self, max: Duration) {
        let _ = tokio::time::timeout(max, self.0.notified()).await;
    }
}

/// Unix milliseconds of the system clock.
pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
