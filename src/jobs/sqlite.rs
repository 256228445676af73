//! SQLite implementation of [`super::Store`] (the default): one process, one file.
//!
//! SQLite has a single writer, so every write goes through one connection held behind a lock
//! (no `SQLITE_BUSY` between tasks of this process) and multi-statement writes open with
//! `BEGIN IMMEDIATE` (no read-to-write lock upgrade that `busy_timeout` cannot resolve, should
//! another process touch the file). Reads use a separate small pool; WAL lets them run beside
//! the writer. `sqlite::memory:` uses the writer's connection for everything, since each
//! connection would otherwise see its own database.
//!
//! One process serves a SQLite database: `specbot serve` holds an exclusive `flock` on
//! `<database>.serve.lock` for its life ([`super::Store::serve_as`]), which the kernel lets go
//! of however the process ends, `kill -9` included. A second `serve` is refused while the first
//! lives; one that starts after it died takes over its running jobs at once. Other openers (the
//! one-shot commands, tests) take no lock.
//!
//! The statements that read and write the same on both backends are in `super::sql`; this file
//! keeps where they run, the claim without row locks, the intake's multi-row insert and the
//! in-process wake-up.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Sqlite, SqliteConnection};
use tokio::sync::Mutex;

use super::sql::{self, EmbeddedMigrations, impl_store, migrator, only_deliveries, queue_jobs};
use super::{Delivery, Millis, NewJob, PackedBody, Recorded, Result, StoreError, Tenure, Wake};

/// How often the background task checkpoints the WAL into the database. Each checkpoint syncs
/// the database file, and those syncs delay the writer's own: at 16 connections, every 250 ms
/// gave a p99 of 5.4–6.0 ms, every 4 s 3.6–3.9 ms, at the same throughput (BENCHMARKS.md). The
/// price is a longer WAL between checkpoints (seconds of deliveries).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(4);

/// Deliveries per `INSERT` in [`super::Store::record_deliveries`] (8 parameters each; SQLite allows
/// 32,766 per statement).
const DELIVERY_ROWS_PER_STATEMENT: usize = 64;

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
    /// The database file; none in memory.
    file: Option<PathBuf>,
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
    /// `sqlite::memory:`). Does not migrate: call [`super::Store::migrate`].
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
        let file = (!in_memory).then(|| options.get_filename().to_path_buf());
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
            file,
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

    async fn migrate_schema(&self) -> Result<()> {
        let mut conn = self.writer.lock().await;
        // `run` wants an `Acquire` for every lifetime, which a locked `&mut` connection inside
        // an `async_trait` future cannot give; `run_direct` is what `run` calls after acquiring.
        migrator(MIGRATIONS)
            .run_direct(None, &mut *conn, false)
            .await?;
        Ok(())
    }

    async fn record_batch(
        &self,
        batch: &[(Delivery, Vec<NewJob>)],
        now: Millis,
    ) -> Result<Vec<Recorded>> {
        let mut conn = self.writer.lock().await;
        if batch.iter().all(|(_, jobs)| jobs.is_empty()) {
            // Only deliveries (most of them queue nothing): each row stands alone, and one
            // statement is atomic by itself, so no transaction (two more round trips) is needed.
            let inserted = Self::insert_deliveries(&mut conn, batch, now).await?;
            return Ok(only_deliveries(batch, inserted));
        }
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let mut inserted = Self::insert_deliveries(&mut tx, batch, now).await?;
        let (out, queued) = queue_jobs!(tx, batch, inserted, now);
        tx.commit().await?;
        if queued {
            self.wake.wake();
        }
        Ok(out)
    }

    /// [`super::Store::serve_as`]: lock the file for this process, migrate, and make the jobs
    /// still running under another owner (the process before this one, which is dead since it
    /// no longer holds the lock) claimable at once, by ending their leases now.
    async fn take_database(&self, instance: &str, now: Millis) -> Result<Tenure> {
        let lock = self.file.as_deref().map(lock_for_serving).transpose()?;
        self.migrate_schema().await?;
        let taken = sqlx::query(
            "UPDATE jobs SET lease_until = $2, updated_at = $3 \
             WHERE state = 'running' AND substr(lease_owner, 1, length($1) + 1) <> $1 || '/'",
        )
        .bind(instance)
        .bind(now - 1)
        .bind(now)
        .execute(&mut *self.writer.lock().await)
        .await?
        .rows_affected();
        if taken > 0 {
            tracing::info!(
                jobs = taken,
                "taking over the running jobs of the process before this one"
            );
            self.wake.wake();
        }
        Ok(Tenure::lasting(lock))
    }

    /// Wake this process's waiting workers (the only ones a SQLite file has).
    async fn announce(&self) {
        self.wake.wake();
    }
}

/// `serve`'s lock on the database at `db`: an exclusive `flock` on `<db>.serve.lock`, held as
/// long as the returned file is open, with this process's id written in it for the message
/// that refuses a second `serve`.
fn lock_for_serving(db: &Path) -> Result<std::fs::File> {
    let mut name = db.as_os_str().to_owned();
    name.push(".serve.lock");
    let path = PathBuf::from(name);
    let failed = |e: std::io::Error| StoreError::ServeLock(format!("{}: {e}", path.display()));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(failed)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            return Err(StoreError::AlreadyServed(match holder.trim() {
                "" => format!("it holds {}", path.display()),
                pid => format!("pid {pid} holds {}", path.display()),
            }));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(failed(e)),
    }
    file.set_len(0).map_err(failed)?;
    writeln!(file, "{}", std::process::id()).map_err(failed)?;
    Ok(file)
}

/// The writer's connection, locked for one statement.
macro_rules! writer {
    ($store:expr) => {
        &mut *$store.writer.lock().await
    };
}

impl_store!(
    SqliteStore,
    write: writer,
    read: read,
    claim: sql::claim_sql!("", "FALSE"),
    embedded: true
);

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
