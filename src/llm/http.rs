//! The transport both providers share: the retry loop (retry-after, backoff, caps), the
//! per-attempt timeout, cancellation, the `tracing` span, HTTP status → [`LlmError`]
//! classification and SSE reading.

use std::future::Future;
use std::time::Duration;

use eventsource_stream::{Event, Eventsource};
use futures::{Stream, StreamExt};
use reqwest::header::{HeaderMap, HeaderValue};
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{ChatResponse, LlmError, LlmSettings};

/// Longest provider message we keep in an error.
const MAX_MESSAGE: usize = 400;

/// A failed attempt: the error, and the wait the server asked for.
#[derive(Debug)]
pub(crate) struct Failure {
    pub err: LlmError,
    pub retry_after: Option<Duration>,
}

impl From<LlmError> for Failure {
    fn from(err: LlmError) -> Self {
        Failure {
            err,
            retry_after: None,
        }
    }
}

/// Settings plus the HTTP client: what both providers hold.
pub(crate) struct Client {
    pub settings: LlmSettings,
    pub http: reqwest::Client,
}

impl Client {
    pub fn new(settings: LlmSettings, http: reqwest::Client) -> Self {
        Self { settings, http }
    }

    /// `base` + `path`, with exactly one slash between them.
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.settings.base_url.trim().trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }

    /// Run `attempt` until it succeeds, fails for good, runs out of retries or is cancelled,
    /// inside one span per call that records provider, model and tokens.
    pub async fn run<F, Fut>(
        &self,
        cancel: &CancellationToken,
        mut attempt: F,
    ) -> Result<ChatResponse, LlmError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<ChatResponse, Failure>>,
    {
        let s = &self.settings;
        let span = tracing::info_span!(
            "llm.chat",
            provider = s.provider.as_str(),
            model = %s.model,
            stream = s.stream,
            attempts = tracing::field::Empty,
            input_tokens = tracing::field::Empty,
            output_tokens = tracing::field::Empty,
            cache_read_tokens = tracing::field::Empty,
            cache_write_tokens = tracing::field::Empty,
        );
        let result = async {
            let mut retries = 0u32;
            loop {
                let outcome = tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return (retries + 1, Err(LlmError::Cancelled)),
                    r = tokio::time::timeout(s.request_timeout, attempt()) => r,
                };
                let failure = match outcome {
                    Ok(Ok(resp)) => return (retries + 1, Ok(resp)),
                    Ok(Err(f)) => f,
                    Err(_elapsed) => Failure::from(LlmError::Timeout),
                };
                let err = self.redact(failure.err);
                if !err.is_retryable() || retries >= s.max_retries {
                    return (retries + 1, Err(err));
                }
                let wait = failure
                    .retry_after
                    .unwrap_or_else(|| backoff(s.retry_base, retries))
                    .min(s.max_retry_wait);
                tracing::warn!(error = %err, retry_in_ms = wait.as_millis() as u64, "llm call failed, retrying");
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return (retries + 1, Err(LlmError::Cancelled)),
                    _ = tokio::time::sleep(wait) => {}
                }
                retries += 1;
            }
        }
        .instrument(span.clone())
        .await;
        let (attempts, result) = result;
        span.record("attempts", attempts);
        match &result {
            Ok(r) => {
                span.record("input_tokens", r.usage.input_tokens);
                span.record("output_tokens", r.usage.output_tokens);
                span.record("cache_read_tokens", r.usage.cache_read_tokens);
                span.record("cache_write_tokens", r.usage.cache_write_tokens);
                span.in_scope(|| tracing::debug!(stop = ?r.stop, "llm call done"));
            }
            Err(e) => span.in_scope(|| tracing::warn!(error = %e, "llm call failed")),
        }
        result
    }

    /// Belt and braces: no error text ever carries the key, even if a server echoed it.
    fn redact(&self, err: LlmError) -> LlmError {
        let Some(key) = self.settings.api_key.as_ref() else {
            return err;
        };
        let key = key.expose_secret();
        if key.len() < 4 {
            return err;
        }
        let fix = |m: String| {
            if m.contains(key) {
                m.replace(key, "<redacted>")
            } else {
                m
            }
        };
        match err {
            LlmError::RateLimited {
                retry_after,
                message,
            } => LlmError::RateLimited {
                retry_after,
                message: fix(message),
            },
            LlmError::Server { status, message } => LlmError::Server {
                status,
                message: fix(message),
            },
            LlmError::Status { status, message } => LlmError::Status {
                status,
                message: fix(message),
            },
            LlmError::Malformed(m) => LlmError::Malformed(fix(m)),
            LlmError::Http(m) => LlmError::Http(fix(m)),
            LlmError::Auth(m) => LlmError::Auth(fix(m)),
            LlmError::QuotaExhausted(m) => LlmError::QuotaExhausted(fix(m)),
            LlmError::Unsupported(m) => LlmError::Unsupported(fix(m)),
            LlmError::BadRequest(m) => LlmError::BadRequest(fix(m)),
            LlmError::Config(m) => LlmError::Config(fix(m)),
            other => other,
        }
    }

    /// One chat exchange with retries: POST `body` to `path` and read the answer as a stream
    /// (`read_stream`) or, without streaming, as one JSON body (`parse`).
    pub async fn chat<S, Fut>(
        &self,
        cancel: &CancellationToken,
        path: &str,
        headers: HeaderMap,
        body: &Value,
        read_stream: S,
        parse: fn(&Value, &str) -> Result<ChatResponse, LlmError>,
    ) -> Result<ChatResponse, LlmError>
    where
        S: Fn(reqwest::Response) -> Fut,
        Fut: Future<Output = Result<ChatResponse, Failure>>,
    {
        let url = self.url(path);
        self.run(cancel, || async {
            let resp = self.post(&url, headers.clone(), body).await?;
            if self.settings.stream {
                read_stream(resp).await
            } else {
                let v = json_body(resp).await?;
                parse(&v, &self.settings.model).map_err(Failure::from)
            }
        })
        .await
    }

    /// The API key as a sensitive header value with `prefix` before it (`"Bearer "` or
    /// nothing); `None` without a key.
    pub fn key_header(&self, prefix: &str) -> Result<Option<HeaderValue>, LlmError> {
        let Some(key) = &self.settings.api_key else {
            return Ok(None);
        };
        let mut v = HeaderValue::from_str(&format!("{prefix}{}", key.expose_secret().trim()))
            .map_err(|_| {
                LlmError::Config("the API key has characters a header cannot carry".into())
            })?;
        v.set_sensitive(true);
        Ok(Some(v))
    }

    /// POST `body` as JSON; a non-2xx answer becomes a classified [`Failure`].
    pub async fn post(
        &self,
        url: &str,
        headers: HeaderMap,
        body: &Value,
    ) -> Result<reqwest::Response, Failure> {
        let resp = self
            .http
            .post(url)
            .headers(headers)
            .json(body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let retry_after = retry_after(resp.headers());
        // A body that fails to arrive still leaves us the status.
        let text = resp.text().await.unwrap_or_default();
        Err(Failure {
            err: classify(status.as_u16(), &text, retry_after),
            retry_after,
        })
    }
}

/// Exponential backoff with jitter: `base * 2^retry`, scaled by a random factor in [0.5, 1].
fn backoff(base: Duration, retry: u32) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(retry.min(20)));
    exp.mul_f64(0.5 + rand::random::<f64>() * 0.5)
}

/// `retry-after-ms` (OpenAI) or `retry-after` in seconds. HTTP dates are ignored.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let num = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    if let Some(ms) = num("retry-after-ms") {
        return Some(Duration::from_secs_f64(ms.min(1e9) / 1000.0));
    }
    num("retry-after").map(|s| Duration::from_secs_f64(s.min(1e6)))
}

/// A reqwest error as ours: timeouts as [`LlmError::Timeout`], the rest as transport errors
/// (its text names the URL, never headers).
pub(crate) fn transport_error(e: reqwest::Error) -> Failure {
    if e.is_timeout() {
        return LlmError::Timeout.into();
    }
    // Name the server, not the whole URL: a gateway URL may carry a token in its query.
    let server = e
        .url()
        .map(|u| match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!(" ({}://{h}:{p})", u.scheme()),
            (Some(h), None) => format!(" ({}://{h})", u.scheme()),
            _ => String::new(),
        })
        .unwrap_or_default();
    let e = e.without_url();
    let mut msg = format!("{e}{server}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    LlmError::Http(truncate(&msg)).into()
}

/// An HTTP error status and body as an [`LlmError`].
pub(crate) fn classify(status: u16, body: &str, retry_after: Option<Duration>) -> LlmError {
    let message = provider_message(body);
    let summary = format!("status {status}: {message}");
    if (400..=599).contains(&status) && unsupported_feature(&message) {
        return LlmError::Unsupported(summary);
    }
    match status {
        429 if body.contains("insufficient_quota") => LlmError::QuotaExhausted(message),
        429 => LlmError::RateLimited {
            retry_after,
            message,
        },
        529 => LlmError::Overloaded,
        401 | 403 => LlmError::Auth(summary),
        408 | 409 => LlmError::Status { status, message },
        500..=599 => LlmError::Server { status, message },
        400..=499 => LlmError::BadRequest(summary),
        _ => LlmError::Status { status, message },
    }
}

/// Whether an error message says the server lacks tool calling or a `response_format` type,
/// as OpenAI-compatible servers word it.
fn unsupported_feature(message: &str) -> bool {
    const SIGNS: [&str; 7] = [
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "--jinja",
        "does not support tools",
        "tools are not supported",
        "tool calling is not supported",
        "input should be 'text' or 'json_object'",
    ];
    let m = message.to_ascii_lowercase();
    SIGNS.iter().any(|s| m.contains(s))
}

/// The provider's own error message from an error body (Anthropic `error.message`, OpenAI
/// `error.message`, `{"error": "…"}`, vLLM `message`, FastAPI `detail`), or a short excerpt.
pub(crate) fn provider_message(body: &str) -> String {
    let from_json = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        let kind = v
            .pointer("/error/type")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let msg = v
            .pointer("/error/message")
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .or_else(|| v.get("message"))
            .or_else(|| v.get("detail"))
            .map(|m| match m.as_str() {
                Some(s) => s.to_owned(),
                None => m.to_string(),
            })?;
        Some(match kind {
            Some(k) => format!("{k}: {msg}"),
            None => msg,
        })
    });
    match from_json {
        Some(m) => truncate(&m),
        None if body.trim().is_empty() => "(no body)".to_owned(),
        None => truncate(body.trim()),
    }
}

pub(crate) fn truncate(s: &str) -> String {
    if s.len() <= MAX_MESSAGE {
        return s.to_owned();
    }
    let mut end = MAX_MESSAGE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The SSE events of a streamed answer.
pub(crate) fn events(resp: reqwest::Response) -> impl Stream<Item = Result<Event, Failure>> {
    resp.bytes_stream().eventsource().map(|r| {
        r.map_err(|e| match e {
            eventsource_stream::EventStreamError::Transport(t) => transport_error(t),
            other => LlmError::Malformed(format!("bad event stream: {other}")).into(),
        })
    })
}

/// A whole (non-streamed) JSON answer.
pub(crate) async fn json_body(resp: reqwest::Response) -> Result<Value, Failure> {
    let bytes = resp.bytes().await.map_err(transport_error)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| LlmError::Malformed(format!("answer is not JSON: {e}")).into())
}

/// Parse one SSE `data` payload.
pub(crate) fn parse_data(data: &str) -> Result<Value, Failure> {
    serde_json::from_str(data)
        .map_err(|e| LlmError::Malformed(format!("stream event is not JSON: {e}")).into())
}

/// A non-negative integer field, 0 when absent.
pub(crate) fn u64_at(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut d = HeaderMap::new();
        d.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&d), None);
    }

    #[test]
    fn classification() {
        let body = r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
        match classify(429, body, None) {
            LlmError::RateLimited { message, .. } => {
                assert_eq!(message, "rate_limit_error: slow down")
            }
            e => panic!("{e:?}"),
        }
        assert!(matches!(classify(529, "", None), LlmError::Overloaded));
        assert!(matches!(classify(401, "{}", None), LlmError::Auth(_)));
        assert!(matches!(
            classify(503, "oops", None),
            LlmError::Server { status: 503, .. }
        ));
        assert!(matches!(
            classify(404, "nope", None),
            LlmError::BadRequest(_)
        ));
        assert!(classify(409, "", None).is_retryable());
        assert!(!classify(400, "", None).is_retryable());
        assert_eq!(
            provider_message(r#"{"error":"model not found"}"#),
            "model not found"
        );
        assert_eq!(
            provider_message(&"x".repeat(1000)).chars().count(),
            MAX_MESSAGE + 1
        );
    }

    #[test]
    fn backoff_grows_and_jitters_within_bounds() {
        let b = Duration::from_millis(100);
        for retry in 0..5 {
            let w = backoff(b, retry);
            let full = b * 2u32.pow(retry);
            assert!(w <= full && w >= full / 2, "{w:?} vs {full:?}");
        }
        // Huge retry counts saturate instead of overflowing.
        let _ = backoff(Duration::from_secs(1), u32::MAX);
    }
}
