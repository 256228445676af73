//! The Anthropic Messages API client (`POST {base}/v1/messages`): request mapping (system
//! blocks, tools, `tool_choice`, prompt-caching breakpoints), the non-streamed answer and the
//! SSE event stream (`message_start`, `content_block_*`, `message_delta`, `message_stop`,
//! `ping`, `error`).

use std::collections::BTreeMap;

use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::http::{self, Client, Failure, u64_at};
use super::{ChatRequest, ChatResponse, Content, LlmError, Role, StopReason, ToolChoice, Usage};

const API_VERSION: &str = "2023-06-01";

fn headers(client: &Client) -> Result<HeaderMap, LlmError> {
    let mut h = HeaderMap::new();
    h.insert(
        HeaderName::from_static("anthropic-version"),
        HeaderValue::from_static(API_VERSION),
    );
    if let Some(v) = client.key_header("")? {
        h.insert(HeaderName::from_static("x-api-key"), v);
    }
    Ok(h)
}

/// One call of the Messages API.
pub(super) async fn chat(
    client: &Client,
    req: &ChatRequest,
    cancel: &CancellationToken,
) -> Result<ChatResponse, LlmError> {
    let settings = &client.settings;
    let mut body = request_body(req, &settings.model, settings.stream);
    body["max_tokens"] = json!(settings.output_limit(req.max_tokens));
    let model = settings.model.as_str();
    let headers = headers(client)?;
    client
        .chat(
            cancel,
            "v1/messages",
            headers,
            &body,
            |resp| read_stream(resp, model.to_owned()),
            parse_message,
        )
        .await
}

fn ephemeral() -> Value {
    json!({"type": "ephemeral"})
}

/// The JSON body for `req`.
pub(crate) fn request_body(req: &ChatRequest, model: &str, stream: bool) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("max_tokens".into(), json!(req.max_tokens));
    if !req.system.is_empty() {
        let mut block = json!({"type": "text", "text": req.system});
        if req.cache_prefix {
            block["cache_control"] = ephemeral();
        }
        body.insert("system".into(), json!([block]));
    }

    let mut messages: Vec<Value> = req.messages.iter().map(message).collect();
    if req.cache_prefix {
        // The first user message is part of the prefix (the issue text, the repository
        // context): mark its last block. With system + tools that is 3 of the 4 breakpoints.
        let first_user = req.messages.iter().position(|m| m.role == Role::User);
        if let Some(last) = first_user
            .and_then(|i| messages.get_mut(i))
            .and_then(|m| m.get_mut("content"))
            .and_then(Value::as_array_mut)
            .and_then(|blocks| blocks.last_mut())
        {
            last["cache_control"] = ephemeral();
        }
    }
    body.insert("messages".into(), Value::Array(messages));

    if !req.tools.is_empty() {
        let n = req.tools.len();
        let tools: Vec<Value> = req
            .tools
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut v = json!({
                    "name": t.name,
                    "description": t.description,
                    "input_schema": t.input_schema,
                });
                if req.cache_prefix && i + 1 == n {
                    v["cache_control"] = ephemeral();
                }
                v
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        let choice = match &req.tool_choice {
            // Models that think by default answer forced tool use with a 400.
            ToolChoice::Any | ToolChoice::Tool(_) if thinks_by_default(model) => {
                json!({"type": "auto"})
            }
            ToolChoice::Auto => json!({"type": "auto"}),
            ToolChoice::Any => json!({"type": "any"}),
            ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
            ToolChoice::None => json!({"type": "none"}),
        };
        body.insert("tool_choice".into(), choice);
    }
    if stream {
        body.insert("stream".into(), json!(true));
    }
    Value::Object(body)
}

/// Models that run with adaptive thinking when the request has no `thinking` field (the 5.5
/// generation): they refuse `thinking: {type: "disabled"}` and forced tool choice, so neither is
/// ever sent to them (this client never sends `thinking` at all).
pub(crate) fn thinks_by_default(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    m.contains("5-5") || m.contains("5.5")
}

fn message(m: &super::Message) -> Value {
    let role = match m.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    let mut blocks: Vec<Value> = m
        .content
        .iter()
        // The API rejects empty text blocks.
        .filter(|c| !matches!(c, Content::Text(t) if t.is_empty()))
        .map(|c| match c {
            Content::Text(t) => json!({"type": "text", "text": t}),
            Content::ToolUse { id, name, input } => {
                json!({"type": "tool_use", "id": id, "name": name, "input": input})
            }
            Content::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => {
                let mut v =
                    json!({"type": "tool_result", "tool_use_id": tool_use_id, "content": content});
                if *is_error {
                    v["is_error"] = json!(true);
                }
                v
            }
            Content::Thinking {
                thinking,
                signature,
            } => json!({"type": "thinking", "thinking": thinking, "signature": signature}),
            Content::RedactedThinking { data } => {
                json!({"type": "redacted_thinking", "data": data})
            }
        })
        .collect();
    if blocks.is_empty() {
        blocks.push(json!({"type": "text", "text": "(empty)"}));
    }
    json!({"role": role, "content": blocks})
}

fn stop_reason(s: Option<&str>) -> Result<StopReason, LlmError> {
    Ok(match s {
        Some("end_turn") | Some("stop_sequence") => StopReason::EndTurn,
        Some("tool_use") => StopReason::ToolUse,
        Some("max_tokens") => StopReason::MaxTokens,
        Some("refusal") => StopReason::Refusal,
        Some("pause_turn") => StopReason::PauseTurn,
        Some("model_context_window_exceeded") => StopReason::ContextWindowExceeded,
        Some(other) => StopReason::Other(other.to_owned()),
        None => return Err(LlmError::Malformed("answer has no stop_reason".into())),
    })
}

/// Usage fields present in `u` overwrite those in `into` (message_delta repeats them
/// cumulatively on newer API versions; older ones carry only `output_tokens`).
fn merge_usage(into: &mut Usage, u: &Value) {
    let set = |field: &mut u64, name: &str| {
        if let Some(n) = u.get(name).and_then(Value::as_u64) {
            *field = n;
        }
    };
    set(&mut into.input_tokens, "input_tokens");
    set(&mut into.output_tokens, "output_tokens");
    set(&mut into.cache_read_tokens, "cache_read_input_tokens");
    set(&mut into.cache_write_tokens, "cache_creation_input_tokens");
}

/// A non-streamed `message` object.
pub(crate) fn parse_message(v: &Value, requested_model: &str) -> Result<ChatResponse, LlmError> {
    if v.get("type").and_then(Value::as_str) == Some("error") {
        return Err(stream_error(v));
    }
    let blocks = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| LlmError::Malformed("answer has no content array".into()))?;
    let mut content = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => {
                let t = b.get("text").and_then(Value::as_str).unwrap_or_default();
                content.push(Content::Text(t.to_owned()));
            }
            Some("tool_use") => content.push(Content::ToolUse {
                id: str_field(b, "id")?,
                name: str_field(b, "name")?,
                input: b.get("input").cloned().unwrap_or_else(|| json!({})),
            }),
            Some("thinking") => content.push(Content::Thinking {
                thinking: str_field(b, "thinking")?,
                signature: str_field(b, "signature")?,
            }),
            Some("redacted_thinking") => content.push(Content::RedactedThinking {
                data: str_field(b, "data")?,
            }),
            // Server tool blocks …: not ours to surface.
            _ => {}
        }
    }
    let mut usage = Usage::default();
    if let Some(u) = v.get("usage") {
        merge_usage(&mut usage, u);
    }
    Ok(ChatResponse {
        content,
        stop: stop_reason(v.get("stop_reason").and_then(Value::as_str))?,
        usage,
        model: v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or(requested_model)
            .to_owned(),
    })
}

fn str_field(v: &Value, name: &str) -> Result<String, LlmError> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| LlmError::Malformed(format!("block without {name}")))
}

/// An `error` event (or error body) as an [`LlmError`].
fn stream_error(v: &Value) -> LlmError {
    let kind = v
        .pointer("/error/type")
        .and_then(Value::as_str)
        .unwrap_or("error");
    let message = http::truncate(
        v.pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("(no message)"),
    );
    match kind {
        "overloaded_error" => LlmError::Overloaded,
        "rate_limit_error" => LlmError::RateLimited {
            retry_after: None,
            message,
        },
        "authentication_error" | "permission_error" => LlmError::Auth(format!("{kind}: {message}")),
        "invalid_request_error" | "not_found_error" | "request_too_large" => {
            LlmError::BadRequest(format!("{kind}: {message}"))
        }
        _ => LlmError::Server {
            status: 500,
            message: format!("{kind}: {message}"),
        },
    }
}

#[derive(Default)]
struct Block {
    tool: Option<(String, String)>,
    /// The text, or the thinking of a thinking block.
    text: String,
    json: String,
    /// A thinking block: its signature so far.
    thinking: Option<String>,
    /// A redacted thinking block's data.
    redacted: Option<String>,
}

impl Block {
    /// The finished block as content; `None` for an empty text block.
    fn finish(self) -> Result<Option<Content>, LlmError> {
        if let Some(signature) = self.thinking {
            return Ok(Some(Content::Thinking {
                thinking: self.text,
                signature,
            }));
        }
        if let Some(data) = self.redacted {
            return Ok(Some(Content::RedactedThinking { data }));
        }
        Ok(match self.tool {
            Some((id, name)) => {
                let input = if self.json.trim().is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(&self.json).map_err(|e| {
                        LlmError::Malformed(format!("tool input for {name} is not JSON: {e}"))
                    })?
                };
                Some(Content::ToolUse { id, name, input })
            }
            None if !self.text.is_empty() => Some(Content::Text(self.text)),
            None => None,
        })
    }
}

/// Assemble a streamed message.
async fn read_stream(resp: reqwest::Response, mut model: String) -> Result<ChatResponse, Failure> {
    let mut events = std::pin::pin!(http::events(resp));
    let mut usage = Usage::default();
    let mut stop: Option<String> = None;
    let mut blocks: BTreeMap<u64, Block> = BTreeMap::new();
    let mut started = false;

    while let Some(ev) = events.next().await {
        let ev = ev?;
        if ev.data.trim().is_empty() {
            continue;
        }
        let v = http::parse_data(&ev.data)?;
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(ev.event.as_str());
        match kind {
            "message_start" => {
                started = true;
                if let Some(m) = v.pointer("/message/model").and_then(Value::as_str) {
                    model = m.to_owned();
                }
                if let Some(u) = v.pointer("/message/usage") {
                    merge_usage(&mut usage, u);
                }
            }
            "content_block_start" => {
                let index = u64_at(&v, "/index");
                let cb = v.get("content_block").cloned().unwrap_or(Value::Null);
                let mut block = Block::default();
                match cb.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        block.tool = Some((str_field(&cb, "id")?, str_field(&cb, "name")?));
                    }
                    Some("text") => {
                        block.text = cb
                            .get("text")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                    }
                    Some("thinking") => block.thinking = Some(String::new()),
                    Some("redacted_thinking") => block.redacted = Some(str_field(&cb, "data")?),
                    _ => {}
                }
                blocks.insert(index, block);
            }
            "content_block_delta" => {
                let index = u64_at(&v, "/index");
                let block = blocks.entry(index).or_default();
                match v.pointer("/delta/type").and_then(Value::as_str) {
                    Some("text_delta") => block.text.push_str(
                        v.pointer("/delta/text")
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                    ),
                    Some("input_json_delta") => block.json.push_str(
                        v.pointer("/delta/partial_json")
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                    ),
                    Some("thinking_delta") => block.text.push_str(
                        v.pointer("/delta/thinking")
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                    ),
                    Some("signature_delta") => block.thinking.get_or_insert_default().push_str(
                        v.pointer("/delta/signature")
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                    ),
                    // citations_delta …
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(s) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    stop = Some(s.to_owned());
                }
                if let Some(u) = v.get("usage") {
                    merge_usage(&mut usage, u);
                }
            }
            "message_stop" => {
                if !started {
                    return Err(
                        LlmError::Malformed("message_stop before message_start".into()).into(),
                    );
                }
                let mut content = Vec::new();
                for (_, b) in blocks {
                    content.extend(b.finish()?);
                }
                return Ok(ChatResponse {
                    content,
                    stop: stop_reason(stop.as_deref())?,
                    usage,
                    model,
                });
            }
            "error" => return Err(stream_error(&v).into()),
            // ping, content_block_stop and event types added later.
            _ => {}
        }
    }
    Err(LlmError::Malformed("stream ended before message_stop".into()).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Message, Tool};

    fn req() -> ChatRequest {
        ChatRequest {
            system: "sys".into(),
            messages: vec![
                Message::user("hello"),
                Message::assistant(vec![Content::ToolUse {
                    id: "t1".into(),
                    name: "f".into(),
                    input: json!({"a": 1}),
                }]),
                Message::tool_results(vec![Content::tool_error("t1", "boom")]),
            ],
            tools: vec![
                Tool {
                    name: "f".into(),
                    description: "d".into(),
                    input_schema: json!({"type": "object"}),
                },
                Tool {
                    name: "g".into(),
                    description: "d".into(),
                    input_schema: json!({"type": "object"}),
                },
            ],
            tool_choice: ToolChoice::Tool("f".into()),
            max_tokens: 100,
            cache_prefix: true,
        }
    }

    #[test]
    fn body_maps_everything() {
        let b = request_body(&req(), "claude-x", true);
        assert_eq!(b["system"][0]["cache_control"]["type"], "ephemeral");
        assert!(b["tools"][0].get("cache_control").is_none());
        assert_eq!(b["tools"][1]["cache_control"]["type"], "ephemeral");
        assert_eq!(
            b["messages"][0]["content"][0]["cache_control"]["type"],
            "ephemeral"
        );
        assert!(
            b["messages"][2]["content"][0]
                .get("cache_control")
                .is_none()
        );
        assert_eq!(b["messages"][1]["content"][0]["type"], "tool_use");
        assert_eq!(b["messages"][2]["content"][0]["is_error"], true);
        assert_eq!(b["tool_choice"], json!({"type": "tool", "name": "f"}));
        assert_eq!(b["stream"], true);

        let mut plain = req();
        plain.cache_prefix = false;
        plain.tools.clear();
        let b = request_body(&plain, "claude-x", false);
        assert!(!b.to_string().contains("cache_control"));
        assert!(b.get("tool_choice").is_none() && b.get("stream").is_none());
    }

    #[test]
    fn stream_errors_map() {
        let e = stream_error(
            &json!({"type": "error", "error": {"type": "overloaded_error", "message": "x"}}),
        );
        assert!(matches!(e, LlmError::Overloaded));
        let e = stream_error(
            &json!({"type": "error", "error": {"type": "invalid_request_error", "message": "x"}}),
        );
        assert!(!e.is_retryable());
    }
}
