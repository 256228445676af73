//! The service's shared state: what every request handler and job can reach (settings, store,
//! GitHub App, model, clock), built once at start. Its life (serving, workers, shutdown) is
//! [`crate::runtime`]'s.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::{CrashMode, Settings};
use crate::github::model::Permission;
use crate::github::{GitHubApp, GitHubError, Repo};
use crate::jobs::intake::IntakeWriter;
use crate::jobs::{self, Millis, Store};
use crate::llm::pricing::Pricing;
use crate::llm::{ChatModel, LlmSettings, ModelPrice, PriceTable, Provider};

/// What every request handler and job can reach.
pub struct App {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    pub intake: IntakeWriter,
    pub metrics: PrometheusHandle,
    /// `None` until App credentials are configured (the setup page is shown then).
    pub github: Option<GitHubApp>,
    /// `None` when no model is configured; jobs that need one fail with a clear message.
    pub llm: Option<Arc<dyn ChatModel>>,
    /// What model tokens cost, for the per-job budget and the status comment.
    pub prices: PriceTable,
    /// A name for this process, used as the lease owner of its workers.
    pub instance: String,
    /// The time every component uses; tests move it forward to expire leases.
    pub clock: Clock,
    /// Wakes idle workers (a job was queued in this process).
    pub wake: tokio::sync::Notify,
    /// Counts finished jobs; tests wait on it instead of sleeping.
    pub finished: tokio::sync::watch::Sender<u64>,
    /// Set when a fault point "crashed" a worker (tests wait on it).
    pub crashed: tokio::sync::watch::Sender<bool>,
    /// Where the engineer's commands run; `Err`: they do not run here, and why.
    pub sandbox: Result<Arc<crate::sandbox::Sandbox>, crate::sandbox::SandboxUnavailable>,
    permissions: Mutex<HashMap<(String, String), (Permission, Instant)>>,
    shutting_down: AtomicBool,
}

/// Wall-clock milliseconds plus an offset that only tests change.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> Millis {
        jobs::now_ms() + self.offset_ms.load(Ordering::SeqCst)
    }

    /// Move this app's notion of time forward (tests: expire a lease without waiting).
    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

/// How long a user's permission answer is trusted.
const PERMISSION_TTL: Duration = Duration::from_secs(60);

impl App {
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// Wake idle workers in this process.
    pub fn kick(&self) {
        self.wake.notify_waiters();
    }

    /// A named step boundary. With `crash_at` set to this step, the process dies here, as if
    /// killed (the crash tests' fault point); otherwise nothing happens.
    pub fn fault_point(&self, step: &str) {
        if self.settings.crash_at.as_deref() == Some(step) {
            tracing::error!(step, "fault point reached: crashing on purpose");
            match self.settings.crash_mode {
                CrashMode::Abort => std::process::abort(),
                CrashMode::Panic => {
                    self.crashed.send_replace(true);
                    panic!("fault point reached: {step}")
                }
            }
        }
    }

    /// The user's permission on a repository, cached briefly.
    pub async fn permission(&self, repo: &Repo, login: &str) -> Result<Permission, GitHubError> {
        let key = (
            repo.full_name().to_ascii_lowercase(),
            login.to_ascii_lowercase(),
        );
        if let Ok(cache) = self.permissions.lock()
            && let Some((perm, at)) = cache.get(&key)
            && at.elapsed() < PERMISSION_TTL
        {
            return Ok(*perm);
        }
        let perm = repo.permission(login).await?;
        if let Ok(mut cache) = self.permissions.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(key, (perm, Instant::now()));
        }
        Ok(perm)
    }

    /// The model for a job: the configured one, or the repository's `model` override; what
    /// is missing, in words, when there is none.
    pub fn model_for(&self, model_override: Option<&str>) -> Result<Arc<dyn ChatModel>, String> {
        let no_model = || {
            "no language model is configured for this installation (set LLM_API_KEY)".to_string()
        };
        let base = self.llm.clone().ok_or_else(no_model)?;
        match model_override {
            Some(m) if m != base.model() => {
                let settings = llm_settings(&self.settings.llm, Some(m))?.ok_or_else(no_model)?;
                crate::llm::connect(&settings, reqwest::Client::new()).map_err(|e| e.to_string())
            }
            _ => Ok(base),
        }
    }

    /// What `model` costs on the configured endpoint, for the budgets: the table's price
    /// (defaults and `LLM_PRICES`), nothing on a self-hosted endpoint, and a refusal, in
    /// words, for an unpriced model on a paid provider's API: every repository has a budget
    /// (`max_cost_usd`), which a model of unknown cost would overrun unseen.
    pub fn model_price(&self, model: &str) -> Result<ModelPrice, String> {
        let base_url = llm_settings(&self.settings.llm, None)?
            .map(|s| s.base_url)
            .unwrap_or_default();
        match self.prices.pricing(model, &base_url) {
            Pricing::Priced(price) => Ok(price),
            Pricing::SelfHosted => Ok(ModelPrice::new(0.0, 0.0, 0.0, 0.0)),
            Pricing::Unknown => Err(format!(
                "the model `{model}` has no known price on its provider's paid API, so this \
                 repository's budget (max_cost_usd) and the installation's \
                 (LLM_DAILY_BUDGET_USD) could not hold; the operator can give its price in \
                 LLM_PRICES (USD per million tokens, e.g. {{\"{model}\": {{\"input\": 3, \
                 \"output\": 15}}}})"
            )),
        }
    }

    /// From now on `/readyz` and the webhook answer 503 (the service is draining).
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn job_finished(&self) {
        self.finished.send_modify(|n| *n += 1);
    }
}

/// Errors that stop the service from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Store(#[from] jobs::StoreError),
    #[error("GitHub App: {0}")]
    GitHub(String),
    #[error("language model: {0}")]
    Llm(String),
    #[error("sandbox: {0}")]
    Sandbox(crate::sandbox::SandboxUnavailable),
    #[error("listen: {0}")]
    Io(#[from] std::io::Error),
}

/// Build the shared state: open and migrate the store, connect GitHub and the model.
pub async fn build(settings: Settings) -> Result<Arc<App>, StartError> {
    let store = jobs::open(secrecy::ExposeSecret::expose_secret(&settings.database_url)).await?;
    store.migrate().await?;
    build_with_store(settings, store)
}

/// Build the shared state around a store that is already open and migrated.
pub fn build_with_store(settings: Settings, store: Arc<dyn Store>) -> Result<Arc<App>, StartError> {
    let github = match &settings.app {
        Some(creds) => Some(
            GitHubApp::new(creds, &settings.github_api_url, settings.github.clone())
                .map_err(|e| StartError::GitHub(e.to_string()))?,
        ),
        None => None,
    };
    let llm = match llm_settings(&settings.llm, None) {
        Ok(Some(s)) => Some(
            crate::llm::connect(&s, reqwest::Client::new())
                .map_err(|e| StartError::Llm(e.to_string()))?,
        ),
        Ok(None) => {
            tracing::warn!(
                "no LLM API key configured: jobs that need the model will fail with a clear message"
            );
            None
        }
        Err(e) => return Err(StartError::Llm(e)),
    };
    let prices = match &settings.llm.prices {
        Some(json) => PriceTable::from_json(json).map_err(|e| StartError::Llm(e.to_string()))?,
        None => PriceTable::default(),
    };
    let sandbox = start_sandbox(&settings.sandbox)?;
    let intake = IntakeWriter::start(store.clone(), settings.intake_batch)?;
    Ok(Arc::new(App {
        sandbox,
        settings: Arc::new(settings),
        store,
        intake,
        metrics: crate::telemetry::metrics_handle(),
        github,
        llm,
        prices,
        instance: format!("{}-{}", hostname(), uuid::Uuid::new_v4().simple()),
        clock: Clock::default(),
        wake: tokio::sync::Notify::new(),
        finished: tokio::sync::watch::channel(0).0,
        crashed: tokio::sync::watch::channel(false).0,
        permissions: Mutex::new(HashMap::new()),
        shutting_down: AtomicBool::new(false),
    }))
}

/// The sandbox for repository commands: with `SANDBOX=bubblewrap` a host where it does not
/// work is a start-up error; with `SANDBOX` unset it only turns commands off (logged).
fn start_sandbox(
    settings: &crate::sandbox::SandboxSettings,
) -> Result<Result<Arc<crate::sandbox::Sandbox>, crate::sandbox::SandboxUnavailable>, StartError> {
    use crate::sandbox::{Sandbox, SandboxMode, SandboxUnavailable};
    match Sandbox::new(settings.clone()) {
        Ok(sandbox) => Ok(Ok(Arc::new(sandbox))),
        Err(SandboxUnavailable::Disabled) => Ok(Err(SandboxUnavailable::Disabled)),
        Err(e) if settings.mode == Some(SandboxMode::Bubblewrap) => Err(StartError::Sandbox(e)),
        Err(e) => {
            tracing::warn!(error = %e, "the sandbox does not work here: repository commands will not run");
            Ok(Err(e))
        }
    }
}

/// The model client settings for `LLM_*` (and a repository's `model` override). `Ok(None)`: the
/// public endpoint is configured but no key is, so there is no model to call.
pub fn llm_settings(
    config: &crate::config::LlmConfig,
    model_override: Option<&str>,
) -> Result<Option<LlmSettings>, String> {
    let provider: Provider = config
        .provider
        .parse()
        .map_err(|e: crate::llm::LlmError| e.to_string())?;
    let mut s = LlmSettings::defaults_for(provider);
    if let Some(url) = &config.base_url {
        s.base_url = url.clone();
    }
    if let Some(model) = model_override.or(config.model.as_deref()) {
        s.model = model.to_string();
    }
    s.api_key = config.api_key.clone();
    s.stream = config.stream;
    s.context_tokens = config.context_tokens;
    let public = s.base_url.contains("api.anthropic.com") || s.base_url.contains("api.openai.com");
    if public && s.api_key.is_none() {
        return Ok(None);
    }
    Ok(Some(s))
}

fn hostname() -> String {
    std::env::var("FLY_MACHINE_ID")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "specbot".into())
}
