//! SQLite implementation of [`super::Store`] (the default): one process, one file.
//!
//! SQLite has a single writer, so every write goes through one connection held behind a lock
//! (no `SQLITE_BUSY` between tasks of this process) and multi-statement writes open with
//! `BEGIN IMMEDIATE` (no read-to-write lock upgrade that `busy_timeout` cannot resolve, should
//! another process touch the file). Reads use a separate small pool; WAL lets them run beside
//! the writer. `sqlite::memory:` uses the writer's connection for everything, since each
//! connection would otherwise see its own database.
//!
//! This file also owns the pieces both backends share: the embedded-migration builder, the job
//! row shape and the in-process wake-up ([`Wake`]).

use std::borrow::Cow;
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, QueryBuilder, SqlSafeStr, Sqlite, SqliteConnection};
use tokio::sync::{Mutex, Notify};

use super::{
    Delivery, DeliveryRow, Job, JobCount, JobState, Lease, Millis, NewJob, PRUNE_SLICE, PackedBody,
    Pruned, Recorded, Result, SELECT_DELIVERY, Store, StoreError, StoredDelivery, UsageRecord,
};

/// How often the background task checkpoints the WAL into the database. Each checkpoint syncs
/// the database file, and those syncs delay the writer's own: at 16 connections, every 250 ms
/// gave a p99 of 5.4–6.0 ms, every 4 s 3.6–3.9 ms, at the same throughput (BENCHMARKS.md). The
/// price is a longer WAL between checkpoints (seconds of deliveries).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(4);

/// Housekeeping's deletes, the same on both backends: one slice of old deliveries
/// (`$1` received before, `$2` rows at most), then the stale quota counters.
pub(super) const PRUNE_DELIVERIES: &str = "DELETE FROM deliveries WHERE id IN \
     (SELECT id FROM deliveries WHERE received_at < $1 LIMIT $2)";
pub(super) const PRUNE_COUNTERS: &str =
    "DELETE FROM records WHERE namespace = 'counter' AND updated_at < $1";
/// One slice of finished jobs last updated before `$1`, then of model usage and engineer
/// transcripts recorded before it.
pub(super) const PRUNE_JOBS: &str = "DELETE FROM jobs WHERE id IN \
     (SELECT id FROM jobs WHERE state IN ('succeeded', 'failed', 'cancelled') \
      AND updated_at < $1 LIMIT $2)";
pub(super) const PRUNE_USAGE: &str = "DELETE FROM llm_usage WHERE id IN \
     (SELECT id FROM llm_usage WHERE created_at < $1 LIMIT $2)";
pub(super) const PRUNE_TRANSCRIPTS: &str = "DELETE FROM records WHERE namespace = 'transcript' \
     AND key IN (SELECT key FROM records WHERE namespace = 'transcript' AND updated_at < $1 \
     LIMIT $2)";

/// Run one of the sliced `PRUNE_*` deletes until a slice comes back short; the rows deleted.
/// In slices, so intake never waits behind one long delete.
macro_rules! delete_in_slices {
    ($executor:expr, $sql:expr, $before:expr) => {{
        let mut total: u64 = 0;
        loop {
            let n = sqlx::query($sql)
                .bind($before)
                .bind(PRUNE_SLICE)
                .execute($executor)
                .await?
                .rows_affected();
            total += n;
            if n < PRUNE_SLICE as u64 {
                break total;
            }
        }
    }};
}
pub(super) use delete_in_slices;

/// [`Store::prune`] on either backend (`$executor`, evaluated for each statement), as a
/// [`Pruned`].
macro_rules! prune {
    ($executor:expr, $deliveries_before:expr, $counters_before:expr, $jobs_before:expr) => {{
        // One `let` per statement: whatever `$executor` holds (SQLite's writer lock) is let go
        // before the next one takes it.
        let deliveries = delete_in_slices!($executor, PRUNE_DELIVERIES, $deliveries_before);
        let counters = sqlx::query(PRUNE_COUNTERS)
            .bind($counters_before)
            .execute($executor)
            .await?
            .rows_affected();
        let jobs = delete_in_slices!($executor, PRUNE_JOBS, $jobs_before);
        let usage = delete_in_slices!($executor, PRUNE_USAGE, $jobs_before);
        let transcripts = delete_in_slices!($executor, PRUNE_TRANSCRIPTS, $jobs_before);
        Pruned {
            deliveries,
            counters,
            jobs,
            usage,
            transcripts,
        }
    }};
}
pub(super) use prune;

/// Deliveries per `INSERT` in [`Store::record_deliveries`] (8 parameters each; SQLite allows
/// 32,766 per statement).
const DELIVERY_ROWS_PER_STATEMENT: usize = 64;

/// The columns of [`JobRow`], in a `&'static str` so queries stay literal.
macro_rules! job_cols {
    () => {
        "id, kind, state, dedupe_key, payload, attempts, max_attempts, run_at, lease_owner, \
         lease_until, checkpoint, cancel_requested, last_error, delivery_id, created_at, updated_at"
    };
}
pub(super) use job_cols;

/// SQL, the same on both backends: the job `candidate` does not wait for an older job with its
/// serial key (one queued or running).
macro_rules! not_waiting_its_turn {
    () => {
        "(candidate.serial_key IS NULL OR NOT EXISTS ( \
            SELECT 1 FROM jobs AS older \
            WHERE older.serial_key = candidate.serial_key AND older.id < candidate.id \
              AND older.state IN ('queued', 'running')))"
    };
}
pub(super) use not_waiting_its_turn;

/// The migrations of one backend, embedded in the binary: `(version, description, sql)`.
pub(super) type EmbeddedMigrations = &'static [(i64, &'static str, &'static str)];

const MIGRATIONS: EmbeddedMigrations = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "usage by time",
        include_str!("../../migrations/sqlite/0002_usage_by_time.sql"),
    ),
    (
        3,
        "retention",
        include_str!("../../migrations/sqlite/0003_retention.sql"),
    ),
    (
        4,
        "serial jobs",
        include_str!("../../migrations/sqlite/0004_serial_jobs.sql"),
    ),
    (
        5,
        "packed bodies",
        include_str!("../../migrations/sqlite/0005_packed_bodies.sql"),
    ),
];

/// Build a migrator from embedded migrations (what `sqlx::migrate!` would produce, without
/// needing sqlx's `macros` feature; same checksums, so switching later is seamless).
pub(super) fn migrator(migrations: EmbeddedMigrations) -> Migrator {
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// A job as a row; decodes on both backends.
#[derive(sqlx::FromRow)]
pub(super) struct JobRow {
    id: i64,
    kind: String,
    state: String,
    dedupe_key: Option<String>,
    payload: String,
    attempts: i32,
    max_attempts: i32,
    run_at: i64,
    lease_owner: Option<String>,
    lease_until: Option<i64>,
    checkpoint: String,
    cancel_requested: bool,
    last_error: Option<String>,
    delivery_id: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl JobRow {
    pub(super) fn into_job(self) -> Result<Job> {
        let state = parse_state(&self.state)?;
        Ok(Job {
            id: self.id,
            kind: self.kind,
            state,
            dedupe_key: self.dedupe_key,
            payload: from_json(&self.payload)?,
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            run_at: self.run_at,
            lease_owner: self.lease_owner,
            lease_until: self.lease_until,
            checkpoint: from_json(&self.checkpoint)?,
            cancel_requested: self.cancel_requested,
            last_error: self.last_error,
            delivery_id: self.delivery_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub(super) fn parse_state(s: &str) -> Result<JobState> {
    JobState::parse(s).ok_or_else(|| StoreError::Decode(format!("unknown job state {s:?}")))
}

pub(super) fn from_json(s: &str) -> Result<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| StoreError::Decode(format!("invalid JSON: {e}")))
}

pub(super) fn to_json(v: &serde_json::Value) -> String {
    // Serialising a `Value` cannot fail (its map keys are strings).
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_string())
}

/// `run_at` as stored: `0` (or anything not positive) means "now", so queue order stays FIFO.
pub(super) fn effective_run_at(job: &NewJob, now: Millis) -> Millis {
    if job.run_at <= 0 { now } else { job.run_at }
}

pub(super) fn lease_until(now: Millis, lease: Duration) -> Millis {
    now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

/// In-process wake-up for [`Store::wait_for_work`].
#[derive(Debug, Default)]
pub(super) struct Wake(Notify);

impl Wake {
    /// Wake every current waiter, and let the next one through at once (so a worker between
    /// "nothing to claim" and "wait" does not miss the news).
    pub(super) fn wake(&self) {
        self.0.notify_waiters();
        self.0.notify_one();
    }

    pub(super) async fn wait(&self, max: Duration) {
        let _ = tokio::time::timeout(max, self.0.notified()).await;
    }
}

/// Run `$query.$fetch(…)` on the read pool, or on the writer's connection for an in-memory
/// database.
macro_rules! read {
    ($store:expr, $query:expr, $fetch:ident) => {
        match &$store.reader {
            Some(pool) => $query.$fetch(pool).await,
            None => $query.$fetch(&mut *$store.writer.lock().await).await,
        }
    };
}

/// The SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    /// One connection for all writes, serialised by the lock. Not a one-connection pool: sqlx's
    /// pool pings a connection on every acquire and every release, two more round trips to
    /// SQLite's thread per write, to test a connection in this process that cannot go away.
    writer: Mutex<SqliteConnection>,
    /// Reads; none for an in-memory database, whose reads use the writer.
    reader: Option<SqlitePool>,
    wake: Wake,
    /// Background WAL checkpoints (see [`SqliteStore::open`]); stopped when the store is dropped.
    _checkpointer: Option<Checkpointer>,
}

/// Aborts the checkpoint task when the store goes away.
#[derive(Debug)]
struct Checkpointer(tokio::task::JoinHandle<()>);

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Take specbot's own `synchronous=full|normal` parameter out of a SQLite URL (sqlx does not
/// know it); `full` when absent.
fn durability_from_url(url: &str) -> Result<(String, SqliteSynchronous)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), SqliteSynchronous::Full));
    };
    let mut synchronous = SqliteSynchronous::Full;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("synchronous", value)) => {
                synchronous = match value.to_ascii_lowercase().as_str() {
                    "full" => SqliteSynchronous::Full,
                    "normal" => SqliteSynchronous::Normal,
                    _ => {
                        return Err(StoreError::BadUrl(format!(
                            "synchronous={value} is not supported (use full or normal)"
                        )));
                    }
                }
            }
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, synchronous))
}

impl SqliteStore {
    /// Open (creating if missing) the database at `url` (`sqlite://path`, `sqlite:path`,
    /// `sqlite::memory:`). Does not migrate: call [`Store::migrate`].
    ///
    /// `?synchronous=normal` in the URL relaxes the writer's default (`full`: every commit is
    /// on disk before a delivery is acknowledged) to SQLite's `NORMAL`, which survives a crash
    /// of this process but may lose the last commits on power loss, for more throughput.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(url, true).await
    }

    /// [`SqliteStore::open`], or with `create` false for a database that must exist already: a
    /// missing file is then an error, not a new empty database (for commands that only read,
    /// like `specbot delivery`).
    pub async fn open_with(url: &str, create: bool) -> Result<Self> {
        let (url, durable) = durability_from_url(url)?;
        let url = url.as_str();
        let options = SqliteConnectOptions::from_str(url)?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !create && !in_memory && !options.get_filename().exists() {
            return Err(StoreError::BadUrl(format!(
                "no database at {} (is DATABASE_URL the one `specbot serve` uses?)",
                options.get_filename().display()
            )));
        }
        let options = options
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // By default the writer syncs the WAL on every commit (`synchronous=FULL`): a delivery
        // answered `202` survives a power cut, not only a crash of this process. It never
        // checkpoints on commit (that would stall intake for the length of a checkpoint now and
        // then); a background task checkpoints passively instead, which never blocks the writer.
        let writer_options = if in_memory {
            options.clone()
        } else {
            options
                .clone()
                .synchronous(durable)
                .pragma("wal_autocheckpoint", "0")
                // After a checkpoint, a WAL that a burst grew is cut back to this size.
                .pragma("journal_size_limit", "67108864")
        };
        let writer = Mutex::new(writer_options.connect().await?);
        let reader = if in_memory {
            None
        } else {
            Some(
                SqlitePoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(60))
                    // A connection in this process does not go away between uses.
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await?,
            )
        };
        let checkpointer = reader.clone().map(|reader| {
            Checkpointer(tokio::spawn(async move {
                let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
                loop {
                    tick.tick().await;
                    if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                        .execute(&reader)
                        .await
                    {
                        tracing::warn!(%error, "WAL checkpoint failed");
                    }
                }
            }))
        });
        Ok(SqliteStore {
            writer,
            reader,
            wake: Wake::default(),
            _checkpointer: checkpointer,
        })
    }

    /// Insert a batch's deliveries, skipping ids already stored; returns the ids inserted.
    /// One multi-row statement per chunk rather than one per delivery: each statement is a
    /// round trip to sqlx's connection thread, and under load those trips, not SQLite, were
    /// what bounded intake.
    ///
    /// Which rows a statement inserted is read from its change count, not from `RETURNING`
    /// (whose rows come back one message each over sqlx's channel). When every row went in,
    /// that is the answer. When some ids were stored before, the inserted ones are read back by
    /// rowid: SQLite gives a new row the largest rowid in the table plus one (until that
    /// reaches 2^63 - 1, <https://sqlite.org/autoinc.html>), and no other write can run
    /// inside one statement, so a statement's new rows hold the consecutive rowids that end at
    /// `last_insert_rowid()`.
    async fn insert_deliveries(
        conn: &mut sqlx::SqliteConnection,
        batch: &[(Delivery, Vec<NewJob>)],
        now: Millis,
    ) -> Result<HashSet<String>> {
        let mut inserted = HashSet::with_capacity(batch.len());
        for chunk in batch.chunks(DELIVERY_ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO deliveries (id, event, action, installation_id, repository, body, \
                 body_encoding, received_at) ",
            );
            insert.push_values(chunk, |mut row, (delivery, _)| {
                row.push_bind(&delivery.id)
                    .push_bind(&delivery.event)
                    .push_bind(&delivery.action)
                    .push_bind(delivery.installation_id)
                    .push_bind(&delivery.repository)
                    .push_bind(delivery.body.stored())
                    .push_bind(PackedBody::ENCODING)
                    .push_bind(now);
            });
            insert.push(" ON CONFLICT (id) DO NOTHING");
            let done = insert.build().execute(&mut *conn).await?;
            let count = done.rows_affected();
            if count == chunk.len() as u64 {
                inserted.extend(chunk.iter().map(|(delivery, _)| delivery.id.clone()));
            } else if count > 0 {
                let last = done.last_insert_rowid();
                let ids: Vec<String> =
                    sqlx::query_scalar("SELECT id FROM deliveries WHERE rowid BETWEEN $1 AND $2")
                        .bind(last - count as i64 + 1)
                        .bind(last)
                        .fetch_all(&mut *conn)
                        .await?;
                if ids.len() as u64 != count {
                    return Err(StoreError::Inconsistent(format!(
                        "{count} deliveries inserted, {} read back by rowid",
                        ids.len()
                    )));
                }
                inserted.extend(ids);
            }
        }
        Ok(inserted)
    }

    async fn insert_job(
        conn: &mut sqlx::SqliteConnection,
        job: &NewJob,
        delivery_id: Option<&str>,
        now: Millis,
    ) -> Result<Option<i64>> {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO jobs (kind, state, dedupe_key, active_key, payload, attempts, \
             max_attempts, run_at, checkpoint, cancel_requested, delivery_id, created_at, \
             updated_at, serial_key) \
             VALUES ($1, 'queued', $2, $2, $3, 0, $4, $5, 'null', 0, $6, $7, $7, $8) \
             ON CONFLICT (active_key) DO NOTHING RETURNING id",
        )
        .bind(&job.kind)
        .bind(&job.dedupe_key)
        .bind(to_json(&job.payload))
        .bind(job.max_attempts)
        .bind(effective_run_at(job, now))
        .bind(delivery_id)
        .bind(now)
        .bind(&job.serial_key)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(id)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        let mut conn = self.writer.lock().await;
        // `run` wants an `Acquire` for every lifetime, which a locked `&mut` connection inside
        // an `async_trait` future cannot give; `run_direct` is what `run` calls after acquiring.
        migrator(MIGRATIONS)
            .run_direct(None, &mut *conn, false)
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        read!(self, sqlx::query("SELECT 1"), execute)?;
        Ok(())
    }

    fn is_embedded(&self) -> bool {
        true
    }

    async fn record_deliveries(
        &self,
        batch: &[(Delivery, Vec<NewJob>)],
        now: Millis,
    ) -> Result<Vec<Recorded>> {
        if batch.iter().all(|(_, jobs)| jobs.is_empty()) {
            // Only deliveries (most of them queue nothing): each row stands alone, and one
            // statement is atomic by itself, so no transaction (two more round trips) is needed.
            let mut conn = self.writer.lock().await;
            let mut inserted = Self::insert_deliveries(&mut conn, batch, now).await?;
            return Ok(batch
                .iter()
                .map(|(delivery, _)| {
                    if inserted.remove(&delivery.id) {
                        Recorded::Stored {
                            jobs: vec![],
                            collapsed: 0,
                        }
                    } else {
                        Recorded::Duplicate
                    }
                })
                .collect());
        }
        let mut conn = self.writer.lock().await;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let mut inserted = Self::insert_deliveries(&mut tx, batch, now).await?;
        let mut out = Vec::with_capacity(batch.len());
        let mut queued = false;
        for (delivery, jobs) in batch {
            // `remove`: a second copy of one delivery in the same batch is a duplicate.
            if !inserted.remove(&delivery.id) {
                out.push(Recorded::Duplicate);
                continue;
            }
            let mut ids = Vec::with_capacity(jobs.len());
            let mut collapsed = 0;
            for job in jobs {
                match Self::insert_job(&mut tx, job, Some(&delivery.id), now).await? {
                    Some(id) => ids.push(id),
                    None => collapsed += 1,
                }
            }
            queued |= !ids.is_empty();
            out.push(Recorded::Stored {
                jobs: ids,
                collapsed,
            });
        }
        tx.commit().await?;
        if queued {
            self.wake.wake();
        }
        Ok(out)
    }

    async fn enqueue(&self, job: &NewJob, now: Millis) -> Result<Option<i64>> {
        let mut conn = self.writer.lock().await;
        let id = Self::insert_job(&mut conn, job, None, now).await?;
        if id.is_some() {
            self.wake.wake();
        }
        Ok(id)
    }

    async fn claim(&self, owner: &str, now: Millis, lease: Duration) -> Result<Option<Job>> {
        let until = lease_until(now, lease);
        loop {
            // One statement: pick the next runnable job and lease it, or — for an expired lease
            // with no attempts left — fail it ("worker lost") and look again.
            let row: Option<JobRow> = sqlx::query_as(concat!(
                "UPDATE jobs SET \
                   state = CASE WHEN state = 'running' AND attempts >= max_attempts \
                           THEN 'failed' ELSE 'running' END, \
                   active_key = CASE WHEN state = 'running' AND attempts >= max_attempts \
                           THEN NULL ELSE active_key END, \
                   last_error = CASE WHEN state = 'running' AND attempts >= max_attempts \
                           THEN 'worker lost' ELSE last_error END, \
                   lease_owner = CASE WHEN state = 'running' AND attempts >= max_attempts \
                           THEN NULL ELSE $1 END, \
                   lease_until = CASE WHEN state = 'running' AND attempts >= max_attempts \
                           THEN NULL ELSE $3 END, \
                   attempts = CASE WHEN state = 'running' AND attempts >= max_attempts \
                           THEN attempts ELSE attempts + 1 END, \
                   updated_at = $2 \
                 WHERE id = (SELECT id FROM jobs AS candidate \
                             WHERE ((state = 'queued' AND run_at <= $2) \
                                    OR (state = 'running' AND lease_until < $2)) \
                               AND ",
                not_waiting_its_turn!(),
                " ORDER BY run_at, id LIMIT 1) \
                 RETURNING ",
                job_cols!()
            ))
            .bind(owner)
            .bind(now)
            .bind(until)
            .fetch_optional(&mut *self.writer.lock().await)
            .await?;
            match row {
                None => return Ok(None),
                Some(row) => {
                    let job = row.into_job()?;
                    if job.state == JobState::Running {
                        return Ok(Some(job));
                    }
                    tracing::warn!(job = job.id, kind = %job.kind, "lease expired with no attempts left: worker lost");
                }
            }
        }
    }

    async fn heartbeat(&self, id: i64, owner: &str, now: Millis, lease: Duration) -> Result<Lease> {
        let cancel: Option<bool> = sqlx::query_scalar(
            "UPDATE jobs SET lease_until = $3, updated_at = $4 \
             WHERE id = $1 AND state = 'running' AND lease_owner = $2 \
             RETURNING cancel_requested",
        )
        .bind(id)
        .bind(owner)
        .bind(lease_until(now, lease))
        .bind(now)
        .fetch_optional(&mut *self.writer.lock().await)
        .await?;
        Ok(match cancel {
            Some(cancel_requested) => Lease::Held { cancel_requested },
            None => Lease::Lost,
        })
    }

    async fn save_checkpoint(
        &self,
        id: i64,
        owner: &str,
        checkpoint: &serde_json::Value,
        now: Millis,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET checkpoint = $3, updated_at = $4 \
             WHERE id = $1 AND state = 'running' AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(to_json(checkpoint))
        .bind(now)
        .execute(&mut *self.writer.lock().await)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn complete(&self, id: i64, owner: &str, now: Millis) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'succeeded', active_key = NULL, lease_until = NULL, \
             updated_at = $3 \
             WHERE id = $1 AND state = 'running' AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(now)
        .execute(&mut *self.writer.lock().await)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn fail(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        retry_at: Option<Millis>,
        now: Millis,
    ) -> Result<bool> {
        let done = match retry_at {
            Some(at) => {
                sqlx::query(
                    "UPDATE jobs SET state = 'queued', run_at = $4, last_error = $3, \
                     lease_owner = NULL, lease_until = NULL, updated_at = $5 \
                     WHERE id = $1 AND state = 'running' AND lease_owner = $2",
                )
                .bind(id)
                .bind(owner)
                .bind(error)
                .bind(at)
                .bind(now)
                .execute(&mut *self.writer.lock().await)
                .await?
            }
            None => {
                sqlx::query(
                    "UPDATE jobs SET state = 'failed', active_key = NULL, last_error = $3, \
                     lease_until = NULL, updated_at = $4 \
                     WHERE id = $1 AND state = 'running' AND lease_owner = $2",
                )
                .bind(id)
                .bind(owner)
                .bind(error)
                .bind(now)
                .execute(&mut *self.writer.lock().await)
                .await?
            }
        };
        let done = done.rows_affected() == 1;
        if done && retry_at.is_some() {
            self.wake.wake();
        }
        Ok(done)
    }

    async fn mark_cancelled(&self, id: i64, owner: &str, now: Millis) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'cancelled', active_key = NULL, lease_until = NULL, \
             updated_at = $3 \
             WHERE id = $1 AND state = 'running' AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(now)
        .execute(&mut *self.writer.lock().await)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn request_cancel(
        &self,
        dedupe_key: &str,
        now: Millis,
    ) -> Result<Option<(i64, JobState)>> {
        let row: Option<(i64, String)> = sqlx::query_as(
            "UPDATE jobs SET \
               state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END, \
               active_key = CASE WHEN state = 'queued' THEN NULL ELSE active_key END, \
               cancel_requested = CASE WHEN state = 'running' THEN 1 ELSE cancel_requested END, \
               updated_at = $2 \
             WHERE active_key = $1 \
             RETURNING id, state",
        )
        .bind(dedupe_key)
        .bind(now)
        .fetch_optional(&mut *self.writer.lock().await)
        .await?;
        match row {
            None => Ok(None),
            // `state` is the new one: cancelled means it was queued.
            Some((id, state)) => Ok(Some((
                id,
                match parse_state(&state)? {
                    JobState::Cancelled => JobState::Queued,
                    other => other,
                },
            ))),
        }
    }

    async fn release_all(&self, owner: &str, now: Millis) -> Result<u64> {
        let n = sqlx::query(
            "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, \
             attempts = max(attempts - 1, 0), run_at = $2, updated_at = $2 \
             WHERE state = 'running' AND lease_owner = $1",
        )
        .bind(owner)
        .bind(now)
        .execute(&mut *self.writer.lock().await)
        .await?
        .rows_affected();
        if n > 0 {
            self.wake.wake();
        }
        Ok(n)
    }

    async fn job(&self, id: i64) -> Result<Option<Job>> {
        let row: Option<JobRow> = read!(
            self,
            sqlx::query_as(concat!("SELECT ", job_cols!(), " FROM jobs WHERE id = $1")).bind(id),
            fetch_optional
        )?;
        row.map(JobRow::into_job).transpose()
    }

    async fn active_job(&self, dedupe_key: &str) -> Result<Option<Job>> {
        let row: Option<JobRow> = read!(
            self,
            sqlx::query_as(concat!(
                "SELECT ",
                job_cols!(),
                " FROM jobs WHERE active_key = $1"
            ))
            .bind(dedupe_key),
            fetch_optional
        )?;
        row.map(JobRow::into_job).transpose()
    }

    async fn recent_jobs(&self, limit: i64) -> Result<Vec<Job>> {
        let rows: Vec<JobRow> = read!(
            self,
            sqlx::query_as(concat!(
                "SELECT ",
                job_cols!(),
                " FROM jobs ORDER BY id DESC LIMIT $1"
            ))
            .bind(limit),
            fetch_all
        )?;
        rows.into_iter().map(JobRow::into_job).collect()
    }

    async fn job_counts(&self) -> Result<Vec<JobCount>> {
        let rows: Vec<(String, String, i64)> = read!(
            self,
            sqlx::query_as(
                "SELECT kind, state, COUNT(*) FROM jobs GROUP BY kind, state ORDER BY kind, state",
            ),
            fetch_all
        )?;
        rows.into_iter()
            .map(|(kind, state, count)| {
                Ok(JobCount {
                    kind,
                    state: parse_state(&state)?,
                    count,
                })
            })
            .collect()
    }

    async fn pending_jobs(&self, now: Millis) -> Result<i64> {
        let n: i64 = read!(
            self,
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM jobs \
             WHERE (state = 'queued' AND run_at <= $1) OR state = 'running'",
            )
            .bind(now),
            fetch_one
        )?;
        Ok(n)
    }

    async fn next_run_at(&self) -> Result<Option<Millis>> {
        let at: Option<i64> = read!(
            self,
            sqlx::query_scalar(concat!(
                "SELECT MIN(run_at) FROM jobs AS candidate WHERE state = 'queued' AND ",
                not_waiting_its_turn!()
            )),
            fetch_one
        )?;
        Ok(at)
    }

    async fn delivery(&self, id: &str) -> Result<Option<StoredDelivery>> {
        let row: Option<DeliveryRow> = read!(
            self,
            sqlx::query_as(SELECT_DELIVERY).bind(id),
            fetch_optional
        )?;
        row.map(DeliveryRow::into_delivery).transpose()
    }

    async fn delivery_count(&self) -> Result<i64> {
        let n: i64 = read!(
            self,
            sqlx::query_scalar("SELECT COUNT(*) FROM deliveries"),
            fetch_one
        )?;
        Ok(n)
    }

    async fn get_record(&self, namespace: &str, key: &str) -> Result<Option<serde_json::Value>> {
        let value: Option<String> = read!(
            self,
            sqlx::query_scalar("SELECT value FROM records WHERE namespace = $1 AND key = $2")
                .bind(namespace)
                .bind(key),
            fetch_optional
        )?;
        value.as_deref().map(from_json).transpose()
    }

    async fn put_record(
        &self,
        namespace: &str,
        key: &str,
        value: &serde_json::Value,
        now: Millis,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO records (namespace, key, value, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (namespace, key) \
             DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(namespace)
        .bind(key)
        .bind(to_json(value))
        .bind(now)
        .execute(&mut *self.writer.lock().await)
        .await?;
        Ok(())
    }

    async fn list_records(
        &self,
        namespace: &str,
        prefix: &str,
    ) -> Result<Vec<(String, serde_json::Value)>> {
        let rows: Vec<(String, String)> = read!(
            self,
            sqlx::query_as(
                "SELECT key, value FROM records \
             WHERE namespace = $1 AND substr(key, 1, length($2)) = $2 ORDER BY key",
            )
            .bind(namespace)
            .bind(prefix),
            fetch_all
        )?;
        rows.into_iter()
            .map(|(key, value)| Ok((key, from_json(&value)?)))
            .collect()
    }

    async fn record_usage(&self, usage: &UsageRecord, now: Millis) -> Result<()> {
        sqlx::query(
            "INSERT INTO llm_usage (job_id, provider, model, input_tokens, output_tokens, \
             cache_read_tokens, cache_write_tokens, cost_usd, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(usage.job_id)
        .bind(&usage.provider)
        .bind(&usage.model)
        .bind(usage.input_tokens)
        .bind(usage.output_tokens)
        .bind(usage.cache_read_tokens)
        .bind(usage.cache_write_tokens)
        .bind(usage.cost_usd)
        .bind(now)
        .execute(&mut *self.writer.lock().await)
        .await?;
        Ok(())
    }

    async fn job_cost(&self, job_id: i64) -> Result<f64> {
        let cost: f64 =
            read!(self, sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(cost_usd), 0) AS REAL) FROM llm_usage WHERE job_id = $1",
        )
        .bind(job_id), fetch_one)?;
        Ok(cost)
    }

    async fn bump_counter(&self, key: &str, now: Millis) -> Result<i64> {
        let value: i64 = sqlx::query_scalar(
            "INSERT INTO records (namespace, key, value, updated_at) VALUES ('counter', $1, '1', $2) \
             ON CONFLICT (namespace, key) DO UPDATE \
             SET value = CAST(CAST(records.value AS INTEGER) + 1 AS TEXT), updated_at = excluded.updated_at \
             RETURNING CAST(value AS INTEGER)",
        )
        .bind(key)
        .bind(now)
        .fetch_one(&mut *self.writer.lock().await)
        .await?;
        Ok(value)
    }

    async fn prune(
        &self,
        deliveries_before: Millis,
        counters_before: Millis,
        jobs_before: Millis,
    ) -> Result<Pruned> {
        // Locked once per statement, so intake's batches go in between the slices.
        Ok(prune!(
            &mut *self.writer.lock().await,
            deliveries_before,
            counters_before,
            jobs_before
        ))
    }

    async fn spent_since(&self, since: Millis) -> Result<f64> {
        let cost: f64 = read!(self, sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(cost_usd), 0) AS REAL) FROM llm_usage WHERE created_at >= $1",
        )
        .bind(since), fetch_one)?;
        Ok(cost)
    }

    async fn wait_for_work(&self, max: Duration) {
        self.wake.wait(max).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synchronous_is_taken_out_of_the_url() {
        let full = |url: &str| durability_from_url(url).map(|(u, s)| (u, format!("{s:?}")));
        assert_eq!(
            full("sqlite://a.db").ok(),
            Some(("sqlite://a.db".into(), "Full".into()))
        );
        assert_eq!(
            full("sqlite://a.db?synchronous=normal").ok(),
            Some(("sqlite://a.db".into(), "Normal".into()))
        );
        assert_eq!(
            full("sqlite://a.db?mode=rwc&synchronous=FULL&cache=shared").ok(),
            Some(("sqlite://a.db?mode=rwc&cache=shared".into(), "Full".into()))
        );
        assert!(full("sqlite://a.db?synchronous=off").is_err());
    }
}
