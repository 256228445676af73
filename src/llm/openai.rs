//! The OpenAI Chat Completions client (`POST {base}/chat/completions`), which also speaks to
//! Ollama, vLLM, llama.cpp, OpenRouter and gateways: request mapping (system message, function
//! tools, `tool_calls` / `role: tool`, `tool_choice`), the non-streamed answer and the SSE chunk
//! stream (tool-call deltas assembled by index, `[DONE]`, usage chunk).

use std::sync::atomic::{AtomicU8, Ordering};

use futures::StreamExt;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::http::{self, Client, Failure, u64_at};
use super::{ChatRequest, ChatResponse, Content, LlmError, Role, StopReason, ToolChoice, Usage};

/// What the OpenAI-compatible client learns about its server.
pub(super) struct OpenAi {
    max_tokens_field: &'static str,
    /// How this server takes tools, as learnt from its refusals ([`Answering`] as a number).
    answering: AtomicU8,
}

/// How a request with tools is sent. Servers without tool calling refuse `tools` (vLLM without
/// `--enable-auto-tool-choice --tool-call-parser`, llama.cpp without `--jinja`); the client then
/// falls back, once per process, down this list. With one tool (the architect's `submit_spec`)
/// its schema becomes a structured output, which servers enforce by constrained decoding, and
/// the JSON answer comes back as a call of that tool; with several, or when structured outputs
/// are refused too, the request goes without tools (the prompts describe a text protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answering {
    Tools = 0,
    /// `response_format: {type: "json_schema", json_schema: {name, schema}}`: llama-server,
    /// vLLM, Ollama, LM Studio, OpenAI.
    JsonSchema = 1,
    /// `response_format: {type: "json_object", schema}`: llama-cpp-python's server, which
    /// refuses `json_schema` with an HTTP 500.
    JsonObject = 2,
    Text = 3,
}

impl Answering {
    fn from_u8(n: u8) -> Self {
        match n {
            0 => Answering::Tools,
            1 => Answering::JsonSchema,
            2 => Answering::JsonObject,
            _ => Answering::Text,
        }
    }

    /// The next way to try after the server refused this one.
    fn fallback(self, req: &ChatRequest) -> Option<Self> {
        match self {
            Answering::Tools if req.tools.is_empty() => None,
            Answering::Tools if req.tools.len() == 1 => Some(Answering::JsonSchema),
            Answering::Tools => Some(Answering::Text),
            Answering::JsonSchema => Some(Answering::JsonObject),
            Answering::JsonObject => Some(Answering::Text),
            Answering::Text => None,
        }
    }

    /// The one tool whose schema is the structured output, in this mode.
    fn structured(self, req: &ChatRequest) -> Option<&super::Tool> {
        match (self, req.tools.as_slice()) {
            (Answering::JsonSchema | Answering::JsonObject, [tool]) => Some(tool),
            _ => None,
        }
    }
}

impl OpenAi {
    pub(super) fn new(base_url: &str) -> Self {
        Self {
            max_tokens_field: max_tokens_field(base_url),
            answering: AtomicU8::new(Answering::Tools as u8),
        }
    }

    /// One call of Chat Completions, falling back (once per process) to a way of answering the
    /// server accepts.
    pub(super) async fn chat(
        &self,
        client: &Client,
        req: &ChatRequest,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, LlmError> {
        let settings = &client.settings;
        let model = settings.model.as_str();
        // A small local server: bound the tools' schemas so no answer outgrows the limit.
        let bounded;
        let req = match settings.context_tokens {
            Some(_) if !req.tools.is_empty() => {
                let limit = settings.output_limit(req.max_tokens);
                let mut r = req.clone();
                for t in &mut r.tools {
                    t.input_schema = super::bound::bound(&t.input_schema, limit);
                }
                bounded = r;
                &bounded
            }
            _ => req,
        };
        loop {
            let answering = Answering::from_u8(self.answering.load(Ordering::Relaxed));
            let mut body = request_body(req, model, settings.stream, self.max_tokens_field);
            body[self.max_tokens_field] = json!(settings.output_limit(req.max_tokens));
            if !req.tools.is_empty() && answering != Answering::Tools {
                without_tools(&mut body, req, answering);
            }
            let result = client
                .chat(
                    cancel,
                    "chat/completions",
                    headers(client)?,
                    &body,
                    |resp| read_stream(resp, model.to_owned()),
                    parse_completion,
                )
                .await;
            match result {
                Err(LlmError::Unsupported(why)) => {
                    let Some(next) = answering.fallback(req) else {
                        return Err(LlmError::Unsupported(why));
                    };
                    tracing::warn!(%why, from = ?answering, to = ?next, "the model server refused a feature; falling back");
                    self.answering.store(next as u8, Ordering::Relaxed);
                }
                Ok(resp) => {
                    return Ok(match answering.structured(req) {
                        Some(tool) => as_tool_call(resp, &tool.name),
                        None => resp,
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn headers(client: &Client) -> Result<HeaderMap, LlmError> {
    let mut h = HeaderMap::new();
    if let Some(v) = client.key_header("Bearer ")? {
        h.insert(AUTHORIZATION, v);
    }
    Ok(h)
}

/// Which field carries the output limit.
///
/// OpenAI itself deprecated `max_tokens` and its reasoning models (o-series, GPT-5.x) reject it,
/// so official OpenAI endpoints (api.openai.com, Azure OpenAI and Azure AI Foundry:
/// `*.openai.azure.com`, `*.services.ai.azure.com`, `*.cognitiveservices.azure.com`) get
/// `max_completion_tokens`.
/// Every other OpenAI-compatible server gets `max_tokens`: Ollama, llama.cpp, LM Studio and
/// older vLLM honour only that one, and Ollama silently *ignores* `max_completion_tokens`
/// (leaving the answer unbounded), while vLLM and OpenRouter accept both.
pub(crate) fn max_tokens_field(base_url: &str) -> &'static str {
    let host = url::Url::parse(base_url.trim())
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    const AZURE: [&str; 3] = [
        ".openai.azure.com",
        ".services.ai.azure.com",
        ".cognitiveservices.azure.com",
    ];
    if host == "api.openai.com" || AZURE.iter().any(|suffix| host.ends_with(suffix)) {
        "max_completion_tokens"
    } else {
        "max_tokens"
    }
}

/// The JSON body for `req`.
pub(crate) fn request_body(
    req: &ChatRequest,
    model: &str,
    stream: bool,
    max_tokens_field: &str,
) -> Value {
    let mut messages = Vec::new();
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system}));
    }
    for m in &req.messages {
        push_message(&mut messages, m);
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), Value::Array(messages));
    body.insert(max_tokens_field.into(), json!(req.max_tokens));
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.input_schema,
                }})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        let choice = match &req.tool_choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::Any => json!("required"),
            ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
            ToolChoice::None => json!("none"),
        };
        body.insert("tool_choice".into(), choice);
    }
    if stream {
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    // `cache_prefix` needs nothing here: OpenAI caches long shared prefixes automatically, and
    // the system prompt and tools already come first.
    Value::Object(body)
}

/// Rewrite `body` for a server without tool calling: no `tools` / `tool_choice`, earlier tool
/// calls and results as plain text, and the structured output of `answering`, if any.
fn without_tools(body: &mut Value, req: &ChatRequest, answering: Answering) {
    if let Some(o) = body.as_object_mut() {
        o.remove("tools");
        o.remove("tool_choice");
    }
    let mut messages = Vec::new();
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system}));
    }
    for m in &req.messages {
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        let text: Vec<String> = m
            .content
            .iter()
            .filter_map(|c| match c {
                Content::Text(t) => Some(t.clone()),
                Content::ToolUse { input, .. } => Some(input.to_string()),
                Content::ToolResult {
                    content, is_error, ..
                } => Some(if *is_error {
                    format!("Error: {content}")
                } else {
                    content.clone()
                }),
                Content::Thinking { .. } | Content::RedactedThinking { .. } => None,
            })
            .collect();
        messages.push(json!({"role": role, "content": text.join("\n\n")}));
    }
    body["messages"] = Value::Array(messages);
    if let Some(tool) = answering.structured(req) {
        body["response_format"] = match answering {
            Answering::JsonObject => json!({"type": "json_object", "schema": tool.input_schema}),
            _ => json!({"type": "json_schema", "json_schema": {
                "name": tool.name, "schema": tool.input_schema,
            }}),
        };
    }
}

/// A structured-output answer as the call of `tool` it stands for; an answer that is not a JSON
/// object (cut off, or the server ignored the format) stays text.
fn as_tool_call(mut resp: ChatResponse, tool: &str) -> ChatResponse {
    let text = resp.text();
    let trimmed = text
        .trim()
        .trim_start_matches("```json")
        .trim_start_matches("```")
        .trim_end_matches("```")
        .trim();
    if !resp.tool_calls().is_empty() {
        return resp;
    }
    if let Ok(input @ Value::Object(_)) = super::lenient_json(trimmed) {
        resp.content = vec![Content::ToolUse {
            id: "structured_output".into(),
            name: tool.to_owned(),
            input,
        }];
        if resp.stop == StopReason::EndTurn {
            resp.stop = StopReason::ToolUse;
        }
    }
    resp
}

/// One of our messages as one or more Chat Completions messages: tool results become
/// `role: tool` messages (first, since they must follow the assistant's `tool_calls`), the
/// text the rest of the turn.
fn push_message(out: &mut Vec<Value>, m: &super::Message) {
    let texts: Vec<&str> = m
        .content
        .iter()
        .filter_map(|c| match c {
            Content::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    let text = texts.join("\n\n");
    match m.role {
        Role::User => {
            for c in &m.content {
                if let Content::ToolResult {
                    tool_use_id,
                    content,
                    is_error,
                } = c
                {
                    // Chat Completions has no error flag: say it in the content.
                    let content = if *is_error {
                        format!("Error: {content}")
                    } else {
                        content.clone()
                    };
                    out.push(
                        json!({"role": "tool", "tool_call_id": tool_use_id, "content": content}),
                    );
                }
            }
            if !texts.is_empty() {
                out.push(json!({"role": "user", "content": text}));
            }
        }
        Role::Assistant => {
            let calls: Vec<Value> = m
                .content
                .iter()
                .filter_map(|c| match c {
                    Content::ToolUse { id, name, input } => Some(json!({
                        "id": id, "type": "function",
                        "function": {"name": name, "arguments": input.to_string()},
                    })),
                    _ => None,
                })
                .collect();
            // A string even beside tool calls: llama-cpp-python's server refuses `null`.
            let mut v = json!({"role": "assistant", "content": text});
            if !calls.is_empty() {
                v["tool_calls"] = Value::Array(calls);
            }
            out.push(v);
        }
    }
}

fn stop_reason(s: &str) -> StopReason {
    match s {
        "stop" => StopReason::EndTurn,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "length" => StopReason::MaxTokens,
        "content_filter" => StopReason::Refusal,
        other => StopReason::Other(other.to_owned()),
    }
}

/// OpenAI counts cached tokens inside `prompt_tokens`; we count them apart (see [`Usage`]).
fn usage(u: &Value) -> Usage {
    let prompt = u64_at(u, "/prompt_tokens");
    let cached = u64_at(u, "/prompt_tokens_details/cached_tokens").min(prompt);
    Usage {
        input_tokens: prompt - cached,
        output_tokens: u64_at(u, "/completion_tokens"),
        cache_read_tokens: cached,
        cache_write_tokens: 0,
    }
}

fn arguments(name: &str, args: &str) -> Result<Value, LlmError> {
    if args.trim().is_empty() {
        return Ok(json!({}));
    }
    super::lenient_json(args).map_err(|e| {
        LlmError::Malformed(format!("arguments of tool call {name} are not JSON: {e}"))
    })
}

/// An `{"error": …}` body or chunk inside a 200 answer. A numeric 4xx `code` keeps its
/// classification (not retried); anything else counts as a server error (retried).
fn body_error(v: &Value) -> LlmError {
    let text = v.to_string();
    let code = v
        .pointer("/error/code")
        .and_then(|c| {
            c.as_u64()
                .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
        })
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..=599).contains(c))
        .unwrap_or(500);
    match http::classify(code, &text, None) {
        LlmError::Status { status, message } => LlmError::Server { status, message },
        other => other,
    }
}

/// The items of the array at `pointer`; none when there is no array there.
fn array_at<'v>(v: &'v Value, pointer: &str) -> impl Iterator<Item = &'v Value> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// A non-streamed `chat.completion`.
pub(crate) fn parse_completion(v: &Value, requested_model: &str) -> Result<ChatResponse, LlmError> {
    if v.get("error").is_some_and(|e| !e.is_null()) {
        return Err(body_error(v));
    }
    let choice = v
        .pointer("/choices/0")
        .ok_or_else(|| LlmError::Malformed("answer has no choices".into()))?;
    let msg = choice
        .get("message")
        .ok_or_else(|| LlmError::Malformed("choice has no message".into()))?;
    let mut content = Vec::new();
    if let Some(t) = msg
        .get("content")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        content.push(Content::Text(t.to_owned()));
    }
    let refusal = msg
        .get("refusal")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty());
    if let Some(r) = refusal {
        content.push(Content::Text(r.to_owned()));
    }
    for call in array_at(msg, "/tool_calls") {
        let name = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .ok_or_else(|| LlmError::Malformed("tool call without a name".into()))?;
        let args = call.pointer("/function/arguments");
        let input = match args {
            Some(Value::String(s)) => arguments(name, s)?,
            // Some servers send the object itself.
            Some(obj @ Value::Object(_)) => obj.clone(),
            _ => json!({}),
        };
        content.push(Content::ToolUse {
            id: call
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            name: name.to_owned(),
            input,
        });
    }
    let finish = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .ok_or_else(|| LlmError::Malformed("choice has no finish_reason".into()))?;
    Ok(ChatResponse {
        content,
        stop: match refusal {
            Some(_) => StopReason::Refusal,
            None => stop_reason(finish),
        },
        usage: v.get("usage").map(usage).unwrap_or_default(),
        model: v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or(requested_model)
            .to_owned(),
    })
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    args: String,
}

/// Assemble a streamed completion. Complete once a `finish_reason` arrived and the stream ended
/// (`[DONE]` or end of body); before that, an ended stream is [`LlmError::Malformed`].
async fn read_stream(resp: reqwest::Response, mut model: String) -> Result<ChatResponse, Failure> {
    let mut events = std::pin::pin!(http::events(resp));
    let mut text = String::new();
    let mut refusal = String::new();
    let mut calls: Vec<PartialCall> = Vec::new();
    let mut finish: Option<String> = None;
    let mut use_: Option<Usage> = None;

    while let Some(ev) = events.next().await {
        let ev = ev?;
        let data = ev.data.trim();
        if data.is_empty() {
            continue;
        }
        if data == "[DONE]" {
            break;
        }
        let v = http::parse_data(data)?;
        if v.get("error").is_some_and(|e| !e.is_null()) {
            return Err(body_error(&v).into());
        }
        if let Some(m) = v
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
        {
            model = m.to_owned();
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            use_ = Some(usage(u));
        }
        let Some(choice) = v.pointer("/choices/0") else {
            continue;
        };
        if let Some(t) = choice.pointer("/delta/content").and_then(Value::as_str) {
            text.push_str(t);
        }
        if let Some(t) = choice.pointer("/delta/refusal").and_then(Value::as_str) {
            refusal.push_str(t);
        }
        for tc in array_at(choice, "/delta/tool_calls") {
            let id = tc
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            // By index; servers without indices (some Ollama versions) send whole calls, each
            // with a fresh id.
            let slot = match tc.get("index").and_then(Value::as_u64) {
                Some(i) => usize::try_from(i)
                    .unwrap_or(usize::MAX)
                    .min(calls.len() + 64),
                None if id.is_some() || calls.is_empty() => calls.len(),
                None => calls.len() - 1,
            };
            while calls.len() <= slot {
                calls.push(PartialCall::default());
            }
            let call = &mut calls[slot];
            if let Some(id) = id {
                call.id = id.to_owned();
            }
            if let Some(n) = tc.pointer("/function/name").and_then(Value::as_str) {
                call.name.push_str(n);
            }
            match tc.pointer("/function/arguments") {
                Some(Value::String(a)) => call.args.push_str(a),
                Some(obj @ Value::Object(_)) => call.args.push_str(&obj.to_string()),
                _ => {}
            }
        }
        if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
            finish = Some(f.to_owned());
        }
    }

    let Some(finish) = finish else {
        return Err(LlmError::Malformed("stream ended without a finish_reason".into()).into());
    };
    let mut content = Vec::new();
    if !text.is_empty() {
        content.push(Content::Text(text));
    }
    let refused = !refusal.is_empty();
    if refused {
        content.push(Content::Text(refusal));
    }
    for c in calls.into_iter().filter(|c| !c.name.is_empty()) {
        let input = arguments(&c.name, &c.args)?;
        content.push(Content::ToolUse {
            id: c.id,
            name: c.name,
            input,
        });
    }
    Ok(ChatResponse {
        content,
        stop: if refused {
            StopReason::Refusal
        } else {
            stop_reason(&finish)
        },
        usage: use_.unwrap_or_default(),
        model,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Message, Tool};

    #[test]
    fn max_tokens_field_by_host() {
        assert_eq!(
            max_tokens_field("https://api.openai.com/v1"),
            "max_completion_tokens"
        );
        assert_eq!(
            max_tokens_field("https://x.openai.azure.com/openai/v1"),
            "max_completion_tokens"
        );
        assert_eq!(max_tokens_field("http://localhost:11434/v1"), "max_tokens");
        assert_eq!(
            max_tokens_field("https://openrouter.ai/api/v1"),
            "max_tokens"
        );
    }

    #[test]
    fn azure_ai_foundry_hosts_get_max_completion_tokens() {
        for url in [
            "https://my-resource.services.ai.azure.com/openai/v1",
            "https://my-resource.cognitiveservices.azure.com/openai/v1",
            "https://my-resource.openai.azure.com/openai/v1",
        ] {
            assert_eq!(max_tokens_field(url), "max_completion_tokens", "{url}");
        }
    }

    #[test]
    fn body_maps_tool_turns() {
        let req = ChatRequest {
            system: "sys".into(),
            messages: vec![
                Message::user("hi"),
                Message::assistant(vec![
                    Content::Text("calling".into()),
                    Content::ToolUse {
                        id: "c1".into(),
                        name: "f".into(),
                        input: json!({"a": 1}),
                    },
                ]),
                Message {
                    role: Role::User,
                    content: vec![
                        Content::tool_error("c1", "boom"),
                        Content::Text("go on".into()),
                    ],
                },
            ],
            tools: vec![Tool {
                name: "f".into(),
                description: "d".into(),
                input_schema: json!({"type": "object"}),
            }],
            tool_choice: ToolChoice::Any,
            max_tokens: 10,
            cache_prefix: true,
        };
        let b = request_body(&req, "m", true, "max_tokens");
        let msgs = b["messages"].as_array().expect("messages");
        assert_eq!(msgs[0]["role"], "system");
        assert_eq!(
            msgs[2]["tool_calls"][0]["function"]["arguments"],
            r#"{"a":1}"#
        );
        assert_eq!(
            msgs[3],
            json!({"role": "tool", "tool_call_id": "c1", "content": "Error: boom"})
        );
        assert_eq!(msgs[4], json!({"role": "user", "content": "go on"}));
        assert_eq!(b["tool_choice"], "required");
        assert_eq!(b["max_tokens"], 10);
        assert_eq!(b["stream_options"]["include_usage"], true);
    }

    #[test]
    fn usage_splits_cached_tokens() {
        let u = usage(&json!({"prompt_tokens": 100, "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 60}}));
        assert_eq!(
            (u.input_tokens, u.cache_read_tokens, u.output_tokens),
            (40, 60, 5)
        );
    }
}
