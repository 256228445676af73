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

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};

use super::sql::{self, EmbeddedMigrations, impl_store, migrator, only_deliveries, queue_jobs};
use super::{Delivery, Millis, NewJob, PackedBody, Recorded, Result, Wake};

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
    /// call [`super::Store::migrate`].
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
            let inserted = Self::insert_deliveries(&mut conn, batch, now).await?;
            return Ok((only_deliveries(batch, inserted), false));
        }
        let mut tx = self.pool.begin().await?;
        let mut inserted = Self::insert_deliveries(&mut tx, batch, now).await?;
        let (out, queued) = queue_jobs!(tx, batch, inserted, now);
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

impl PgStore {
    /// Intake's batch, run again when it lost a deadlock or serialization race.
    async fn record_batch(
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

    async fn migrate_schema(&self) -> Result<()> {
        migrator(MIGRATIONS).run(&self.pool).await?;
        Ok(())
    }
}

/// The pool, for one statement.
macro_rules! pool {
    ($store:expr) => {
        &$store.pool
    };
}

/// Run `$query.$fetch(…)` on the pool.
macro_rules! read {
    ($store:expr, $query:expr, $fetch:ident) => {
        $query.$fetch(&$store.pool).await
    };
}

impl_store!(
    PgStore,
    write: pool,
    read: read,
    claim: sql::claim_sql!(" FOR UPDATE SKIP LOCKED"),
    embedded: false
);
