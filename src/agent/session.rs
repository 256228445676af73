//! The engineer loop: ask the model, run the tool calls it makes against the workspace, send
//! the results back, until it calls `finish` or a cap, an error or cancellation stops it.
//!
//! Owns: [`run_agent`]. One step is one model call. The caps (steps, tokens, cost, wall time)
//! are checked around every call; the wall-time deadline and the caller's cancellation token
//! both abort the in-flight request at once (through a child token, and by dropping the
//! request future). Tools run synchronously between calls; they do bounded file I/O only.

use tokio_util::sync::CancellationToken;

use super::tools::{self, Outcome, tool_definitions};
use super::{
    AgentConfig, AgentError, AgentFailure, AgentOutcome, Refusal, TranscriptEntry, Workspace,
};
use crate::llm::{
    ChatModel, ChatRequest, Content, LlmError, Message, StopReason, ToolChoice, Usage,
};
use crate::prompt::templates::RenderedPrompt;

/// What the loop has gathered so far.
struct Run {
    steps: u32,
    usage: Usage,
    refusals: Vec<Refusal>,
    transcript: Vec<TranscriptEntry>,
}

impl Run {
    fn fail(self, error: AgentError) -> AgentFailure {
        AgentFailure {
            error,
            steps: self.steps,
            usage: self.usage,
            refusals: self.refusals,
            transcript: self.transcript,
        }
    }
}

/// Run the engineer over `workspace` until it calls `finish`.
///
/// `prompt` is the rendered engineer prompt (system + user). `on_usage` is called after every
/// model answer with that answer's usage, so the caller can account for spend as it happens
/// (also when the run then fails). On success the outcome holds the changes (relative to the
/// snapshot), the model's summary and criteria, the refusals, the totals and the transcript,
/// redacted by the policy's secret scanner. On failure nothing is to be pushed; the failure
/// still carries the totals, refusals and transcript for storage.
pub async fn run_agent(
    model: &dyn ChatModel,
    prompt: &RenderedPrompt,
    workspace: &mut Workspace,
    config: &AgentConfig,
    cancel: &CancellationToken,
    on_usage: &mut (dyn FnMut(&Usage) + Send),
) -> Result<AgentOutcome, AgentFailure> {
    let limits = &config.limits;
    let scanner = &config.policy.secrets;
    let deadline = tokio::time::Instant::now() + limits.max_wall_time;
    let tools = tool_definitions();
    let mut messages = vec![Message::user(prompt.user.clone())];
    let mut run = Run {
        steps: 0,
        usage: Usage::default(),
        refusals: Vec::new(),
        transcript: vec![
            TranscriptEntry::System {
                text: scanner.redact(&prompt.system),
            },
            TranscriptEntry::User {
                text: scanner.redact(&prompt.user),
            },
        ],
    };
    let mut nudged = false;

    loop {
        if cancel.is_cancelled() {
            return Err(run.fail(AgentError::Cancelled));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(run.fail(AgentError::TimeLimit {
                max: limits.max_wall_time,
            }));
        }
        if run.steps >= limits.max_steps {
            return Err(run.fail(AgentError::StepLimit {
                max: limits.max_steps,
            }));
        }
        run.steps += 1;
        let req = ChatRequest {
            system: prompt.system.clone(),
            messages: messages.clone(),
            tools: tools.clone(),
            tool_choice: ToolChoice::Auto,
            max_tokens: limits.max_output_tokens,
            cache_prefix: true,
        };
        let call_cancel = cancel.child_token();
        let answer = tokio::select! {
            biased;
            () = cancel.cancelled() => Err(AgentError::Cancelled),
            () = tokio::time::sleep_until(deadline) => Err(AgentError::TimeLimit { max: limits.max_wall_time }),
            r = model.chat(&req, &call_cancel) => match r {
                Ok(r) => Ok(r),
                Err(LlmError::Cancelled) => Err(AgentError::Cancelled),
                Err(e) => Err(AgentError::Llm(e)),
            },
        };
        // Whatever happened, nothing may keep running on this call's behalf.
        call_cancel.cancel();
        let resp = match answer {
            Ok(r) => r,
            Err(e) => return Err(run.fail(e)),
        };
        run.usage += resp.usage;
        on_usage(&resp.usage);

        for part in &resp.content {
            run.transcript.push(match part {
                Content::Text(t) => TranscriptEntry::Assistant {
                    text: scanner.redact(t),
                },
                Content::ToolUse { id, name, input } => TranscriptEntry::ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    input: scanner.redact_json(input),
                },
                Content::ToolResult { .. } => continue,
            });
        }
        messages.push(if resp.content.is_empty() {
            Message::assistant_text("(empty answer)")
        } else {
            resp.to_message()
        });

        let calls = resp.tool_calls();
        if calls.is_empty() {
            if nudged {
                return Err(run.fail(AgentError::NoFinish {
                    last_text: scanner.redact(&resp.text()),
                }));
            }
            nudged = true;
            let nudge = if resp.stop == StopReason::MaxTokens {
                "Your answer was cut off at the output limit. Continue in smaller steps (edit \
                 files piece by piece), and call `finish` when you are done."
            } else {
                "You ended your turn without calling a tool. The work only counts once you call \
                 `finish` with your summary and how each acceptance criterion is met. If you \
                 are done, call `finish` now; otherwise continue with the tools."
            };
            run.transcript.push(TranscriptEntry::User {
                text: nudge.to_owned(),
            });
            messages.push(Message::user(nudge));
        } else {
            nudged = false;
            let mut results = Vec::with_capacity(calls.len());
            let mut finished = None;
            for call in calls {
                if cancel.is_cancelled() {
                    return Err(run.fail(AgentError::Cancelled));
                }
                let (content, is_error) = if finished.is_some() {
                    ("not run: `finish` was already called".to_owned(), true)
                } else {
                    match tools::execute(
                        workspace,
                        &config.policy,
                        &mut run.refusals,
                        call.name,
                        call.input,
                    ) {
                        Outcome::Ok(text) => (text, false),
                        Outcome::Err(text) => (text, true),
                        Outcome::Finish(f) => {
                            finished = Some(f);
                            ("finished".to_owned(), false)
                        }
                    }
                };
                run.transcript.push(TranscriptEntry::ToolResult {
                    id: call.id.to_owned(),
                    name: call.name.to_owned(),
                    content: scanner.redact(&content),
                    is_error,
                });
                results.push(Content::ToolResult {
                    tool_use_id: call.id.to_owned(),
                    content,
                    is_error,
                });
            }
            if let Some(f) = finished {
                if cancel.is_cancelled() {
                    return Err(run.fail(AgentError::Cancelled));
                }
                let changes = match workspace.changes() {
                    Ok(c) => c,
                    Err(e) => return Err(run.fail(AgentError::Workspace(e))),
                };
                return Ok(AgentOutcome {
                    changes,
                    summary: f.summary,
                    criteria: f.criteria,
                    refusals: run.refusals,
                    cost_usd: config.price.map(|p| p.cost(&run.usage)),
                    usage: run.usage,
                    steps: run.steps,
                    transcript: run.transcript,
                });
            }
            messages.push(Message::tool_results(results));
        }

        let tokens = run.usage.prompt_tokens() + run.usage.output_tokens;
        if tokens > limits.max_tokens {
            return Err(run.fail(AgentError::TokenLimit {
                used: tokens,
                max: limits.max_tokens,
            }));
        }
        if let (Some(max), Some(price)) = (limits.max_cost_usd, config.price) {
            let spent = price.cost(&run.usage);
            if spent > max {
                return Err(run.fail(AgentError::CostLimit { spent, max }));
            }
        }
    }
}
