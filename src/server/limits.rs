//! What requests nobody has authenticated yet may hold: webhook bodies are read before their
//! signature can be checked, so the bytes in flight across all of them are capped.
//!
//! A body first reserves its share of the budget — its `Content-Length`, or the whole
//! [`MAX_BODY_BYTES`](super::webhook::MAX_BODY_BYTES) when it declares none — and is read only
//! once the reservation is granted. Over the budget a request waits its turn (reservations are
//! granted in order of arrival) instead of being refused, so GitHub's deliveries in a burst are
//! all taken, only later.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

/// The bytes all webhook bodies being read may hold together.
pub struct BodyBudget {
    bytes: Semaphore,
    total: usize,
}

impl BodyBudget {
    /// A budget of `total` bytes (at least one largest body).
    pub fn new(total: usize, largest: usize) -> Self {
        let total = total.max(largest).min(u32::MAX as usize);
        BodyBudget {
            bytes: Semaphore::new(total),
            total,
        }
    }

    /// Read `body` (at most `limit` bytes) once its share of the budget is free.
    pub async fn read(
        &self,
        headers: &HeaderMap,
        body: Body,
        limit: usize,
    ) -> Result<Bytes, Response> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok());
        let reserve = match declared {
            Some(n) if n > limit => return Err(too_large()),
            Some(n) => n,
            None => limit,
        }
        .clamp(1, self.total);
        let Ok(_held) = self.bytes.acquire_many(reserve as u32).await else {
            return Err((StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response());
        };
        let limit = declared.unwrap_or(limit);
        axum::body::to_bytes(body, limit).await.map_err(|error| {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
            while let Some(e) = cause {
                if e.is::<http_body_util::LengthLimitError>() {
                    return too_large();
                }
                cause = e.source();
            }
            (StatusCode::BAD_REQUEST, "the body could not be read\n").into_response()
        })
    }
}

fn too_large() -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        "body larger than GitHub's 25 MiB limit\n",
    )
        .into_response()
}
