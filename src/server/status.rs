//! `GET /` once the App is configured, and who may read `/metrics`: with `METRICS_TOKEN` set,
//! both ask for it (`Authorization: Bearer …`, or `?token=` in a browser); the status page then
//! lists the last jobs and how they ended. Without the token the page only says that the
//! server runs, naming no repository and no job.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::app::App;

use super::page;

/// How many jobs the status page lists.
const RECENT: i64 = 20;

/// Does the request carry `METRICS_TOKEN`? `None`: no token is configured.
pub fn has_metrics_token(app: &App, headers: &HeaderMap, query: Option<&str>) -> Option<bool> {
    let expected = app.settings.metrics_token.as_ref()?;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let given = bearer.or(query).unwrap_or("");
    Some(same_secret(expected.expose_secret(), given))
}

/// Compare two secrets in constant time (through their MACs under one key).
pub(super) fn same_secret(expected: &str, given: &str) -> bool {
    let mac = |s: &str| {
        let mut m = Hmac::<Sha256>::new_from_slice(b"specbot-compare").expect("HMAC takes any key");
        m.update(s.as_bytes());
        m
    };
    mac(expected)
        .verify_slice(&mac(given).finalize().into_bytes())
        .is_ok()
}

/// The answer to a request without the token when one is configured.
pub fn token_required() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "METRICS_TOKEN required\n",
    )
        .into_response()
}

/// The status page: the last jobs for whoever holds `METRICS_TOKEN`, else that the server runs.
pub async fn page(app: &App, headers: &HeaderMap, query: Option<&str>) -> Response {
    let version = env!("CARGO_PKG_VERSION");
    let running =
        format!("<h1>specbot {version}</h1><p>Running, with a GitHub App configured.</p>");
    match has_metrics_token(app, headers, query) {
        Some(true) => {}
        Some(false) if query.is_some() => return token_required(),
        _ => {
            return page::html(
                "specbot",
                &format!(
                    "{running}<p class=\"fine\">The last jobs and how they ended are listed for \
                     whoever has <code>METRICS_TOKEN</code>: set it, then open this page with \
                     <code>?token=…</code>.</p>"
                ),
            );
        }
    }
    let jobs = app.store.recent_jobs(RECENT).await.unwrap_or_default();
    let rows: String = jobs
        .iter()
        .map(|j| {
            let repo = &j.payload["repo"];
            let repository = format!(
                "{}/{}",
                repo["owner"].as_str().unwrap_or("?"),
                repo["name"].as_str().unwrap_or("?")
            );
            let issue = j.payload["issue_number"]
                .as_u64()
                .map_or(String::new(), |n| format!("#{n}"));
            let outcome = match &j.last_error {
                Some(e) if j.state.as_str() != "done" => {
                    format!(
                        "{}: {}",
                        j.state.as_str(),
                        e.chars().take(160).collect::<String>()
                    )
                }
                _ => j.state.as_str().to_string(),
            };
            format!(
                "<tr><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td></tr>",
                j.id,
                page::escape(&j.kind),
                page::escape(&repository),
                issue,
                page::escape(&outcome),
                j.attempts
            )
        })
        .collect();
    page::html(
        "specbot",
        &format!(
            "{running}<h2>Recent jobs</h2><table><tr><th>id</th><th>job</th><th>where</th>\
             <th>outcome</th><th>attempts</th></tr>{rows}</table>"
        ),
    )
}
