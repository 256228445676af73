//! The service's life, on top of everything else: `specbot serve` builds the [`App`], takes the
//! database for this process (refused while another `serve` holds a SQLite file; the running
//! jobs of a dead process are taken over at once), starts the HTTP server, the job workers and
//! housekeeping, and drains them on SIGTERM or SIGINT.

pub mod housekeeping;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::{self, App, StartError};
use crate::config::Settings;
use crate::jobs::{self, Tenure};
use crate::server;

pub use housekeeping::housekeep;

/// A started service: its address, its state, and the handle to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    stop_workers: CancellationToken,
    interrupt_jobs: CancellationToken,
    stop_http: CancellationToken,
    http: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
    /// Let go of last, once this process's jobs are handed back.
    tenure: Tenure,
}

/// Start serving on `listener` with `settings.jobs.workers` job workers, holding nothing (the
/// in-process servers of the tests: their jobs are taken over only when leases run out).
pub fn start(app: Arc<App>, listener: TcpListener) -> Result<Running, StartError> {
    start_holding(app, listener, Tenure::lasting(()))
}

/// [`start`] for a process that holds its database ([`jobs::Store::serve_as`]): its workers
/// claim only while the tenure is held, and stop their jobs when it lapses.
pub fn start_holding(
    app: Arc<App>,
    listener: TcpListener,
    tenure: Tenure,
) -> Result<Running, StartError> {
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
    let workers = (0..app.settings.jobs.workers)
        .map(|n| {
            let owner = format!("{}/{}", app.instance, n);
            tokio::spawn(worker::run(
                app.clone(),
                owner,
                worker::Stops {
                    stop: stop_workers.clone(),
                    interrupt: interrupt_jobs.clone(),
                    term: tenure.term(),
                },
            ))
        })
        .collect();
    tokio::spawn(housekeeping::run(app.clone(), stop_workers.clone()));
    tracing::info!(%addr, workers = app.settings.jobs.workers, "specbot is serving");
    Ok(Running {
        addr,
        app,
        stop_workers,
        interrupt_jobs,
        stop_http,
        http,
        workers,
        tenure,
    })
}

impl Running {
    /// Graceful shutdown, bounded by `SHUTDOWN_GRACE_SECS`: `/readyz` and the webhook answer
    /// 503 at once, workers stop claiming, running jobs get most of the grace period to finish;
    /// then they are interrupted at their next checkpoint, and whatever this process still
    /// holds goes back to the queue with its attempt given back. The HTTP side stops last.
    pub async fn shutdown(self) {
        self.app.begin_shutdown();
        self.stop_workers.cancel();
        let grace = self.app.settings.jobs.shutdown_grace;
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
        for n in 0..self.app.settings.jobs.workers {
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
        drop(self.tenure);
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
    let store = jobs::open(secrecy::ExposeSecret::expose_secret(&settings.database_url)).await?;
    let app = app::build_with_store(settings, store)?;
    // Before anything is served: refused here while another `serve` holds a SQLite database.
    let tenure = app.store.serve_as(&app.instance, app.now()).await?;
    let listener = TcpListener::bind(&bind).await?;
    let running = start_holding(app, listener, tenure)?;
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
