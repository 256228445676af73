//! Process settings, read once from the environment (and `.env`) at start-up.
//!
//! Nothing deeper in the code reads the environment: everything a component needs is passed
//! in from [`Settings`]. Tests build a `Settings` directly. Repository configuration
//! (`.github/specbot.yml`) lives in [`repo`].

pub mod repo;

use std::time::Duration;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

/// Environment variables, with Probot's names where Probot has one.
#[derive(Debug, Clone, Args)]
pub struct EnvArgs {
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: String,
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,
    #[arg(long, env = "WEBHOOK_PATH", default_value = "/api/github/webhooks")]
    pub webhook_path: String,
    #[arg(long, env = "APP_ID")]
    pub app_id: Option<u64>,
    #[arg(long, env = "PRIVATE_KEY", hide_env_values = true)]
    pub private_key: Option<SecretString>,
    #[arg(long, env = "PRIVATE_KEY_PATH")]
    pub private_key_path: Option<std::path::PathBuf>,
    /// One secret, or several separated by commas while rotating.
    #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<SecretString>,
    /// When set, `/metrics` and the status page's job list ask for it (`Authorization: Bearer`).
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<SecretString>,
    #[arg(long, env = "GITHUB_API_URL", default_value = "https://api.github.com")]
    pub github_api_url: String,
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://specbot.db",
        hide_env_values = true
    )]
    pub database_url: SecretString,
    #[arg(long, env = "LLM_PROVIDER", default_value = "anthropic")]
    pub llm_provider: String,
    #[arg(long, env = "LLM_MODEL")]
    pub llm_model: Option<String>,
    #[arg(long, env = "LLM_BASE_URL")]
    pub llm_base_url: Option<String>,
    #[arg(long, env = "LLM_API_KEY", hide_env_values = true)]
    pub llm_api_key: Option<SecretString>,
    #[arg(long, env = "ANTHROPIC_API_KEY", hide = true, hide_env_values = true)]
    pub anthropic_api_key: Option<SecretString>,
    #[arg(long, env = "OPENAI_API_KEY", hide = true, hide_env_values = true)]
    pub openai_api_key: Option<SecretString>,
    /// `false` for OpenAI-compatible servers that drop tool calls while streaming (Ollama).
    #[arg(long, env = "LLM_STREAM", default_value_t = true, action = clap::ArgAction::Set)]
    pub llm_stream: bool,
    /// The model's context window in tokens, for small local servers (llama-cpp-python: 2048).
    #[arg(long, env = "LLM_CONTEXT_TOKENS")]
    pub llm_context_tokens: Option<u32>,
    /// Price overrides: `{"model-prefix": {"input": 3, "output": 15}}` (USD per million tokens).
    #[arg(long, env = "LLM_PRICES")]
    pub llm_prices: Option<String>,
    #[arg(long, env = "LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Job workers in this process.
    #[arg(long, env = "WORKERS", default_value_t = 4)]
    pub workers: usize,
    /// Gap between two writes to one installation (GitHub asks for at least one second).
    #[arg(long, env = "GITHUB_WRITE_GAP_MS", default_value_t = 1000)]
    pub github_write_gap_ms: u64,
    /// How long `serve` waits for running jobs on SIGTERM before releasing them.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 25)]
    pub shutdown_grace_secs: u64,
    /// How long a claimed job's lease lasts; when the process holding it dies, another takes the
    /// job over after this long. Heartbeats renew it every third of it (at most every 10 s).
    #[arg(long, env = "JOB_LEASE_SECS", default_value_t = 60)]
    pub job_lease_secs: u64,
    /// Jobs that call the model one person may start per hour per installation.
    #[arg(long, env = "USER_JOBS_PER_HOUR", default_value_t = 20)]
    pub user_jobs_per_hour: u32,
    /// Jobs that call the model one repository may start per hour.
    #[arg(long, env = "REPO_JOBS_PER_HOUR", default_value_t = 60)]
    pub repo_jobs_per_hour: u32,
    /// Most USD all model calls may cost in 24 hours, across every installation (0: no cap).
    #[arg(long, env = "LLM_DAILY_BUDGET_USD", default_value_t = 100.0)]
    pub llm_daily_budget_usd: f64,
    /// Days a received delivery (its raw body, and its id for spotting redeliveries) is kept
    /// (0: forever).
    #[arg(long, env = "DELIVERY_RETENTION_DAYS", default_value_t = 14)]
    pub delivery_retention_days: u64,
    /// Days a finished job (with its model usage and engineer transcripts) is kept (0: forever).
    #[arg(long, env = "JOB_RETENTION_DAYS", default_value_t = 90)]
    pub job_retention_days: u64,
    /// Test-only fault point: abort the process at this named workflow step.
    #[arg(long, env = "SPECBOT_CRASH_AT", hide = true)]
    pub crash_at: Option<String>,
}

/// Log output style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The GitHub App's identity.
#[derive(Clone)]
pub struct AppCredentials {
    pub app_id: u64,
    /// PEM-encoded RSA private key.
    pub private_key: SecretString,
}

impl std::fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCredentials")
            .field("app_id", &self.app_id)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

/// Which language model to call.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    pub provider: String,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub api_key: Option<SecretString>,
    /// Price table overrides (JSON, USD per million tokens by model prefix).
    pub prices: Option<String>,
    /// Stream answers (`LLM_STREAM`).
    pub stream: bool,
    /// The model's context window (`LLM_CONTEXT_TOKENS`), when smaller than the defaults assume.
    pub context_tokens: Option<u32>,
}

/// How hard to retry GitHub and pace writes.
#[derive(Debug, Clone)]
pub struct GitHubPolicy {
    /// Minimum gap between two writes to one installation.
    pub write_gap: Duration,
    /// Retries of an idempotent request on 5xx or a secondary rate limit.
    pub max_retries: u32,
    /// First backoff; doubles each time.
    pub retry_base: Duration,
    /// Wait used for a secondary rate limit that names no time (GitHub says at least a minute).
    pub secondary_limit_wait: Duration,
    /// No single wait is longer than this (a longer `retry-after` fails the request instead).
    pub max_wait: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Least time between two progress edits of one status comment; `None`: no progress edits
    /// (the status comment changes only between a job's steps).
    pub status_edit_gap: Option<Duration>,
}

impl Default for GitHubPolicy {
    fn default() -> Self {
        Self {
            write_gap: Duration::from_secs(1),
            max_retries: 4,
            retry_base: Duration::from_secs(1),
            secondary_limit_wait: Duration::from_secs(60),
            max_wait: Duration::from_secs(15 * 60),
            request_timeout: Duration::from_secs(30),
            status_edit_gap: Some(Duration::from_secs(15)),
        }
    }
}

/// Everything the process needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub webhook_path: String,
    pub app: Option<AppCredentials>,
    /// Every accepted webhook secret (several while rotating).
    pub webhook_secrets: Vec<SecretString>,
    pub github_api_url: String,
    /// May hold a password (`postgres://user:password@host/db`).
    pub database_url: SecretString,
    pub llm: LlmConfig,
    pub log_format: LogFormat,
    pub github: GitHubPolicy,
    /// How jobs run: workers, leases, retries.
    pub jobs: JobSettings,
    /// How much one person, one repository and the whole installation may ask of the model.
    pub quotas: Quotas,
    /// Deliveries written per database transaction at most.
    pub intake_batch: usize,
    /// How long what the store holds is kept.
    pub retention: Retention,
    /// Where the setup page writes the credentials it receives.
    pub env_file: std::path::PathBuf,
    /// The token of the setup link `serve` logs in setup mode (`None`: a random one at each
    /// start; tests set their own).
    pub setup_token: Option<SecretString>,
    /// `METRICS_TOKEN`: asked of `/metrics` and for the status page's job list (`None`: open
    /// metrics, and a status page that names no repository and no job).
    pub metrics_token: Option<SecretString>,
    /// Webhook requests handled at once; more wait their turn.
    pub webhook_concurrency: usize,
    /// Bytes all webhook bodies being read may hold together; more wait their turn.
    pub webhook_body_budget: usize,
    /// Crash tests: die at this named step boundary (`SPECBOT_CRASH_AT`).
    pub crash_at: Option<String>,
    pub crash_mode: CrashMode,
    /// `SANDBOX*`: how the engineer's commands run (the repository's setup, its tests).
    pub sandbox: crate::sandbox::SandboxSettings,
}

/// How jobs run (`WORKERS`, `JOB_LEASE_SECS`, …).
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Jobs run at once by this process.
    pub workers: usize,
    /// How long a graceful shutdown waits for running jobs to reach a checkpoint.
    pub shutdown_grace: Duration,
    /// How long a job's lease lasts before another worker may take it over.
    pub lease: Duration,
    /// How often a running job renews its lease (and notices `/cancel`).
    pub heartbeat: Duration,
    /// First retry delay of a failed job; doubles per attempt.
    pub retry_base: Duration,
    /// Tries of one job, the first included.
    pub max_attempts: i32,
}

/// Model-calling jobs allowed, so that no one person or repository spends for everyone.
#[derive(Debug, Clone)]
pub struct Quotas {
    /// Per person per hour (per installation).
    pub user_jobs_per_hour: u32,
    /// Per repository per hour.
    pub repo_jobs_per_hour: u32,
    /// Global model spend cap over 24 hours, in USD (`None`: no cap).
    pub llm_daily_budget_usd: Option<f64>,
}

/// How long the store keeps what it holds (`None`: forever).
#[derive(Debug, Clone)]
pub struct Retention {
    /// Stored deliveries.
    pub deliveries: Option<Duration>,
    /// Finished jobs, their model usage and transcripts.
    pub jobs: Option<Duration>,
}

/// How a fault point "crashes": the real binary aborts; in-process tests panic the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    Abort,
    Panic,
}

/// The shortest webhook secret `serve` accepts: a shorter one can be guessed, and whoever
/// knows it can sign deliveries.
pub const MIN_WEBHOOK_SECRET_CHARS: usize = 32;

/// A setting that cannot work, in one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "WEBHOOK_SECRET is not set: specbot refuses to accept unsigned webhooks. Set it to the secret configured in your GitHub App's webhook settings (make one with `openssl rand -hex 32`)."
    )]
    MissingWebhookSecret,
    #[error(
        "WEBHOOK_SECRET is too short ({chars} characters): use at least {MIN_WEBHOOK_SECRET_CHARS} characters, for example the output of `openssl rand -hex 32`, and enter the same value in the GitHub App's webhook settings"
    )]
    WeakWebhookSecret { chars: usize },
    #[error("PRIVATE_KEY_PATH {path}: {reason}")]
    PrivateKeyFile { path: String, reason: String },
    #[error("APP_ID is set but neither PRIVATE_KEY nor PRIVATE_KEY_PATH is")]
    MissingPrivateKey,
    #[error("LOG_FORMAT must be `pretty` or `json`, not `{0}`")]
    BadLogFormat(String),
    #[error("WEBHOOK_PATH must start with `/`, got `{0}`")]
    BadWebhookPath(String),
    #[error("{0}")]
    Sandbox(#[from] crate::sandbox::SettingsError),
}

impl Settings {
    /// Every secret value this process holds: the secret scanner refuses them in anything the
    /// bot writes.
    pub fn own_secrets(&self) -> Vec<SecretString> {
        let mut out = self.webhook_secrets.clone();
        if let Some(app) = &self.app {
            out.push(app.private_key.clone());
        }
        if let Some(key) = &self.llm.api_key {
            out.push(key.clone());
        }
        if let Some(token) = &self.metrics_token {
            out.push(token.clone());
        }
        out
    }

    /// Validate the environment for a command. `serving`: `serve` refuses a webhook secret
    /// shorter than [`MIN_WEBHOOK_SECRET_CHARS`], and refuses to run an App without one; with no
    /// App credentials at all it starts in setup mode, where no secret is needed yet (every
    /// delivery is refused until registration writes the App's secret to `.env`). One-shot
    /// commands need no secret.
    pub fn from_env(args: EnvArgs, serving: bool) -> Result<Self, ConfigError> {
        let webhook_secrets: Vec<SecretString> = args
            .webhook_secret
            .as_ref()
            .map(|s| {
                s.expose_secret()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| SecretString::from(s.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        if !args.webhook_path.starts_with('/') {
            return Err(ConfigError::BadWebhookPath(args.webhook_path));
        }
        let private_key = match (&args.private_key, &args.private_key_path) {
            (Some(key), _) => Some(SecretString::from(
                // Platforms that cannot hold newlines in variables store `\n` escapes.
                key.expose_secret().replace("\\n", "\n"),
            )),
            (None, Some(path)) => Some(SecretString::from(std::fs::read_to_string(path).map_err(
                |e| ConfigError::PrivateKeyFile {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                },
            )?)),
            (None, None) => None,
        };
        let app = match (args.app_id, private_key) {
            (Some(app_id), Some(private_key)) => Some(AppCredentials {
                app_id,
                private_key,
            }),
            (Some(_), None) => return Err(ConfigError::MissingPrivateKey),
            (None, _) => None,
        };
        if serving {
            check_webhook_secrets(&webhook_secrets, app.is_some())?;
        }
        let log_format = match args.log_format.as_deref() {
            None | Some("") => {
                if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                    LogFormat::Pretty
                } else {
                    LogFormat::Json
                }
            }
            Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(ConfigError::BadLogFormat(other.to_string())),
        };
        let provider = args.llm_provider.trim().to_ascii_lowercase();
        let api_key = args.llm_api_key.or(match provider.as_str() {
            "anthropic" => args.anthropic_api_key,
            _ => args.openai_api_key,
        });
        let base = Settings::base();
        Ok(Settings {
            host: args.host,
            port: args.port,
            webhook_path: args.webhook_path,
            app,
            webhook_secrets,
            github_api_url: args.github_api_url.trim_end_matches('/').to_string(),
            database_url: args.database_url,
            llm: LlmConfig {
                provider,
                model: args.llm_model.filter(|m| !m.is_empty()),
                base_url: args.llm_base_url.filter(|u| !u.is_empty()),
                api_key,
                prices: args.llm_prices.filter(|p| !p.trim().is_empty()),
                stream: args.llm_stream,
                context_tokens: args.llm_context_tokens.filter(|n| *n > 0),
            },
            log_format,
            github: GitHubPolicy {
                write_gap: Duration::from_millis(args.github_write_gap_ms),
                ..GitHubPolicy::default()
            },
            jobs: JobSettings {
                workers: args.workers.max(1),
                shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
                lease: Duration::from_secs(args.job_lease_secs.max(1)),
                heartbeat: (Duration::from_secs(args.job_lease_secs.max(1)) / 3)
                    .min(Duration::from_secs(10)),
                ..base.jobs
            },
            crash_at: args.crash_at.filter(|s| !s.is_empty()),
            crash_mode: CrashMode::Abort,
            quotas: Quotas {
                user_jobs_per_hour: args.user_jobs_per_hour,
                repo_jobs_per_hour: args.repo_jobs_per_hour,
                llm_daily_budget_usd: Some(args.llm_daily_budget_usd)
                    .filter(|b| b.is_finite() && *b > 0.0),
            },
            retention: Retention {
                deliveries: days(args.delivery_retention_days),
                jobs: days(args.job_retention_days),
            },
            metrics_token: args
                .metrics_token
                .filter(|t| !t.expose_secret().trim().is_empty()),
            sandbox: crate::sandbox::SandboxSettings::from_lookup(|k| std::env::var(k).ok())?,
            ..base
        })
    }

    /// Defaults for everything, with no credentials: the starting point for tests.
    pub fn base() -> Self {
        Settings {
            host: "127.0.0.1".into(),
            port: 3000,
            webhook_path: "/api/github/webhooks".into(),
            app: None,
            webhook_secrets: Vec::new(),
            github_api_url: "https://api.github.com".into(),
            database_url: SecretString::from("sqlite://specbot.db"),
            llm: LlmConfig {
                provider: "anthropic".into(),
                model: None,
                base_url: None,
                api_key: None,
                prices: None,
                stream: true,
                context_tokens: None,
            },
            log_format: LogFormat::Json,
            github: GitHubPolicy::default(),
            jobs: JobSettings {
                workers: 4,
                shutdown_grace: Duration::from_secs(25),
                lease: Duration::from_secs(60),
                heartbeat: Duration::from_secs(10),
                retry_base: Duration::from_secs(30),
                max_attempts: 3,
            },
            quotas: Quotas {
                user_jobs_per_hour: 20,
                repo_jobs_per_hour: 60,
                llm_daily_budget_usd: Some(100.0),
            },
            intake_batch: 256,
            retention: Retention {
                deliveries: Some(Duration::from_secs(14 * 86_400)),
                jobs: Some(Duration::from_secs(90 * 86_400)),
            },
            env_file: ".env".into(),
            setup_token: None,
            metrics_token: None,
            webhook_concurrency: 256,
            webhook_body_budget: 64 * 1024 * 1024,
            crash_at: None,
            crash_mode: CrashMode::Panic,
            // Tests opt in to running commands; `from_env` reads `SANDBOX` (default: on where
            // bubblewrap works).
            sandbox: crate::sandbox::SandboxSettings {
                mode: Some(crate::sandbox::SandboxMode::Off),
                ..Default::default()
            },
        }
    }
}

/// What `serve` asks of the webhook secrets: each long enough, and at least one once the App
/// is configured.
pub fn check_webhook_secrets(secrets: &[SecretString], has_app: bool) -> Result<(), ConfigError> {
    if let Some(chars) = secrets
        .iter()
        .map(|s| s.expose_secret().chars().count())
        .find(|n| *n < MIN_WEBHOOK_SECRET_CHARS)
    {
        return Err(ConfigError::WeakWebhookSecret { chars });
    }
    if has_app && secrets.is_empty() {
        return Err(ConfigError::MissingWebhookSecret);
    }
    Ok(())
}

/// A retention in days from the environment: `0` means keep forever.
fn days(n: u64) -> Option<Duration> {
    (n > 0).then(|| Duration::from_secs(n.saturating_mul(86_400)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_secret() {
        let mut s = Settings::base();
        s.webhook_secrets = vec!["whsec-visible-if-leaked".to_string().into()];
        s.app = Some(AppCredentials {
            app_id: 1,
            private_key: "-----BEGIN RSA PRIVATE KEY-----leak".to_string().into(),
        });
        s.llm.api_key = Some("sk-ant-leak".to_string().into());
        s.metrics_token = Some("metrics-token-leak".to_string().into());
        // A database URL may hold a password (finding 8 of the security audit).
        s.database_url = "postgres://bot:hunter2-leak@db.internal/specbot"
            .to_string()
            .into();
        let shown = format!("{s:?} {s:#?}");
        for secret in [
            "whsec-visible-if-leaked",
            "BEGIN RSA PRIVATE KEY",
            "sk-ant-leak",
            "hunter2-leak",
            "metrics-token-leak",
        ] {
            assert!(!shown.contains(secret), "{secret} appears in Debug output");
        }
    }

    #[test]
    fn llm_stream_and_context_tokens_reach_the_model_settings() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            env: EnvArgs,
        }
        let cli = Cli::try_parse_from([
            "x",
            "--llm-stream",
            "false",
            "--llm-context-tokens",
            "2048",
            "--llm-base-url",
            "http://localhost:8000/v1",
        ])
        .expect("LLM_STREAM and LLM_CONTEXT_TOKENS are settings");
        let s = Settings::from_env(cli.env, false).expect("valid");
        let llm = crate::app::llm_settings(&s.llm, None)
            .expect("settings")
            .expect("a local server needs no key");
        assert!(!llm.stream);
        assert!(format!("{llm:?}").contains("2048"), "{llm:?}");
    }

    #[test]
    fn rotating_secrets_are_split_and_blank_ones_dropped() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            env: EnvArgs,
        }
        let new = "n".repeat(MIN_WEBHOOK_SECRET_CHARS);
        let old = "o".repeat(MIN_WEBHOOK_SECRET_CHARS);
        let both = format!("{new}, {old} ,,");
        let cli = Cli::parse_from(["x", "--webhook-secret", both.as_str()]);
        let s = Settings::from_env(cli.env, true).expect("valid");
        assert_eq!(s.webhook_secrets.len(), 2);
        // A short one among them is refused, old or new.
        let weak = format!("{new},change-me");
        let cli = Cli::parse_from(["x", "--webhook-secret", weak.as_str()]);
        assert!(matches!(
            Settings::from_env(cli.env, true),
            Err(ConfigError::WeakWebhookSecret { chars: 9 })
        ));
        // No App and no secret: setup mode. An App without a secret: refused.
        let cli = Cli::parse_from(["x"]);
        assert!(Settings::from_env(cli.env, true).is_ok());
        let cli = Cli::parse_from(["x", "--app-id", "1", "--private-key", "pem"]);
        assert!(matches!(
            Settings::from_env(cli.env, true),
            Err(ConfigError::MissingWebhookSecret)
        ));
    }
}
