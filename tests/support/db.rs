//! A fresh database per test: a SQLite file in a temporary folder, or — when
//! `SPECBOT_TEST_POSTGRES` names a server — a new Postgres database on it, so the same suite
//! runs on both backends. A Postgres test database is dropped again when the `TestDb` is.
#![allow(dead_code)]

pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// Server URL and database name, to drop the database at the end.
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn new() -> TestDb {
        if let Some(db) = Self::postgres().await {
            return db;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("specbot.db").display());
        TestDb {
            url,
            _dir: Some(dir),
            pg: None,
        }
    }

    /// A fresh Postgres database, or `None` when `SPECBOT_TEST_POSTGRES` is not set.
    pub async fn postgres() -> Option<TestDb> {
        let server = std::env::var("SPECBOT_TEST_POSTGRES").ok()?;
        if server.is_empty() {
            return None;
        }
        use sqlx::Connection;
        let name = format!("specbot_e2e_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&server)
            .await
            .expect("SPECBOT_TEST_POSTGRES is reachable");
        // `name` is a UUID we made: safe to splice.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let base = match (server.find("://"), server.rfind('/')) {
            (Some(scheme), Some(i)) if i > scheme + 2 => server[..i].to_string(),
            _ => server.clone(),
        };
        Some(TestDb {
            url: format!("{base}/{name}"),
            _dir: None,
            pg: Some((server, name)),
        })
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }
}

impl Drop for TestDb {
    /// Drop the Postgres database (connections still open are closed by `FORCE`). Best effort,
    /// on a thread of its own because `Drop` cannot await.
    fn drop(&mut self) {
        let Some((server, name)) = self.pg.take() else {
            return;
        };
        let dropper = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&server).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}
