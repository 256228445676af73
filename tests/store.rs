//! The job store contract, written once and run against both backends: SQLite on a temporary
//! file, and PostgreSQL when `SPECBOT_TEST_POSTGRES` names a server (each test then gets a
//! database of its own, dropped at the end). Time is the `now` argument: nothing sleeps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use specbot::jobs::{
    self, Delivery, JobState, Lease, Millis, NewJob, PackedBody, Recorded, Store, StoreError,
    UsageRecord,
};

const T0: Millis = 1_700_000_000_000;
const LEASE: Duration = Duration::from_secs(30);
const LEASE_MS: Millis = 30_000;

// ---------------------------------------------------------------------------------------------
// Test databases

struct TestDb {
    url: String,
    _dir: Option<tempfile::TempDir>,
    /// `(server url, database name)` to drop afterwards.
    pg: Option<(String, String)>,
}

impl TestDb {
    fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        TestDb {
            url,
            _dir: Some(dir),
            pg: None,
        }
    }

    async fn postgres() -> Option<TestDb> {
        let server = std::env::var("SPECBOT_TEST_POSTGRES")
            .ok()
            .filter(|s| !s.is_empty())?;
        use sqlx::Connection;
        let name = format!("specbot_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&server)
            .await
            .expect("SPECBOT_TEST_POSTGRES is reachable");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let mut url = url::Url::parse(&server).expect("SPECBOT_TEST_POSTGRES is a URL");
        url.set_path(&name);
        Some(TestDb {
            url: url.to_string(),
            _dir: None,
            pg: Some((server, name)),
        })
    }

    /// A store on this database, migrated (as a fresh process would open it).
    async fn open(&self) -> Arc<dyn Store> {
        let store = jobs::open(&self.url).await.expect("open store");
        store.migrate().await.expect("migrate");
        store
    }

    /// Run one statement on a connection of the test's own, behind the store's back.
    async fn execute(&self, sql: &'static str) {
        use sqlx::Connection;
        if self.pg.is_some() {
            let mut conn = sqlx::PgConnection::connect(&self.url)
                .await
                .expect("connect");
            sqlx::raw_sql(sql).execute(&mut conn).await.expect(sql);
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&self.url)
                .await
                .expect("connect");
            sqlx::raw_sql(sql).execute(&mut conn).await.expect(sql);
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((server, name)) = self.pg.take() else {
            return;
        };
        // Runs on panics too; its own runtime, since we may be inside (or after) the test's.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&server).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

/// One test per backend for each listed scenario.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    let db = super::TestDb::sqlite();
                    super::$name(&db).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    let Some(db) = super::TestDb::postgres().await else {
                        eprintln!(
                            "skipped {}::postgres: set SPECBOT_TEST_POSTGRES to run it",
                            stringify!($name)
                        );
                        return;
                    };
                    super::$name(&db).await;
                }
            }
        )*
    };
}

on_both!(
    migrations_are_idempotent,
    duplicate_delivery_queues_nothing,
    duplicate_id_within_one_batch,
    deliveries_read_back_as_github_sent_them,
    large_batch_mixes_new_and_seen_deliveries,
    a_batch_without_jobs_tells_new_from_seen,
    concurrent_duplicate_deliveries,
    dedupe_key_collapses_until_the_job_finishes,
    claim_heartbeat_checkpoint_complete,
    killed_worker_lease_expires_and_another_takes_over,
    a_dead_serving_process_has_its_jobs_taken_over_at_once,
    attempts_exhausted_on_lease_expiry_fail_the_job,
    fail_with_retry_requeues_later,
    serial_jobs_run_one_at_a_time_in_order,
    request_cancel_queued_and_running,
    release_all_gives_the_attempt_back,
    records_put_get_list,
    usage_and_job_cost,
    housekeeping_prunes_old_deliveries_and_counters,
    housekeeping_prunes_finished_jobs_usage_and_transcripts,
    counts_pending_next_run_at,
    wait_for_work_is_woken_by_enqueue,
    exactly_once_under_concurrent_claimers,
);

// ---------------------------------------------------------------------------------------------
// Helpers

fn delivery(id: &str) -> Delivery {
    Delivery {
        id: id.to_string(),
        event: "issues".to_string(),
        action: Some("labeled".to_string()),
        installation_id: Some(42),
        repository: Some("octo/repo".to_string()),
        body: PackedBody::pack(br#"{"action":"labeled"}"#),
    }
}

fn job(kind: &str, key: Option<&str>) -> NewJob {
    NewJob {
        kind: kind.to_string(),
        dedupe_key: key.map(str::to_string),
        serial_key: None,
        payload: json!({"issue": 7, "kind": kind}),
        max_attempts: 3,
        run_at: 0,
    }
}

async fn enqueue(store: &Arc<dyn Store>, job: NewJob, now: Millis) -> i64 {
    store
        .enqueue(&job, now)
        .await
        .expect("enqueue")
        .expect("not collapsed")
}

async fn state(store: &Arc<dyn Store>, id: i64) -> JobState {
    store.job(id).await.expect("job").expect("job exists").state
}

fn stored_jobs(r: &Recorded) -> Vec<i64> {
    match r {
        Recorded::Stored { jobs, .. } => jobs.clone(),
        Recorded::Duplicate => panic!("expected Stored, got Duplicate"),
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

async fn migrations_are_idempotent(db: &TestDb) {
    let store = db.open().await;
    store.migrate().await.expect("second migrate");
    store.migrate().await.expect("third migrate");
    // Another instance starting on the same database migrates again without harm.
    let other = db.open().await;
    other.ping().await.expect("ping");
    assert_eq!(other.delivery_count().await.expect("count"), 0);
    assert!(other.job_counts().await.expect("counts").is_empty());
}

async fn duplicate_delivery_queues_nothing(db: &TestDb) {
    let store = db.open().await;
    let first = store
        .record_deliveries(&[(delivery("d-1"), vec![job("spec", None)])], T0)
        .await
        .expect("record");
    assert_eq!(first.len(), 1);
    let ids = stored_jobs(&first[0]);
    assert_eq!(ids.len(), 1);
    assert_eq!(
        first[0],
        Recorded::Stored {
            jobs: ids.clone(),
            collapsed: 0
        }
    );

    let again = store
        .record_deliveries(&[(delivery("d-1"), vec![job("spec", None)])], T0 + 1)
        .await
        .expect("record again");
    assert_eq!(again, vec![Recorded::Duplicate]);
    assert_eq!(store.delivery_count().await.expect("count"), 1);
    assert_eq!(store.recent_jobs(10).await.expect("jobs").len(), 1);

    let stored = store.job(ids[0]).await.expect("job").expect("exists");
    assert_eq!(stored.kind, "spec");
    assert_eq!(stored.state, JobState::Queued);
    assert_eq!(stored.delivery_id.as_deref(), Some("d-1"));
    assert_eq!(stored.payload, json!({"issue": 7, "kind": "spec"}));
    assert_eq!(stored.attempts, 0);
    assert_eq!(stored.max_attempts, 3);
    assert_eq!(stored.run_at, T0, "run_at 0 means now");
    assert_eq!(stored.created_at, T0);
    assert_eq!(stored.checkpoint, serde_json::Value::Null);
    assert!(!stored.cancel_requested);
}

async fn duplicate_id_within_one_batch(db: &TestDb) {
    let store = db.open().await;
    let out = store
        .record_deliveries(
            &[
                (delivery("a"), vec![job("spec", None)]),
                (delivery("a"), vec![job("spec", None), job("reply", None)]),
                (delivery("b"), vec![job("reply", None)]),
                (delivery("c"), vec![]),
            ],
            T0,
        )
        .await
        .expect("record");
    assert_eq!(out.len(), 4);
    assert_eq!(stored_jobs(&out[0]).len(), 1);
    assert_eq!(out[1], Recorded::Duplicate);
    assert_eq!(stored_jobs(&out[2]).len(), 1);
    assert_eq!(
        out[3],
        Recorded::Stored {
            jobs: vec![],
            collapsed: 0
        }
    );
    assert_eq!(store.delivery_count().await.expect("count"), 3);
    assert_eq!(store.recent_jobs(10).await.expect("jobs").len(), 2);
}

async fn deliveries_read_back_as_github_sent_them(db: &TestDb) {
    let store = db.open().await;
    // The largest recorded payload, a small one and an empty one, packed as intake packs them.
    let large = std::fs::read("tests/fixtures/github-webhooks/pull_request.labeled.2.json")
        .expect("fixture");
    let bodies: [&[u8]; 3] = [&large, br#"{"zen":"Keep it logically awesome."}"#, b""];
    let batch: Vec<(Delivery, Vec<NewJob>)> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let mut d = delivery(&format!("d{i}"));
            d.body = PackedBody::pack(body);
            (d, vec![])
        })
        .collect();
    assert!(
        batch[0].0.body.stored().len() * 3 < large.len(),
        "packing shrinks JSON"
    );
    store.record_deliveries(&batch, T0).await.expect("record");
    for (i, body) in bodies.iter().enumerate() {
        let stored = store
            .delivery(&format!("d{i}"))
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(stored.delivery.body, *body, "body {i}");
        assert_eq!(stored.delivery.event, "issues");
        assert_eq!(stored.delivery.action.as_deref(), Some("labeled"));
        assert_eq!(stored.delivery.installation_id, Some(42));
        assert_eq!(stored.delivery.repository.as_deref(), Some("octo/repo"));
        assert_eq!(stored.received_at, T0);
    }
    assert_eq!(store.delivery("never").await.expect("read"), None);

    // A row an earlier version stored as sent (no encoding) reads back as it is; one whose packed
    // body claims more than any delivery is an error, not a 4 GiB allocation.
    let insert = "INSERT INTO deliveries (id, event, body, body_encoding, received_at) \
                  VALUES ($1, 'ping', $2, $3, $4)";
    let claims_4_gib = [0xff, 0xff, 0xff, 0xff, 0x00];
    let rows: [(&str, &[u8], Option<&str>); 3] = [
        ("old", b"{\"raw\":true}", None),
        ("huge", &claims_4_gib, Some("lz4")),
        ("zstd", b"?", Some("zstd")),
    ];
    // The same insert on whichever backend this is (the two connection types share no trait
    // object to write it once).
    macro_rules! insert_raw {
        ($connection:ty) => {{
            use sqlx::Connection;
            let mut conn = <$connection>::connect(&db.url).await.expect("connect");
            for (id, body, encoding) in rows {
                sqlx::query(insert)
                    .bind(id)
                    .bind(body)
                    .bind(encoding)
                    .bind(T0)
                    .execute(&mut conn)
                    .await
                    .expect("insert");
            }
        }};
    }
    if db.pg.is_some() {
        insert_raw!(sqlx::PgConnection);
    } else {
        insert_raw!(sqlx::SqliteConnection);
    }
    let old = store.delivery("old").await.expect("read").expect("stored");
    assert_eq!(old.delivery.body, b"{\"raw\":true}");
    for id in ["huge", "zstd"] {
        match store.delivery(id).await {
            Err(StoreError::Decode(message)) => assert!(message.contains("body"), "{message}"),
            other => panic!("{id}: {other:?}"),
        }
    }
}

async fn large_batch_mixes_new_and_seen_deliveries(db: &TestDb) {
    // Bigger than one insert statement's worth of rows, with every third id seen before, some
    // rows carrying jobs, NULL columns and the last id repeated.
    let store = db.open().await;
    let seen: Vec<(Delivery, Vec<NewJob>)> = (0..300)
        .step_by(3)
        .map(|n| (delivery(&format!("d-{n}")), vec![]))
        .collect();
    store.record_deliveries(&seen, T0).await.expect("record");
    let mut batch: Vec<(Delivery, Vec<NewJob>)> = (0..300)
        .map(|n| {
            let mut d = delivery(&format!("d-{n}"));
            if n % 2 == 0 {
                d.action = None;
                d.repository = None;
                d.installation_id = None;
            }
            let jobs = if n % 10 == 1 {
                vec![job("spec", Some(&format!("key-{n}")))]
            } else {
                vec![]
            };
            (d, jobs)
        })
        .collect();
    batch.push((delivery("d-299"), vec![job("spec", None)]));
    let out = store
        .record_deliveries(&batch, T0 + 1)
        .await
        .expect("record");
    assert_eq!(out.len(), 301);
    for (n, outcome) in out.iter().enumerate().take(300) {
        if n % 3 == 0 {
            assert_eq!(*outcome, Recorded::Duplicate, "d-{n} was stored before");
        } else {
            let want = usize::from(n % 10 == 1);
            assert_eq!(stored_jobs(outcome).len(), want, "d-{n}");
        }
    }
    assert_eq!(out[300], Recorded::Duplicate, "second copy in one batch");
    assert_eq!(store.delivery_count().await.expect("count"), 300);
    let with_jobs = (0..300).filter(|n| n % 3 != 0 && n % 10 == 1).count();
    assert_eq!(
        store.recent_jobs(1000).await.expect("jobs").len(),
        with_jobs
    );
}

async fn a_batch_without_jobs_tells_new_from_seen(db: &TestDb) {
    // No jobs: the store writes such a batch without a transaction and learns which rows it
    // inserted from the statement itself. Seen ids come first, last and in between; the newest
    // stored delivery is deleted first, so new rows take rowids a deleted row had.
    let store = db.open().await;
    let seen: Vec<(Delivery, Vec<NewJob>)> = ["s-0", "s-1", "s-2", "s-gone"]
        .iter()
        .map(|id| (delivery(id), vec![]))
        .collect();
    store.record_deliveries(&seen, T0).await.expect("record");
    db.execute("DELETE FROM deliveries WHERE id = 's-gone'")
        .await;
    let ids = [
        "s-0", "n-0", "n-1", "s-1", "n-2", "n-2", "s-gone", "n-3", "s-2",
    ];
    let batch: Vec<(Delivery, Vec<NewJob>)> = ids.iter().map(|id| (delivery(id), vec![])).collect();
    let out = store
        .record_deliveries(&batch, T0 + 1)
        .await
        .expect("record");
    let stored: Vec<&str> = ids
        .iter()
        .zip(&out)
        .filter(|(_, outcome)| matches!(outcome, Recorded::Stored { .. }))
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(stored, ["n-0", "n-1", "n-2", "s-gone", "n-3"]);
    assert_eq!(store.delivery_count().await.expect("count"), 8);
    // Every one seen before, and one all new.
    let out = store
        .record_deliveries(&seen, T0 + 2)
        .await
        .expect("record");
    assert_eq!(out, vec![Recorded::Duplicate; 4]);
    let fresh = [(delivery("n-4"), vec![])];
    let out = store
        .record_deliveries(&fresh, T0 + 3)
        .await
        .expect("record");
    assert!(matches!(out[..], [Recorded::Stored { .. }]), "{out:?}");
}

async fn housekeeping_prunes_old_deliveries_and_counters(db: &TestDb) {
    let store = db.open().await;
    // More old deliveries than one delete removes, one of them with a job.
    let old: Vec<(Delivery, Vec<NewJob>)> = (0..2500)
        .map(|n| (delivery(&format!("old-{n}")), vec![]))
        .collect();
    store.record_deliveries(&old, T0).await.expect("record");
    let out = store
        .record_deliveries(&[(delivery("old-job"), vec![job("spec", None)])], T0)
        .await
        .expect("record");
    let job_id = stored_jobs(&out[0])[0];
    store
        .record_deliveries(&[(delivery("new"), vec![])], T0 + 10)
        .await
        .expect("record");
    store.bump_counter("quota:old", T0).await.expect("bump");
    store
        .bump_counter("quota:new", T0 + 10)
        .await
        .expect("bump");

    let pruned = store.prune(T0 + 5, T0 + 5, i64::MIN).await.expect("prune");
    assert_eq!((pruned.deliveries, pruned.counters), (2501, 1));
    assert_eq!(store.delivery_count().await.expect("count"), 1);
    let kept = store
        .job(job_id)
        .await
        .expect("job")
        .expect("the job stays");
    assert_eq!(kept.delivery_id, None);
    assert_eq!(
        store
            .bump_counter("quota:new", T0 + 11)
            .await
            .expect("bump"),
        2
    );
    assert_eq!(
        store
            .bump_counter("quota:old", T0 + 11)
            .await
            .expect("bump"),
        1
    );
    // Nothing left to prune: a second run deletes nothing.
    let again = store.prune(T0 + 5, T0 + 5, i64::MIN).await.expect("prune");
    assert_eq!((again.deliveries, again.counters), (0, 0));
}

async fn housekeeping_prunes_finished_jobs_usage_and_transcripts(db: &TestDb) {
    let store = db.open().await;
    let succeeded = enqueue(&store, job("spec", None), T0).await;
    let failed = enqueue(&store, job("spec", None), T0).await;
    let running = enqueue(&store, job("spec", None), T0).await;
    let queued = enqueue(&store, job("spec", None), T0).await;
    let claim = |owner: &'static str| {
        let store = store.clone();
        async move {
            store
                .claim(owner, T0, LEASE)
                .await
                .expect("claim")
                .expect("job")
                .id
        }
    };
    assert_eq!(claim("a").await, succeeded);
    assert!(store.complete(succeeded, "a", T0 + 1).await.expect("done"));
    assert_eq!(claim("a").await, failed);
    assert!(
        store
            .fail(failed, "a", "no", None, T0 + 1)
            .await
            .expect("fail")
    );
    assert_eq!(claim("b").await, running);
    let usage = UsageRecord {
        job_id: succeeded,
        provider: "anthropic".to_string(),
        model: "claude".to_string(),
        input_tokens: 10,
        output_tokens: 2,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        cost_usd: 0.5,
    };
    store.record_usage(&usage, T0).await.expect("usage");
    store.record_usage(&usage, T0 + 10).await.expect("usage");
    for (namespace, key, at) in [
        ("transcript", "old", T0),
        ("transcript", "new", T0 + 10),
        ("spec", "old", T0),
    ] {
        store
            .put_record(namespace, key, &json!({"at": at}), at)
            .await
            .expect("put");
    }

    let pruned = store
        .prune(i64::MIN, i64::MIN, T0 + 5)
        .await
        .expect("prune");
    assert_eq!((pruned.jobs, pruned.usage, pruned.transcripts), (2, 1, 1));
    assert!(store.job(succeeded).await.expect("job").is_none());
    assert!(store.job(failed).await.expect("job").is_none());
    // Unfinished jobs stay, however old.
    assert!(store.job(running).await.expect("job").is_some());
    assert!(store.job(queued).await.expect("job").is_some());
    assert_eq!(store.spent_since(T0).await.expect("spent"), 0.5);
    let record = |namespace: &'static str, key: &'static str| {
        let store = store.clone();
        async move { store.get_record(namespace, key).await.expect("get") }
    };
    assert!(record("transcript", "old").await.is_none());
    assert!(record("transcript", "new").await.is_some());
    assert!(
        record("spec", "old").await.is_some(),
        "specs are not transcripts"
    );
    let again = store
        .prune(i64::MIN, i64::MIN, T0 + 5)
        .await
        .expect("prune");
    assert_eq!(again, specbot::jobs::Pruned::default());
}

async fn concurrent_duplicate_deliveries(db: &TestDb) {
    // Several instances (separate pools) on one database.
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(db.open().await);
    }

    // Many tasks deliver the same id at once: exactly one stores it.
    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = stores[i % stores.len()].clone();
        tasks.push(tokio::spawn(async move {
            store
                .record_deliveries(&[(delivery("same"), vec![job("spec", Some("k"))])], T0)
                .await
                .expect("record")
        }));
    }
    let mut stored = 0;
    for task in tasks {
        let out = task.await.expect("task");
        if matches!(out[0], Recorded::Stored { .. }) {
            assert_eq!(stored_jobs(&out[0]).len(), 1);
            stored += 1;
        }
    }
    assert_eq!(stored, 1);
    assert_eq!(stores[0].delivery_count().await.expect("count"), 1);
    assert_eq!(stores[0].recent_jobs(100).await.expect("jobs").len(), 1);

    // Overlapping batches racing: every id stored once, every dedupe key queued once.
    let ids: Vec<String> = (0..20).map(|i| format!("batch-{i}")).collect();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = stores[i % stores.len()].clone();
        let batch: Vec<(Delivery, Vec<NewJob>)> = ids
            .iter()
            .map(|id| (delivery(id), vec![job("spec", Some(&format!("key-{id}")))]))
            .collect();
        tasks.push(tokio::spawn(async move {
            store.record_deliveries(&batch, T0).await.expect("record")
        }));
    }
    let mut per_id = HashMap::<usize, usize>::new();
    for task in tasks {
        for (i, r) in task.await.expect("task").iter().enumerate() {
            if let Recorded::Stored { jobs, collapsed } = r {
                assert_eq!((jobs.len(), *collapsed), (1, 0));
                *per_id.entry(i).or_default() += 1;
            }
        }
    }
    assert_eq!(per_id.len(), 20);
    assert!(per_id.values().all(|n| *n == 1), "{per_id:?}");
    assert_eq!(stores[0].delivery_count().await.expect("count"), 21);
    assert_eq!(stores[0].recent_jobs(100).await.expect("jobs").len(), 21);
}

async fn dedupe_key_collapses_until_the_job_finishes(db: &TestDb) {
    let store = db.open().await;
    let first = enqueue(&store, job("spec", Some("octo/repo#7")), T0).await;
    assert_eq!(
        store
            .enqueue(&job("spec", Some("octo/repo#7")), T0)
            .await
            .expect("enqueue"),
        None
    );
    let out = store
        .record_deliveries(
            &[(
                delivery("d-1"),
                vec![
                    job("spec", Some("octo/repo#7")),
                    job("reply", Some("other")),
                ],
            )],
            T0,
        )
        .await
        .expect("record");
    match &out[0] {
        Recorded::Stored { jobs, collapsed } => {
            assert_eq!(jobs.len(), 1);
            assert_eq!(*collapsed, 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    let active = store
        .active_job("octo/repo#7")
        .await
        .expect("active")
        .expect("some");
    assert_eq!(active.id, first);

    // Still collapses while running.
    let claimed = store
        .claim("a", T0, LEASE)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(claimed.id, first);
    assert_eq!(
        store
            .enqueue(&job("spec", Some("octo/repo#7")), T0)
            .await
            .expect("enqueue"),
        None
    );

    // Once it is finished, the key is free again.
    assert!(store.complete(first, "a", T0 + 1).await.expect("complete"));
    assert!(
        store
            .active_job("octo/repo#7")
            .await
            .expect("active")
            .is_none()
    );
    let second = enqueue(&store, job("spec", Some("octo/repo#7")), T0 + 2).await;
    assert_ne!(second, first);
    assert_eq!(
        store
            .active_job("octo/repo#7")
            .await
            .expect("active")
            .map(|j| j.id),
        Some(second)
    );
}

async fn claim_heartbeat_checkpoint_complete(db: &TestDb) {
    let store = db.open().await;
    assert!(store.claim("a", T0, LEASE).await.expect("claim").is_none());
    let id = enqueue(&store, job("spec", Some("k")), T0).await;

    let job = store
        .claim("a", T0 + 5, LEASE)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(job.id, id);
    assert_eq!(job.state, JobState::Running);
    assert_eq!(job.attempts, 1);
    assert_eq!(job.lease_owner.as_deref(), Some("a"));
    assert_eq!(job.lease_until, Some(T0 + 5 + LEASE_MS));
    assert!(
        store
            .claim("b", T0 + 6, LEASE)
            .await
            .expect("claim")
            .is_none()
    );

    assert_eq!(
        store
            .heartbeat(id, "a", T0 + 1000, LEASE)
            .await
            .expect("hb"),
        Lease::Held {
            cancel_requested: false
        }
    );
    let now = store.job(id).await.expect("job").expect("exists");
    assert_eq!(now.lease_until, Some(T0 + 1000 + LEASE_MS));
    assert_eq!(
        store
            .heartbeat(id, "b", T0 + 1000, LEASE)
            .await
            .expect("hb"),
        Lease::Lost
    );

    let progress = json!({"done": ["draft"], "draft": "text"});
    assert!(
        store
            .save_checkpoint(id, "a", &progress, T0 + 1100)
            .await
            .expect("ckpt")
    );
    assert!(
        !store
            .save_checkpoint(id, "b", &json!({"evil": true}), T0 + 1100)
            .await
            .expect("ckpt")
    );
    let now = store.job(id).await.expect("job").expect("exists");
    assert_eq!(now.checkpoint, progress);
    assert_eq!(now.updated_at, T0 + 1100);

    assert!(!store.complete(id, "b", T0 + 1200).await.expect("complete"));
    assert!(
        !store
            .fail(id, "b", "x", None, T0 + 1200)
            .await
            .expect("fail")
    );
    assert!(
        !store
            .mark_cancelled(id, "b", T0 + 1200)
            .await
            .expect("cancel")
    );
    assert!(store.complete(id, "a", T0 + 1200).await.expect("complete"));
    let done = store.job(id).await.expect("job").expect("exists");
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.checkpoint, progress);
    assert!(!store.complete(id, "a", T0 + 1300).await.expect("complete"));
    assert_eq!(
        store
            .heartbeat(id, "a", T0 + 1300, LEASE)
            .await
            .expect("hb"),
        Lease::Lost
    );
    assert!(
        store
            .claim("a", T0 + 2 * LEASE_MS, LEASE)
            .await
            .expect("claim")
            .is_none()
    );
}

async fn killed_worker_lease_expires_and_another_takes_over(db: &TestDb) {
    // A and B are separate instances (pools) on one database.
    let process_a = db.open().await;
    let store = db.open().await;
    let id = enqueue(&store, job("implement", Some("k")), T0).await;
    let a = process_a
        .claim("a", T0, LEASE)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(a.id, id);
    // Worker A vanishes. Until its lease runs out nobody else gets the job.
    assert!(
        store
            .claim("b", T0 + LEASE_MS - 1, LEASE)
            .await
            .expect("claim")
            .is_none()
    );
    assert_eq!(store.pending_jobs(T0 + LEASE_MS).await.expect("pending"), 1);

    let later = T0 + LEASE_MS + 1;
    let b = store
        .claim("b", later, LEASE)
        .await
        .expect("claim")
        .expect("reclaimed");
    assert_eq!(b.id, id);
    assert_eq!(b.attempts, 2);
    assert_eq!(b.lease_owner.as_deref(), Some("b"));
    // A comes back from the dead: everything it tries is refused.
    assert!(
        !process_a
            .complete(id, "a", later + 1)
            .await
            .expect("complete")
    );
    assert_eq!(
        store
            .heartbeat(id, "a", later + 1, LEASE)
            .await
            .expect("hb"),
        Lease::Lost
    );
    assert!(
        !process_a
            .save_checkpoint(id, "a", &json!(1), later + 1)
            .await
            .expect("ckpt")
    );
    assert!(store.complete(id, "b", later + 2).await.expect("complete"));
    assert!(!store.complete(id, "b", later + 3).await.expect("complete"));
    assert_eq!(state(&store, id).await, JobState::Succeeded);
    assert!(
        store
            .claim("c", later + 10 * LEASE_MS, LEASE)
            .await
            .expect("claim")
            .is_none()
    );
}

async fn attempts_exhausted_on_lease_expiry_fail_the_job(db: &TestDb) {
    let store = db.open().await;
    let mut once = job("spec", Some("k1"));
    once.max_attempts = 1;
    let id = enqueue(&store, once, T0).await;
    let other = enqueue(&store, job("reply", None), T0 + 1).await;

    store
        .claim("a", T0, LEASE)
        .await
        .expect("claim")
        .expect("job");
    let later = T0 + LEASE_MS + 1;
    // The expired job is failed, and the claim moves on to the next runnable one.
    let next = store
        .claim("b", later, LEASE)
        .await
        .expect("claim")
        .expect("next job");
    assert_eq!(next.id, other);
    let lost = store.job(id).await.expect("job").expect("exists");
    assert_eq!(lost.state, JobState::Failed);
    assert_eq!(lost.last_error.as_deref(), Some("worker lost"));
    assert_eq!(lost.attempts, 1);
    assert!(store.active_job("k1").await.expect("active").is_none());
    assert!(!store.complete(id, "a", later).await.expect("complete"));
    // Its key is free for a new job.
    enqueue(&store, job("spec", Some("k1")), later).await;

    // Two attempts: reclaimed once, then failed.
    let mut twice = job("spec", Some("k2"));
    twice.max_attempts = 2;
    let id = enqueue(&store, twice, T0).await;
    let t = T0 + 100 * LEASE_MS;
    let mut claims = Vec::new();
    for round in 0..3 {
        let now = t + round * (LEASE_MS + 1);
        while let Some(j) = store.claim("w", now, LEASE).await.expect("claim") {
            if j.id == id {
                claims.push(j.attempts);
            } else {
                assert!(store.complete(j.id, "w", now).await.expect("complete"));
            }
        }
    }
    assert_eq!(claims, vec![1, 2]);
    assert_eq!(state(&store, id).await, JobState::Failed);
}

async fn serial_jobs_run_one_at_a_time_in_order(db: &TestDb) {
    let store = db.open().await;
    let in_turn = |key: &str| NewJob {
        serial_key: Some("spec-branch:1#7".to_string()),
        ..job("revise", Some(key))
    };
    let first = enqueue(&store, in_turn("review:1"), T0).await;
    let second = enqueue(&store, in_turn("review:2"), T0).await;
    let other = enqueue(&store, job("spec", Some("elsewhere")), T0).await;

    let claim = |owner: &'static str, now: Millis| {
        let store = store.clone();
        async move {
            store
                .claim(owner, now, LEASE)
                .await
                .expect("claim")
                .map(|j| j.id)
        }
    };
    assert_eq!(claim("a", T0).await, Some(first));
    // The second waits for the first; a job without the key does not.
    assert_eq!(claim("b", T0).await, Some(other));
    assert_eq!(claim("c", T0).await, None);
    assert_eq!(store.next_run_at().await.expect("next"), None);

    // A retry keeps its place: the second still waits, until the first is done.
    let retry_at = T0 + 10_000;
    assert!(
        store
            .fail(first, "a", "rate limited", Some(retry_at), T0 + 1)
            .await
            .expect("fail")
    );
    assert_eq!(claim("c", T0 + 2).await, None);
    assert_eq!(store.next_run_at().await.expect("next"), Some(retry_at));
    assert_eq!(claim("a", retry_at).await, Some(first));
    assert_eq!(claim("c", retry_at).await, None);
    assert!(
        store
            .complete(first, "a", retry_at + 1)
            .await
            .expect("done")
    );
    assert_eq!(claim("c", retry_at + 2).await, Some(second));
}

async fn fail_with_retry_requeues_later(db: &TestDb) {
    let store = db.open().await;
    let id = enqueue(&store, job("ci_fix", Some("k")), T0).await;
    store
        .claim("a", T0, LEASE)
        .await
        .expect("claim")
        .expect("job");
    let retry_at = T0 + 10_000;
    assert!(
        store
            .fail(id, "a", "rate limited", Some(retry_at), T0 + 1)
            .await
            .expect("fail")
    );
    let queued = store.job(id).await.expect("job").expect("exists");
    assert_eq!(queued.state, JobState::Queued);
    assert_eq!(queued.run_at, retry_at);
    assert_eq!(queued.last_error.as_deref(), Some("rate limited"));
    assert_eq!(queued.lease_owner, None);
    // Still the active job for its key.
    assert_eq!(
        store.active_job("k").await.expect("active").map(|j| j.id),
        Some(id)
    );
    assert_eq!(store.next_run_at().await.expect("next"), Some(retry_at));
    assert_eq!(store.pending_jobs(retry_at - 1).await.expect("pending"), 0);
    assert!(
        store
            .claim("a", retry_at - 1, LEASE)
            .await
            .expect("claim")
            .is_none()
    );

    let again = store
        .claim("b", retry_at, LEASE)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(again.id, id);
    assert_eq!(again.attempts, 2);
    // A permanent failure ends it and frees the key.
    assert!(
        store
            .fail(id, "b", "bad config", None, retry_at + 1)
            .await
            .expect("fail")
    );
    let failed = store.job(id).await.expect("job").expect("exists");
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.last_error.as_deref(), Some("bad config"));
    assert!(store.active_job("k").await.expect("active").is_none());
    assert!(
        !store
            .fail(id, "b", "again", Some(retry_at + 5), retry_at + 2)
            .await
            .expect("fail")
    );
    assert_eq!(store.next_run_at().await.expect("next"), None);
}

async fn request_cancel_queued_and_running(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(
        store.request_cancel("nothing", T0).await.expect("cancel"),
        None
    );

    // Queued: cancelled at once, key freed, never claimed.
    let queued = enqueue(&store, job("spec", Some("q")), T0).await;
    assert_eq!(
        store.request_cancel("q", T0 + 1).await.expect("cancel"),
        Some((queued, JobState::Queued))
    );
    assert_eq!(state(&store, queued).await, JobState::Cancelled);
    assert!(store.active_job("q").await.expect("active").is_none());
    assert!(
        store
            .claim("a", T0 + 2, LEASE)
            .await
            .expect("claim")
            .is_none()
    );
    assert_eq!(
        store.request_cancel("q", T0 + 3).await.expect("cancel"),
        None
    );

    // Running: flagged; the worker sees it at its heartbeat and stops.
    let running = enqueue(&store, job("implement", Some("r")), T0 + 10).await;
    store
        .claim("a", T0 + 10, LEASE)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(
        store.request_cancel("r", T0 + 11).await.expect("cancel"),
        Some((running, JobState::Running))
    );
    let flagged = store.job(running).await.expect("job").expect("exists");
    assert_eq!(flagged.state, JobState::Running);
    assert!(flagged.cancel_requested);
    assert_eq!(
        store
            .heartbeat(running, "a", T0 + 12, LEASE)
            .await
            .expect("hb"),
        Lease::Held {
            cancel_requested: true
        }
    );
    assert!(
        !store
            .mark_cancelled(running, "b", T0 + 13)
            .await
            .expect("cancelled")
    );
    assert!(
        store
            .mark_cancelled(running, "a", T0 + 13)
            .await
            .expect("cancelled")
    );
    assert_eq!(state(&store, running).await, JobState::Cancelled);
    assert!(store.active_job("r").await.expect("active").is_none());
    assert_eq!(
        store.request_cancel("r", T0 + 14).await.expect("cancel"),
        None
    );
    enqueue(&store, job("implement", Some("r")), T0 + 15).await;
}

async fn release_all_gives_the_attempt_back(db: &TestDb) {
    let store = db.open().await;
    let one = enqueue(&store, job("spec", Some("1")), T0).await;
    let two = enqueue(&store, job("spec", Some("2")), T0).await;
    let three = enqueue(&store, job("spec", Some("3")), T0).await;
    for _ in 0..2 {
        store
            .claim("a", T0 + 1, LEASE)
            .await
            .expect("claim")
            .expect("job");
    }
    let by_c = store
        .claim("c", T0 + 1, LEASE)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(by_c.id, three);

    assert_eq!(store.release_all("a", T0 + 50).await.expect("release"), 2);
    for id in [one, two] {
        let j = store.job(id).await.expect("job").expect("exists");
        assert_eq!(j.state, JobState::Queued);
        assert_eq!(j.attempts, 0);
        assert_eq!(j.lease_owner, None);
        assert_eq!(j.lease_until, None);
        assert_eq!(j.run_at, T0 + 50);
    }
    assert_eq!(state(&store, three).await, JobState::Running);
    assert_eq!(store.release_all("a", T0 + 51).await.expect("release"), 0);

    let again = store
        .claim("b", T0 + 50, LEASE)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(again.id, one);
    assert_eq!(again.attempts, 1);
}

async fn records_put_get_list(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(store.get_record("spec", "a").await.expect("get"), None);
    store
        .put_record("spec", "octo/repo#1", &json!({"state": "draft"}), T0)
        .await
        .expect("put");
    store
        .put_record("spec", "octo/repo#1", &json!({"state": "approved"}), T0 + 1)
        .await
        .expect("put");
    store
        .put_record("spec", "octo/repo#2", &json!([1, 2]), T0)
        .await
        .expect("put");
    store
        .put_record("spec", "octo/other#1", &json!("x"), T0)
        .await
        .expect("put");
    store
        .put_record("spec", "50%_off", &json!(null), T0)
        .await
        .expect("put");
    store
        .put_record("components", "octo/repo#1", &json!(3), T0)
        .await
        .expect("put");

    assert_eq!(
        store.get_record("spec", "octo/repo#1").await.expect("get"),
        Some(json!({"state": "approved"}))
    );
    assert_eq!(
        store
            .get_record("components", "octo/repo#1")
            .await
            .expect("get"),
        Some(json!(3))
    );
    assert_eq!(
        store
            .list_records("spec", "octo/repo#")
            .await
            .expect("list"),
        vec![
            ("octo/repo#1".to_string(), json!({"state": "approved"})),
            ("octo/repo#2".to_string(), json!([1, 2])),
        ]
    );
    assert_eq!(store.list_records("spec", "").await.expect("list").len(), 4);
    // The prefix is literal, not a LIKE pattern.
    assert_eq!(
        store.list_records("spec", "50%").await.expect("list"),
        vec![("50%_off".to_string(), json!(null))]
    );
    assert!(
        store
            .list_records("spec", "5_")
            .await
            .expect("list")
            .is_empty()
    );
    assert!(
        store
            .list_records("none", "")
            .await
            .expect("list")
            .is_empty()
    );
}

async fn usage_and_job_cost(db: &TestDb) {
    let store = db.open().await;
    let id = enqueue(&store, job("spec", None), T0).await;
    assert_eq!(store.job_cost(id).await.expect("cost"), 0.0);
    let usage = |cost: f64| UsageRecord {
        job_id: id,
        provider: "anthropic".to_string(),
        model: "claude".to_string(),
        input_tokens: 1000,
        output_tokens: 200,
        cache_read_tokens: 50,
        cache_write_tokens: 10,
        cost_usd: cost,
    };
    store.record_usage(&usage(0.25), T0).await.expect("usage");
    store
        .record_usage(&usage(0.5), T0 + 1)
        .await
        .expect("usage");
    store
        .record_usage(
            &UsageRecord {
                job_id: id + 1000,
                ..usage(9.0)
            },
            T0,
        )
        .await
        .expect("usage");
    assert!((store.job_cost(id).await.expect("cost") - 0.75).abs() < 1e-9);
    assert!((store.job_cost(id + 1000).await.expect("cost") - 9.0).abs() < 1e-9);
}

async fn counts_pending_next_run_at(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(store.pending_jobs(T0).await.expect("pending"), 0);
    assert_eq!(store.next_run_at().await.expect("next"), None);
    assert!(store.recent_jobs(10).await.expect("recent").is_empty());

    let a = enqueue(&store, job("spec", None), T0).await;
    let b = enqueue(&store, job("spec", None), T0).await;
    let mut later = job("reply", None);
    later.run_at = T0 + 60_000;
    let c = enqueue(&store, later, T0).await;
    store
        .claim("w", T0, LEASE)
        .await
        .expect("claim")
        .expect("job"); // a
    let done = store
        .claim("w", T0, LEASE)
        .await
        .expect("claim")
        .expect("job"); // b
    assert_eq!(done.id, b);
    assert!(store.complete(b, "w", T0).await.expect("complete"));

    // a running, c queued for later, b done.
    assert_eq!(store.pending_jobs(T0).await.expect("pending"), 1);
    assert_eq!(store.pending_jobs(T0 + 60_000).await.expect("pending"), 2);
    assert_eq!(store.next_run_at().await.expect("next"), Some(T0 + 60_000));
    let mut counts: Vec<(String, JobState, i64)> = store
        .job_counts()
        .await
        .expect("counts")
        .into_iter()
        .map(|c| (c.kind, c.state, c.count))
        .collect();
    counts.sort_by(|x, y| (&x.0, x.1.as_str()).cmp(&(&y.0, y.1.as_str())));
    assert_eq!(
        counts,
        vec![
            ("reply".to_string(), JobState::Queued, 1),
            ("spec".to_string(), JobState::Running, 1),
            ("spec".to_string(), JobState::Succeeded, 1),
        ]
    );
    let recent: Vec<i64> = store
        .recent_jobs(2)
        .await
        .expect("recent")
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(recent, vec![c, b]);
    assert_eq!(store.recent_jobs(10).await.expect("recent").len(), 3);
    assert_eq!(store.job(a).await.expect("job").map(|j| j.id), Some(a));
    assert_eq!(store.job(a + 1000).await.expect("job"), None);
}

async fn wait_for_work_is_woken_by_enqueue(db: &TestDb) {
    // The waiter and the enqueuer are different instances (for SQLite, the same file opened
    // twice is not "one process"; use one store there).
    let waiter = db.open().await;
    let enqueuer = if db.pg.is_some() {
        db.open().await
    } else {
        waiter.clone()
    };
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let w = waiter.clone();
    let task = tokio::spawn(async move {
        let started = Instant::now();
        let _ = ready_tx.send(());
        w.wait_for_work(Duration::from_secs(120)).await;
        started.elapsed()
    });
    ready_rx.await.expect("waiter started");
    enqueue(&enqueuer, job("spec", None), T0).await;
    let waited = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("woken before the fallback timeout")
        .expect("task");
    assert!(waited < Duration::from_secs(60), "{waited:?}");
    // The fallback timeout still returns when nothing happens.
    waiter.wait_for_work(Duration::from_millis(1)).await;
}

async fn exactly_once_under_concurrent_claimers(db: &TestDb) {
    const JOBS: usize = 400;
    const CLAIMERS: usize = 8;
    // Postgres: one store (one pool) per claimer, as separate processes would be. SQLite: one
    // store shared by several claim loops.
    let mut stores = Vec::new();
    if db.pg.is_some() {
        for _ in 0..CLAIMERS {
            stores.push(db.open().await);
        }
    } else {
        let store = db.open().await;
        stores.resize(CLAIMERS, store);
    }

    // Queue through the intake path, in batches.
    let mut all = Vec::new();
    for batch in 0..4 {
        let items: Vec<(Delivery, Vec<NewJob>)> = (0..JOBS / 4)
            .map(|i| {
                let n = batch * (JOBS / 4) + i;
                (
                    delivery(&format!("d-{n}")),
                    vec![job("spec", Some(&format!("key-{n}")))],
                )
            })
            .collect();
        for r in stores[0]
            .record_deliveries(&items, T0)
            .await
            .expect("record")
        {
            all.extend(stored_jobs(&r));
        }
    }
    assert_eq!(all.len(), JOBS);

    let completions = Arc::new(Mutex::new(HashMap::<i64, usize>::new()));
    let mut tasks = Vec::new();
    for (n, store) in stores.into_iter().enumerate() {
        let completions = completions.clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("worker-{n}");
            let mut mine = 0;
            while let Some(job) = store.claim(&owner, T0 + 1, LEASE).await.expect("claim") {
                assert_eq!(job.attempts, 1, "a job was claimed twice");
                assert!(
                    store
                        .complete(job.id, &owner, T0 + 2)
                        .await
                        .expect("complete"),
                    "lease lost without expiry"
                );
                *completions.lock().expect("lock").entry(job.id).or_default() += 1;
                mine += 1;
            }
            mine
        }));
    }
    let mut per_worker = Vec::new();
    for task in tasks {
        per_worker.push(task.await.expect("claimer"));
    }
    let completions = completions.lock().expect("lock").clone();
    assert_eq!(completions.len(), JOBS, "every job completed");
    assert!(
        completions.values().all(|n| *n == 1),
        "each exactly once: {completions:?}"
    );
    assert!(all.iter().all(|id| completions.contains_key(id)));
    assert_eq!(per_worker.iter().sum::<usize>(), JOBS);
    eprintln!("completions per claimer: {per_worker:?}");

    let store = jobs::open(&db.url).await.expect("open");
    let counts = store.job_counts().await.expect("counts");
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].state, JobState::Succeeded);
    assert_eq!(counts[0].count, JOBS as i64);
    assert_eq!(store.pending_jobs(T0 + 10).await.expect("pending"), 0);
}

// ---------------------------------------------------------------------------------------------
// SQLite only

#[tokio::test]
async fn sqlite_in_memory_works() {
    let store = jobs::open("sqlite::memory:").await.expect("open");
    store.migrate().await.expect("migrate");
    store.migrate().await.expect("migrate twice");
    let id = enqueue(&store, job("spec", Some("k")), T0).await;
    let claimed = store
        .claim("a", T0, LEASE)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(claimed.id, id);
    assert!(store.complete(id, "a", T0 + 1).await.expect("complete"));
    assert_eq!(state(&store, id).await, JobState::Succeeded);
}

#[tokio::test]
async fn sqlite_file_is_created_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("nested.db");
    let url = format!("sqlite://{}", path.display());
    {
        let store = jobs::open(&url).await.expect("open");
        store.migrate().await.expect("migrate");
        enqueue(&store, job("spec", Some("k")), T0).await;
    }
    assert!(path.exists());
    let store = jobs::open(&url).await.expect("reopen");
    store.migrate().await.expect("migrate");
    assert!(store.active_job("k").await.expect("active").is_some());
}

/// Claim as `owner` until a job comes back (the database notices a dead session on its own
/// time), at most 60 s.
async fn claim_when_free(store: &Arc<dyn Store>, owner: &str, now: Millis) -> jobs::Job {
    let start = Instant::now();
    loop {
        if let Some(job) = store.claim(owner, now, LEASE).await.expect("claim") {
            return job;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{owner} never got the job"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_dead_serving_process_has_its_jobs_taken_over_at_once(db: &TestDb) {
    // Process A serves and holds a job; its lease runs far beyond anything below.
    let process_a = db.open().await;
    let tenure_a = process_a.serve_as("proc-a", T0).await.expect("A serves");
    let store = db.open().await;
    let id = enqueue(&store, job("spec", Some("k")), T0).await;
    let held = process_a.claim("proc-a/0", T0, LEASE).await.expect("claim");
    assert_eq!(held.map(|j| j.id), Some(id));

    let process_b = db.open().await;
    let tenure_b = if db.pg.is_some() {
        // Several processes share Postgres; a live owner's job stays its own.
        Some(process_b.serve_as("proc-b", T0).await.expect("B serves"))
    } else {
        // One process serves a SQLite file.
        match process_b.serve_as("proc-b", T0).await {
            Err(StoreError::AlreadyServed(holder)) => {
                assert!(
                    holder.contains(&format!("pid {}", std::process::id())),
                    "{holder}"
                );
            }
            other => panic!("a second serve on one SQLite file: {other:?}"),
        }
        None
    };
    assert!(
        process_b
            .claim("proc-b/0", T0 + 1, LEASE)
            .await
            .expect("claim")
            .is_none(),
        "a live process's job was taken"
    );

    // A dies: its hold goes with it.
    drop(tenure_a);
    let _tenure_b = match tenure_b {
        Some(tenure) => tenure,
        None => process_b
            .serve_as("proc-b", T0 + 2)
            .await
            .expect("B serves"),
    };
    let taken = claim_when_free(&process_b, "proc-b/0", T0 + 3).await;
    assert_eq!(taken.id, id);
    assert_eq!(taken.attempts, 2);
    assert_eq!(taken.lease_owner.as_deref(), Some("proc-b/0"));
    // Whatever A's workers still try is refused.
    assert!(
        !process_a
            .save_checkpoint(id, "proc-a/0", &json!({"step": 1}), T0 + 4)
            .await
            .expect("checkpoint")
    );
    assert!(
        !process_a
            .complete(id, "proc-a/0", T0 + 4)
            .await
            .expect("complete")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_dropped_lock_connection_lapses_the_tenure_until_relocked() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("skipped: set SPECBOT_TEST_POSTGRES to run it");
        return;
    };
    let store = db.open().await;
    let tenure = store.serve_as("proc-a", T0).await.expect("serves");
    let mut term = tenure.term();
    assert_eq!(*term.borrow(), Some(1));
    // The database ends the lock's session (a restart, a failover, an administrator).
    db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_locks \
         WHERE locktype = 'advisory' AND classid = 1397769539 AND objsubid = 2 \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .await;
    let wait = Duration::from_secs(60);
    tokio::time::timeout(wait, term.wait_for(Option::is_none))
        .await
        .expect("the hold lapses")
        .expect("term");
    let again = tokio::time::timeout(wait, term.wait_for(Option::is_some))
        .await
        .expect("the lock is taken again")
        .expect("term")
        .unwrap_or_default();
    assert_eq!(again, 2, "a new term");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_two_instances_on_one_file_claim_exactly_once() {
    // Two stores on one file, as two processes would be: their writers contend through
    // SQLite's file lock (busy_timeout, BEGIN IMMEDIATE) instead of one in-process pool.
    let db = TestDb::sqlite();
    let stores = [db.open().await, db.open().await];
    for chunk in 0..4 {
        let batch: Vec<(Delivery, Vec<NewJob>)> = (0..50)
            .map(|i| {
                let n = chunk * 50 + i;
                (delivery(&format!("d-{n}")), vec![job("spec", None)])
            })
            .collect();
        // Intake from both instances at once, overlapping ids.
        let (x, y) = tokio::join!(
            stores[0].record_deliveries(&batch, T0),
            stores[1].record_deliveries(&batch, T0)
        );
        let stored = x
            .expect("record")
            .iter()
            .chain(y.expect("record").iter())
            .filter(|r| matches!(r, Recorded::Stored { .. }))
            .count();
        assert_eq!(stored, 50);
    }
    let completions = Arc::new(Mutex::new(HashMap::<i64, usize>::new()));
    let mut tasks = Vec::new();
    for n in 0..6 {
        let store = stores[n % 2].clone();
        let completions = completions.clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("w{n}");
            while let Some(job) = store.claim(&owner, T0 + 1, LEASE).await.expect("claim") {
                assert!(
                    store
                        .complete(job.id, &owner, T0 + 2)
                        .await
                        .expect("complete")
                );
                *completions.lock().expect("lock").entry(job.id).or_default() += 1;
            }
        }));
    }
    for task in tasks {
        task.await.expect("claimer");
    }
    let completions = completions.lock().expect("lock").clone();
    assert_eq!(completions.len(), 200);
    assert!(completions.values().all(|n| *n == 1));
}

#[tokio::test]
async fn open_rejects_other_urls() {
    for url in ["mysql://localhost/x", "file.db", ""] {
        match jobs::open(url).await {
            Err(StoreError::UnsupportedUrl(_)) => {}
            Err(other) => panic!("{url}: unexpected error {other}"),
            Ok(_) => panic!("{url}: opened"),
        }
    }
}
