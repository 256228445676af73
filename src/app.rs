//! The running service: shared state for request handlers and workflows, and the lifecycle
//! of `specbot serve` (start the listener and the workers, drain on shutdown).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{CrashMode, Settings};
use crate::github::types::Permission;
use crate::github::{GitHubApp, GitHubError, Repo};
use crate::jobs::{self, Millis, Pruned, Store};
use crate::llm::{ChatModel, LlmSettings, PriceTable, Provider};
use crate::server;
use crate::server::webhook::IntakeWriter;
use crate::workflow::{JobError, StepError};

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

    /// The model for a job: the configured one, or the repository's `model` override.
    pub fn model_for(&self, model_override: Option<&str>) -> Result<Arc<dyn ChatModel>, StepError> {
        let no_model = || {
            StepError::Failed(JobError::permanent(
                "no language model is configured for this installation (set LLM_API_KEY)",
            ))
        };
        let base = self.llm.clone().ok_or_else(no_model)?;
        match model_override {
            Some(m) if m != base.model() => {
                let settings = llm_settings(&self.settings.llm, Some(m))
                    .map_err(|e| StepError::Failed(JobError::permanent(e)))?
                    .ok_or_else(no_model)?;
                crate::llm::connect(&settings, reqwest::Client::new())
                    .map_err(|e| StepError::Failed(JobError::permanent(e.to_string())))
            }
            _ => Ok(base),
        }
    }

    pub(crate) fn job_finished(&self) {
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
    #[error("listen: {0}")]
    Io(#[from] std::io::Error),
}

/// A started service: its address, its state, and the handle to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    stop_workers: CancellationToken,
    interrupt_jobs: CancellationToken,
    stop_http: CancellationToken,
    http: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
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
    let intake = IntakeWriter::start(store.clone(), settings.intake_batch)?;
    Ok(Arc::new(App {
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

/// Quota counters older than this are past any window they count.
const COUNTER_RETENTION: Duration = Duration::from_secs(2 * 86_400);

/// [`housekeep`] a minute after start (out of the way of start-up), then hourly.
async fn housekeeping(app: Arc<App>, stop: CancellationToken) {
    let first = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut tick = tokio::time::interval_at(first, Duration::from_secs(3600));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match housekeep(&app).await {
            Ok(pruned) if pruned != Pruned::default() => tracing::info!(
                deliveries = pruned.deliveries,
                counters = pruned.counters,
                jobs = pruned.jobs,
                usage = pruned.usage,
                transcripts = pruned.transcripts,
                "housekeeping: old rows deleted"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "housekeeping failed; trying again in an hour"),
        }
        let removed = tokio::task::spawn_blocking(|| {
            crate::agent::remove_abandoned(&std::env::temp_dir(), ABANDONED_WORKSPACE_AGE)
        })
        .await
        .unwrap_or(0);
        if removed > 0 {
            tracing::info!(
                removed,
                "housekeeping: abandoned engineer workspaces deleted"
            );
        }
    }
}

/// An engineer workspace still on disk this long after it was made was left by a killed
/// process (no implementation runs anywhere near this long).
const ABANDONED_WORKSPACE_AGE: Duration = Duration::from_secs(24 * 3600);

/// Delete deliveries past `DELIVERY_RETENTION_DAYS`, stale quota counters, and finished jobs
/// (with their model usage and transcripts) past `JOB_RETENTION_DAYS`, so the database does not
/// grow with every delivery and every job forever. Several instances may run it at once;
/// deleting is idempotent.
pub async fn housekeep(app: &App) -> Result<Pruned, jobs::StoreError> {
    let now = app.now();
    let before = |keep: Duration| now.saturating_sub(keep.as_millis() as i64);
    let deliveries_before = app.settings.delivery_retention.map_or(i64::MIN, before);
    let jobs_before = app.settings.job_retention.map_or(i64::MIN, before);
    app.store
        .prune(deliveries_before, before(COUNTER_RETENTION), jobs_before)
        .await
}

/// Start serving on `listener` with `settings.workers` job workers.
pub fn start(app: Arc<App>, listener: TcpListener) -> Result<Running, StartError> {
    let addr = listener.local_addr()?;
    let stop_http = CancellationToken::new();
    let stop_workers = CancellationToken::new();
    let interrupt_jobs = CancellationToken::new();
    let router = server::router(app.clone());
    let http_stop = stop_http.clone();
    let http = tokio::spawn(async move {
        let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
            http_stop.cancelled().await;
        });
        if let Err(error) = serve.await {
            tracing::error!(%error, "HTTP server stopped");
        }
    });
    let workers = (0..app.settings.workers)
        .map(|n| {
            let owner = format!("{}/{}", app.instance, n);
            tokio::spawn(jobs::worker::run(
                app.clone(),
                owner,
                stop_workers.clone(),
                interrupt_jobs.clone(),
            ))
        })
        .collect();
    tokio::spawn(housekeeping(app.clone(), stop_workers.clone()));
    tracing::info!(%addr, workers = app.settings.workers, "specbot is serving");
    Ok(Running {
        addr,
        app,
        stop_workers,
        interrupt_jobs,
        stop_http,
        http,
        workers,
    })
}

impl Running {
    /// Graceful shutdown, bounded by `SHUTDOWN_GRACE_SECS`: `/readyz` and the webhook answer
    /// 503 at once, workers stop claiming, running jobs get most of the grace period to finish;
    /// then they are interrupted at their next checkpoint, and whatever this process still
    /// holds goes back to the queue with its attempt given back. The HTTP side stops last.
    pub async fn shutdown(self) {
        self.app.shutting_down.store(true, Ordering::SeqCst);
        self.stop_workers.cancel();
        let grace = self.app.settings.shutdown_grace;
        // The part of the grace period kept for interrupting and releasing: a fifth, at most 5 s.
        let release_margin = (grace / 5).min(Duration::from_secs(5));
        let mut workers = futures::future::join_all(self.workers);
        if tokio::time::timeout(grace.saturating_sub(release_margin), &mut workers)
            .await
            .is_err()
        {
            tracing::warn!(
                ?grace,
                "jobs still running near the end of the grace period: interrupting them"
            );
            self.interrupt_jobs.cancel();
            if tokio::time::timeout(release_margin, workers).await.is_err() {
                tracing::warn!("a job did not reach a checkpoint in time: releasing it anyway");
            }
        }
        let mut released = 0;
        for n in 0..self.app.settings.workers {
            let owner = format!("{}/{}", self.app.instance, n);
            match self.app.store.release_all(&owner, self.app.now()).await {
                Ok(k) => released += k,
                Err(error) => tracing::error!(%error, "could not release leases"),
            }
        }
        if released > 0 {
            tracing::info!(released, "unfinished jobs handed back to the queue");
        }
        self.stop_http.cancel();
        // Idle keep-alive connections close at once; do not wait long for anything else.
        let mut http = self.http;
        if tokio::time::timeout(Duration::from_secs(2), &mut http)
            .await
            .is_err()
        {
            http.abort();
        }
        tracing::info!("shutdown complete");
    }

    /// Stop only the HTTP side and let jobs be (used by tests that simulate a crash: nothing is
    /// released, leases simply expire).
    pub fn abort(self) {
        self.http.abort();
        for w in self.workers {
            w.abort();
        }
    }
}

/// `specbot serve`: run until SIGTERM or SIGINT.
pub async fn serve(settings: Settings) -> Result<(), StartError> {
    let bind = format!("{}:{}", settings.host, settings.port);
    let app = build(settings).await?;
    let listener = TcpListener::bind(&bind).await?;
    let running = start(app, listener)?;
    shutdown_signal().await;
    tracing::info!("shutdown requested");
    running.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
