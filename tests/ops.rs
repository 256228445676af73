//! Operating the real binary: `specbot serve` start-up (refuses without a webhook secret, starts
//! with the bare minimum), graceful shutdown on SIGTERM (not ready, drained, held job handed
//! back, exit 0), `specbot check-config` findings, and the Fly configuration file.
//! Runs on SQLite, or on Postgres when `SPECBOT_TEST_POSTGRES` is set.

#[path = "support/child.rs"]
mod child;
#[path = "support/db.rs"]
mod db;

use std::path::Path;
use std::time::{Duration, Instant};

use child::{Server, Silent, wait_until};
use db::TestDb;
use specbot::jobs::{JobState, NewJob};
use specbot::workflow::{RepoTarget, SpecRequest, SpecTrigger, Workflow};

/// A webhook secret as long as `serve` asks for.
const OPS_SECRET: &str = "ops-suite-webhook-secret-0123456789abcdef";

fn spec_job(issue: u64) -> NewJob {
    SpecRequest {
        repo: RepoTarget {
            installation_id: 1,
            owner: "acme".into(),
            name: "widgets".into(),
            repo_id: 42,
        },
        issue_number: issue,
        requested_by: "octocat".into(),
        trigger: SpecTrigger::Label {
            name: "needs-spec".into(),
        },
        delivery_id: format!("ops-{issue}"),
    }
    .into_job(3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_hands_the_held_job_back_and_exits_0() {
    let db = TestDb::new().await;
    let store = specbot::jobs::open(&db.url).await.expect("open store");
    store.migrate().await.expect("migrate");
    let dir = tempfile::tempdir().expect("temp dir");
    let silent = Silent::start().await;
    let key = child::test_key_path();
    let grace = Duration::from_secs(3);
    let grace_secs = grace.as_secs().to_string();
    let mut server = Server::start(
        dir.path(),
        &[
            ("DATABASE_URL", db.url.as_str()),
            ("WEBHOOK_SECRET", OPS_SECRET),
            ("WORKERS", "1"),
            ("SHUTDOWN_GRACE_SECS", grace_secs.as_str()),
            ("APP_ID", "1"),
            ("PRIVATE_KEY_PATH", key.as_str()),
            // GitHub never answers: the spec job stays running, its lease renewed.
            ("GITHUB_API_URL", silent.url.as_str()),
        ],
    )
    .await;
    assert_eq!(server.status("/readyz").await, Some(200));
    let id = store
        .enqueue(&spec_job(7), specbot::jobs::now_ms())
        .await
        .expect("enqueue")
        .expect("queued");
    wait_until("the job is running", || async {
        let job = store.job(id).await.ok().flatten();
        job.is_some_and(|j| j.state == JobState::Running && j.attempts == 1)
    })
    .await;

    let signalled = Instant::now();
    server.sigterm();
    // While the held job drains, the process still answers, but not as ready.
    wait_until("/readyz answers 503 while draining", || async {
        server.status("/readyz").await == Some(503)
    })
    .await;
    assert_eq!(
        server.status("/healthz").await,
        Some(200),
        "still alive while draining"
    );
    let status = server
        .wait(grace + Duration::from_secs(30))
        .await
        .expect("the process exits after SIGTERM");
    let took = signalled.elapsed();
    eprintln!("exited {took:?} after SIGTERM (grace {grace:?})");
    assert!(status.success(), "exit {status:?}\n{}", server.log_text());

    let job = store.job(id).await.expect("read job").expect("job");
    assert_eq!(job.state, JobState::Queued, "handed back: {job:?}");
    assert_eq!(job.attempts, 0, "the attempt was given back: {job:?}");
    assert_eq!(job.lease_owner, None, "{job:?}");
    assert!(
        server.log_text().contains("unfinished jobs handed back"),
        "{}",
        server.log_text()
    );
}

#[tokio::test]
async fn serve_without_webhook_secret_exits_nonzero_with_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = child::test_key_path();
    // An App without a secret (with neither, `serve` starts in setup mode).
    let out = child::command(
        dir.path(),
        &["serve"],
        &[
            ("HOST", "127.0.0.1"),
            ("PORT", "0"),
            ("APP_ID", "1"),
            ("PRIVATE_KEY_PATH", key.as_str()),
        ],
    )
    .output()
    .await
    .expect("run specbot serve");
    assert!(!out.status.success(), "{:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line of explanation: {stderr}");
    assert!(
        lines[0].starts_with("specbot: WEBHOOK_SECRET is not set"),
        "{}",
        lines[0]
    );
    assert!(
        !dir.path().join("specbot.db").exists(),
        "nothing created before refusing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_with_secret_app_id_and_key_and_creates_its_sqlite_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = child::test_key_path();
    // HOST and PORT only keep the test on loopback and off a fixed port.
    let mut server = Server::start_raw(child::command(
        dir.path(),
        &["serve"],
        &[
            ("WEBHOOK_SECRET", OPS_SECRET),
            ("APP_ID", "1"),
            ("PRIVATE_KEY_PATH", key.as_str()),
            ("HOST", "127.0.0.1"),
            ("PORT", "0"),
        ],
    ))
    .await;
    assert!(
        dir.path().join("specbot.db").exists(),
        "DATABASE_URL defaults to sqlite://specbot.db in the working directory"
    );
    assert_eq!(server.status("/healthz").await, Some(200));
    assert_eq!(server.status("/readyz").await, Some(200));
    server.sigterm();
    let status = server
        .wait(Duration::from_secs(60))
        .await
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}\n{}", server.log_text());
}

// ---- check-config ----

struct Check {
    code: i32,
    lines: Vec<String>,
}

impl Check {
    fn failures(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix("FAIL "))
            .collect()
    }
}

async fn check_config(dir: &Path, extra_args: &[&str], env: &[(&str, &str)]) -> Check {
    let mut args = vec!["check-config", "--offline"];
    args.extend_from_slice(extra_args);
    let out = child::command(dir, &args, env)
        .output()
        .await
        .expect("run check-config");
    Check {
        code: out.status.code().unwrap_or(-1),
        lines: String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
    }
}

/// Everything set and valid, on a SQLite file in `dir`.
fn good_env(dir: &Path, key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("WEBHOOK_SECRET", OPS_SECRET.into()),
        ("APP_ID", "12345".into()),
        ("PRIVATE_KEY_PATH", key.into()),
        (
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("specbot.db").display()),
        ),
        ("LLM_PROVIDER", "anthropic".into()),
        ("LLM_API_KEY", "sk-test".into()),
        (
            "LLM_PRICES",
            r#"{"claude-test": {"input": 3, "output": 15}}"#.into(),
        ),
    ]
}

fn with<'a>(
    base: &'a [(&'static str, String)],
    set: &'a [(&'static str, &'a str)],
    unset: &[&str],
) -> Vec<(&'a str, &'a str)> {
    let mut env: Vec<(&str, &str)> = base
        .iter()
        .filter(|(k, _)| !unset.contains(k) && !set.iter().any(|(s, _)| s == k))
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    env.extend_from_slice(set);
    env
}

#[tokio::test]
async fn check_config_accepts_a_good_environment_without_creating_the_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = child::test_key_path();
    let base = good_env(dir.path(), &key);
    std::fs::write(
        dir.path().join("specbot.yml"),
        "trigger_label: needs-spec\nspec_path: specs/IMPLEMENT-{number}.md\n",
    )
    .expect("write repo config");
    let repo_config = dir.path().join("specbot.yml");
    let repo_config = repo_config.to_str().expect("utf-8 path");
    let check = check_config(
        dir.path(),
        &["--repo-config", repo_config],
        &with(&base, &[], &[]),
    )
    .await;
    assert_eq!(check.code, 0, "{:#?}", check.lines);
    assert!(check.failures().is_empty(), "{:#?}", check.lines);
    for expected in [
        "ok   repository config: valid",
        "ok   WEBHOOK_SECRET: 1 secret(s) configured",
        "ok   LLM_PRICES: valid",
    ] {
        assert!(
            check.lines.iter().any(|l| l == expected),
            "{expected}: {:#?}",
            check.lines
        );
    }
    assert!(
        check
            .lines
            .iter()
            .any(|l| l.starts_with("ok   database: SQLite file")
                && l.ends_with("does not exist yet; `specbot serve` will create it")),
        "{:#?}",
        check.lines
    );
    assert!(
        !dir.path().join("specbot.db").exists(),
        "check-config does not create the database"
    );

    if let Some(pg) = TestDb::postgres().await {
        let check = check_config(
            dir.path(),
            &[],
            &with(&base, &[("DATABASE_URL", pg.url.as_str())], &[]),
        )
        .await;
        assert_eq!(check.code, 0, "{:#?}", check.lines);
        assert!(
            check
                .lines
                .iter()
                .any(|l| l.starts_with("ok   database: PostgreSQL at") && l.ends_with("answers")),
            "{:#?}",
            check.lines
        );
    }

    // An existing database is opened read-only and reported as usable.
    let store = specbot::jobs::open(&format!(
        "sqlite://{}",
        dir.path().join("specbot.db").display()
    ))
    .await
    .expect("create db");
    store.migrate().await.expect("migrate");
    let check = check_config(dir.path(), &[], &with(&base, &[], &[])).await;
    assert_eq!(check.code, 0, "{:#?}", check.lines);
    assert!(
        check
            .lines
            .iter()
            .any(|l| l.starts_with("ok   database: SQLite file") && l.ends_with("opens")),
        "{:#?}",
        check.lines
    );
}

#[tokio::test]
async fn check_config_names_each_broken_setting_in_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = child::test_key_path();
    let base = good_env(dir.path(), &key);
    let bad_pem = dir.path().join("bad.pem");
    std::fs::write(
        &bad_pem,
        "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n",
    )
    .expect("write bad pem");
    let bad_pem = bad_pem.to_str().expect("utf-8 path").to_string();
    let missing_pem = dir.path().join("missing.pem");
    let missing_pem = missing_pem.to_str().expect("utf-8 path").to_string();
    let bad_yml = dir.path().join("bad.yml");
    std::fs::write(&bad_yml, "trigger_lable: needs-spec\n").expect("write repo config");
    let bad_yml = bad_yml.to_str().expect("utf-8 path").to_string();
    let no_db_dir = format!("sqlite://{}/no/such/dir/specbot.db", dir.path().display());

    // (what is broken, extra args, variables set, variables unset, the expected FAIL line's start)
    type Case<'a> = (
        &'a str,
        Vec<&'a str>,
        Vec<(&'static str, &'a str)>,
        Vec<&'a str>,
        String,
    );
    let cases: Vec<Case> = vec![
        (
            "a PEM file that holds no RSA key",
            vec![],
            vec![("PRIVATE_KEY_PATH", bad_pem.as_str())],
            vec![],
            format!("PRIVATE_KEY_PATH {bad_pem}: not a PEM-encoded RSA private key"),
        ),
        (
            "a key in PRIVATE_KEY that is not PEM",
            vec![],
            vec![("PRIVATE_KEY", "just some text")],
            vec!["PRIVATE_KEY_PATH"],
            "PRIVATE_KEY: not a PEM-encoded RSA private key".to_string(),
        ),
        (
            "a PRIVATE_KEY_PATH that does not exist",
            vec![],
            vec![("PRIVATE_KEY_PATH", missing_pem.as_str())],
            vec![],
            format!("PRIVATE_KEY_PATH {missing_pem}: No such file"),
        ),
        (
            "no webhook secret",
            vec![],
            vec![],
            vec!["WEBHOOK_SECRET"],
            "WEBHOOK_SECRET is not set: `specbot serve` will refuse to start".to_string(),
        ),
        (
            "a Postgres server nobody listens for",
            vec![],
            vec![("DATABASE_URL", "postgres://bot:hunter2@127.0.0.1:1/specbot")],
            vec![],
            "database: cannot use PostgreSQL at postgres://bot:***@127.0.0.1:1/specbot:"
                .to_string(),
        ),
        (
            "a SQLite file in a folder that does not exist",
            vec![],
            vec![("DATABASE_URL", no_db_dir.as_str())],
            vec![],
            "database: SQLite file".to_string(),
        ),
        (
            "an unknown LLM provider",
            vec![],
            vec![("LLM_PROVIDER", "gemini")],
            vec![],
            "unknown LLM_PROVIDER \"gemini\": expected \"anthropic\" or \"openai\"".to_string(),
        ),
        (
            "LLM_PRICES that is not JSON",
            vec![],
            vec![("LLM_PRICES", "{claude: 3}")],
            vec![],
            "LLM_PRICES: price table JSON:".to_string(),
        ),
        (
            "a repository config with an unknown key",
            vec!["--repo-config", bad_yml.as_str()],
            vec![],
            vec![],
            "repository config:".to_string(),
        ),
    ];
    let mut report = Vec::new();
    for (what, args, set, unset, expected) in &cases {
        let env = with(&base, set, unset);
        let check = check_config(dir.path(), args, &env).await;
        let failures = check.failures();
        report.push(format!("{what}: {failures:?}"));
        assert_eq!(check.code, 1, "{what}: exit code\n{:#?}", check.lines);
        assert_eq!(
            failures.len(),
            1,
            "{what}: exactly one finding\n{:#?}",
            check.lines
        );
        assert!(
            failures[0].starts_with(expected.as_str()),
            "{what}: expected a line starting {expected:?}\n{:#?}",
            check.lines
        );
        assert!(
            !failures[0].contains("hunter2"),
            "{what}: no password in the output"
        );
    }
    eprintln!("{}", report.join("\n"));
    assert!(
        !dir.path().join("specbot.db").exists(),
        "check-config does not create the database"
    );
}

// ---- deployment files ----

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[test]
fn fly_toml_fits_how_specbot_runs() {
    let fly: toml::Table = repo_file("fly.toml").parse().expect("fly.toml is TOML");
    let env = fly["env"].as_table().expect("[env]");
    let env_str = |k: &str| env.get(k).and_then(|v| v.as_str()).unwrap_or_default();

    assert_eq!(
        fly["kill_signal"].as_str(),
        Some("SIGTERM"),
        "serve drains on SIGTERM"
    );
    let kill_timeout = fly["kill_timeout"].as_integer().expect("kill_timeout");
    let grace: i64 = env_str("SHUTDOWN_GRACE_SECS")
        .parse()
        .expect("SHUTDOWN_GRACE_SECS set");
    assert!(
        kill_timeout >= grace + 5,
        "kill_timeout {kill_timeout} leaves no room after a {grace} s drain"
    );
    assert!(kill_timeout <= 300, "Fly caps kill_timeout at 300 s");

    let build = fly["build"].as_table().expect("[build]");
    for key in ["dockerfile", "ignorefile"] {
        let path = build[key].as_str().expect(key);
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(path).is_file(),
            "{key} {path} exists"
        );
    }

    // SQLite on the volume: the database file is under the mount.
    let db_url = env_str("DATABASE_URL");
    let db_path = db_url
        .strip_prefix("sqlite://")
        .expect("single machine: SQLite");
    let mounts = fly["mounts"].as_array().expect("[[mounts]]");
    assert_eq!(mounts.len(), 1);
    let destination = mounts[0]["destination"].as_str().expect("destination");
    assert!(
        db_path.starts_with(&format!("{destination}/")),
        "{db_path} on {destination}"
    );
    // Fly's release machine has no volume: no release_command in SQLite mode.
    let release = fly
        .get("deploy")
        .and_then(|d| d.get("release_command"))
        .and_then(|c| c.as_str());
    assert_eq!(release, None, "release_command only with Postgres");

    let http = fly["http_service"].as_table().expect("[http_service]");
    let port: i64 = env_str("PORT").parse().expect("PORT");
    assert_eq!(http["internal_port"].as_integer(), Some(port));
    assert_eq!(
        http["auto_stop_machines"].as_str(),
        Some("off"),
        "jobs run between webhooks"
    );
    assert!(http["min_machines_running"].as_integer() >= Some(1));
    let checks = http["checks"].as_array().expect("[[http_service.checks]]");
    assert!(
        checks
            .iter()
            .any(|c| c["path"].as_str() == Some("/healthz") && c["method"].as_str() == Some("GET")),
        "a /healthz check"
    );
}

#[test]
fn dockerfile_dependency_layer_covers_every_declared_target() {
    let manifest: toml::Table = repo_file("Cargo.toml").parse().expect("Cargo.toml");
    let dockerfile = repo_file("deploy/Dockerfile");
    // cargo refuses a manifest whose declared targets have no file, so the placeholder layer
    // needs one for each.
    for (section, dir) in [
        ("bench", "benches"),
        ("example", "examples"),
        ("test", "tests"),
    ] {
        for target in manifest
            .get(section)
            .and_then(|t| t.as_array())
            .into_iter()
            .flatten()
        {
            let name = target["name"].as_str().expect("target name");
            let path = target
                .get("path")
                .and_then(|p| p.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| format!("{dir}/{name}.rs"));
            assert!(
                dockerfile.contains(&path),
                "deploy/Dockerfile's dependency layer has no placeholder for {path}"
            );
        }
    }
    assert!(dockerfile.contains("ca-certificates"));
    assert!(dockerfile.contains("EXPOSE 3000"));
    let entrypoint = repo_file("deploy/entrypoint.sh");
    assert!(
        entrypoint.contains("setpriv --reuid=10001"),
        "runs specbot as non-root"
    );
    assert!(entrypoint.contains("exec "), "signals reach specbot");
}
