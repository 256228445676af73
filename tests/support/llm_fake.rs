//! `LlmFake`: an in-process fake of the Anthropic Messages API (`/v1/messages`) and the OpenAI
//! Chat Completions API (`/v1/chat/completions`) for tests, with scripted replies and faults,
//! SSE streaming when the request says `stream: true`, realistic usage figures (prompt caching
//! included) and a record of every request.
//!
//! ```ignore
//! let fake = LlmFake::start().await;
//! fake.push_text("hello");
//! settings.base_url = fake.anthropic_base_url();   // or fake.openai_base_url()
//! // … call the client …
//! assert_eq!(fake.remaining(), 0);
//! ```
//!
//! Each request takes the next scripted answer, whichever API it hits. An empty script answers
//! 500 "llm fake: no scripted reply left", so a test that calls more than it scripted fails
//! loudly. A request that is not valid for its API (no `anthropic-version`, no `model`,
//! no `messages` …) gets a 400 and consumes nothing.
//!
//! Usage: unless a [`Reply`] sets `usage`, input ≈ request characters / 4 and output ≈ answer
//! characters / 4 (at least 1). Caching: a repeated prefix (system prompt + tools) is reported as
//! a cache read, its first sight as a cache write; on Anthropic only when the request carries
//! `cache_control`, on OpenAI always (reads only, as `prompt_tokens_details.cached_tokens`, and
//! without OpenAI's 1024-token minimum). Input tokens exclude cached tokens on Anthropic, and
//! `prompt_tokens` includes them on OpenAI, as the real APIs do.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A scripted answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply {
    /// Text first (if any) …
    pub text: Option<String>,
    /// … then these tool calls, `(name, input)`. Any call makes the stop reason
    /// `tool_use` / `tool_calls`.
    pub tool_calls: Vec<(String, Value)>,
    /// `(input, output)` tokens; `(0, 0)` estimates them from the request and the answer.
    /// On Anthropic `input` is the uncached part; cache figures come on top.
    pub usage: (u64, u64),
    /// How the answer ends when not the usual end of turn / tool use.
    pub stop: Option<Stop>,
    /// Anthropic: a thinking block (with a signature) before the text and tool calls, which
    /// the client must send back unchanged with the tool calls it came with.
    pub thinking: Option<String>,
}

/// How a scripted answer ends, beyond the usual end of turn or tool use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The output limit: Anthropic `max_tokens`, OpenAI `length`.
    MaxTokens,
    /// The model declined: Anthropic `refusal`; OpenAI `message.refusal` (finish `stop`).
    Refusal,
    /// Anthropic `pause_turn`: a long turn paused, to be sent back as is to continue.
    PauseTurn,
    /// Anthropic `model_context_window_exceeded`; OpenAI `length`.
    ContextWindowExceeded,
}

/// A scripted failure.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// An error status with the provider's error body (429 rate_limit_error, 529
    /// overloaded_error, 500 api_error, 400 invalid_request_error, …) and, if set, a
    /// `retry-after` header in whole seconds (rounded up; OpenAI also gets `retry-after-ms`).
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// 200 with unparsable JSON (a broken SSE event when streaming).
    Malformed,
    /// Streaming: the stream closes before `message_stop` / `finish_reason`. Not streaming: the
    /// JSON body is cut in half.
    TruncatedStream,
    /// Never answers (streaming: sends the first event, then nothing) until the client gives up.
    Hang,
    /// Streaming: an `error` event (Anthropic `overloaded_error`) or an `{"error": …}` chunk
    /// (OpenAI `server_error`) after the start. Not streaming: 529 / 503.
    StreamError,
    /// OpenAI's 429 for an account out of credit (`insufficient_quota`): retrying never helps.
    InsufficientQuota,
}

/// One request as the fake received it. Headers are kept verbatim (keys included) so tests
/// can check what was sent; [`RecordedRequest::api_key`] reads either provider's key header.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub path: String,
    pub headers: HeaderMap,
    /// The JSON body (a JSON string holding the raw text if it was not JSON).
    pub body: Value,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `x-api-key`, or the token of `Authorization: Bearer …`.
    pub fn api_key(&self) -> Option<&str> {
        self.header("x-api-key").or_else(|| {
            self.header("authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
        })
    }

    pub fn is_stream(&self) -> bool {
        self.body.get("stream") == Some(&Value::Bool(true))
    }

    pub fn is_anthropic(&self) -> bool {
        self.path == "/v1/messages"
    }
}

enum Scripted {
    Reply(Reply),
    Fault(Fault),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    Anthropic,
    OpenAi,
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Scripted>,
    requests: Vec<RecordedRequest>,
    seen_prefixes: HashSet<String>,
    /// Anthropic: the thinking block (text, signature) each issued tool call came with.
    thinking_of_call: HashMap<String, (String, String)>,
    next_id: u64,
    /// Answers every request once the script is empty (benchmarks).
    default_reply: Option<Reply>,
    /// Simulated thinking time before each answer (benchmarks).
    latency: std::time::Duration,
    /// A server that cannot call tools: requests with `tools` get this status and message.
    refuse_tools: Option<(u16, String)>,
    /// llama-cpp-python's server: `response_format: {type: json_schema}` gets its HTTP 500.
    refuse_json_schema: bool,
    /// llama-cpp-python's server: `tools` are accepted, but only a `tool_choice` that names a
    /// function constrains the answer to that function's schema and answers with its call;
    /// otherwise the model writes free text.
    tools_need_named_choice: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    count: watch::Sender<usize>,
    /// While `true`, answers wait (see [`LlmFake::hold_answers`]).
    held: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not hide the state from the others.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The fake server; stops when dropped.
pub struct LlmFake {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for LlmFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LlmFake {
    /// Serve on `127.0.0.1:0`.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            count: watch::channel(0).0,
            held: watch::channel(false).0,
        });
        let app = Router::new()
            .route(
                "/v1/messages",
                post(|State(s): State<Arc<Shared>>, h: HeaderMap, b: Bytes| {
                    handle(Api::Anthropic, s, h, b)
                }),
            )
            .route(
                "/v1/chat/completions",
                post(|State(s): State<Arc<Shared>>, h: HeaderMap, b: Bytes| {
                    handle(Api::OpenAi, s, h, b)
                }),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("llm fake: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("llm fake: local address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    /// `http://127.0.0.1:PORT` (no `/v1`, as the Anthropic SDKs take it).
    pub fn anthropic_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1` (as the OpenAI SDKs take it).
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Next answer: plain text.
    pub fn push_text(&self, text: impl Into<String>) {
        self.push_reply(Reply {
            text: Some(text.into()),
            ..Reply::default()
        });
    }

    /// Next answer: one tool call.
    pub fn push_tool_call(&self, name: impl Into<String>, input: Value) {
        self.push_reply(Reply {
            tool_calls: vec![(name.into(), input)],
            ..Reply::default()
        });
    }

    pub fn push_reply(&self, reply: Reply) {
        self.shared.lock().script.push_back(Scripted::Reply(reply));
    }

    /// Answer `reply` whenever the script is empty (for benchmarks; tests script each answer).
    pub fn set_default_reply(&self, reply: Reply) {
        self.shared.lock().default_reply = Some(reply);
    }

    /// Take `latency` before every answer, like a real model thinking (for benchmarks).
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.shared.lock().latency = latency;
    }

    pub fn push_fault(&self, fault: Fault) {
        self.shared.lock().script.push_back(Scripted::Fault(fault));
    }

    /// Behave like an OpenAI-compatible server without tool support: every request that
    /// carries `tools` is answered `status` with `message` (and consumes nothing). With
    /// `response_format` set, a scripted tool call is answered as its input in JSON text, as
    /// constrained decoding would.
    pub fn refuse_tools(&self, status: u16, message: &str) {
        self.shared.lock().refuse_tools = Some((status, message.to_owned()));
    }

    /// Behave like llama-cpp-python's server: `response_format: {type: "json_schema"}` is an
    /// HTTP 500; `{type: "json_object", schema}` works.
    pub fn refuse_json_schema(&self) {
        self.shared.lock().refuse_json_schema = true;
    }

    /// Behave like llama-cpp-python's server (`python -m llama_cpp.server`, its default chat
    /// handler): `tools` are accepted but ignored unless `tool_choice` names a function — then
    /// the answer is constrained to that function's parameters and comes back as its call —
    /// so with `tool_choice: "auto"` a scripted tool call comes back as free prose; and
    /// `response_format: {type: "json_schema"}` is an HTTP 500 (see [`Self::refuse_json_schema`]).
    pub fn llama_cpp_python(&self) {
        let mut inner = self.shared.lock();
        inner.refuse_json_schema = true;
        inner.tools_need_named_choice = true;
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared.lock().requests.last().cloned()
    }

    /// Scripted answers not yet consumed.
    pub fn remaining(&self) -> usize {
        self.shared.lock().script.len()
    }

    /// From now on, requests are recorded (and counted by [`Self::wait_for_request`]) but not
    /// answered until [`Self::release_answers`]: "while the model is thinking" made explicit.
    pub fn hold_answers(&self) {
        self.shared.held.send_replace(true);
    }

    pub fn release_answers(&self) {
        self.shared.held.send_replace(false);
    }

    /// Resolves once `n` requests have arrived (they are recorded before they are answered);
    /// panics after 30 s, so a regression fails the test instead of hanging CI.
    pub async fn wait_for_request(&self, n: usize) {
        let mut rx = self.shared.count.subscribe();
        let waited = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            rx.wait_for(|count| *count >= n),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        let seen = *rx.borrow();
        assert!(
            waited,
            "the model was asked {seen} times within 30 s, expected {n}"
        );
    }
}

async fn handle(api: Api, shared: Arc<Shared>, headers: HeaderMap, raw: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&raw)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()));
    let path = match api {
        Api::Anthropic => "/v1/messages",
        Api::OpenAi => "/v1/chat/completions",
    };
    let (planned, latency, invalid) = {
        let mut inner = shared.lock();
        let invalid = validate(api, &headers, &body)
            .or_else(|| conversation_error(api, &body, &inner))
            .or_else(|| unsupported(&body, &inner).map(|(_, m)| m));
        inner.requests.push(RecordedRequest {
            path: path.to_owned(),
            headers,
            body: body.clone(),
        });
        let planned = match invalid {
            Some(_) => None,
            None => Some(plan(&mut inner, api, &body)),
        };
        (planned, inner.latency, invalid)
    };
    shared.count.send_modify(|n| *n += 1);
    // The sender lives in `shared`, so waiting cannot fail.
    let _ = shared.held.subscribe().wait_for(|held| !*held).await;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    if let Some(msg) = invalid {
        let status = unsupported(&body, &shared.lock()).map_or(400, |(s, _)| s);
        return error_response(api, status, &msg, None);
    }
    let Some((next, answer)) = planned else {
        return error_response(api, 500, "llm fake: invalid request", None);
    };
    let stream = body.get("stream") == Some(&Value::Bool(true));
    if let Some(name) = undeclared_call(&body, api, &answer) {
        // 400: not retried, so the test fails at once with this message.
        return error_response(
            api,
            400,
            &format!(
                "llm fake: the script calls `{name}`, which this request does not declare as a tool"
            ),
            None,
        );
    }
    match next {
        None => error_response(api, 500, "llm fake: no scripted reply left", None),
        Some(Scripted::Fault(Fault::Hang)) if !stream => std::future::pending::<Response>().await,
        Some(Scripted::Fault(f)) => fault_response(api, f, stream, &answer),
        Some(Scripted::Reply(_)) if stream => sse(frames(api, &answer), None),
        Some(Scripted::Reply(_)) => json_response(StatusCode::OK, whole(api, &answer)),
    }
}

/// What the request needs to be accepted at all.
fn validate(api: Api, headers: &HeaderMap, body: &Value) -> Option<String> {
    if !body.is_object() {
        return Some("body must be a JSON object".into());
    }
    if body
        .get("model")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Some("model: field required".into());
    }
    if body
        .get("messages")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        return Some("messages: at least one message is required".into());
    }
    if api == Api::Anthropic {
        if !headers.contains_key("anthropic-version") {
            return Some("anthropic-version: header is required".into());
        }
        if body.get("max_tokens").and_then(Value::as_u64).is_none() {
            return Some("max_tokens: field required".into());
        }
    }
    None
}

/// An answer with every figure decided.
#[derive(Default)]
struct Answer {
    model: String,
    id: String,
    text: Option<String>,
    /// (id, name, input)
    calls: Vec<(String, String, Value)>,
    stop: Option<Stop>,
    /// Anthropic: (thinking, signature).
    thinking: Option<(String, String)>,
    input: u64,
    output: u64,
    cache_read: u64,
    cache_write: u64,
    include_usage: bool,
}

fn estimate(chars: usize) -> u64 {
    (chars as u64 / 4).max(1)
}

/// Take the next scripted item and work out the answer's ids and usage.
fn plan(inner: &mut Inner, api: Api, body: &Value) -> (Option<Scripted>, Answer) {
    let next = inner
        .script
        .pop_front()
        .or_else(|| inner.default_reply.clone().map(Scripted::Reply));
    inner.next_id += 1;
    let n = inner.next_id;
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("fake-model")
        .to_owned();
    let reply = match &next {
        Some(Scripted::Reply(r)) => r.clone(),
        // Faults that still stream a start need a plausible answer.
        _ => Reply {
            text: Some("partial answer that never finishes".into()),
            ..Reply::default()
        },
    };

    // The cacheable prefix: system prompt and tools.
    let (prefix, cacheable) = match api {
        Api::Anthropic => (
            format!(
                "{}{}",
                text_of(body.get("system")),
                json_of(body.get("tools"))
            ),
            body.to_string().contains("cache_control"),
        ),
        Api::OpenAi => {
            let system = body
                .get("messages")
                .and_then(Value::as_array)
                .and_then(|m| m.first())
                .filter(|m| m.get("role").and_then(Value::as_str) == Some("system"))
                .map(|m| text_of(m.get("content")))
                .unwrap_or_default();
            (format!("{system}{}", json_of(body.get("tools"))), true)
        }
    };
    let prefix_tokens = if prefix.is_empty() {
        0
    } else {
        estimate(prefix.len())
    };
    let (mut cache_read, mut cache_write) = (0, 0);
    if cacheable && prefix_tokens > 0 {
        if inner.seen_prefixes.contains(&prefix) {
            cache_read = prefix_tokens;
        } else {
            inner.seen_prefixes.insert(prefix);
            if api == Api::Anthropic {
                cache_write = prefix_tokens;
            }
        }
    }
    let mut reply = reply;
    let named_choice = body
        .pointer("/tool_choice/function/name")
        .and_then(Value::as_str)
        .is_some();
    if inner.tools_need_named_choice
        && body.get("tools").is_some()
        && !named_choice
        && body.get("response_format").is_none()
        && !reply.tool_calls.is_empty()
    {
        // Unconstrained, a small model writes about the answer instead of giving it.
        reply.text = Some("Sure! Here is a specification for this feature.".into());
        reply.tool_calls.clear();
    }
    if body.get("response_format").is_some() && !reply.tool_calls.is_empty() {
        // Structured output: the answer is the JSON itself, as text.
        reply.text = reply.tool_calls.first().map(|(_, input)| input.to_string());
        reply.tool_calls.clear();
    }
    let calls: Vec<(String, String, Value)> = reply
        .tool_calls
        .iter()
        .enumerate()
        .map(|(i, (name, input))| {
            let id = match api {
                Api::Anthropic => format!("toolu_fake_{n}_{i}"),
                Api::OpenAi => format!("call_fake_{n}_{i}"),
            };
            (id, name.clone(), input.clone())
        })
        .collect();
    let thinking = match (api, &reply.thinking) {
        (Api::Anthropic, Some(t)) => {
            let signature = signature_of(t);
            for (id, _, _) in &calls {
                inner
                    .thinking_of_call
                    .insert(id.clone(), (t.clone(), signature.clone()));
            }
            Some((t.clone(), signature))
        }
        _ => None,
    };
    let (input, output) = if reply.usage == (0, 0) {
        let cached = cache_read + cache_write;
        // Thinking is billed as output, as the real API does.
        let answer_chars = reply.text.as_ref().map_or(0, String::len)
            + reply.thinking.as_ref().map_or(0, String::len)
            + calls
                .iter()
                .map(|(_, n, i)| n.len() + i.to_string().len())
                .sum::<usize>();
        (
            estimate(body.to_string().len())
                .saturating_sub(cached)
                .max(1),
            estimate(answer_chars),
        )
    } else {
        reply.usage
    };
    let answer = Answer {
        id: match api {
            Api::Anthropic => format!("msg_fake_{n}"),
            Api::OpenAi => format!("chatcmpl-fake-{n}"),
        },
        model,
        text: reply.text.clone(),
        calls,
        stop: reply.stop,
        thinking,
        input,
        output,
        cache_read,
        cache_write,
        include_usage: body.pointer("/stream_options/include_usage") == Some(&Value::Bool(true)),
    };
    (next, answer)
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

fn json_of(v: Option<&Value>) -> String {
    v.map(|v| {
        // The cache marker is not part of the prefix's content.
        let mut v = v.clone();
        if let Some(tools) = v.as_array_mut() {
            for t in tools {
                if let Some(o) = t.as_object_mut() {
                    o.remove("cache_control");
                }
            }
        }
        v.to_string()
    })
    .unwrap_or_default()
}

/// `s` in pieces of about `n` bytes, cut at character boundaries.
fn pieces(s: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in s.chars() {
        cur.push(c);
        if cur.len() >= n {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn stop_reason(api: Api, a: &Answer) -> &'static str {
    match (api, a.stop) {
        (Api::Anthropic, Some(Stop::MaxTokens)) => return "max_tokens",
        (Api::Anthropic, Some(Stop::Refusal)) => return "refusal",
        (Api::Anthropic, Some(Stop::PauseTurn)) => return "pause_turn",
        (Api::Anthropic, Some(Stop::ContextWindowExceeded)) => {
            return "model_context_window_exceeded";
        }
        (Api::OpenAi, Some(Stop::MaxTokens | Stop::ContextWindowExceeded)) => return "length",
        (Api::OpenAi, Some(Stop::Refusal | Stop::PauseTurn)) => return "stop",
        (_, None) => {}
    }
    match (api, a.calls.is_empty()) {
        (Api::Anthropic, true) => "end_turn",
        (Api::Anthropic, false) => "tool_use",
        (Api::OpenAi, true) => "stop",
        (Api::OpenAi, false) => "tool_calls",
    }
}

fn anthropic_usage(a: &Answer) -> Value {
    json!({
        "input_tokens": a.input,
        "output_tokens": a.output,
        "cache_creation_input_tokens": a.cache_write,
        "cache_read_input_tokens": a.cache_read,
    })
}

fn openai_usage(a: &Answer) -> Value {
    json!({
        "prompt_tokens": a.input + a.cache_read,
        "completion_tokens": a.output,
        "total_tokens": a.input + a.cache_read + a.output,
        "prompt_tokens_details": {"cached_tokens": a.cache_read, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    })
}

/// The non-streamed answer.
fn whole(api: Api, a: &Answer) -> Value {
    match api {
        Api::Anthropic => {
            let mut content = Vec::new();
            if let Some((thinking, signature)) = &a.thinking {
                content.push(
                    json!({"type": "thinking", "thinking": thinking, "signature": signature}),
                );
            }
            if let Some(t) = &a.text {
                content.push(json!({"type": "text", "text": t}));
            }
            for (id, name, input) in &a.calls {
                content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
            }
            json!({
                "id": a.id, "type": "message", "role": "assistant", "model": a.model,
                "content": content, "stop_reason": stop_reason(api, a), "stop_sequence": null,
                "usage": anthropic_usage(a),
            })
        }
        Api::OpenAi => {
            let mut message = if a.stop == Some(Stop::Refusal) {
                json!({"role": "assistant", "content": null, "refusal": a.text})
            } else {
                json!({"role": "assistant", "content": a.text, "refusal": null})
            };
            if !a.calls.is_empty() {
                message["tool_calls"] = a
                    .calls
                    .iter()
                    .map(|(id, name, input)| {
                        json!({"id": id, "type": "function",
                               "function": {"name": name, "arguments": input.to_string()}})
                    })
                    .collect();
            }
            json!({
                "id": a.id, "object": "chat.completion", "created": 1_790_000_000u64,
                "model": a.model,
                "choices": [{"index": 0, "message": message, "logprobs": null,
                             "finish_reason": stop_reason(api, a)}],
                "usage": openai_usage(a),
            })
        }
    }
}

fn anthropic_event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn openai_chunk(a: &Answer, delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({
        "id": a.id, "object": "chat.completion.chunk", "created": 1_790_000_000u64,
        "model": a.model,
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        "usage": null,
    });
    format!("data: {chunk}\n\n")
}

/// The whole SSE stream of an answer. Text comes in ~8-byte deltas, tool input JSON in ~5-byte
/// deltas, so every client-side assembly path is exercised.
fn frames(api: Api, a: &Answer) -> Vec<String> {
    let mut out = Vec::new();
    match api {
        Api::Anthropic => {
            out.push(anthropic_event(
                "message_start",
                json!({"type": "message_start", "message": {
                    "id": a.id, "type": "message", "role": "assistant", "model": a.model,
                    "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": a.input, "output_tokens": 1,
                              "cache_creation_input_tokens": a.cache_write,
                              "cache_read_input_tokens": a.cache_read},
                }}),
            ));
            out.push(anthropic_event("ping", json!({"type": "ping"})));
            let mut index = 0;
            if let Some((thinking, signature)) = &a.thinking {
                out.push(anthropic_event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": index,
                           "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
                ));
                for p in pieces(thinking, 8) {
                    out.push(anthropic_event(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": index,
                               "delta": {"type": "thinking_delta", "thinking": p}}),
                    ));
                }
                out.push(anthropic_event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index,
                           "delta": {"type": "signature_delta", "signature": signature}}),
                ));
                out.push(anthropic_event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": index}),
                ));
                index += 1;
            }
            if let Some(t) = &a.text {
                out.push(anthropic_event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": index,
                           "content_block": {"type": "text", "text": ""}}),
                ));
                for p in pieces(t, 8) {
                    out.push(anthropic_event(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": index,
                               "delta": {"type": "text_delta", "text": p}}),
                    ));
                }
                out.push(anthropic_event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": index}),
                ));
                index += 1;
            }
            for (id, name, input) in &a.calls {
                out.push(anthropic_event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": index,
                           "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
                ));
                let mut parts = vec![String::new()];
                parts.extend(pieces(&input.to_string(), 5));
                for p in parts {
                    out.push(anthropic_event(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": index,
                               "delta": {"type": "input_json_delta", "partial_json": p}}),
                    ));
                }
                out.push(anthropic_event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": index}),
                ));
                index += 1;
            }
            out.push(anthropic_event(
                "message_delta",
                json!({"type": "message_delta",
                       "delta": {"stop_reason": stop_reason(api, a), "stop_sequence": null},
                       "usage": anthropic_usage(a)}),
            ));
            out.push(anthropic_event(
                "message_stop",
                json!({"type": "message_stop"}),
            ));
        }
        Api::OpenAi => {
            out.push(openai_chunk(
                a,
                json!({"role": "assistant", "content": "", "refusal": null}),
                None,
            ));
            let field = if a.stop == Some(Stop::Refusal) {
                "refusal"
            } else {
                "content"
            };
            if let Some(t) = &a.text {
                for p in pieces(t, 8) {
                    out.push(openai_chunk(a, json!({ field: p }), None));
                }
            }
            for (i, (id, name, input)) in a.calls.iter().enumerate() {
                out.push(openai_chunk(
                    a,
                    json!({"tool_calls": [{"index": i, "id": id, "type": "function",
                                           "function": {"name": name, "arguments": ""}}]}),
                    None,
                ));
                for p in pieces(&input.to_string(), 5) {
                    out.push(openai_chunk(
                        a,
                        json!({"tool_calls": [{"index": i, "function": {"arguments": p}}]}),
                        None,
                    ));
                }
            }
            out.push(openai_chunk(a, json!({}), Some(stop_reason(api, a))));
            if a.include_usage {
                let chunk = json!({
                    "id": a.id, "object": "chat.completion.chunk", "created": 1_790_000_000u64,
                    "model": a.model, "choices": [], "usage": openai_usage(a),
                });
                out.push(format!("data: {chunk}\n\n"));
            }
            out.push("data: [DONE]\n\n".to_owned());
        }
    }
    out
}

fn fault_response(api: Api, fault: Fault, stream: bool, a: &Answer) -> Response {
    match fault {
        Fault::Status {
            status,
            retry_after,
        } => error_response(api, status, &status_message(status), retry_after),
        Fault::Malformed if stream => {
            let mut f = frames(api, a);
            f.truncate(1);
            f.push(match api {
                Api::Anthropic => {
                    "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\n\n"
                        .to_owned()
                }
                Api::OpenAi => "data: {\"id\": \"chatcmpl-fake\", \"choices\": [{\n\n".to_owned(),
            });
            sse(f, None)
        }
        Fault::Malformed => raw_json(
            StatusCode::OK,
            "{\"id\": \"fake\", \"content\": [{\"type\": \"te".into(),
        ),
        Fault::TruncatedStream if stream => {
            let mut f = frames(api, a);
            // Keep the start and some content; drop the end markers.
            f.truncate(4);
            sse(f, None)
        }
        Fault::TruncatedStream => {
            let text = whole(api, a).to_string();
            let half = text.len() / 2;
            let cut: String = text.chars().take(half).collect();
            raw_json(StatusCode::OK, cut)
        }
        Fault::Hang if stream => {
            let mut f = frames(api, a);
            f.truncate(1);
            sse(f, Some(()))
        }
        // Not streaming, `handle` never gets here (it hangs before answering at all).
        Fault::Hang => Response::new(Body::from_stream(futures::stream::pending::<
            Result<Bytes, Infallible>,
        >())),
        Fault::StreamError if stream => {
            let mut f = frames(api, a);
            f.truncate(1);
            f.push(match api {
                Api::Anthropic => anthropic_event(
                    "error",
                    json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
                ),
                Api::OpenAi => format!(
                    "data: {}\n\n",
                    json!({"error": {"message": "The server had an error while processing your request.",
                                     "type": "server_error", "param": null, "code": null}})
                ),
            });
            sse(f, None)
        }
        Fault::InsufficientQuota => {
            let body = json!({"error": {
                "message": "You exceeded your current quota, please check your plan and billing details.",
                "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}});
            json_response(StatusCode::TOO_MANY_REQUESTS, body)
        }
        Fault::StreamError => match api {
            Api::Anthropic => error_response(api, 529, "Overloaded", None),
            Api::OpenAi => error_response(api, 503, "The server is overloaded.", None),
        },
    }
}

fn status_message(status: u16) -> String {
    match status {
        400 => "llm fake: scripted invalid request".into(),
        401 => "invalid x-api-key".into(),
        429 => "llm fake: scripted rate limit".into(),
        529 => "Overloaded".into(),
        s => format!("llm fake: scripted status {s}"),
    }
}

/// The provider's error body for `status`.
fn error_response(api: Api, status: u16, message: &str, retry_after: Option<Duration>) -> Response {
    let body = match api {
        Api::Anthropic => {
            let kind = match status {
                400 => "invalid_request_error",
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                _ => "api_error",
            };
            json!({"type": "error", "error": {"type": kind, "message": message}})
        }
        Api::OpenAi => {
            let kind = match status {
                400 | 404 | 413 | 422 => "invalid_request_error",
                401 | 403 => "authentication_error",
                429 => "rate_limit_exceeded",
                _ => "server_error",
            };
            json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
        }
    };
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = json_response(code, body);
    if let Some(wait) = retry_after {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let h = resp.headers_mut();
        h.insert("retry-after", HeaderValue::from(secs));
        if api == Api::OpenAi {
            h.insert("retry-after-ms", HeaderValue::from(wait.as_millis() as u64));
        }
    }
    resp
}

fn json_response(status: StatusCode, body: Value) -> Response {
    raw_json(status, body.to_string())
}

fn raw_json(status: StatusCode, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// An SSE response of `frames`; with `hang`, the stream then stays open forever. Each frame
/// goes out as two body chunks cut at its middle byte (even inside a UTF-8 character), as
/// networks do, so clients must reassemble lines and characters.
fn sse(frames: Vec<String>, hang: Option<()>) -> Response {
    let chunks: Vec<Result<Bytes, Infallible>> = frames
        .into_iter()
        .flat_map(|f| {
            let mut first = Bytes::from(f);
            let second = first.split_off(first.len() / 2);
            [Ok(first), Ok(second)]
        })
        .collect();
    let head = futures::stream::iter(chunks);
    let body = match hang {
        Some(()) => Body::from_stream(head.chain(futures::stream::pending())),
        None => Body::from_stream(head),
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// A stable signature for a thinking text (the real one is opaque; this one only has to change
/// when the text does).
fn signature_of(thinking: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    thinking.hash(&mut h);
    format!("sig_fake_{:016x}", h.finish())
}

/// Anthropic: the first tool the scripted answer calls that the request does not declare (the
/// real API only ever calls the tools it was given). OpenAI-compatible servers pass on whatever
/// name a small model makes up, so there the script may call anything.
fn undeclared_call(body: &Value, api: Api, answer: &Answer) -> Option<String> {
    if api == Api::OpenAi {
        return None;
    }
    let declared = declared_tools(body, api);
    answer
        .calls
        .iter()
        .map(|(_, name, _)| name)
        .find(|name| !declared.contains(name.as_str()))
        .cloned()
}

fn declared_tools(body: &Value, api: Api) -> HashSet<String> {
    let pointer = match api {
        Api::Anthropic => "/name",
        Api::OpenAi => "/function/name",
    };
    body.get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.pointer(pointer).and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// What the real APIs refuse (400) in the conversation itself: a `tool_choice` without tools
/// or naming an undeclared one, tool results that do not pair with the previous turn's tool
/// calls, roles that do not alternate (Anthropic), and a tool-using assistant turn sent back
/// without the thinking block it came with (Anthropic).
fn conversation_error(api: Api, body: &Value, inner: &Inner) -> Option<String> {
    let messages = body.get("messages").and_then(Value::as_array)?;
    let declared = declared_tools(body, api);
    if let Some(choice) = body.get("tool_choice") {
        if declared.is_empty() {
            return Some("tool_choice: only allowed when tools are specified".into());
        }
        let forced = match api {
            Api::Anthropic => choice.get("name"),
            Api::OpenAi => choice.pointer("/function/name"),
        };
        if let Some(name) = forced.and_then(Value::as_str)
            && !declared.contains(name)
        {
            return Some(format!("tool_choice: tool `{name}` is not among the tools"));
        }
    }
    match api {
        Api::Anthropic => anthropic_conversation_error(body, messages, inner),
        Api::OpenAi => openai_conversation_error(messages),
    }
}

fn blocks_of<'v>(m: &'v Value, kind: &'v str) -> impl Iterator<Item = &'v Value> + 'v {
    m.get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |b| b.get("type").and_then(Value::as_str) == Some(kind))
}

fn anthropic_conversation_error(body: &Value, messages: &[Value], inner: &Inner) -> Option<String> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if adaptive_thinking(model) {
        if body.pointer("/thinking/type").and_then(Value::as_str) == Some("disabled") {
            return Some(format!(
                "thinking.type: `disabled` is not supported by {model}"
            ));
        }
        if matches!(
            body.pointer("/tool_choice/type").and_then(Value::as_str),
            Some("any" | "tool")
        ) {
            return Some(format!(
                "tool_choice: forced tool use is not supported by {model} with thinking"
            ));
        }
    }
    let role = |m: &Value| {
        m.get("role")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    if messages.first().map(role).as_deref() != Some("user") {
        return Some("messages.0.role: the first message must use the \"user\" role".into());
    }
    for (i, pair) in messages.windows(2).enumerate() {
        if role(&pair[0]) == role(&pair[1]) {
            return Some(format!(
                "messages.{}: roles must alternate between \"user\" and \"assistant\"",
                i + 1
            ));
        }
    }
    for (i, m) in messages.iter().enumerate() {
        let results: Vec<&str> = blocks_of(m, "tool_result")
            .filter_map(|b| b.get("tool_use_id").and_then(Value::as_str))
            .collect();
        let previous_calls: HashSet<&str> = i
            .checked_sub(1)
            .and_then(|p| messages.get(p))
            .into_iter()
            .flat_map(|p| blocks_of(p, "tool_use"))
            .filter_map(|b| b.get("id").and_then(Value::as_str))
            .collect();
        if let Some(id) = results.iter().find(|id| !previous_calls.contains(*id)) {
            return Some(format!(
                "messages.{i}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each \
                 `tool_result` block must have a corresponding `tool_use` block in the previous message."
            ));
        }
        let next_results: HashSet<&str> = messages
            .get(i + 1)
            .into_iter()
            .flat_map(|n| blocks_of(n, "tool_result"))
            .filter_map(|b| b.get("tool_use_id").and_then(Value::as_str))
            .collect();
        let calls: Vec<&str> = blocks_of(m, "tool_use")
            .filter_map(|b| b.get("id").and_then(Value::as_str))
            .collect();
        if let Some(id) = calls.iter().find(|id| !next_results.contains(*id)) {
            return Some(format!(
                "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately \
                 after: {id}. Each `tool_use` block must have a corresponding `tool_result` block \
                 in the next message."
            ));
        }
    }
    thinking_error(messages, inner)
}

/// Models that think by default and refuse `thinking: disabled` and forced tool use.
fn adaptive_thinking(model: &str) -> bool {
    model.contains("5-5") || model.contains("5.5")
}

/// The last assistant turn that called tools must carry the thinking block those calls came
/// with, unchanged (text and signature).
fn thinking_error(messages: &[Value], inner: &Inner) -> Option<String> {
    let (i, last) = messages
        .iter()
        .enumerate()
        .rev()
        .find(|(_, m)| m.get("role").and_then(Value::as_str) == Some("assistant"))?;
    let issued = blocks_of(last, "tool_use")
        .filter_map(|b| b.get("id").and_then(Value::as_str))
        .find_map(|id| inner.thinking_of_call.get(id))?;
    let kept = blocks_of(last, "thinking").any(|b| {
        b.get("thinking").and_then(Value::as_str) == Some(issued.0.as_str())
            && b.get("signature").and_then(Value::as_str) == Some(issued.1.as_str())
    });
    (!kept).then(|| {
        format!(
            "messages.{i}.content: the thinking block this turn came with is missing or changed; \
             thinking blocks must be passed back unchanged with the tool_use blocks they preceded"
        )
    })
}

fn openai_conversation_error(messages: &[Value]) -> Option<String> {
    let mut open: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        match m.get("role").and_then(Value::as_str) {
            Some("tool") => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let Some(at) = open.iter().position(|o| o == id) else {
                    return Some(format!(
                        "messages.[{i}]: messages with role 'tool' must be a response to a \
                         preceding message with 'tool_calls' (tool_call_id {id})"
                    ));
                };
                open.remove(at);
            }
            _ => {
                if let Some(id) = open.first() {
                    return Some(format!(
                        "An assistant message with 'tool_calls' must be followed by tool messages \
                         responding to each 'tool_call_id'. The following tool_call_ids did not \
                         have response messages: {id}"
                    ));
                }
                open = m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.get("id").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect();
            }
        }
    }
    open.first().map(|id| {
        format!(
            "An assistant message with 'tool_calls' must be followed by tool messages responding \
             to each 'tool_call_id'. The following tool_call_ids did not have response messages: {id}"
        )
    })
}

/// A feature this server does not have: `(status, message)`.
fn unsupported(body: &Value, inner: &Inner) -> Option<(u16, String)> {
    // llama-cpp-python validates messages with pydantic: an assistant turn's `content` must be
    // a string, even beside `tool_calls` (its error handler answers 500).
    if inner.tools_need_named_choice
        && let Some(i) = body
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .position(|m| {
                m.get("role").and_then(Value::as_str) == Some("assistant")
                    && !m.get("content").is_some_and(Value::is_string)
            })
    {
        return Some((
            500,
            format!(
                "1 validation error: ('body', 'messages', {i}, 'ChatCompletionRequestAssistantMessage', 'content'): Input should be a valid string"
            ),
        ));
    }
    if body.get("tools").is_some()
        && let Some(refusal) = &inner.refuse_tools
    {
        return Some(refusal.clone());
    }
    if inner.refuse_json_schema
        && body
            .pointer("/response_format/type")
            .and_then(Value::as_str)
            == Some("json_schema")
    {
        return Some((
            500,
            "1 validation error for CreateChatCompletionRequest\nresponse_format.type\n  Input should be 'text' or 'json_object'".into(),
        ));
    }
    None
}
