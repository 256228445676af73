//! PostgreSQL implementation of [`super::Store`] (several instances on one database).
//!
//! Claiming is one `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED) RETURNING …`, so
//! concurrent claimers in any number of processes never take the same job. Waiting workers are
//! woken through `LISTEN/NOTIFY` on [`CHANNEL`] (a background task forwards notifications into
//! an in-process [`Wake`]), with the caller's timeout as the polling fallback. Duplicate
//! deliveries and dedupe keys racing in concurrent transactions are settled by
//! `ON CONFLICT DO NOTHING` on the primary key and on the unique `active_key`.
//!
//! A serving process registers its name in `instances` and holds the session advisory lock
//! `(1397769539, its id)` on a connection of its own for as long as it lives
//! ([`super::Store::serve_as`]). A claim takes a running job at once when its owner is
//! registered and that lock is free: the owner's session ended, so the owner is dead (or cut off,
//! see below). The process checks its lock connection every [`LOCK_CHECK_EVERY`]; when it drops,
//! the process's [`Tenure`] lapses, its workers stop their jobs at the next checkpoint and claim
//! nothing until the lock is taken again. A job taken over meanwhile is fenced all the same: the
//! old run's checkpoints, heartbeats and ending are refused once the lease owner changed. A
//! hung process keeps its lock; its leases are the backstop.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::sync::watch;

use super::sql::{self, EmbeddedMigrations, impl_store, migrator, only_deliveries, queue_jobs};
use super::{Delivery, Millis, NewJob, PackedBody, Recorded, Result, StoreError, Tenure, Wake};

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
    (
        6,
        "instances",
        include_str!("../../migrations/postgres/0006_instances.sql"),
    ),
];

/// The first key of every instance lock (`pg_advisory_lock(int4, int4)`, whose keys are apart
/// from the one-`bigint` locks sqlx's migrator takes); the second is the instance's id.
macro_rules! lock_class {
    () => {
        "1397769539"
    };
}

/// SQL: the ids of the instances whose lock some session holds now (as `oid`s).
macro_rules! locked_instances {
    () => {
        concat!(
            "(SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND granted \
               AND classid = ",
            lock_class!(),
            " AND objsubid = 2 \
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
        )
    };
}

/// SQL, on a job's columns: its owner is a registered instance whose lock is free (it died).
macro_rules! owner_is_gone {
    () => {
        concat!(
            "regexp_replace(lease_owner, '/[^/]*$', '') IN \
               (SELECT name FROM instances WHERE CAST(id AS oid) NOT IN ",
            locked_instances!(),
            ")"
        )
    };
}

/// How often a serving process makes sure its lock's connection is alive.
pub const LOCK_CHECK_EVERY: Duration = Duration::from_millis(500);

/// How often `record_deliveries` retries a transaction that lost a deadlock or serialization
/// race against another instance.
const TX_RETRIES: usize = 5;

/// The PostgreSQL store.
#[derive(Debug)]
pub struct PgStore {
    pool: PgPool,
    /// For the connection that holds this process's lock.
    options: PgConnectOptions,
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
            .connect_with(options.clone())
            .await?;
        let mut listener = PgListener::connect_with(&listen_pool).await?;
        listener.listen(CHANNEL).await?;
        let wake = Arc::new(Wake::default());
        let task = tokio::spawn(forward_notifications(listener, wake.clone()));
        Ok(PgStore {
            pool,
            options,
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

    /// [`super::Store::serve_as`]: migrate, register `instance`, take its lock, forget the
    /// instances that are gone and own no running job, and keep the lock (see [`keep_lock`]).
    async fn take_database(&self, instance: &str, now: Millis) -> Result<Tenure> {
        self.migrate_schema().await?;
        let id: i32 = sqlx::query_scalar(
            "INSERT INTO instances (name, started_at) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET started_at = excluded.started_at RETURNING id",
        )
        .bind(instance)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let conn = lock_instance(&self.options, id).await?;
        sqlx::query(concat!(
            "DELETE FROM instances AS gone WHERE CAST(gone.id AS oid) NOT IN ",
            locked_instances!(),
            " AND NOT EXISTS (SELECT 1 FROM jobs WHERE state = 'running' \
                AND regexp_replace(lease_owner, '/[^/]*$', '') = gone.name)"
        ))
        .execute(&self.pool)
        .await?;
        // Jobs of processes that died before this one started may be waiting.
        self.announce().await;
        let (term, watched) = watch::channel(Some(1));
        let keeper = tokio::spawn(keep_lock(self.options.clone(), id, conn, term));
        Ok(Tenure::watched(watched, KeepLock(keeper)))
    }
}

/// A new connection holding the lock of instance `id`.
async fn lock_instance(options: &PgConnectOptions, id: i32) -> Result<PgConnection> {
    let mut conn = options.connect().await?;
    let locked: bool = sqlx::query_scalar(concat!(
        "SELECT pg_try_advisory_lock(",
        lock_class!(),
        ", $1)"
    ))
    .bind(id)
    .fetch_one(&mut conn)
    .await?;
    if !locked {
        return Err(StoreError::Inconsistent(format!(
            "the lock of instance {id} is held by another session"
        )));
    }
    Ok(conn)
}

/// Keep this process's lock: check its connection every [`LOCK_CHECK_EVERY`]; when it drops,
/// announce the lapse on `term` at once, take the lock again on a new connection, and announce
/// the new term.
async fn keep_lock(
    options: PgConnectOptions,
    id: i32,
    mut conn: PgConnection,
    term: watch::Sender<Option<u64>>,
) {
    let mut n = 1;
    loop {
        let why = lost(&mut conn).await;
        term.send_replace(None);
        tracing::error!(
            %why,
            "this process lost its lock on the database: stopping its jobs, which other \
             processes may take over"
        );
        conn = loop {
            tokio::time::sleep(LOCK_CHECK_EVERY).await;
            match lock_instance(&options, id).await {
                Ok(conn) => break conn,
                Err(error) => tracing::warn!(%error, "could not take this process's lock again"),
            }
        };
        n += 1;
        term.send_replace(Some(n));
        tracing::info!("this process holds its lock on the database again");
    }
}

/// Wait until the lock's connection fails to answer a ping; what went wrong.
async fn lost(conn: &mut PgConnection) -> String {
    let mut tick = tokio::time::interval(LOCK_CHECK_EVERY);
    loop {
        tick.tick().await;
        match tokio::time::timeout(LOCK_CHECK_EVERY * 4, conn.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return error.to_string(),
            Err(_) => return format!("no answer in {:?}", LOCK_CHECK_EVERY * 4),
        }
    }
}

/// Ends [`keep_lock`] (and so closes the lock's connection) when the tenure is dropped.
struct KeepLock(tokio::task::JoinHandle<()>);

impl Drop for KeepLock {
    fn drop(&mut self) {
        self.0.abort();
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
    claim: sql::claim_sql!(" FOR UPDATE SKIP LOCKED", owner_is_gone!()),
    embedded: false
);
