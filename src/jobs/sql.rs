//! The SQL both backends run, written once: row types and their decoding, the embedded-migration
//! builder, and [`impl_store!`], which implements [`super::Store`] for a backend from the
//! statements that read and write the same on SQLite and PostgreSQL.
//!
//! What differs is left to each backend: where a statement runs (SQLite's one writer
//! connection and read pool, Postgres' pool), how a job is claimed (Postgres adds
//! `FOR UPDATE SKIP LOCKED`), how a batch of deliveries is inserted, and how waiting workers are
//! woken. Placeholders are `$n` on both; booleans are `TRUE`/`FALSE` (SQLite stores 1/0); casts
//! use `CAST(… AS BIGINT | DOUBLE PRECISION | TEXT)`, which SQLite reads by affinity.

use std::borrow::Cow;
use std::collections::HashSet;
use std::time::Duration;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use super::{
    Delivery, Job, JobState, Millis, NewJob, Recorded, Result, StoreError, StoredDelivery,
    unpack_body,
};

/// The migrations of one backend, embedded in the binary: `(version, description, sql)`.
pub(super) type EmbeddedMigrations = &'static [(i64, &'static str, &'static str)];

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

/// Housekeeping's deletes: one slice of old deliveries (`$1` received before, `$2` rows at
/// most), then the stale quota counters.
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

/// One slice of the commands and reviews remembered as acted on before `$1`: once their
/// deliveries are gone, a replay of them is refused by its age instead.
pub(super) const PRUNE_ACTED: &str = "DELETE FROM records WHERE namespace = 'acted' \
     AND key IN (SELECT key FROM records WHERE namespace = 'acted' AND updated_at < $1 \
     LIMIT $2)";

/// Run one of the sliced `PRUNE_*` deletes until a slice comes back short; the rows deleted.
/// In slices, so intake never waits behind one long delete.
macro_rules! delete_in_slices {
    ($executor:expr, $sql:expr, $before:expr) => {{
        let mut total: u64 = 0;
        loop {
            let n = sqlx::query($sql)
                .bind($before)
                .bind($crate::jobs::PRUNE_SLICE)
                .execute($executor)
                .await?
                .rows_affected();
            total += n;
            if n < $crate::jobs::PRUNE_SLICE as u64 {
                break total;
            }
        }
    }};
}
pub(super) use delete_in_slices;

/// [`super::Store::prune`] on either backend (`$executor`, evaluated for each statement), as a
/// [`super::Pruned`].
macro_rules! prune {
    ($executor:expr, $deliveries_before:expr, $counters_before:expr, $jobs_before:expr) => {{
        use $crate::jobs::sql::{
            PRUNE_ACTED, PRUNE_COUNTERS, PRUNE_DELIVERIES, PRUNE_JOBS, PRUNE_TRANSCRIPTS,
            PRUNE_USAGE, delete_in_slices,
        };
        // One `let` per statement: whatever `$executor` holds (SQLite's writer lock) is let go
        // before the next one takes it.
        let deliveries = delete_in_slices!($executor, PRUNE_DELIVERIES, $deliveries_before);
        let acted = delete_in_slices!($executor, PRUNE_ACTED, $deliveries_before);
        let counters = sqlx::query(PRUNE_COUNTERS)
            .bind($counters_before)
            .execute($executor)
            .await?
            .rows_affected();
        let jobs = delete_in_slices!($executor, PRUNE_JOBS, $jobs_before);
        let usage = delete_in_slices!($executor, PRUNE_USAGE, $jobs_before);
        let transcripts = delete_in_slices!($executor, PRUNE_TRANSCRIPTS, $jobs_before);
        $crate::jobs::Pruned {
            deliveries,
            counters,
            jobs,
            usage,
            transcripts,
            acted,
        }
    }};
}
pub(super) use prune;

/// The columns of [`JobRow`], in a `&'static str` so queries stay literal.
macro_rules! job_cols {
    () => {
        "id, kind, state, dedupe_key, payload, attempts, max_attempts, run_at, lease_owner, \
         lease_until, checkpoint, cancel_requested, last_error, delivery_id, created_at, updated_at"
    };
}
pub(super) use job_cols;

/// SQL: the job `candidate` does not wait for an older job with its serial key (one queued or
/// running).
macro_rules! not_waiting_its_turn {
    () => {
        "(candidate.serial_key IS NULL OR NOT EXISTS ( \
            SELECT 1 FROM jobs AS older \
            WHERE older.serial_key = candidate.serial_key AND older.id < candidate.id \
              AND older.state IN ('queued', 'running')))"
    };
}
pub(super) use not_waiting_its_turn;

/// The claiming statement, with the backend's row lock for the candidate (`$lock`, empty on
/// SQLite, whose one writer already excludes other claimers) and its test for a running job
/// whose owner is dead (`$orphaned`, on the candidate's columns: Postgres looks for the owner's
/// lock; SQLite has none, a starting `serve` expires the leases of the process before it). In
/// one statement it picks the next runnable job and leases it to `$1` until `$3` (`$2` is now),
/// or, for a lost job with no attempts left, fails it ("worker lost"), which the caller tells
/// by its state.
macro_rules! claim_sql {
    ($lock:literal, $orphaned:expr) => {
        concat!(
            "UPDATE jobs SET \
               state = CASE WHEN state = 'running' AND attempts >= max_attempts \
                       THEN 'failed' ELSE 'running' END, \
               active_key = CASE WHEN state = 'running' AND attempts >= max_attempts \
                       THEN NULL ELSE active_key END, \
               last_error = CASE WHEN state = 'running' AND attempts >= max_attempts \
                       THEN 'worker lost' ELSE last_error END, \
               lease_owner = CASE WHEN state = 'running' AND attempts >= max_attempts \
                       THEN NULL ELSE CAST($1 AS TEXT) END, \
               lease_until = CASE WHEN state = 'running' AND attempts >= max_attempts \
                       THEN NULL ELSE CAST($3 AS BIGINT) END, \
               attempts = CASE WHEN state = 'running' AND attempts >= max_attempts \
                       THEN attempts ELSE attempts + 1 END, \
               updated_at = $2 \
             WHERE id = (SELECT id FROM jobs AS candidate \
                         WHERE ((state = 'queued' AND run_at <= $2) \
                                OR (state = 'running' AND lease_until < $2) \
                                OR (state = 'running' AND ",
            $orphaned,
            ")) AND ",
            $crate::jobs::sql::not_waiting_its_turn!(),
            " ORDER BY run_at, id LIMIT 1",
            $lock,
            ") RETURNING ",
            $crate::jobs::sql::job_cols!()
        )
    };
}
pub(super) use claim_sql;

/// Queue one job, unless an active job has its dedupe key: its id, or `None` (collapsed).
pub(super) const INSERT_JOB: &str = "INSERT INTO jobs (kind, state, dedupe_key, active_key, \
     payload, attempts, max_attempts, run_at, checkpoint, cancel_requested, delivery_id, \
     created_at, updated_at, serial_key) \
     VALUES ($1, 'queued', $2, $2, $3, 0, $4, $5, 'null', FALSE, $6, $7, $7, $8) \
     ON CONFLICT (active_key) DO NOTHING RETURNING id";

/// [`INSERT_JOB`] for `$job` (a [`NewJob`]) on `$conn`, for delivery `$delivery_id`: a
/// `Result<Option<i64>, sqlx::Error>`.
macro_rules! insert_job {
    ($conn:expr, $job:expr, $delivery_id:expr, $now:expr) => {{
        let job: &$crate::jobs::NewJob = $job;
        sqlx::query_scalar($crate::jobs::sql::INSERT_JOB)
            .bind(&job.kind)
            .bind(&job.dedupe_key)
            .bind($crate::jobs::sql::to_json(&job.payload))
            .bind(job.max_attempts)
            .bind($crate::jobs::sql::effective_run_at(job, $now))
            .bind($delivery_id)
            .bind($now)
            .bind(&job.serial_key)
            .fetch_optional($conn)
            .await
    }};
}
pub(super) use insert_job;

/// Inside a transaction `$tx` that has just inserted a batch's deliveries (`$inserted`, the ids
/// that went in): queue each new delivery's jobs. `(one outcome per delivery, whether any job
/// was queued)`; a delivery not in `$inserted` is a duplicate and queues nothing.
macro_rules! queue_jobs {
    ($tx:ident, $batch:expr, $inserted:ident, $now:expr) => {{
        use $crate::jobs::Recorded;
        let mut out = Vec::with_capacity($batch.len());
        let mut queued = false;
        for (delivery, jobs) in $batch {
            // `remove`: a second copy of one delivery in the same batch is a duplicate.
            if !$inserted.remove(&delivery.id) {
                out.push(Recorded::Duplicate);
                continue;
            }
            let mut ids = Vec::with_capacity(jobs.len());
            let mut collapsed = 0;
            for job in jobs {
                match $crate::jobs::sql::insert_job!(&mut *$tx, job, Some(&delivery.id), $now)? {
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
        (out, queued)
    }};
}
pub(super) use queue_jobs;

/// The outcomes of a batch whose deliveries queue no jobs, from the ids that went in.
pub(super) fn only_deliveries(
    batch: &[(Delivery, Vec<NewJob>)],
    mut inserted: HashSet<String>,
) -> Vec<Recorded> {
    batch
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
        .collect()
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

/// A `deliveries` row; decodes on both backends.
#[derive(sqlx::FromRow)]
pub(super) struct DeliveryRow {
    id: String,
    event: String,
    action: Option<String>,
    installation_id: Option<i64>,
    repository: Option<String>,
    body: Vec<u8>,
    body_encoding: Option<String>,
    received_at: i64,
}

/// The query for [`DeliveryRow`] by id (`$1`).
pub(super) const SELECT_DELIVERY: &str = "SELECT id, event, action, installation_id, \
     repository, body, body_encoding, received_at FROM deliveries WHERE id = $1";

impl DeliveryRow {
    pub(super) fn into_delivery(self) -> Result<StoredDelivery> {
        Ok(StoredDelivery {
            delivery: Delivery {
                body: unpack_body(self.body, self.body_encoding.as_deref())?,
                id: self.id,
                event: self.event,
                action: self.action,
                installation_id: self.installation_id,
                repository: self.repository,
            },
            received_at: self.received_at,
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

/// `impl Store for $store` from the statements that are the same on both backends.
///
/// The backend names where statements run, as two macros taking the store: `$write!(store)`,
/// an executor for writes (evaluated once per statement, so a lock it takes is let go between
/// statements), and `$read!(store, query, fetch_method)`, a read's result. `$claim` is its
/// [`claim_sql!`], and `$embedded` its answer to `Store::is_embedded`. It also provides, as
/// inherent methods, what differs beyond that:
///
/// - `migrate_schema(&self) -> Result<()>`: apply its migrations;
/// - `take_database(&self, &str, Millis) -> Result<Tenure>`: `Store::serve_as`;
/// - `record_batch(&self, &[(Delivery, Vec<NewJob>)], Millis) -> Result<Vec<Recorded>>`:
///   intake's batch insert, which also wakes workers when it queued a job;
/// - `announce(&self)`: wake the workers that may now have a job to claim.
///
/// It has a `wake` field (a [`super::Wake`], or an `Arc` of one) that `wait_for_work` waits on.
macro_rules! impl_store {
    (
        $store:ty,
        write: $write:ident,
        read: $read:ident,
        claim: $claim:expr,
        embedded: $embedded:literal
    ) => {
        const _: () = {
            use std::time::Duration;

            use $crate::jobs::sql::{
                DeliveryRow, JobRow, SELECT_DELIVERY, from_json, insert_job, job_cols,
                lease_until, not_waiting_its_turn, parse_state, prune, to_json,
            };
            use $crate::jobs::{
                Delivery, Job, JobCount, JobState, Lease, Millis, NewJob, Pruned, Recorded,
                Result, Store, StoredDelivery, Tenure, UsageRecord,
            };

            #[async_trait::async_trait]
            impl Store for $store {
                async fn migrate(&self) -> Result<()> {
                    self.migrate_schema().await
                }

                async fn serve_as(&self, instance: &str, now: Millis) -> Result<Tenure> {
                    self.take_database(instance, now).await
                }

                async fn ping(&self) -> Result<()> {
                    $read!(self, sqlx::query("SELECT 1"), execute)?;
                    Ok(())
                }

                fn is_embedded(&self) -> bool {
                    $embedded
                }

                async fn record_deliveries(
                    &self,
                    batch: &[(Delivery, Vec<NewJob>)],
                    now: Millis,
                ) -> Result<Vec<Recorded>> {
                    self.record_batch(batch, now).await
                }

                async fn enqueue(&self, job: &NewJob, now: Millis) -> Result<Option<i64>> {
                    let id: Option<i64> = insert_job!($write!(self), job, None::<&str>, now)?;
                    if id.is_some() {
                        self.announce().await;
                    }
                    Ok(id)
                }

                async fn claim(
                    &self,
                    owner: &str,
                    now: Millis,
                    lease: Duration,
                ) -> Result<Option<Job>> {
                    let until = lease_until(now, lease);
                    loop {
                        let row: Option<JobRow> = sqlx::query_as($claim)
                            .bind(owner)
                            .bind(now)
                            .bind(until)
                            .fetch_optional($write!(self))
                            .await?;
                        let Some(row) = row else { return Ok(None) };
                        let job = row.into_job()?;
                        if job.state == JobState::Running {
                            return Ok(Some(job));
                        }
                        tracing::warn!(job = job.id, kind = %job.kind, "lease expired with no attempts left: worker lost");
                    }
                }

                async fn heartbeat(
                    &self,
                    id: i64,
                    owner: &str,
                    now: Millis,
                    lease: Duration,
                ) -> Result<Lease> {
                    let cancel: Option<bool> = sqlx::query_scalar(
                        "UPDATE jobs SET lease_until = $3, updated_at = $4 \
                         WHERE id = $1 AND state = 'running' AND lease_owner = $2 \
                         RETURNING cancel_requested",
                    )
                    .bind(id)
                    .bind(owner)
                    .bind(lease_until(now, lease))
                    .bind(now)
                    .fetch_optional($write!(self))
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
                    .execute($write!(self))
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn complete(&self, id: i64, owner: &str, now: Millis) -> Result<bool> {
                    self.finish_held(id, owner, JobState::Succeeded, None, now).await
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
                            .execute($write!(self))
                            .await?
                            .rows_affected()
                                == 1
                        }
                        None => {
                            let failed = JobState::Failed;
                            self.finish_held(id, owner, failed, Some(error), now).await?
                        }
                    };
                    if done && retry_at.is_some() {
                        self.announce().await;
                    }
                    Ok(done)
                }

                async fn mark_cancelled(&self, id: i64, owner: &str, now: Millis) -> Result<bool> {
                    self.finish_held(id, owner, JobState::Cancelled, None, now).await
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
                           cancel_requested = CASE WHEN state = 'running' THEN TRUE \
                                              ELSE cancel_requested END, \
                           updated_at = $2 \
                         WHERE active_key = $1 \
                         RETURNING id, state",
                    )
                    .bind(dedupe_key)
                    .bind(now)
                    .fetch_optional($write!(self))
                    .await?;
                    let Some((id, state)) = row else { return Ok(None) };
                    // `state` is the new one: cancelled means it was queued.
                    Ok(Some((
                        id,
                        match parse_state(&state)? {
                            JobState::Cancelled => JobState::Queued,
                            other => other,
                        },
                    )))
                }

                async fn release_all(&self, owner: &str, now: Millis) -> Result<u64> {
                    let n = sqlx::query(
                        "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, \
                         attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
                         run_at = $2, updated_at = $2 \
                         WHERE state = 'running' AND lease_owner = $1",
                    )
                    .bind(owner)
                    .bind(now)
                    .execute($write!(self))
                    .await?
                    .rows_affected();
                    if n > 0 {
                        self.announce().await;
                    }
                    Ok(n)
                }

                async fn job(&self, id: i64) -> Result<Option<Job>> {
                    let query = concat!("SELECT ", job_cols!(), " FROM jobs WHERE id = $1");
                    let row: Option<JobRow> =
                        $read!(self, sqlx::query_as(query).bind(id), fetch_optional)?;
                    row.map(JobRow::into_job).transpose()
                }

                async fn active_job(&self, dedupe_key: &str) -> Result<Option<Job>> {
                    let query = concat!("SELECT ", job_cols!(), " FROM jobs WHERE active_key = $1");
                    let row: Option<JobRow> =
                        $read!(self, sqlx::query_as(query).bind(dedupe_key), fetch_optional)?;
                    row.map(JobRow::into_job).transpose()
                }

                async fn recent_jobs(&self, limit: i64) -> Result<Vec<Job>> {
                    let query =
                        concat!("SELECT ", job_cols!(), " FROM jobs ORDER BY id DESC LIMIT $1");
                    let rows: Vec<JobRow> =
                        $read!(self, sqlx::query_as(query).bind(limit), fetch_all)?;
                    rows.into_iter().map(JobRow::into_job).collect()
                }

                async fn job_counts(&self) -> Result<Vec<JobCount>> {
                    let query = "SELECT kind, state, COUNT(*) FROM jobs \
                                 GROUP BY kind, state ORDER BY kind, state";
                    let rows: Vec<(String, String, i64)> =
                        $read!(self, sqlx::query_as(query), fetch_all)?;
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
                    let query = "SELECT COUNT(*) FROM jobs \
                                 WHERE (state = 'queued' AND run_at <= $1) OR state = 'running'";
                    let n: i64 = $read!(self, sqlx::query_scalar(query).bind(now), fetch_one)?;
                    Ok(n)
                }

                async fn next_run_at(&self) -> Result<Option<Millis>> {
                    let query = concat!(
                        "SELECT MIN(run_at) FROM jobs AS candidate WHERE state = 'queued' AND ",
                        not_waiting_its_turn!()
                    );
                    let at: Option<i64> = $read!(self, sqlx::query_scalar(query), fetch_one)?;
                    Ok(at)
                }

                async fn delivery_count(&self) -> Result<i64> {
                    let query = "SELECT COUNT(*) FROM deliveries";
                    let n: i64 = $read!(self, sqlx::query_scalar(query), fetch_one)?;
                    Ok(n)
                }

                async fn delivery(&self, id: &str) -> Result<Option<StoredDelivery>> {
                    let row: Option<DeliveryRow> =
                        $read!(self, sqlx::query_as(SELECT_DELIVERY).bind(id), fetch_optional)?;
                    row.map(DeliveryRow::into_delivery).transpose()
                }

                async fn get_record(
                    &self,
                    namespace: &str,
                    key: &str,
                ) -> Result<Option<serde_json::Value>> {
                    let query = "SELECT value FROM records WHERE namespace = $1 AND key = $2";
                    let value: Option<String> = $read!(
                        self,
                        sqlx::query_scalar(query).bind(namespace).bind(key),
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
                        "INSERT INTO records (namespace, key, value, updated_at) \
                         VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (namespace, key) \
                         DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    )
                    .bind(namespace)
                    .bind(key)
                    .bind(to_json(value))
                    .bind(now)
                    .execute($write!(self))
                    .await?;
                    Ok(())
                }

                async fn list_records(
                    &self,
                    namespace: &str,
                    prefix: &str,
                ) -> Result<Vec<(String, serde_json::Value)>> {
                    let query = "SELECT key, value FROM records \
                                 WHERE namespace = $1 AND substr(key, 1, length($2)) = $2 \
                                 ORDER BY key";
                    let rows: Vec<(String, String)> = $read!(
                        self,
                        sqlx::query_as(query).bind(namespace).bind(prefix),
                        fetch_all
                    )?;
                    rows.into_iter()
                        .map(|(key, value)| Ok((key, from_json(&value)?)))
                        .collect()
                }

                async fn record_usage(&self, usage: &UsageRecord, now: Millis) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO llm_usage (job_id, provider, model, input_tokens, \
                         output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, \
                         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
                    .execute($write!(self))
                    .await?;
                    Ok(())
                }

                async fn bump_counter(&self, key: &str, now: Millis) -> Result<i64> {
                    let value: i64 = sqlx::query_scalar(
                        "INSERT INTO records (namespace, key, value, updated_at) \
                         VALUES ('counter', $1, '1', $2) \
                         ON CONFLICT (namespace, key) DO UPDATE \
                         SET value = CAST(CAST(records.value AS BIGINT) + 1 AS TEXT), \
                             updated_at = excluded.updated_at \
                         RETURNING CAST(value AS BIGINT)",
                    )
                    .bind(key)
                    .bind(now)
                    .fetch_one($write!(self))
                    .await?;
                    Ok(value)
                }

                async fn prune(
                    &self,
                    deliveries_before: Millis,
                    counters_before: Millis,
                    jobs_before: Millis,
                ) -> Result<Pruned> {
                    // `$write` runs once per statement: on SQLite, intake's batches go in
                    // between the slices.
                    Ok(prune!(
                        $write!(self),
                        deliveries_before,
                        counters_before,
                        jobs_before
                    ))
                }

                async fn spent_since(&self, since: Millis) -> Result<f64> {
                    let query = "SELECT CAST(COALESCE(SUM(cost_usd), 0) AS DOUBLE PRECISION) \
                                 FROM llm_usage WHERE created_at >= $1";
                    let cost: f64 = $read!(self, sqlx::query_scalar(query).bind(since), fetch_one)?;
                    Ok(cost)
                }

                async fn job_cost(&self, job_id: i64) -> Result<f64> {
                    let query = "SELECT CAST(COALESCE(SUM(cost_usd), 0) AS DOUBLE PRECISION) \
                                 FROM llm_usage WHERE job_id = $1";
                    let cost: f64 =
                        $read!(self, sqlx::query_scalar(query).bind(job_id), fetch_one)?;
                    Ok(cost)
                }

                async fn wait_for_work(&self, max: Duration) {
                    self.wake.wait(max).await;
                }
            }

            impl $store {
                /// End a job `owner` holds in the final `state`, with `error` as its last error
                /// when given. False, and nothing written, when the lease was lost.
                async fn finish_held(
                    &self,
                    id: i64,
                    owner: &str,
                    state: JobState,
                    error: Option<&str>,
                    now: Millis,
                ) -> Result<bool> {
                    let done = sqlx::query(
                        "UPDATE jobs SET state = $3, active_key = NULL, lease_until = NULL, \
                         last_error = COALESCE($4, last_error), updated_at = $5 \
                         WHERE id = $1 AND state = 'running' AND lease_owner = $2",
                    )
                    .bind(id)
                    .bind(owner)
                    .bind(state.as_str())
                    .bind(error)
                    .bind(now)
                    .execute($write!(self))
                    .await?;
                    Ok(done.rows_affected() == 1)
                }
            }
        };
    };
}
pub(super) use impl_store;
