//! `specbot check-config`: validate the environment (and optionally a `.github/specbot.yml`)
//! and say, one line per finding, what works and what does not.
//!
//! Every setting is checked even when an earlier one is wrong, so one run lists everything to
//! fix. Nothing is written: a SQLite database that does not exist yet is not created (only its
//! folder is checked), and an existing one is opened read-only.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use secrecy::ExposeSecret;

use crate::config::repo::RepoConfig;
use crate::config::{ConfigError, EnvArgs, Settings, check_webhook_secrets};

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    pub line: String,
}

fn ok(line: impl Into<String>) -> Finding {
    Finding {
        ok: true,
        line: line.into(),
    }
}

fn problem(line: impl Into<String>) -> Finding {
    Finding {
        ok: false,
        line: line.into(),
    }
}

/// What `LlmError::Config` puts before its message; the lines here name the variable instead.
const LLM_PREFIX: &str = "LLM configuration: ";

/// How long the database and the online checks may take each.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Check everything; `online` also asks GitHub and the model endpoint.
pub async fn check(args: EnvArgs, repo_config: Option<&str>, online: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(text) = repo_config {
        let (_, problems) = RepoConfig::parse(text);
        if problems.is_empty() {
            out.push(ok("repository config: valid"));
        }
        for p in problems {
            out.push(problem(format!("repository config: {p}")));
        }
    }
    let key_source = match (&args.private_key, &args.private_key_path) {
        (Some(_), _) => "PRIVATE_KEY".to_string(),
        (None, Some(path)) => format!("PRIVATE_KEY_PATH {}", path.display()),
        (None, None) => String::new(),
    };
    let settings = match settings_reporting(args, &mut out) {
        Some(s) => s,
        None => return out,
    };
    out.push(webhook_secret_finding(&settings));
    let github = check_app(&settings, &key_source, &mut out);
    out.push(check_database(settings.database_url.expose_secret()).await);
    let llm = check_model(&settings, &mut out);
    out.push(sandbox_finding());
    if !online {
        return out;
    }
    check_online(&settings, github, llm, &mut out).await;
    out
}

/// The webhook secret: set and long enough, or setup mode.
fn webhook_secret_finding(settings: &Settings) -> Finding {
    match check_webhook_secrets(&settings.webhook_secrets, settings.app.is_some()) {
        Err(ConfigError::MissingWebhookSecret) => {
            problem("WEBHOOK_SECRET is not set: `specbot serve` will refuse to start")
        }
        Err(e) => problem(e.to_string()),
        Ok(()) if settings.webhook_secrets.is_empty() => ok(
            "WEBHOOK_SECRET is not set: `specbot serve` starts in setup mode, and registering the App writes one to .env",
        ),
        Ok(()) => ok(format!(
            "WEBHOOK_SECRET: {} secret(s) configured",
            settings.webhook_secrets.len()
        )),
    }
}

/// The App's key: a PEM RSA key that makes a client.
fn check_app(
    settings: &Settings,
    key_source: &str,
    out: &mut Vec<Finding>,
) -> Option<crate::github::GitHubApp> {
    match &settings.app {
        None => {
            // A problem already reported (unreadable key file) is not repeated.
            let reported = out.iter().any(|f| {
                !f.ok && (f.line.starts_with("PRIVATE_KEY") || f.line.starts_with("APP_ID"))
            });
            if !reported {
                out.push(problem(
                    "APP_ID and PRIVATE_KEY/PRIVATE_KEY_PATH are not set: the server will show the setup page",
                ));
            }
            None
        }
        Some(creds) => {
            match octocrab::EncodingKey::from_rsa_pem(creds.private_key.expose_secret().as_bytes())
            {
                Err(e) => {
                    out.push(problem(format!(
                        "{key_source}: not a PEM-encoded RSA private key ({e}); use the .pem file GitHub generated for the App"
                    )));
                    None
                }
                Ok(_) => match crate::github::GitHubApp::new(
                    creds,
                    &settings.github_api_url,
                    settings.github.clone(),
                ) {
                    Ok(app) => {
                        out.push(ok(format!(
                            "{key_source}: an RSA key for App {}",
                            creds.app_id
                        )));
                        Some(app)
                    }
                    Err(e) => {
                        out.push(problem(e.to_string()));
                        None
                    }
                },
            }
        }
    }
}

/// The model settings, and the prices when given.
fn check_model(settings: &Settings, out: &mut Vec<Finding>) -> Option<crate::llm::LlmSettings> {
    let llm = match crate::app::llm_settings(&settings.llm, None) {
        Ok(Some(s)) => {
            out.push(ok(format!(
                "model: {} `{}` at {}",
                s.provider, s.model, s.base_url
            )));
            Some(s)
        }
        Ok(None) => {
            out.push(problem(
                "LLM_API_KEY is not set: spec and implement jobs cannot call the model",
            ));
            None
        }
        Err(e) => {
            out.push(problem(e.trim_start_matches(LLM_PREFIX)));
            None
        }
    };
    if let Some(json) = &settings.llm.prices {
        match crate::llm::PriceTable::from_json(json) {
            Ok(_) => out.push(ok("LLM_PRICES: valid")),
            Err(e) => out.push(problem(format!(
                "LLM_PRICES: {}",
                e.to_string().trim_start_matches(LLM_PREFIX)
            ))),
        }
    }
    llm
}

/// Whether the engineer's commands can run in the sandbox here, and why not.
fn sandbox_finding() -> Finding {
    let settings = match crate::sandbox::SandboxSettings::from_lookup(|k| std::env::var(k).ok()) {
        Ok(s) => s,
        Err(e) => return problem(format!("sandbox: {e}")),
    };
    let asked = settings.mode == Some(crate::sandbox::SandboxMode::Bubblewrap);
    match crate::sandbox::probe(&settings) {
        Ok(()) => ok("sandbox: bubblewrap works here"),
        // Asked for by SANDBOX=bubblewrap: a problem. Left to the probe: said, not a problem.
        Err(e) if asked => problem(format!("sandbox: {e}")),
        Err(e) => ok(format!("sandbox: not available here ({e})")),
    }
}

/// GitHub and the model endpoint, asked.
async fn check_online(
    settings: &Settings,
    github: Option<crate::github::GitHubApp>,
    llm: Option<crate::llm::LlmSettings>,
    out: &mut Vec<Finding>,
) {
    if let Some(app) = github {
        match tokio::time::timeout(TIMEOUT, app.app_info()).await {
            Ok(Ok(info)) => out.push(ok(format!(
                "GitHub accepted the App's JWT: App {} ({})",
                info.id,
                info.slug.unwrap_or_default()
            ))),
            Ok(Err(e)) => out.push(problem(format!("GitHub rejected the App's JWT: {e}"))),
            Err(_) => out.push(problem(format!(
                "GitHub did not answer at {}",
                settings.github_api_url
            ))),
        }
    }
    if let Some(s) = llm {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .unwrap_or_default();
        match http.get(&s.base_url).send().await {
            Ok(_) => out.push(ok(format!("model endpoint {} is reachable", s.base_url))),
            Err(e) => out.push(problem(format!(
                "model endpoint {} is not reachable: {}",
                s.base_url,
                e.without_url()
            ))),
        }
    }
}

/// Validate the environment, reporting each setting `Settings::from_env` rejects and carrying on
/// without it, so that the rest is still checked. `None` only if it cannot get past one.
fn settings_reporting(mut args: EnvArgs, out: &mut Vec<Finding>) -> Option<Settings> {
    for _ in 0..8 {
        match Settings::from_env(args.clone(), false) {
            Ok(s) => return Some(s),
            Err(e) => {
                out.push(problem(e.to_string()));
                match e {
                    ConfigError::PrivateKeyFile { .. } | ConfigError::MissingPrivateKey => {
                        args.app_id = None;
                        args.private_key = None;
                        args.private_key_path = None;
                    }
                    ConfigError::BadLogFormat(_) => args.log_format = None,
                    ConfigError::BadWebhookPath(_) => args.webhook_path = "/".into(),
                    ConfigError::MissingWebhookSecret
                    | ConfigError::WeakWebhookSecret { .. }
                    | ConfigError::Sandbox(_) => {
                        return None;
                    }
                }
            }
        }
    }
    None
}

/// Can `serve` use this database? Reported without creating or migrating anything.
async fn check_database(url: &str) -> Finding {
    let shown = redact(url);
    if url.starts_with("sqlite:") {
        return check_sqlite(url, &shown).await;
    }
    if !(url.starts_with("postgres:") || url.starts_with("postgresql:")) {
        return problem(format!(
            "DATABASE_URL {shown}: expected sqlite://PATH or postgres://USER:PASSWORD@HOST/DB"
        ));
    }
    let connect = async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(url).await?;
        sqlx::query("SELECT 1").execute(&mut conn).await?;
        conn.close().await
    };
    match tokio::time::timeout(TIMEOUT, connect).await {
        Ok(Ok(())) => ok(format!("database: PostgreSQL at {shown} answers")),
        Ok(Err(e)) => problem(format!("database: cannot use PostgreSQL at {shown}: {e}")),
        Err(_) => problem(format!(
            "database: PostgreSQL at {shown} did not answer within {}s",
            TIMEOUT.as_secs()
        )),
    }
}

async fn check_sqlite(url: &str, shown: &str) -> Finding {
    use sqlx::ConnectOptions;
    let options = match sqlx::sqlite::SqliteConnectOptions::from_str(url) {
        Ok(o) => o,
        Err(e) => return problem(format!("DATABASE_URL {shown}: {e}")),
    };
    let file = options.get_filename().to_path_buf();
    if url.contains(":memory:") || url.contains("mode=memory") {
        return ok("database: in-memory SQLite (nothing survives a restart)");
    }
    if !file.exists() {
        let dir = match file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => Path::new(".").to_path_buf(),
        };
        return match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() && !m.permissions().readonly() => ok(format!(
                "database: SQLite file {} does not exist yet; `specbot serve` will create it",
                file.display()
            )),
            Ok(_) => problem(format!(
                "database: SQLite file {} cannot be created: {} is not a writable folder",
                file.display(),
                dir.display()
            )),
            Err(e) => problem(format!(
                "database: SQLite file {} cannot be created: {}: {e}",
                file.display(),
                dir.display()
            )),
        };
    }
    let open = async {
        let mut conn = options.read_only(true).connect().await?;
        sqlx::query("SELECT count(*) FROM sqlite_master")
            .execute(&mut conn)
            .await?;
        sqlx::Connection::close(conn).await
    };
    match tokio::time::timeout(TIMEOUT, open).await {
        Ok(Ok(())) => ok(format!("database: SQLite file {} opens", file.display())),
        Ok(Err(e)) => problem(format!(
            "database: SQLite file {} cannot be used: {e}",
            file.display()
        )),
        Err(_) => problem(format!(
            "database: SQLite file {} is locked",
            file.display()
        )),
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact("postgres://bot:hunter2@db.internal:5432/specbot"),
            "postgres://bot:***@db.internal:5432/specbot"
        );
        assert_eq!(
            redact("sqlite:///data/specbot.db"),
            "sqlite:///data/specbot.db"
        );
    }
}
