//! `POST $WEBHOOK_PATH`: verify → decode → plan jobs → store durably → `202`.
//!
//! Order of checks: size (from `Content-Length`, then while streaming) → signature (`401`) →
//! required headers (`400`) → JSON (`400`). The body is read only once its bytes fit in the
//! [`BodyBudget`] shared by all requests (it waits its turn otherwise); metrics name an event
//! only if GitHub has one by that name, so unsigned requests cannot add series. Only a delivery that is stored, together with the
//! jobs it queues, in one transaction is acknowledged with `202`; a delivery id seen before is
//! answered `200` and not processed again. Storage goes through
//! [`IntakeWriter`](crate::jobs::intake::IntakeWriter), which batches concurrent deliveries into
//! one transaction each.

use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::app::App;
use crate::event::Event;
use crate::jobs::intake::IntakeError;
use crate::jobs::{Delivery, PackedBody, Recorded};
use crate::trigger;

use super::limits::BodyBudget;

/// GitHub caps webhook payloads at 25 MiB.
pub const MAX_BODY_BYTES: usize = crate::jobs::MAX_BODY_BYTES;

/// Check `X-Hub-Signature-256` (`sha256=<hex>`) against every configured secret, in constant time.
pub fn verify_signature(secrets: &[SecretString], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    secrets.iter().any(|secret| {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else {
            return false;
        };
        mac.update(body);
        mac.verify_slice(&expected).is_ok()
    })
}

/// Compute the header value GitHub would send (used by tests, the replay tool and benchmarks).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// GitHub's webhook event names. The `event` label of the deliveries counter is one of these
/// or `other`: the header is read before the signature is checked, and every new label value
/// is a Prometheus series kept for the life of the process.
const KNOWN_EVENTS: &[&str] = &[
    "branch_protection_rule",
    "check_run",
    "check_suite",
    "code_scanning_alert",
    "commit_comment",
    "create",
    "delete",
    "dependabot_alert",
    "deploy_key",
    "deployment",
    "deployment_status",
    "discussion",
    "discussion_comment",
    "fork",
    "github_app_authorization",
    "gollum",
    "installation",
    "installation_repositories",
    "installation_target",
    "issue_comment",
    "issues",
    "label",
    "member",
    "membership",
    "merge_group",
    "meta",
    "milestone",
    "organization",
    "package",
    "page_build",
    "ping",
    "project",
    "project_card",
    "project_column",
    "public",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "pull_request_review_thread",
    "push",
    "registry_package",
    "release",
    "repository",
    "repository_dispatch",
    "repository_ruleset",
    "secret_scanning_alert",
    "security_advisory",
    "star",
    "status",
    "sub_issues",
    "team",
    "team_add",
    "watch",
    "workflow_dispatch",
    "workflow_job",
    "workflow_run",
];

/// The `event` label for an `X-GitHub-Event` value.
pub fn metric_event(name: &str) -> &'static str {
    KNOWN_EVENTS
        .iter()
        .find(|known| **known == name)
        .copied()
        .unwrap_or("other")
}

fn reject(
    event: &'static str,
    outcome: &'static str,
    status: StatusCode,
    message: &'static str,
) -> Response {
    metrics::counter!("specbot_deliveries_total", "event" => event, "outcome" => outcome)
        .increment(1);
    tracing::info!(
        outcome,
        status = status.as_u16(),
        "webhook delivery rejected"
    );
    (status, message).into_response()
}

/// The webhook handler. The body is limited to [`MAX_BODY_BYTES`] by the router, and read once
/// the [`BodyBudget`] has room for it.
pub async fn receive(
    State(app): State<Arc<App>>,
    Extension(budget): Extension<Arc<BodyBudget>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let event_name = header(&headers, "x-github-event").unwrap_or("").to_string();
    let metric_event = metric_event(&event_name);
    if app.is_shutting_down() {
        return reject(
            metric_event,
            "shutting_down",
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down\n",
        );
    }
    let body: Bytes = match budget.read(&headers, body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let (delivery_id, event) = match authenticate(&app, &headers, &event_name, &body) {
        Ok(accepted) => accepted,
        Err(Refusal(event, outcome, status, message)) => {
            return reject(event, outcome, status, message);
        }
    };
    let span = tracing::info_span!("delivery", delivery = %delivery_id, event = %event_name);
    let _enter = span.enter();
    let plan = trigger::plan(&event, &delivery_id, app.settings.jobs.max_attempts);
    for line in &plan.notes {
        tracing::debug!(note = %line, "trigger");
    }
    let delivery = delivery_of(delivery_id, &event_name, &event, &body);
    drop(_enter);
    let installation = match &event {
        Event::Installation {
            action,
            installation,
            sender,
            ..
        } => Some((installation.id, action.clone(), sender.login.clone())),
        _ => None,
    };
    let recorded = app.intake.record(delivery, plan.jobs).await;
    answer(&app, recorded, installation, metric_event).await
}

/// Why a delivery is refused: its metric label, the outcome, the status and the answer.
struct Refusal(&'static str, &'static str, StatusCode, &'static str);

/// The signature, the headers and the body checked: the delivery's id and its event, or the
/// answer that refuses it.
fn authenticate(
    app: &App,
    headers: &HeaderMap,
    event_name: &str,
    body: &Bytes,
) -> Result<(String, Event), Refusal> {
    let metric_event = metric_event(event_name);
    if !verify_signature(
        &app.settings.webhook_secrets,
        body,
        header(headers, "x-hub-signature-256"),
    ) {
        return Err(Refusal(
            metric_event,
            "bad_signature",
            StatusCode::UNAUTHORIZED,
            "missing or invalid X-Hub-Signature-256\n",
        ));
    }
    let Some(delivery_id) = header(headers, "x-github-delivery").map(str::to_string) else {
        return Err(Refusal(
            metric_event,
            "bad_request",
            StatusCode::BAD_REQUEST,
            "missing X-GitHub-Delivery\n",
        ));
    };
    if event_name.is_empty() {
        return Err(Refusal(
            "other",
            "bad_request",
            StatusCode::BAD_REQUEST,
            "missing X-GitHub-Event\n",
        ));
    }
    if delivery_id.len() > 128 || event_name.len() > 64 {
        return Err(Refusal(
            metric_event,
            "bad_request",
            StatusCode::BAD_REQUEST,
            "header value too long\n",
        ));
    }
    // Decoding proves the body is JSON, except where it did not decode.
    let event = Event::parse(event_name, body);
    if matches!(
        event,
        Event::Malformed { .. } | Event::Ignored { action: None, .. }
    ) && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err()
    {
        return Err(Refusal(
            metric_event,
            "bad_request",
            StatusCode::BAD_REQUEST,
            "body is not JSON\n",
        ));
    }

    Ok((delivery_id, event))
}

/// The delivery as it is stored: its body packed, and what the status page shows of it.
fn delivery_of(delivery_id: String, event_name: &str, event: &Event, body: &Bytes) -> Delivery {
    let envelope = event.envelope();
    Delivery {
        id: delivery_id,
        event: event_name.to_string(),
        action: event.action().map(str::to_string),
        installation_id: envelope
            .and_then(|e| e.installation)
            .map(|i| i.id as i64)
            .or(match event {
                Event::Installation { installation, .. }
                | Event::InstallationRepositories { installation, .. } => {
                    Some(installation.id as i64)
                }
                _ => None,
            }),
        repository: envelope.map(|e| e.repository.full_name.clone()),
        // Packed here, on this request's task, so the one writer does not pay for it.
        body: PackedBody::pack(body),
    }
}

/// Answer GitHub: 202 once stored (and the installation noted for the status page), 200 for a
/// delivery id seen before, 503 when the store failed (GitHub retries).
async fn answer(
    app: &App,
    recorded: Result<Recorded, IntakeError>,
    installation: Option<(u64, String, String)>,
    metric_event: &'static str,
) -> Response {
    match recorded {
        Ok(Recorded::Stored { jobs, collapsed }) => {
            if let Some((id, action, by)) = installation {
                // For the status page: which installations this server has seen.
                let value = serde_json::json!({"action": action, "by": by});
                if let Err(error) = app
                    .store
                    .put_record("installation", &id.to_string(), &value, app.now())
                    .await
                {
                    tracing::warn!(%error, "could not record the installation");
                }
            }
            let outcome = if jobs.is_empty() && collapsed == 0 {
                "ignored"
            } else {
                "queued"
            };
            metrics::counter!("specbot_deliveries_total", "event" => metric_event, "outcome" => outcome)
                .increment(1);
            (StatusCode::ACCEPTED, "accepted\n").into_response()
        }
        Ok(Recorded::Duplicate) => {
            metrics::counter!("specbot_deliveries_total", "event" => metric_event, "outcome" => "duplicate")
                .increment(1);
            (StatusCode::OK, "duplicate delivery: already received\n").into_response()
        }
        Err(error) => {
            tracing::error!(%error, "could not store delivery");
            metrics::counter!("specbot_deliveries_total", "event" => metric_event, "outcome" => "store_error")
                .increment(1);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "could not store delivery, retry later\n",
            )
                .into_response()
        }
    }
}
