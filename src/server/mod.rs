//! The HTTP edge: the router, the webhook endpoint, health, readiness and metrics, the setup
//! and status pages. What each guard here stops is in docs/security.md.

pub mod limits;
mod page;
pub mod setup;
pub mod status;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::app::App;

/// Build the router for one app.
pub fn router(app: Arc<App>) -> Router {
    let budget = Arc::new(limits::BodyBudget::new(
        app.settings.webhook_body_budget,
        webhook::MAX_BODY_BYTES,
    ));
    // Requests over either cap wait their turn (GitHub's deliveries in a burst are all taken).
    let webhook = post(webhook::receive)
        .layer::<_, std::convert::Infallible>(DefaultBodyLimit::disable())
        .layer::<_, std::convert::Infallible>(RequestBodyLimitLayer::new(webhook::MAX_BODY_BYTES))
        .layer::<_, std::convert::Infallible>(Extension(budget))
        .layer::<_, std::convert::Infallible>(ConcurrencyLimitLayer::new(
            app.settings.webhook_concurrency.max(1),
        ));
    let mut router = Router::new()
        .route(&app.settings.webhook_path, webhook)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(home));
    // Setup mode only: with App credentials configured these routes do not exist.
    if app.settings.app.is_none() {
        router = router
            .route("/setup/register", post(setup::register))
            .route("/setup/callback", get(setup::callback));
    }
    router
        .layer(Extension(setup::Setup::new(&app.settings)))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(CatchPanicLayer::new())
        .with_state(app)
}

#[derive(Debug, Deserialize)]
struct HomeQuery {
    /// The setup link's token (setup mode), or `METRICS_TOKEN` (the status page).
    #[serde(default)]
    token: Option<String>,
}

/// `GET /`: the setup page until the App is configured, then the status page.
async fn home(
    State(app): State<Arc<App>>,
    Extension(setup): Extension<Arc<setup::Setup>>,
    headers: HeaderMap,
    Query(q): Query<HomeQuery>,
) -> Response {
    if app.settings.app.is_some() {
        return status::page(&app, &headers, q.token.as_deref()).await;
    }
    setup::home(&app, &setup, &headers, q.token.as_deref())
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

async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if status::has_metrics_token(&app, &headers, None) == Some(false) {
        return status::token_required();
    }
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
