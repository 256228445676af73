//! A fresh database per test: a SQLite file in a temporary folder, or — when
//! `SPECBOT_TEST_POSTGRES` names a server — a new Postgres database on it, so the same suite
//! runs on both backends.

pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new() -> TestDb {
        if let Ok(server) = std::env::var("SPECBOT_TEST_POSTGRES")
            && !server.is_empty()
        {
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
            let base = match server.rfind('/') {
                Some(i) if server[..i].contains("://") && i > server.find("://").unwrap() + 2 => {
                    server[..i].to_string()
                }
                _ => server.clone(),
            };
            return TestDb {
                url: format!("{base}/{name}"),
                _dir: None,
            };
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("specbot.db").display());
        TestDb {
            url,
            _dir: Some(dir),
        }
    }
}
