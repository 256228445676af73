//! Language models: one small trait ([`ChatModel`]), with Anthropic Messages and OpenAI Chat
//! Completions behind it, their shared retry/timeout/cancel policy, settings, errors and the
//! price table.
//!
//! Usage figures are normalised across providers: [`Usage::input_tokens`] counts only the
//! *uncached* input tokens (Anthropic's meaning), so `input + cache_read + cache_write` is the
//! whole prompt for both providers and [`PriceTable::cost`] needs no provider switch.

mod anthropic;
mod bound;
mod http;
mod openai;
pub mod pricing;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use pricing::{ModelPrice, PriceTable};

/// One request to a chat model.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The system prompt (may be empty).
    pub system: String,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    /// Ignored when `tools` is empty.
    pub tool_choice: ToolChoice,
    pub max_tokens: u32,
    /// Mark the system prompt + tools (and the first user message) as a cacheable prefix.
    /// Anthropic gets `cache_control` breakpoints; OpenAI caches prefixes on its own.
    pub cache_prefix: bool,
}

impl ChatRequest {
    /// A request with the given system prompt and messages, no tools, 4096 output tokens.
    pub fn new(system: impl Into<String>, messages: Vec<Message>) -> Self {
        Self {
            system: system.into(),
            messages,
            ..Self::default()
        }
    }
}

impl Default for ChatRequest {
    fn default() -> Self {
        Self {
            system: String::new(),
            messages: Vec::new(),
            tools: Vec::new(),
            tool_choice: ToolChoice::Auto,
            max_tokens: 4096,
            cache_prefix: false,
        }
    }
}

/// A tool the model may call; `input_schema` is a JSON Schema object.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: String,
    pub input_schema: Value,
}

/// How the model may use the tools.
///
/// Note: the 5.5 generation of Claude models think by default and reject forced tool use
/// (`Any` / `Tool`) with a 400; the Anthropic client sends them `auto` instead. The default model
/// ([`LlmSettings::defaults_for`]) accepts it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolChoice {
    /// The model decides.
    #[default]
    Auto,
    /// The model must call some tool (`any` / `required`).
    Any,
    /// The model must call this tool.
    Tool(String),
    /// The model must not call tools.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Content>,
}

impl Message {
    /// A user turn with one text part.
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: vec![Content::Text(text.into())],
        }
    }

    /// An assistant turn with the given parts (text and/or tool calls), e.g. a previous
    /// [`ChatResponse::content`] echoed back before the tool results.
    pub fn assistant(content: Vec<Content>) -> Self {
        Self {
            role: Role::Assistant,
            content,
        }
    }

    /// An assistant turn with one text part.
    pub fn assistant_text(text: impl Into<String>) -> Self {
        Self::assistant(vec![Content::Text(text.into())])
    }

    /// A user turn carrying tool results (build the parts with [`Content::tool_result`]).
    pub fn tool_results(results: Vec<Content>) -> Self {
        Self {
            role: Role::User,
            content: results,
        }
    }
}

/// A part of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Text(String),
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        content: String,
        is_error: bool,
    },
    /// Anthropic's thinking before the rest of the turn. It must go back unchanged (text and
    /// `signature`) with the tool calls of the same turn; other providers drop it.
    Thinking {
        thinking: String,
        signature: String,
    },
    /// Anthropic's encrypted thinking: goes back unchanged too.
    RedactedThinking {
        data: String,
    },
}

impl Content {
    pub fn tool_result(tool_use_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self::ToolResult {
            tool_use_id: tool_use_id.into(),
            content: content.into(),
            is_error: false,
        }
    }

    pub fn tool_error(tool_use_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self::ToolResult {
            tool_use_id: tool_use_id.into(),
            content: content.into(),
            is_error: true,
        }
    }
}

/// A tool call in a response, borrowed from [`ChatResponse::content`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToolCall<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub input: &'a Value,
}

/// The model's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub content: Vec<Content>,
    pub stop: StopReason,
    pub usage: Usage,
    /// The model that answered, as the provider reports it.
    pub model: String,
}

impl ChatResponse {
    /// All text parts, joined (no separator: streamed parts belong together).
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|c| match c {
                Content::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The tool calls, in order.
    pub fn tool_calls(&self) -> Vec<ToolCall<'_>> {
        self.content
            .iter()
            .filter_map(|c| match c {
                Content::ToolUse { id, name, input } => Some(ToolCall { id, name, input }),
                _ => None,
            })
            .collect()
    }

    /// The answer as an assistant turn, to continue the conversation.
    pub fn to_message(&self) -> Message {
        Message::assistant(self.content.clone())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    ToolUse,
    /// The answer hit `max_tokens` (thinking counts against it too).
    MaxTokens,
    /// The model declined to answer (Anthropic `refusal`, OpenAI `refusal` / `content_filter`);
    /// its text, if any, says why.
    Refusal,
    /// Anthropic paused a long turn: send the answer back as is and ask again to continue.
    PauseTurn,
    /// The conversation no longer fits the model's context window.
    ContextWindowExceeded,
    Other(String),
}

/// Token counts. `input_tokens` excludes cached tokens for every provider (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
}

impl Usage {
    /// The whole prompt: uncached + cache reads + cache writes.
    pub fn prompt_tokens(&self) -> u64 {
        self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
    }
}

impl std::ops::Add for Usage {
    type Output = Usage;
    fn add(self, o: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens + o.input_tokens,
            output_tokens: self.output_tokens + o.output_tokens,
            cache_read_tokens: self.cache_read_tokens + o.cache_read_tokens,
            cache_write_tokens: self.cache_write_tokens + o.cache_write_tokens,
        }
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        *self = *self + o;
    }
}

/// A chat model. Implementations retry, time out and honour `cancel` on their own.
#[async_trait]
pub trait ChatModel: Send + Sync {
    fn provider(&self) -> &str;
    fn model(&self) -> &str;
    /// The model's context window in tokens, when configured (`LLM_CONTEXT_TOKENS`).
    fn context_tokens(&self) -> Option<u32> {
        None
    }
    async fn chat(
        &self,
        req: &ChatRequest,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, LlmError>;
}

/// Which wire format to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Anthropic Messages API.
    Anthropic,
    /// OpenAI Chat Completions (also Ollama, vLLM, llama.cpp, OpenRouter, gateways).
    OpenAi,
}

impl Provider {
    pub fn as_str(&self) -> &'static str {
        match self {
            Provider::Anthropic => "anthropic",
            Provider::OpenAi => "openai",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = LlmError;
    fn from_str(s: &str) -> Result<Self, LlmError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "anthropic" | "claude" => Ok(Provider::Anthropic),
            "openai" | "open_ai" | "open-ai" => Ok(Provider::OpenAi),
            other => Err(LlmError::Config(format!(
                "unknown LLM_PROVIDER {other:?}: expected \"anthropic\" or \"openai\""
            ))),
        }
    }
}

/// JSON as a model wrote it: strict first, then with raw control characters inside strings
/// escaped (llama.cpp-style grammars let a raw newline into a string; strict JSON refuses it).
pub fn lenient_json(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str(text).or_else(|e| {
        let (mut out, mut in_string, mut escaped) =
            (String::with_capacity(text.len()), false, false);
        for c in text.chars() {
            match c {
                _ if escaped => {
                    escaped = false;
                    out.push(c);
                }
                '\\' if in_string => {
                    escaped = true;
                    out.push(c);
                }
                '"' => {
                    in_string = !in_string;
                    out.push(c);
                }
                c if in_string && (c as u32) < 0x20 => {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                }
                c => out.push(c),
            }
        }
        serde_json::from_str(&out).map_err(|_| e)
    })
}

/// How to reach a model. `Debug` never shows the key (it is a [`SecretString`]).
#[derive(Debug, Clone)]
pub struct LlmSettings {
    pub provider: Provider,
    pub model: String,
    /// API root as the official SDKs take it: Anthropic without `/v1`, OpenAI with it.
    pub base_url: String,
    /// `None` sends no credentials (Ollama and other local servers need none).
    pub api_key: Option<SecretString>,
    /// Use server-sent events (recommended: long answers do not hit idle proxies' timeouts).
    pub stream: bool,
    /// Limit on each attempt, from sending the request to the last byte of the answer.
    pub request_timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Upper bound on any single wait (retry-after included); tests set it tiny.
    pub max_retry_wait: Duration,
    /// First backoff wait; doubled on each retry (with jitter) when the server names none.
    pub retry_base: Duration,
    /// The model's context window in tokens (`LLM_CONTEXT_TOKENS`), for small local servers:
    /// `max_tokens` is capped to half of it, and the architect's context budget to a quarter.
    pub context_tokens: Option<u32>,
}

/// Default Anthropic model: a current Sonnet that still accepts forced tool use.
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-sonnet-5";
/// Default OpenAI model.
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-5.4";
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

impl LlmSettings {
    /// Sensible defaults: the provider's public URL and default model, streaming, 10 min per
    /// attempt, 3 retries, backoff from 1 s, no wait longer than 60 s. No key.
    pub fn defaults_for(provider: Provider) -> Self {
        let (model, base_url) = match provider {
            Provider::Anthropic => (DEFAULT_ANTHROPIC_MODEL, ANTHROPIC_BASE_URL),
            Provider::OpenAi => (DEFAULT_OPENAI_MODEL, OPENAI_BASE_URL),
        };
        Self {
            provider,
            model: model.to_owned(),
            base_url: base_url.to_owned(),
            api_key: None,
            stream: true,
            request_timeout: Duration::from_secs(600),
            max_retries: 3,
            max_retry_wait: Duration::from_secs(60),
            retry_base: Duration::from_secs(1),
            context_tokens: None,
        }
    }

    /// `max_tokens` as the request asks, capped to half the context window when one is set.
    pub fn output_limit(&self, requested: u32) -> u32 {
        match self.context_tokens {
            Some(window) => requested.min((window / 2).max(1)),
            None => requested,
        }
    }

    /// Settings from the environment variables of INTERFACE.md (`LLM_PROVIDER`, `LLM_MODEL`,
    /// `LLM_BASE_URL`, `LLM_API_KEY`, falling back to `ANTHROPIC_API_KEY` / `OPENAI_API_KEY`),
    /// read through `lookup` so callers and tests choose the source. Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, LlmError> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let provider = match get("LLM_PROVIDER") {
            Some(p) => p.parse()?,
            None => Provider::Anthropic,
        };
        let mut s = Self::defaults_for(provider);
        if let Some(m) = get("LLM_MODEL") {
            s.model = m.trim().to_owned();
        }
        if let Some(u) = get("LLM_BASE_URL") {
            s.base_url = u.trim().to_owned();
        }
        let fallback = match provider {
            Provider::Anthropic => "ANTHROPIC_API_KEY",
            Provider::OpenAi => "OPENAI_API_KEY",
        };
        if let Some(v) = get("LLM_STREAM") {
            s.stream = !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "false" | "0" | "no" | "off"
            );
        }
        s.context_tokens = get("LLM_CONTEXT_TOKENS").and_then(|v| v.trim().parse().ok());
        s.api_key = get("LLM_API_KEY")
            .or_else(|| get(fallback))
            .map(|k| SecretString::from(k.trim().to_owned()));
        Ok(s)
    }
}

/// Build the client for `settings`. Fails on an unusable base URL or model, or on a missing key
/// for the providers' public endpoints (which always need one).
pub fn connect(
    settings: &LlmSettings,
    http: reqwest::Client,
) -> Result<Arc<dyn ChatModel>, LlmError> {
    if settings.model.trim().is_empty() {
        return Err(LlmError::Config("LLM_MODEL is empty".into()));
    }
    let base = url::Url::parse(settings.base_url.trim()).map_err(|e| {
        LlmError::Config(format!(
            "LLM_BASE_URL {:?} is not a URL: {e}",
            settings.base_url
        ))
    })?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(LlmError::Config(format!(
            "LLM_BASE_URL {:?} must be http(s)",
            settings.base_url
        )));
    }
    let public = matches!(
        base.host_str(),
        Some("api.anthropic.com" | "api.openai.com")
    );
    if public && settings.api_key.is_none() {
        return Err(LlmError::Config(format!(
            "no API key for {} at {}: set LLM_API_KEY",
            settings.provider, settings.base_url
        )));
    }
    let wire = match settings.provider {
        Provider::Anthropic => Wire::Anthropic,
        Provider::OpenAi => Wire::OpenAi(openai::OpenAi::new(&settings.base_url)),
    };
    Ok(Arc::new(Model {
        client: http::Client::new(settings.clone(), http),
        wire,
    }))
}

/// A configured model: the HTTP client and its settings, and the wire format it speaks.
struct Model {
    client: http::Client,
    wire: Wire,
}

enum Wire {
    Anthropic,
    OpenAi(openai::OpenAi),
}

#[async_trait]
impl ChatModel for Model {
    fn provider(&self) -> &str {
        self.client.settings.provider.as_str()
    }

    fn model(&self) -> &str {
        &self.client.settings.model
    }

    fn context_tokens(&self) -> Option<u32> {
        self.client.settings.context_tokens
    }

    async fn chat(
        &self,
        req: &ChatRequest,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, LlmError> {
        match &self.wire {
            Wire::Anthropic => anthropic::chat(&self.client, req, cancel).await,
            Wire::OpenAi(server) => server.chat(&self.client, req, cancel).await,
        }
    }
}

/// What went wrong talking to a model. Messages carry the HTTP status and the provider's own
/// error message, never request headers or keys.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// 429. `retry_after` is what the server asked for, if anything.
    #[error("rate limited by the provider: {message}")]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// OpenAI's 429 `insufficient_quota`: the account is out of credit; waiting will not help.
    #[error(
        "the provider account has no quota left (insufficient_quota): {0}. Add credit or raise \
         the limit in the provider's billing settings"
    )]
    QuotaExhausted(String),
    /// The server lacks a feature the request used: tool calling (vLLM without its tool-parser
    /// flags, llama.cpp without `--jinja`, an Ollama model without tools) or a
    /// `response_format` type. Not retried as is; the OpenAI client falls back instead.
    #[error("the server does not support this request: {0}")]
    Unsupported(String),
    /// 529 (Anthropic) or an `overloaded_error` event.
    #[error("the provider is overloaded")]
    Overloaded,
    /// 5xx.
    #[error("provider error (status {status}): {message}")]
    Server { status: u16, message: String },
    /// Another status we do not classify (408 and 409 are retried).
    #[error("unexpected status {status}: {message}")]
    Status { status: u16, message: String },
    /// An attempt took longer than `request_timeout`.
    #[error("the request timed out")]
    Timeout,
    /// The caller's cancellation token fired.
    #[error("the request was cancelled")]
    Cancelled,
    /// Unparsable JSON, or a stream that ended before its end marker.
    #[error("malformed answer from the provider: {0}")]
    Malformed(String),
    /// Connection or transport failure.
    #[error("HTTP error: {0}")]
    Http(String),
    /// 401 / 403.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// 400, 404, 413, 422 …: the request is wrong and retrying will not help.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Unusable settings.
    #[error("LLM configuration: {0}")]
    Config(String),
}

impl LlmError {
    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::RateLimited { .. }
            | LlmError::Overloaded
            | LlmError::Server { .. }
            | LlmError::Timeout
            | LlmError::Malformed(_)
            | LlmError::Http(_) => true,
            LlmError::Status { status, .. } => matches!(status, 408 | 409),
            LlmError::Cancelled
            | LlmError::QuotaExhausted(_)
            | LlmError::Unsupported(_)
            | LlmError::Auth(_)
            | LlmError::BadRequest(_)
            | LlmError::Config(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_with_a_raw_newline_in_a_string_still_reads() {
        let v = super::lenient_json("{\"a\": \"x\ny\", \"b\": \"q\\\"\\n\"}").expect("reads");
        assert_eq!(v, serde_json::json!({"a": "x\ny", "b": "q\"\n"}));
        assert!(super::lenient_json("{\"a\": ").is_err());
    }

    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn from_lookup_reads_the_interface_variables() {
        let env = |k: &str| match k {
            "LLM_PROVIDER" => Some("openai".to_owned()),
            "LLM_BASE_URL" => Some("http://localhost:11434/v1".to_owned()),
            "LLM_MODEL" => Some("".to_owned()),
            "OPENAI_API_KEY" => Some("sk-test".to_owned()),
            _ => None,
        };
        let s = LlmSettings::from_lookup(env).expect("settings");
        assert_eq!(s.provider, Provider::OpenAi);
        assert_eq!(s.model, DEFAULT_OPENAI_MODEL);
        assert_eq!(s.base_url, "http://localhost:11434/v1");
        assert_eq!(
            s.api_key.as_ref().map(|k| k.expose_secret()),
            Some("sk-test")
        );
        assert!(!format!("{s:?}").contains("sk-test"));
        assert!(
            LlmSettings::from_lookup(|k| (k == "LLM_PROVIDER").then(|| "gemini".into())).is_err()
        );
    }

    #[test]
    fn public_endpoints_need_a_key() {
        let s = LlmSettings::defaults_for(Provider::Anthropic);
        assert!(matches!(
            connect(&s, reqwest::Client::new()),
            Err(LlmError::Config(_))
        ));
        let mut local = LlmSettings::defaults_for(Provider::OpenAi);
        local.base_url = "http://localhost:11434/v1".into();
        assert!(connect(&local, reqwest::Client::new()).is_ok());
    }

    #[test]
    fn response_helpers() {
        let r = ChatResponse {
            content: vec![
                Content::Text("a".into()),
                Content::ToolUse {
                    id: "t1".into(),
                    name: "f".into(),
                    input: serde_json::json!({"x": 1}),
                },
                Content::Text("b".into()),
            ],
            stop: StopReason::ToolUse,
            usage: Usage::default(),
            model: "m".into(),
        };
        assert_eq!(r.text(), "ab");
        assert_eq!(r.tool_calls().len(), 1);
        assert_eq!(r.tool_calls()[0].name, "f");
        assert_eq!(r.to_message().role, Role::Assistant);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::Value;

    /// Arbitrary JSON with the providers' own keys in the mix.
    fn json() -> impl Strategy<Value = Value> {
        const KEYS: &[&str] = &[
            "content",
            "type",
            "text",
            "tool_use",
            "input",
            "usage",
            "choices",
            "message",
            "tool_calls",
            "function",
            "arguments",
            "stop_reason",
            "finish_reason",
        ];
        let key = prop_oneof![
            13 => prop::sample::select(KEYS).prop_map(str::to_string),
            1 => "[a-z_]{1,10}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u32>().prop_map(Value::from),
            prop_oneof![
                Just("text".to_string()),
                Just("tool_use".to_string()),
                Just("{\"a\":1}".to_string()),
                ".{0,30}"
            ]
            .prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Whatever a provider (or something pretending to be one) answers, reading it never
        /// panics: it is a response or an error.
        #[test]
        fn provider_answers_never_panic(v in json()) {
            let _ = super::anthropic::parse_message(&v, "m");
            let _ = super::openai::parse_completion(&v, "m");
        }

        #[test]
        fn stream_data_never_panics(data in ".{0,200}") {
            let _ = super::http::parse_data(&data);
            let _ = super::http::provider_message(&data);
        }
    }
}
