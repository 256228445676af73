//! The request policy GitHub's documented limits require, around one installation's client.
//!
//! - Writes to one installation go out one at a time, at least `write_gap` apart.
//! - `retry-after` and `x-ratelimit-reset` are honoured; a secondary limit that names no time
//!   waits at least `secondary_limit_wait`, doubling.
//! - 5xx and secondary-limit 403/429 are retried for idempotent requests only. A `POST` that
//!   creates something is **never** retried blindly: it fails with
//!   [`GitHubError::Uncertain`] and the intent-level caller checks whether it exists first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use octocrab::Octocrab;
use serde::de::DeserializeOwned;

use crate::config::GitHubPolicy;

#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub client configuration: {0}")]
    Config(String),
    #[error("{route} answered {status}: {message}")]
    Status {
        route: &'static str,
        status: u16,
        message: String,
    },
    #[error("{route}: GitHub is rate limiting us and asks to wait {wait:?}, longer than allowed")]
    RateLimited { route: &'static str, wait: Duration },
    /// A create request whose outcome is unknown (timeout, 5xx): it may or may not have happened.
    #[error("{route}: no clear answer from GitHub ({reason}); it may or may not have been applied")]
    Uncertain { route: &'static str, reason: String },
    #[error("{route}: {reason}")]
    Transport { route: &'static str, reason: String },
    #[error("{route}: unexpected response: {reason}")]
    Decode { route: &'static str, reason: String },
}

impl GitHubError {
    pub fn status(&self) -> Option<u16> {
        match self {
            GitHubError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// GitHub refused a comment or reaction because the conversation is locked: only
    /// collaborators may write in it, and an App is none.
    pub fn is_locked(&self) -> bool {
        self.status() == Some(403) && self.message().to_ascii_lowercase().contains("is locked")
    }

    /// Worth retrying the whole job later (GitHub trouble, not our mistake).
    pub fn is_transient(&self) -> bool {
        match self {
            GitHubError::Status { status, .. } => *status >= 500 || *status == 429,
            GitHubError::RateLimited { .. }
            | GitHubError::Uncertain { .. }
            | GitHubError::Transport { .. } => true,
            GitHubError::Config(_) | GitHubError::Decode { .. } => false,
        }
    }

    /// GitHub's `message` (and first `errors[].message`) for a 4xx.
    pub fn message(&self) -> &str {
        match self {
            GitHubError::Status { message, .. } => message,
            _ => "",
        }
    }
}

/// Whether a request may be sent again after an unclear failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reads, updates and content-addressed creates: sending twice does no harm.
    Safe,
    /// Creates something new (an issue, a comment, a PR): never resend blindly.
    Never,
}

/// A raw answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

struct Inner {
    id: u64,
    crab: Octocrab,
    policy: GitHubPolicy,
    /// The App behind the installation (none for the App's own client).
    identity: Option<Arc<super::Identity>>,
    /// Holds the time of the last write; locked for the whole write so writes are serial.
    last_write: tokio::sync::Mutex<Option<Instant>>,
}

/// One installation's client. Cheap to clone.
#[derive(Clone)]
pub struct Installation {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Installation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installation")
            .field("id", &self.inner.id)
            .finish_non_exhaustive()
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn github_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct E {
        message: Option<String>,
        #[serde(default)]
        errors: Vec<serde_json::Value>,
    }
    match serde_json::from_slice::<E>(body) {
        Ok(e) => {
            let mut m = e.message.unwrap_or_default();
            if let Some(first) = e.errors.first() {
                let detail = first
                    .get("message")
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
                    .or_else(|| {
                        first
                            .get("code")
                            .and_then(|v| v.as_str())
                            .map(str::to_string)
                    });
                if let Some(d) = detail {
                    m = format!("{m} ({d})");
                }
            }
            m.chars().take(500).collect()
        }
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

impl Installation {
    pub(crate) fn new(
        id: u64,
        crab: Octocrab,
        policy: GitHubPolicy,
        identity: Option<Arc<super::Identity>>,
    ) -> Self {
        Installation {
            inner: Arc::new(Inner {
                id,
                crab,
                policy,
                identity,
                last_write: tokio::sync::Mutex::new(None),
            }),
        }
    }

    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The id of the App behind the installation (`None` for the App's own client).
    pub fn app_id(&self) -> Option<u64> {
        self.inner.identity.as_ref().map(|i| i.app_id)
    }

    /// Whether the App itself wrote a comment (never trust a marker someone else posted).
    pub async fn wrote(&self, comment: &super::model::Comment) -> Result<bool, GitHubError> {
        match &self.inner.identity {
            Some(identity) => {
                identity
                    .wrote(&comment.user, comment.performed_via_github_app.as_ref())
                    .await
            }
            None => Ok(false),
        }
    }

    /// A repository of this installation.
    pub fn repo(&self, owner: &str, name: &str) -> super::Repo {
        super::Repo::new(self.clone(), owner, name)
    }

    /// Send one request under the policy. `route` is the operation's template
    /// (`"POST /repos/{owner}/{repo}/issues"`), used in metrics, logs and errors; `path` is
    /// relative to the API root. Non-2xx answers become [`GitHubError::Status`].
    pub async fn send(
        &self,
        route: &'static str,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        retry: Retry,
    ) -> Result<Answer, GitHubError> {
        let policy = &self.inner.policy;
        let is_write = method != Method::GET && method != Method::HEAD;
        let mut guard = if is_write {
            let guard = self.inner.last_write.lock().await;
            if let Some(last) = *guard {
                let since = last.elapsed();
                if since < policy.write_gap {
                    tokio::time::sleep(policy.write_gap - since).await;
                }
            }
            Some(guard)
        } else {
            None
        };
        let mut attempt: u32 = 0;
        let mut secondary_wait = policy.secondary_limit_wait;
        loop {
            attempt += 1;
            let result = self.send_once(route, &method, path, body).await;
            if let Some(g) = guard.as_mut() {
                **g = Some(Instant::now());
            }
            let may_retry = retry == Retry::Safe && attempt <= policy.max_retries;
            let verdict = match result {
                // Redirections are answers too: the tarball endpoint answers 302 with a `location`.
                Ok(answer) if answer.status.is_success() || answer.status.is_redirection() => {
                    return Ok(answer);
                }
                Ok(answer) => judge(policy, route, &answer, retry, attempt, &mut secondary_wait),
                Err(reason) if may_retry => Verdict::Again {
                    wait: backoff(policy, attempt),
                    why: reason,
                    note: "GitHub request failed; retrying",
                },
                Err(reason) if retry == Retry::Never => {
                    Verdict::Fail(GitHubError::Uncertain { route, reason })
                }
                Err(reason) => Verdict::Fail(GitHubError::Transport { route, reason }),
            };
            match verdict {
                Verdict::Again { wait, why, note } => {
                    tracing::warn!(route, %why, ?wait, "{note}");
                    tokio::time::sleep(wait).await;
                }
                Verdict::Fail(error) => return Err(error),
            }
        }
    }

    async fn send_once(
        &self,
        route: &'static str,
        method: &Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, String> {
        let crab = &self.inner.crab;
        let request = http::Request::builder()
            .method(method.clone())
            .uri(path)
            .header(http::header::ACCEPT, "application/vnd.github+json");
        let request = crab
            .build_request(request, body)
            .map_err(|e| format!("building request: {e}"))?;
        let timeout = self.inner.policy.request_timeout;
        let response = match tokio::time::timeout(timeout, crab.execute(request)).await {
            Ok(Ok(r)) => r,
            // GitHub refused something octocrab did on the way, such as minting the
            // installation token (the App was uninstalled or suspended): an answer, not a
            // transport failure, so it is judged by its status like any other.
            Ok(Err(octocrab::Error::GitHub { source, .. })) => {
                let route = "POST /app/installations/{installation_id}/access_tokens";
                metrics::counter!("specbot_github_requests_total", "route" => route, "status" => source.status_code.as_u16().to_string())
                    .increment(1);
                return Ok(Answer {
                    status: source.status_code,
                    headers: source.headers.clone().unwrap_or_default(),
                    body: Bytes::from(
                        serde_json::json!({ "message": format!("installation token: {}", source.message) })
                            .to_string(),
                    ),
                });
            }
            Ok(Err(e)) => {
                metrics::counter!("specbot_github_requests_total", "route" => route, "status" => "error")
                    .increment(1);
                return Err(e.to_string());
            }
            Err(_) => {
                metrics::counter!("specbot_github_requests_total", "route" => route, "status" => "timeout")
                    .increment(1);
                return Err(format!("no answer within {timeout:?}"));
            }
        };
        let (parts, body) = response.into_parts();
        let body = match tokio::time::timeout(timeout, body.collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) => return Err(format!("reading body: {e}")),
            Err(_) => return Err(format!("body not received within {timeout:?}")),
        };
        metrics::counter!("specbot_github_requests_total", "route" => route, "status" => parts.status.as_u16().to_string())
            .increment(1);
        if let Some(remaining) = header_u64(&parts.headers, "x-ratelimit-remaining") {
            metrics::gauge!("specbot_github_rate_limit_remaining", "installation" => self.inner.id.to_string())
                .set(remaining as f64);
        }
        tracing::debug!(route, status = parts.status.as_u16(), "GitHub request");
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// `GET` and decode.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        route: &'static str,
        path: &str,
    ) -> Result<T, GitHubError> {
        let answer = self
            .send(route, Method::GET, path, None, Retry::Safe)
            .await?;
        decode(route, &answer.body)
    }

    /// Send a body and decode the answer.
    pub async fn send_json<T: DeserializeOwned>(
        &self,
        route: &'static str,
        method: Method,
        path: &str,
        body: &serde_json::Value,
        retry: Retry,
    ) -> Result<T, GitHubError> {
        let answer = self.send(route, method, path, Some(body), retry).await?;
        decode(route, &answer.body)
    }
}

pub(crate) fn decode<T: DeserializeOwned>(
    route: &'static str,
    body: &[u8],
) -> Result<T, GitHubError> {
    serde_json::from_slice(body).map_err(|e| GitHubError::Decode {
        route,
        reason: e.to_string(),
    })
}

/// What becomes of an attempt that did not succeed.
enum Verdict {
    /// Wait, then send again (`why` and `note` are logged).
    Again {
        wait: Duration,
        why: String,
        note: &'static str,
    },
    Fail(GitHubError),
}

/// Judge a non-2xx answer: rate limits wait as GitHub asks (a rate-limited request was not
/// processed, so even a create may be resent); 5xx is retried for idempotent requests only and
/// is [`GitHubError::Uncertain`] for creates; the rest is [`GitHubError::Status`].
fn judge(
    policy: &GitHubPolicy,
    route: &'static str,
    answer: &Answer,
    retry: Retry,
    attempt: u32,
    secondary_wait: &mut Duration,
) -> Verdict {
    let status = answer.status.as_u16();
    let why = format!("status {status}");
    if let Some(wait) = rate_limit_wait(answer, secondary_wait)
        && attempt <= policy.max_retries
    {
        if wait > policy.max_wait {
            return Verdict::Fail(GitHubError::RateLimited { route, wait });
        }
        let note = "GitHub rate limit; waiting";
        return Verdict::Again { wait, why, note };
    }
    if answer.status.is_server_error() {
        if retry == Retry::Safe && attempt <= policy.max_retries {
            let wait = backoff(policy, attempt);
            let note = "GitHub server error; retrying";
            return Verdict::Again { wait, why, note };
        }
        if retry == Retry::Never {
            return Verdict::Fail(GitHubError::Uncertain { route, reason: why });
        }
    }
    Verdict::Fail(GitHubError::Status {
        route,
        status,
        message: github_message(&answer.body),
    })
}

/// How long a rate-limited answer asks us to wait, `None` when it is not a rate limit: the
/// primary limit (remaining 0) until its reset, a secondary one its `retry-after`, or when it
/// names no time `secondary_wait`, doubling at each use.
fn rate_limit_wait(answer: &Answer, secondary_wait: &mut Duration) -> Option<Duration> {
    let headers = &answer.headers;
    let exhausted = header_u64(headers, "x-ratelimit-remaining") == Some(0);
    let limited = answer.status == StatusCode::TOO_MANY_REQUESTS
        || (answer.status == StatusCode::FORBIDDEN
            && (headers.contains_key("retry-after")
                || exhausted
                || github_message(&answer.body)
                    .to_ascii_lowercase()
                    .contains("rate limit")));
    if !limited {
        return None;
    }
    Some(if let Some(secs) = header_u64(headers, "retry-after") {
        Duration::from_secs(secs)
    } else if exhausted {
        let reset = header_u64(headers, "x-ratelimit-reset").unwrap_or(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Duration::from_secs(reset.saturating_sub(now) + 1)
    } else {
        let wait = *secondary_wait;
        *secondary_wait = secondary_wait.saturating_mul(2);
        wait
    })
}

fn backoff(policy: &GitHubPolicy, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(8);
    policy
        .retry_base
        .saturating_mul(factor)
        .min(policy.max_wait)
}
