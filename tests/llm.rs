//! The language-model layer against `LlmFake`: both providers, streamed and not — answers, tool
//! calls, usage, prompt caching, retries, timeouts, cancellation and key hygiene.

#[path = "support/llm_fake.rs"]
mod llm_fake;

use std::sync::Arc;
use std::time::{Duration, Instant};

use llm_fake::{Fault, LlmFake, Reply};
use secrecy::SecretString;
use serde_json::{Value, json};
use specbot::llm::Role;
use specbot::llm::{
    ChatModel, ChatRequest, ChatResponse, Content, LlmError, LlmSettings, Message, Provider,
    StopReason, Tool, ToolChoice, connect,
};
use tokio_util::sync::CancellationToken;

const KEY: &str = "sk-test-SECRET-0123456789abcdef";

const COMBOS: [(Provider, bool); 4] = [
    (Provider::Anthropic, false),
    (Provider::Anthropic, true),
    (Provider::OpenAi, false),
    (Provider::OpenAi, true),
];

fn settings(fake: &LlmFake, provider: Provider, stream: bool) -> LlmSettings {
    let mut s = LlmSettings::defaults_for(provider);
    s.base_url = match provider {
        Provider::Anthropic => fake.anthropic_base_url(),
        Provider::OpenAi => fake.openai_base_url(),
    };
    s.api_key = Some(SecretString::from(KEY));
    s.stream = stream;
    s.request_timeout = Duration::from_secs(10);
    s.max_retries = 2;
    s.max_retry_wait = Duration::from_millis(20);
    s.retry_base = Duration::from_millis(1);
    s
}

fn model(s: &LlmSettings) -> Arc<dyn ChatModel> {
    connect(s, reqwest::Client::new()).expect("connect")
}

fn hello() -> ChatRequest {
    ChatRequest::new("You write specs.", vec![Message::user("Say hello.")])
}

fn spec_tool() -> Tool {
    Tool {
        name: "write_spec".into(),
        description: "Write the spec files".into(),
        input_schema: json!({"type": "object", "properties": {"title": {"type": "string"}}}),
    }
}

async fn ask(m: &Arc<dyn ChatModel>, req: &ChatRequest) -> Result<ChatResponse, LlmError> {
    m.chat(req, &CancellationToken::new()).await
}

fn label(p: Provider, stream: bool) -> String {
    format!("{p} stream={stream}")
}

#[tokio::test]
async fn text_answer() {
    for (p, stream) in COMBOS {
        let fake = LlmFake::start().await;
        let s = settings(&fake, p, stream);
        let text = "Hello, wörld! A reply long enough to arrive in several deltas.";
        fake.push_text(text);
        let r = ask(&model(&s), &hello()).await.expect("answer");
        let at = label(p, stream);
        assert_eq!(r.text(), text, "{at}");
        assert_eq!(r.stop, StopReason::EndTurn, "{at}");
        assert!(r.tool_calls().is_empty(), "{at}");
        assert_eq!(r.model, s.model, "{at}");
        assert!(
            r.usage.input_tokens > 0 && r.usage.output_tokens > 0,
            "{at}: {:?}",
            r.usage
        );

        let reqs = fake.requests();
        assert_eq!(reqs.len(), 1, "{at}");
        let req = &reqs[0];
        assert_eq!(req.api_key(), Some(KEY), "{at}: the key is sent");
        assert_eq!(req.is_stream(), stream, "{at}");
        assert_eq!(req.body["model"], s.model.as_str(), "{at}");
        match p {
            Provider::Anthropic => {
                assert_eq!(req.path, "/v1/messages");
                assert_eq!(req.header("anthropic-version"), Some("2023-06-01"));
                assert_eq!(req.header("authorization"), None);
                assert_eq!(req.body["system"][0]["text"], "You write specs.");
                assert_eq!(req.body["max_tokens"], 4096);
            }
            Provider::OpenAi => {
                assert_eq!(req.path, "/v1/chat/completions");
                assert_eq!(req.header("x-api-key"), None);
                assert_eq!(req.body["messages"][0]["role"], "system");
                // A local (non-OpenAI) server gets the field every compatible server honours.
                assert_eq!(req.body["max_tokens"], 4096);
                if stream {
                    assert_eq!(req.body["stream_options"]["include_usage"], true);
                } else {
                    assert!(req.body.get("stream_options").is_none());
                }
            }
        }
        assert_eq!(fake.remaining(), 0);
    }
}

#[tokio::test]
async fn openai_without_key_sends_no_authorization() {
    let fake = LlmFake::start().await;
    let mut s = settings(&fake, Provider::OpenAi, true);
    s.api_key = None;
    s.model = "llama3.1:8b".into();
    fake.push_text("hi");
    let r = ask(&model(&s), &hello()).await.expect("answer");
    assert_eq!(r.text(), "hi");
    assert_eq!(fake.requests()[0].header("authorization"), None);
}

#[tokio::test]
async fn tool_call_with_input_split_across_deltas() {
    let input = json!({
        "title": "Rate limiting for the webhook endpoint",
        "files": [{"path": "specs/IMPLEMENT-42.md", "body": "# Spec\n\nÜnïcode and \"quotes\"."}],
        "priority": 2,
    });
    for (p, stream) in COMBOS {
        let at = label(p, stream);
        let fake = LlmFake::start().await;
        let s = settings(&fake, p, stream);
        fake.push_tool_call("write_spec", input.clone());
        let mut req = hello();
        req.tools = vec![spec_tool()];
        req.tool_choice = ToolChoice::Tool("write_spec".into());
        let r = ask(&model(&s), &req).await.expect("answer");
        assert_eq!(r.stop, StopReason::ToolUse, "{at}");
        let calls = r.tool_calls();
        assert_eq!(calls.len(), 1, "{at}");
        assert_eq!(calls[0].name, "write_spec", "{at}");
        assert_eq!(calls[0].input, &input, "{at}");
        assert!(!calls[0].id.is_empty(), "{at}");

        let body = &fake.requests()[0].body;
        match p {
            Provider::Anthropic => {
                assert_eq!(
                    body["tool_choice"],
                    json!({"type": "tool", "name": "write_spec"})
                );
                assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
            }
            Provider::OpenAi => {
                assert_eq!(
                    body["tool_choice"],
                    json!({"type": "function", "function": {"name": "write_spec"}})
                );
                assert_eq!(body["tools"][0]["function"]["parameters"]["type"], "object");
            }
        }

        // Continue the conversation with the tool result.
        let id = calls[0].id.to_owned();
        fake.push_reply(Reply {
            text: Some("Done: one file.".into()),
            tool_calls: vec![
                ("read_file".into(), json!({"path": "a.rs"})),
                ("read_file".into(), json!({"path": "b.rs"})),
            ],
            ..Reply::default()
        });
        req.messages.push(r.to_message());
        req.messages
            .push(Message::tool_results(vec![Content::tool_result(
                id.clone(),
                "written",
            )]));
        req.tool_choice = ToolChoice::Auto;
        req.tools.push(Tool {
            name: "read_file".into(),
            ..spec_tool()
        });
        let r2 = ask(&model(&s), &req).await.expect("second answer");
        assert_eq!(r2.text(), "Done: one file.", "{at}");
        let paths: Vec<&Value> = r2.tool_calls().iter().map(|c| &c.input["path"]).collect();
        assert_eq!(
            paths,
            [&json!("a.rs"), &json!("b.rs")],
            "{at}: calls kept apart, in order"
        );

        let body = &fake.requests()[1].body;
        let msgs = body["messages"].as_array().expect("messages");
        match p {
            Provider::Anthropic => {
                assert_eq!(msgs[1]["content"][0]["type"], "tool_use");
                assert_eq!(msgs[1]["content"][0]["input"], input);
                assert_eq!(msgs[2]["content"][0]["type"], "tool_result");
                assert_eq!(msgs[2]["content"][0]["tool_use_id"], id.as_str());
            }
            Provider::OpenAi => {
                assert_eq!(msgs[2]["tool_calls"][0]["id"], id.as_str());
                assert_eq!(msgs[3]["role"], "tool");
                assert_eq!(msgs[3]["tool_call_id"], id.as_str());
            }
        }
        assert_eq!(fake.remaining(), 0);
    }
}

#[tokio::test]
async fn usage_figures_and_prompt_caching() {
    for (p, stream) in COMBOS {
        let at = label(p, stream);
        let fake = LlmFake::start().await;
        let s = settings(&fake, p, stream);
        let m = model(&s);
        let mut req = hello();
        req.system = "A long, stable system prompt. ".repeat(20);
        req.tools = vec![spec_tool()];
        req.cache_prefix = true;

        fake.push_reply(Reply {
            text: Some("first".into()),
            usage: (1234, 56),
            ..Reply::default()
        });
        let r = ask(&m, &req).await.expect("first");
        assert_eq!(
            (r.usage.input_tokens, r.usage.output_tokens),
            (1234, 56),
            "{at}"
        );
        assert_eq!(r.usage.cache_read_tokens, 0, "{at}");
        match p {
            Provider::Anthropic => assert!(r.usage.cache_write_tokens > 0, "{at}: {:?}", r.usage),
            Provider::OpenAi => assert_eq!(r.usage.cache_write_tokens, 0, "{at}"),
        }

        fake.push_reply(Reply {
            text: Some("second".into()),
            usage: (10, 5),
            ..Reply::default()
        });
        let r = ask(&m, &req).await.expect("second");
        assert_eq!(
            (r.usage.input_tokens, r.usage.output_tokens),
            (10, 5),
            "{at}"
        );
        assert!(r.usage.cache_read_tokens > 0, "{at}: {:?}", r.usage);
        assert_eq!(r.usage.cache_write_tokens, 0, "{at}");
        assert_eq!(
            r.usage.prompt_tokens(),
            10 + r.usage.cache_read_tokens,
            "{at}"
        );
    }
}

#[tokio::test]
async fn cache_control_on_anthropic_only_when_asked() {
    for stream in [false, true] {
        let fake = LlmFake::start().await;
        let s = settings(&fake, Provider::Anthropic, stream);
        let m = model(&s);
        let mut req = hello();
        req.tools = vec![
            spec_tool(),
            Tool {
                name: "read_file".into(),
                description: "Read a file".into(),
                input_schema: json!({"type": "object"}),
            },
        ];
        req.messages.push(Message::assistant_text("Hello."));
        req.messages.push(Message::user("Again."));
        req.cache_prefix = true;
        fake.push_text("ok");
        ask(&m, &req).await.expect("cached");
        req.cache_prefix = false;
        fake.push_text("ok");
        ask(&m, &req).await.expect("uncached");

        let reqs = fake.requests();
        let b = &reqs[0].body;
        let eph = json!({"type": "ephemeral"});
        assert_eq!(b["system"][0]["cache_control"], eph);
        assert!(b["tools"][0].get("cache_control").is_none());
        assert_eq!(b["tools"][1]["cache_control"], eph, "last tool");
        assert_eq!(
            b["messages"][0]["content"][0]["cache_control"], eph,
            "first user message"
        );
        assert!(
            b["messages"][2]["content"][0]
                .get("cache_control")
                .is_none()
        );
        assert!(!reqs[1].body.to_string().contains("cache_control"));
    }
}

#[tokio::test]
async fn rate_limit_is_retried() {
    for (p, stream) in COMBOS {
        let at = label(p, stream);
        let fake = LlmFake::start().await;
        let s = settings(&fake, p, stream);
        // retry-after: 30 s, capped by max_retry_wait (20 ms).
        fake.push_fault(Fault::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(30)),
        });
        fake.push_text("after the limit");
        let started = Instant::now();
        let r = ask(&model(&s), &hello()).await.expect("answer after retry");
        assert_eq!(r.text(), "after the limit", "{at}");
        assert_eq!(fake.requests().len(), 2, "{at}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{at}: wait capped"
        );
        assert_eq!(fake.remaining(), 0);
    }
}

#[tokio::test]
async fn retry_after_is_honoured() {
    // OpenAI: retry-after-ms (150 ms) wins over the 1 ms backoff.
    let fake = LlmFake::start().await;
    let mut s = settings(&fake, Provider::OpenAi, true);
    s.max_retry_wait = Duration::from_secs(5);
    fake.push_fault(Fault::Status {
        status: 429,
        retry_after: Some(Duration::from_millis(150)),
    });
    fake.push_text("ok");
    let started = Instant::now();
    ask(&model(&s), &hello()).await.expect("answer");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(150), "{waited:?}");
    assert!(waited < Duration::from_secs(1), "{waited:?}");

    // Anthropic: retry-after in seconds.
    let fake = LlmFake::start().await;
    let mut s = settings(&fake, Provider::Anthropic, false);
    s.max_retry_wait = Duration::from_secs(5);
    fake.push_fault(Fault::Status {
        status: 429,
        retry_after: Some(Duration::from_secs(1)),
    });
    fake.push_text("ok");
    let started = Instant::now();
    ask(&model(&s), &hello()).await.expect("answer");
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn rate_limit_error_carries_retry_after_when_out_of_retries() {
    let fake = LlmFake::start().await;
    let mut s = settings(&fake, Provider::Anthropic, true);
    s.max_retries = 0;
    fake.push_fault(Fault::Status {
        status: 429,
        retry_after: Some(Duration::from_secs(7)),
    });
    match ask(&model(&s), &hello()).await {
        Err(LlmError::RateLimited {
            retry_after,
            message,
        }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
            assert!(message.contains("rate limit"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn overloaded_is_retried() {
    for (p, stream) in COMBOS {
        let at = label(p, stream);
        let fake = LlmFake::start().await;
        let s = settings(&fake, p, stream);
        fake.push_fault(Fault::Status {
            status: 529,
            retry_after: None,
        });
        fake.push_text("ok");
        let r = ask(&model(&s), &hello()).await.expect("answer");
        assert_eq!(r.text(), "ok", "{at}");
        assert_eq!(fake.requests().len(), 2, "{at}");

        let mut once = s.clone();
        once.max_retries = 0;
        fake.push_fault(Fault::Status {
            status: 529,
            retry_after: None,
        });
        let e = ask(&model(&once), &hello()).await.expect_err("overloaded");
        assert!(matches!(e, LlmError::Overloaded), "{at}: {e:?}");
    }
}

#[tokio::test]
async fn server_errors_exhaust_the_retries() {
    for (p, stream) in COMBOS {
        let at = label(p, stream);
        let fake = LlmFake::start().await;
        let s = settings(&fake, p, stream);
        for _ in 0..=s.max_retries {
            fake.push_fault(Fault::Status {
                status: 500,
                retry_after: None,
            });
        }
        let e = ask(&model(&s), &hello()).await.expect_err("fails");
        assert!(
            matches!(e, LlmError::Server { status: 500, .. }),
            "{at}: {e:?}"
        );
        assert!(e.is_retryable());
        assert_eq!(fake.requests().len(), s.max_retries as usize + 1, "{at}");
        assert_eq!(fake.remaining(), 0);
    }
}

#[tokio::test]
async fn bad_request_is_not_retried() {
    for (p, stream) in COMBOS {
        let at = label(p, stream);
        let fake = LlmFake::start().await;
        let s = settings(&fake, p, stream);
        fake.push_fault(Fault::Status {
            status: 400,
            retry_after: None,
        });
        fake.push_text("never reached");
        let e = ask(&model(&s), &hello()).await.expect_err("fails");
        match &e {
            LlmError::BadRequest(m) => {
                assert!(
                    m.contains("400") && m.contains("scripted invalid request"),
                    "{at}: {m}"
                )
            }
            other => panic!("{at}: {other:?}"),
        }
        assert_eq!(fake.requests().len(), 1, "{at}");
        assert_eq!(fake.remaining(), 1);
    }
}

#[tokio::test]
async fn auth_errors_are_not_retried_and_do_not_leak_the_key() {
    for (p, stream) in COMBOS {
        let at = label(p, stream);
        let fake = LlmFake::start().await;
        let s = settings(&fake, p, stream);
        assert!(!format!("{s:?}").contains(KEY), "{at}: Debug shows the key");
        fake.push_fault(Fault::Status {
            status: 401,
            retry_after: None,
        });
        let e = ask(&model(&s), &hello()).await.expect_err("fails");
        assert!(matches!(e, LlmError::Auth(_)), "{at}: {e:?}");
        assert!(
            !e.to_string().contains(KEY) && !format!("{e:?}").contains(KEY),
            "{at}"
        );
        assert_eq!(fake.requests().len(), 1, "{at}");
    }
}

#[tokio::test]
async fn broken_answers_are_malformed_and_retried() {
    for fault in [Fault::TruncatedStream, Fault::Malformed] {
        for (p, stream) in COMBOS {
            let at = format!("{} {fault:?}", label(p, stream));
            let fake = LlmFake::start().await;
            let s = settings(&fake, p, stream);
            fake.push_fault(fault.clone());
            fake.push_text("whole");
            let r = ask(&model(&s), &hello()).await.expect("retried");
            assert_eq!(r.text(), "whole", "{at}");
            assert_eq!(fake.requests().len(), 2, "{at}");

            let mut once = s.clone();
            once.max_retries = 0;
            fake.push_fault(fault.clone());
            let e = ask(&model(&once), &hello()).await.expect_err("malformed");
            assert!(matches!(e, LlmError::Malformed(_)), "{at}: {e:?}");
            assert!(!e.to_string().contains(KEY));
        }
    }
}

#[tokio::test]
async fn error_events_in_a_stream_are_retried() {
    for p in [Provider::Anthropic, Provider::OpenAi] {
        let fake = LlmFake::start().await;
        let mut s = settings(&fake, p, true);
        fake.push_fault(Fault::StreamError);
        fake.push_text("ok");
        let r = ask(&model(&s), &hello()).await.expect("retried");
        assert_eq!(r.text(), "ok");
        assert_eq!(fake.requests().len(), 2);

        s.max_retries = 0;
        fake.push_fault(Fault::StreamError);
        let e = ask(&model(&s), &hello()).await.expect_err("error event");
        match p {
            Provider::Anthropic => assert!(matches!(e, LlmError::Overloaded), "{e:?}"),
            Provider::OpenAi => assert!(matches!(e, LlmError::Server { .. }), "{e:?}"),
        }
    }
}

#[tokio::test]
async fn a_hanging_server_times_out() {
    for (p, stream) in COMBOS {
        let at = label(p, stream);
        let fake = LlmFake::start().await;
        let mut s = settings(&fake, p, stream);
        s.request_timeout = Duration::from_millis(300);
        s.max_retries = 0;
        fake.push_fault(Fault::Hang);
        let started = Instant::now();
        let e = ask(&model(&s), &hello()).await.expect_err("times out");
        assert!(matches!(e, LlmError::Timeout), "{at}: {e:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "{at}");

        // A timeout is retried like a 5xx.
        s.max_retries = 1;
        fake.push_fault(Fault::Hang);
        fake.push_text("second try");
        let r = ask(&model(&s), &hello()).await.expect("retried");
        assert_eq!(r.text(), "second try", "{at}");
        assert_eq!(fake.requests().len(), 3, "{at}");
    }
}

#[tokio::test]
async fn cancel_mid_request_returns_promptly() {
    for (p, stream) in COMBOS {
        let at = label(p, stream);
        let fake = LlmFake::start().await;
        let s = settings(&fake, p, stream);
        fake.push_fault(Fault::Hang);
        let m = model(&s);
        let cancel = CancellationToken::new();
        let call = {
            let cancel = cancel.clone();
            tokio::spawn(async move { m.chat(&hello(), &cancel).await })
        };
        fake.wait_for_request(1).await;
        let started = Instant::now();
        cancel.cancel();
        let r = tokio::time::timeout(Duration::from_secs(2), call)
            .await
            .expect("cancel is prompt")
            .expect("task");
        assert!(matches!(r, Err(LlmError::Cancelled)), "{at}: {r:?}");
        assert!(started.elapsed() < Duration::from_secs(1), "{at}");
    }
}

#[tokio::test]
async fn cancel_during_a_retry_wait() {
    let fake = LlmFake::start().await;
    let mut s = settings(&fake, Provider::Anthropic, true);
    s.max_retry_wait = Duration::from_secs(60);
    fake.push_fault(Fault::Status {
        status: 429,
        retry_after: Some(Duration::from_secs(30)),
    });
    let m = model(&s);
    let cancel = CancellationToken::new();
    let call = {
        let cancel = cancel.clone();
        tokio::spawn(async move { m.chat(&hello(), &cancel).await })
    };
    fake.wait_for_request(1).await;
    cancel.cancel();
    let r = tokio::time::timeout(Duration::from_secs(2), call)
        .await
        .expect("cancel is prompt")
        .expect("task");
    assert!(matches!(r, Err(LlmError::Cancelled)), "{r:?}");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn an_exhausted_script_fails_loudly() {
    let fake = LlmFake::start().await;
    let mut s = settings(&fake, Provider::OpenAi, false);
    s.max_retries = 0;
    let e = ask(&model(&s), &hello()).await.expect_err("no script");
    assert!(e.to_string().contains("no scripted reply left"), "{e}");
}

#[tokio::test]
async fn connection_errors_are_retryable_http_errors() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut s = LlmSettings::defaults_for(Provider::Anthropic);
    s.base_url = format!("http://127.0.0.1:{port}");
    s.api_key = Some(SecretString::from(KEY));
    s.max_retries = 1;
    s.retry_base = Duration::from_millis(1);
    let e = ask(&model(&s), &hello()).await.expect_err("refused");
    assert!(matches!(e, LlmError::Http(_)), "{e:?}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(e.is_retryable());
    assert!(!e.to_string().contains(KEY));
}

#[tokio::test]
async fn invalid_requests_get_a_400_from_the_fake() {
    let fake = LlmFake::start().await;
    let s = settings(&fake, Provider::Anthropic, false);
    fake.push_text("unused");
    let e = ask(&model(&s), &ChatRequest::new("sys", vec![]))
        .await
        .expect_err("no messages");
    assert!(matches!(e, LlmError::BadRequest(_)), "{e:?}");
    assert_eq!(fake.remaining(), 1, "a rejected request consumes nothing");
}

#[tokio::test]
async fn openai_insufficient_quota_is_not_retried() {
    for stream in [false, true] {
        let fake = LlmFake::start().await;
        let s = settings(&fake, Provider::OpenAi, stream);
        fake.push_fault(Fault::InsufficientQuota);
        fake.push_text("never reached");
        let e = ask(&model(&s), &hello()).await.expect_err("no credit");
        assert!(!e.is_retryable(), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("quota") && text.contains("billing"), "{text}");
        assert_eq!(fake.requests().len(), 1, "stream={stream}: asked once");
    }
}

#[tokio::test]
async fn adaptive_thinking_models_get_no_forced_tool_choice_and_no_thinking_field() {
    for stream in [false, true] {
        let fake = LlmFake::start().await;
        let mut s = settings(&fake, Provider::Anthropic, stream);
        s.model = "claude-sonnet-5-5".into();
        fake.push_tool_call("write_spec", json!({"title": "x"}));
        let mut req = hello();
        req.tools = vec![spec_tool()];
        req.tool_choice = ToolChoice::Tool("write_spec".into());
        let r = ask(&model(&s), &req).await.expect("answer");
        assert_eq!(r.tool_calls().len(), 1);
        let body = &fake.requests()[0].body;
        assert_eq!(
            body["tool_choice"],
            json!({"type": "auto"}),
            "stream={stream}"
        );
        assert!(body.get("thinking").is_none());
    }
}

/// Each of these is a 400 from the real API, and so from the fake.
#[tokio::test]
async fn the_fake_refuses_what_the_real_apis_refuse() {
    let call = |id: &str, name: &str| Content::ToolUse {
        id: id.into(),
        name: name.into(),
        input: json!({}),
    };
    let with_tools = |messages: Vec<Message>| ChatRequest {
        tools: vec![spec_tool()],
        ..ChatRequest::new("sys", messages)
    };
    let cases: Vec<(&str, Provider, ChatRequest)> = vec![
        (
            "a tool result without its call",
            Provider::Anthropic,
            with_tools(vec![
                Message::user("hi"),
                Message::assistant_text("ok"),
                Message::tool_results(vec![Content::tool_result("toolu_1", "x")]),
            ]),
        ),
        (
            "a tool call without its result",
            Provider::Anthropic,
            with_tools(vec![
                Message::user("hi"),
                Message::assistant(vec![call("toolu_1", "write_spec")]),
                Message::user("and now?"),
            ]),
        ),
        (
            "two user turns in a row",
            Provider::Anthropic,
            ChatRequest::new("sys", vec![Message::user("a"), Message::user("b")]),
        ),
        (
            "an assistant turn first",
            Provider::Anthropic,
            ChatRequest::new("sys", vec![Message::assistant_text("hello")]),
        ),
        (
            "a forced tool that is not declared",
            Provider::OpenAi,
            ChatRequest {
                tool_choice: ToolChoice::Tool("nope".into()),
                ..with_tools(vec![Message::user("hi")])
            },
        ),
        (
            "a tool call without its result",
            Provider::OpenAi,
            with_tools(vec![
                Message::user("hi"),
                Message::assistant(vec![call("call_1", "write_spec")]),
                Message::user("and now?"),
            ]),
        ),
    ];
    for (what, p, req) in cases {
        let fake = LlmFake::start().await;
        let s = settings(&fake, p, false);
        fake.push_text("unused");
        let e = ask(&model(&s), &req).await.expect_err(what);
        assert!(matches!(e, LlmError::BadRequest(_)), "{p} {what}: {e:?}");
        assert_eq!(fake.remaining(), 1, "{p} {what}");
    }

    // A scripted call to a tool the request does not declare fails loudly on Anthropic.
    let fake = LlmFake::start().await;
    let s = settings(&fake, Provider::Anthropic, false);
    fake.push_tool_call("undeclared", json!({}));
    let e = ask(&model(&s), &hello())
        .await
        .expect_err("undeclared tool");
    assert!(e.to_string().contains("does not declare"), "{e}");

    // A tool-using turn sent back without its thinking block.
    let fake = LlmFake::start().await;
    let s = settings(&fake, Provider::Anthropic, false);
    fake.push_reply(Reply {
        thinking: Some("plan".into()),
        tool_calls: vec![("write_spec".into(), json!({}))],
        ..Reply::default()
    });
    fake.push_text("unused");
    let m = model(&s);
    let mut req = with_tools(vec![Message::user("hi")]);
    let r = ask(&m, &req).await.expect("first answer");
    let id = r.tool_calls()[0].id.to_owned();
    let without_thinking: Vec<Content> = r
        .content
        .iter()
        .filter(|c| matches!(c, Content::ToolUse { .. }))
        .cloned()
        .collect();
    req.messages.push(Message {
        role: Role::Assistant,
        content: without_thinking,
    });
    req.messages
        .push(Message::tool_results(vec![Content::tool_result(id, "ok")]));
    let e = ask(&m, &req).await.expect_err("thinking dropped");
    assert!(e.to_string().contains("thinking"), "{e}");
}

#[tokio::test]
async fn a_server_without_tool_support_gets_structured_output_instead() {
    let fake = LlmFake::start().await;
    // vLLM started without its tool-parser flags.
    fake.refuse_tools(
        400,
        "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set",
    );
    let s = settings(&fake, Provider::OpenAi, false);
    let m = model(&s);
    let mut req = hello();
    req.tools = vec![spec_tool()];
    for round in 0..2 {
        fake.push_tool_call("write_spec", json!({"title": "Dark mode"}));
        let r = ask(&m, &req).await.expect("answer");
        let calls = r.tool_calls();
        assert_eq!(calls.len(), 1, "round {round}");
        assert_eq!(calls[0].name, "write_spec");
        assert_eq!(calls[0].input, &json!({"title": "Dark mode"}));
    }
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3, "refused once, then remembered");
    let last = &reqs[2].body;
    assert!(last.get("tools").is_none() && last.get("tool_choice").is_none());
    assert_eq!(last["response_format"]["type"], "json_schema");
    assert_eq!(
        last["response_format"]["json_schema"]["schema"],
        spec_tool().input_schema
    );
}

#[tokio::test]
async fn llama_cpp_python_gets_a_json_object_with_its_schema() {
    let fake = LlmFake::start().await;
    // An older llama.cpp server without --jinja: a 500 that must not be retried.
    fake.refuse_tools(500, "tools param requires --jinja flag");
    fake.refuse_json_schema();
    let s = settings(&fake, Provider::OpenAi, true);
    fake.push_tool_call("write_spec", json!({"title": "Dark mode"}));
    let mut req = hello();
    req.tools = vec![spec_tool()];
    let r = ask(&model(&s), &req).await.expect("answer");
    assert_eq!(r.tool_calls()[0].input, &json!({"title": "Dark mode"}));
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3, "tools, json_schema, json_object: no retries");
    assert_eq!(
        reqs[2].body["response_format"],
        json!({"type": "json_object", "schema": spec_tool().input_schema})
    );
}

/// A small model held to a schema by a grammar can still write one string until `max_tokens`
/// and be cut off mid-JSON. With a context window set, the tool's schema bounds its arrays and
/// strings so that the longest answer it allows fits in the output limit.
#[tokio::test]
async fn a_small_window_bounds_the_tool_schema_to_the_output_limit() {
    let fake = LlmFake::start().await;
    fake.llama_cpp_python();
    let mut s = settings(&fake, Provider::OpenAi, false);
    s.context_tokens = Some(4096);
    fake.push_tool_call("write_spec", json!({"title": "Dark mode"}));
    let mut req = hello();
    req.tools = vec![Tool {
        input_schema: json!({"type": "object", "required": ["title"], "properties": {
            "title": {"type": "string"},
            "notes": {"type": "array", "items": {"type": "string"}},
        }}),
        ..spec_tool()
    }];
    req.tool_choice = specbot::llm::ToolChoice::Tool("write_spec".into());
    let r = ask(&model(&s), &req).await.expect("answer");
    assert_eq!(r.tool_calls()[0].input, &json!({"title": "Dark mode"}));
    let body = &fake.requests()[0].body;
    assert_eq!(body["max_tokens"], 2048, "half the window");
    let params = &body["tools"][0]["function"]["parameters"];
    let title = params["properties"]["title"]["maxLength"]
        .as_u64()
        .expect("bounded");
    let note = params["properties"]["notes"]["items"]["maxLength"]
        .as_u64()
        .expect("bounded");
    let notes = params["properties"]["notes"]["maxItems"]
        .as_u64()
        .expect("bounded");
    assert!(
        (title + notes * note) * 2 <= 2048,
        "{title} + {notes} × {note} characters fit in 2,048 tokens"
    );
    // Without a window, the schema goes as the tool declares it.
    let s = settings(&fake, Provider::OpenAi, false);
    fake.push_tool_call("write_spec", json!({"title": "Dark mode"}));
    ask(&model(&s), &req).await.expect("answer");
    assert!(
        fake.requests()[1].body["tools"][0]["function"]["parameters"]["properties"]["title"]
            .get("maxLength")
            .is_none()
    );
}

/// The engineer's tools go out as valid JSON Schemas on both providers, and bounded for a small
/// window too: a `finish` reporting criteria by ID still passes the schema the server enforces.
#[tokio::test]
async fn the_engineers_tools_stay_valid_schemas_bounded_or_not() {
    let report = json!({"summary": "Adds the dark theme.", "criteria": [
        {"id": "AC-1.1", "status": "done", "how_met": "apply()", "files": ["src/a.rs"], "tests": ["t1"]},
        {"id": "AC-1.2", "status": "not_done", "how_met": "", "reason": "no API"},
    ]});
    for (provider, window) in [
        (Provider::Anthropic, None),
        (Provider::OpenAi, None),
        (Provider::OpenAi, Some(4096)),
    ] {
        let at = format!("{provider} window={window:?}");
        let fake = LlmFake::start().await;
        let mut s = settings(&fake, provider, false);
        s.context_tokens = window;
        fake.push_text("ok");
        let mut req = hello();
        req.tools = specbot::agent::tool_definitions();
        ask(&model(&s), &req).await.expect("answer");
        let body = &fake.requests()[0].body;
        let tools = body["tools"].as_array().expect("tools");
        assert_eq!(tools.len(), req.tools.len(), "{at}");
        for tool in tools {
            let schema = match provider {
                Provider::Anthropic => &tool["input_schema"],
                Provider::OpenAi => &tool["function"]["parameters"],
            };
            let validator =
                jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("{at}: {tool}: {e}"));
            let name = tool["name"]
                .as_str()
                .or(tool["function"]["name"].as_str())
                .unwrap_or_default();
            if name == "finish" {
                assert!(validator.is_valid(&report), "{at}: {schema}");
                let status = &schema["properties"]["criteria"]["items"]["properties"]["status"];
                assert_eq!(status["enum"], json!(["done", "not_done"]), "{at}");
                assert!(
                    !validator.is_valid(&json!({"summary": "x", "criteria": [{"id": "AC-1.1", "status": "maybe", "how_met": "x"}]})),
                    "{at}: the status is one of two"
                );
                if window.is_some() {
                    assert!(
                        schema["properties"]["criteria"]["maxItems"].is_u64(),
                        "{at}"
                    );
                    assert!(
                        schema["properties"]["criteria"]["items"]["properties"]["files"]["items"]["maxLength"]
                            .is_u64(),
                        "{at}"
                    );
                }
            }
        }
    }
}
