//! The HTTP edge: the router, the webhook endpoint, health, readiness and metrics.

pub mod setup;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::app::App;

/// Build the router for one app.
pub fn router(app: Arc<App>) -> Router {
    let webhook = post(webhook::receive)
        .layer::<_, std::convert::Infallible>(DefaultBodyLimit::disable())
        .layer::<_, std::convert::Infallible>(RequestBodyLimitLayer::new(webhook::MAX_BODY_BYTES));
    Router::new()
        .route(&app.settings.webhook_path, webhook)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(setup::home))
        .route("/setup/callback", get(setup::callback))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(CatchPanicLayer::new())
        .with_state(app)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.is_shutting_down() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match app.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    if let Ok(counts) = app.store.job_counts().await {
        for c in counts {
            metrics::gauge!("specbot_jobs", "kind" => c.kind, "state" => c.state.as_str())
                .set(c.count as f64);
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}
