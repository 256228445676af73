//! PostgreSQL implementation of [`super::Store`] (several instances on one database).
//!
//! Claiming is one `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED) RETURNING …`, so
//! concurrent claimers in any number of processes never take the same job. Waiting workers are
//! woken through `LISTEN/NOTIFY` on [`CHANNEL`] (a background task forwards notifications into
//! an in-process [`Wake`]), with the caller's timeout as the polling fallback. Duplicate
//! deliveries and dedupe keys racing in concurrent transactions are settled by
//! `ON CONFLICT DO NOTHING` on the primary key and on the unique `active_key`.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};

use super::sqlite::{
    EmbeddedMigrations, JobRow, PRUNE_COUNTERS, PRUNE_DELIVERIES, PRUNE_JOBS, PRUNE_TRANSCRIPTS,
    PRUNE_USAGE, Wake, delete_in_slices, effective_run_at, from_json, job_cols, lease_until,
    migrator, not_waiting_its_turn, parse_state, prune, to_json,
};
use super::{
    Delivery, DeliveryRow, Job, JobCount, JobState, Lease, Millis, NewJob, PRUNE_SLICE, PackedBody,
    Pruned, Recorded, Result, SELECT_DELIVERY, Store, StoredDelivery, UsageRecord,
};

/// The `LISTEN/NOTIFY` channel announcing "a job may have become runnable".
pub const CHANNEL: &str = "specbot_jobs";

const MIGRATIONS: EmbeddedMigrations = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "usage by time",
        include_str!("../../migrations/postgres/0002_usage_by_time.sql"),
    ),
    (
        3,
        "retention",
        include_str!("../../migrations/postgres/0003_retention.sql"),
    ),
    (
        4,
        "serial jobs",
        include_str!("../../migrations/postgres/0004_serial_jobs.sql"),
    ),
    (
        5,
        "packed bodies",
        include_str!("../../migrations/postgres/0005_packed_bodies.sql"),
    ),
];

/// How often `record_deliveries` retries a transaction that lost a deadlock or serialization
/// race against another instance.
const TX_RETRIES: usize = 5;

/// The PostgreSQL store.
#[derive(Debug)]
pub struct PgStore {
    pool: PgPool,
    wake: Arc<Wake>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PgStore {
    /// Connect to `url` (`postgres://…`) and start listening on [`CHANNEL`]. Does not migrate:
    /// call [`Store::migrate`].
    pub async fn open(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        // The listener keeps its own connection (and reconnects through its own pool).
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        let mut listener = PgListener::connect_with(&listen_pool).await?;
        listener.listen(CHANNEL).await?;
        let wake = Arc::new(Wake::default());
        let task = tokio::spawn(forward_notifications(listener, wake.clone()));
        Ok(PgStore {
            pool,
            wake,
            listener: task,
        })
    }

    /// Tell every instance (this one included) that a job may be runnable.
    async fn announce(&self) {
        self.wake.wake();
        if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&self.pool)
            .await
        {
            tracing::warn!(%error, "could not NOTIFY; other instances will notice by polling");
        }
    }

    async fn insert_job(
        conn: &mut sqlx::PgConnection,
        job: &NewJob,
        delivery_id: Option<&str>,
        now: Millis,
    ) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar(
            "INSERT INTO jobs (kind, state, dedupe_key, active_key, payload, attempts, \
             max_attempts, run_at, checkpoint, cancel_requested, delivery_id, created_at, \
             updated_at, serial_key) \
             VALUES ($1, 'queued', $2, $2, $3, 0, $4, $5, 'null', FALSE, $6, $7, $7, $8) \
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
        .await
    }

    /// Insert a batch's deliveries in one statement (one round trip whatever its size), skipping
    /// ids already stored; returns the ids inserted.
    async fn insert_deliveries(
        conn: &mut sqlx::PgConnection,
        batch: &[(Delivery, Vec<NewJob>)],
        now: Millis,
    ) -> Result<HashSet<String>, sqlx::Error> {
        let column =
            |f: fn(&Delivery) -> Option<&str>| batch.iter().map(|(d, _)| f(d)).collect::<Vec<_>>();
        let inserted: Vec<String> = sqlx::query_scalar(
            "INSERT INTO deliveries (id, event, action, installation_id, repository, body, \
             received_at, body_encoding) \
             SELECT d.*, $7, $8 FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], \
                                        $5::TEXT[], $6::BYTEA[]) AS d \
             ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .bind(column(|d| Some(d.id.as_str())))
        .bind(column(|d| Some(d.event.as_str())))
        .bind(column(|d| d.action.as_deref()))
        .bind(
            batch
                .iter()
                .map(|(d, _)| d.installation_id)
                .collect::<Vec<_>>(),
        )
        .bind(column(|d| d.repository.as_deref()))
        .bind(
            batch
                .iter()
                .map(|(d, _)| d.body.stored())
                .collect::<Vec<&[u8]>>(),
        )
        .bind(now)
        .bind(PackedBody::ENCODING)
        .fetch_all(&mut *conn)
        .await?;
        Ok(inserted.into_iter().collect())
    }

    /// One attempt at `record_deliveries`: everything in one transaction, or, when no delivery
    /// in the batch queues a job, in one statement (atomic by itself: no `BEGIN`/`COMMIT`
    /// round trips).
    async fn record_once(
        &self,
        batch: &[(Delivery, Vec<NewJob>)],
        now: Millis,
    ) -> Result<(Vec<Recorded>, bool), sqlx::Error> {
        if batch.iter().all(|(_, jobs)| jobs.is_empty()) {
            let mut conn = self.pool.acquire().await?;
            let mut inserted = Self::insert_deliveries(&mut conn, batch, now).await?;
            let out = batch
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
                .collect();
            return Ok((out, false));
        }
        let mut tx = self.pool.begin().await?;
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
        if queued {
            // Delivered to listeners at commit.
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok((out, queued))
    }
}

/// Deadlock or serialization failure: the transaction may simply be run again.
fn retryable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("40P01" | "40001")),
        _ => false,
    }
}

/// Forward `NOTIFY`s into the in-process wake-up until the store is dropped (which aborts us).
async fn forward_notifications(mut listener: PgListener, wake: Arc<Wake>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(_)) => wake.wake(),
            Ok(None) => {
                // The connection dropped and was re-established: anything sent meanwhile is
                // lost, so let waiters look for themselves.
                tracing::warn!("job notification listener reconnected");
                wake.wake();
            }
            Err(error) => {
                tracing::warn!(%error, "job notification listener failed; retrying");
                wake.wake();
                // Back off before reconnecting (waiters still poll on their own timeout).
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[async_trait]
impl Store for PgStore {
    async fn migrate(&self) -> Result<()> {
        migrator(MIGRATIONS).run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn record_deliveries(
        &self,
        batch: &[(Delivery, Vec<NewJob>)],
        now: Millis,
    ) -> Result<Vec<Recorded>> {
        let mut attempt = 0;
        loop {
            match self.record_once(batch, now).await {
                Ok((out, queued)) => {
                    if queued {
                        self.wake.wake();
                    }
                    return Ok(out);
                }
                Err(error) if retryable(&error) && attempt < TX_RETRIES => {
                    attempt += 1;
                    tracing::debug!(%error, attempt, "record_deliveries: retrying transaction");
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    async fn enqueue(&self, job: &NewJob, now: Millis) -> Result<Option<i64>> {
        let mut conn = self.pool.acquire().await?;
        let id = Self::insert_job(&mut conn, job, None, now).await?;
        drop(conn);
        if id.is_some() {
            self.announce().await;
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
                           THEN NULL ELSE $1::TEXT END, \
                   lease_until = CASE WHEN state = 'running' AND attempts >= max_attempts \
                           THEN NULL ELSE $3::BIGINT END, \
                   attempts = CASE WHEN state = 'running' AND attempts >= max_attempts \
                           THEN attempts ELSE attempts + 1 END, \
                   updated_at = $2 \
                 WHERE id = (SELECT id FROM jobs AS candidate \
                             WHERE ((state = 'queued' AND run_at <= $2) \
                                    OR (state = 'running' AND lease_until < $2)) \
                               AND ",
                not_waiting_its_turn!(),
                " ORDER BY run_at, id LIMIT 1 \
                             FOR UPDATE SKIP LOCKED) \
                 RETURNING ",
                job_cols!()
            ))
            .bind(owner)
            .bind(now)
            .bind(until)
            .fetch_optional(&self.pool)
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
        .fetch_optional(&self.pool)
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
        .execute(&self.pool)
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
        .execute(&self.pool)
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
                .execute(&self.pool)
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
                .execute(&self.pool)
                .await?
            }
        };
        let done = done.rows_affected() == 1;
        if done && retry_at.is_some() {
            self.announce().await;
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
        .execute(&self.pool)
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
               cancel_requested = CASE WHEN state = 'running' THEN TRUE ELSE cancel_requested END, \
               updated_at = $2 \
             WHERE active_key = $1 \
             RETURNING id, state",
        )
        .bind(dedupe_key)
        .bind(now)
        .fetch_optional(&self.pool)
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
             attempts = GREATEST(attempts - 1, 0), run_at = $2, updated_at = $2 \
             WHERE state = 'running' AND lease_owner = $1",
        )
        .bind(owner)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n > 0 {
            self.announce().await;
        }
        Ok(n)
    }

    async fn job(&self, id: i64) -> Result<Option<Job>> {
        let row: Option<JobRow> =
            sqlx::query_as(concat!("SELECT ", job_cols!(), " FROM jobs WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(JobRow::into_job).transpose()
    }

    async fn active_job(&self, dedupe_key: &str) -> Result<Option<Job>> {
        let row: Option<JobRow> = sqlx::query_as(concat!(
            "SELECT ",
            job_cols!(),
            " FROM jobs WHERE active_key = $1"
        ))
        .bind(dedupe_key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(JobRow::into_job).transpose()
    }

    async fn recent_jobs(&self, limit: i64) -> Result<Vec<Job>> {
        let rows: Vec<JobRow> = sqlx::query_as(concat!(
            "SELECT ",
            job_cols!(),
            " FROM jobs ORDER BY id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(JobRow::into_job).collect()
    }

    async fn job_counts(&self) -> Result<Vec<JobCount>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT kind, state, COUNT(*) FROM jobs GROUP BY kind, state ORDER BY kind, state",
        )
        .fetch_all(&self.pool)
        .await?;
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
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs \
             WHERE (state = 'queued' AND run_at <= $1) OR state = 'running'",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    async fn next_run_at(&self) -> Result<Option<Millis>> {
        let at: Option<i64> = sqlx::query_scalar(concat!(
            "SELECT MIN(run_at) FROM jobs AS candidate WHERE state = 'queued' AND ",
            not_waiting_its_turn!()
        ))
        .fetch_one(&self.pool)
        .await?;
        Ok(at)
    }

    async fn delivery(&self, id: &str) -> Result<Option<StoredDelivery>> {
        let row: Option<DeliveryRow> = sqlx::query_as(SELECT_DELIVERY)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(DeliveryRow::into_delivery).transpose()
    }

    async fn delivery_count(&self) -> Result<i64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    async fn get_record(&self, namespace: &str, key: &str) -> Result<Option<serde_json::Value>> {
        let value: Option<String> =
            sqlx::query_scalar("SELECT value FROM records WHERE namespace = $1 AND key = $2")
                .bind(namespace)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_records(
        &self,
        namespace: &str,
        prefix: &str,
    ) -> Result<Vec<(String, serde_json::Value)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT key, value FROM records \
             WHERE namespace = $1 AND left(key, char_length($2)) = $2 ORDER BY key",
        )
        .bind(namespace)
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?;
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn job_cost(&self, job_id: i64) -> Result<f64> {
        let cost: f64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(cost_usd), 0)::DOUBLE PRECISION FROM llm_usage WHERE job_id = $1",
        )
        .bind(job_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(cost)
    }

    async fn bump_counter(&self, key: &str, now: Millis) -> Result<i64> {
        let value: i64 = sqlx::query_scalar(
            "INSERT INTO records (namespace, key, value, updated_at) VALUES ('counter', $1, '1', $2) \
             ON CONFLICT (namespace, key) DO UPDATE \
             SET value = ((records.value)::BIGINT + 1)::TEXT, updated_at = excluded.updated_at \
             RETURNING value::BIGINT",
        )
        .bind(key)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(value)
    }

    async fn prune(
        &self,
        deliveries_before: Millis,
        counters_before: Millis,
        jobs_before: Millis,
    ) -> Result<Pruned> {
        Ok(prune!(
            &self.pool,
            deliveries_before,
            counters_before,
            jobs_before
        ))
    }

    async fn spent_since(&self, since: Millis) -> Result<f64> {
        let cost: f64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(cost_usd), 0)::DOUBLE PRECISION FROM llm_usage WHERE created_at >= $1",
        )
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(cost)
    }

    async fn wait_for_work(&self, max: Duration) {
        self.wake.wait(max).await;
    }
}
