//! The engineer loop: ask the model, run the tool calls it makes against the workspace, send
//! the results back, until it calls `finish` or a cap, an error or cancellation stops it.
//!
//! Owns: [`run_agent`]. One step is one model call. The caps (steps, tokens, cost, wall time)
//! are checked around every call; the wall-time deadline and the caller's cancellation token
//! both abort the in-flight request at once (through a child token, and by dropping the
//! request future). File tools run synchronously between calls; `run_command` and the bot's
//! test run after `finish` run in the sandbox ([`super::verify`]), honouring cancellation.
//! With a test command, a failing test run answers `finish` with its output instead of ending
//! the run, up to the runner's `test_rounds` times.

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::progress::{ProgressEvent, first_line, tool_target};
use super::tools::{self, Finish, Outcome, tool_definitions};
use super::verify::{self, RUN_COMMAND, RunKind};
use super::{
    AgentConfig, AgentError, AgentFailure, AgentLimits, AgentLog, AgentOutcome, FileChange,
    TranscriptEntry, Workspace,
};
use crate::llm::{
    ChatModel, ChatRequest, ChatResponse, Content, LlmError, Message, StopReason, ToolCall,
    ToolChoice, Usage,
};
use crate::prompt::templates::RenderedPrompt;

/// What the loop has gathered so far.
struct Run {
    log: AgentLog,
    /// Failing test runs that may still go back to the model.
    test_rounds_left: u32,
}

impl Run {
    fn succeed(
        self,
        changes: Vec<FileChange>,
        finish: Finish,
        config: &AgentConfig,
    ) -> AgentOutcome {
        AgentOutcome {
            changes,
            summary: finish.summary,
            criteria: finish.criteria,
            cost_usd: config.price.map(|p| p.cost(&self.log.usage)),
            log: self.log,
        }
    }

    fn fail(self, error: AgentError) -> AgentFailure {
        AgentFailure {
            error,
            log: self.log,
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
    let scanner = &config.policy.secrets;
    let mut run = Run {
        log: AgentLog {
            transcript: vec![
                TranscriptEntry::System {
                    text: scanner.redact(&prompt.system),
                },
                TranscriptEntry::User {
                    text: scanner.redact(&prompt.user),
                },
            ],
            ..AgentLog::default()
        },
        test_rounds_left: config.runner.as_ref().map_or(0, |r| r.test_rounds),
    };
    let mut first = prompt.user.clone();
    if let Some(runner) = &config.runner {
        run.log.runs = runner.setup(workspace, &config.policy, cancel).await;
        if cancel.is_cancelled() {
            return Err(run.fail(AgentError::Cancelled));
        }
        if let Some(test) = &runner.test {
            first.push_str(&format!(
                "\n\nThe repository's tests: `{test}`. Run them with `run_command`; specbot runs \
                 them again after you call `finish`, and the pull request shows the result."
            ));
        }
        for failed in run.log.runs.iter().filter(|r| !r.record.succeeded()) {
            first.push_str(&format!(
                "\n\nNote: the repository's setup command failed before you started:\n{}",
                verify::describe(&failed.record)
            ));
        }
    }
    let mut tools = tool_definitions();
    if let Some(runner) = &config.runner {
        tools.insert(
            tools.len() - 1,
            verify::run_command_tool(runner.sandbox.settings().timeout),
        );
    }
    let mut turn = Turn {
        model,
        prompt,
        config,
        cancel,
        deadline: Instant::now() + config.limits.max_wall_time,
        tools,
        messages: vec![Message::user(first)],
        nudged: false,
        paused: false,
    };
    loop {
        match turn.step(&mut run, workspace, on_usage).await {
            Ok(None) => {}
            Ok(Some(finish)) => {
                return match turn.changes(&mut run, workspace) {
                    Ok(changes) => Ok(run.succeed(changes, finish, config)),
                    Err(e) => Err(run.fail(e)),
                };
            }
            Err(e) => return Err(run.fail(e)),
        }
    }
}

/// What stays the same from one model call to the next, and the conversation so far.
struct Turn<'a> {
    model: &'a dyn ChatModel,
    prompt: &'a RenderedPrompt,
    config: &'a AgentConfig,
    cancel: &'a CancellationToken,
    deadline: Instant,
    tools: Vec<crate::llm::Tool>,
    messages: Vec<Message>,
    /// Whether the last answer called no tool and was answered with a nudge.
    nudged: bool,
    /// Whether the last answer was a paused turn: the next answer continues it.
    paused: bool,
}

impl Turn<'_> {
    fn limits(&self) -> &AgentLimits {
        &self.config.limits
    }

    /// One model call and the tool calls it makes: `Some` once the model called `finish`.
    async fn step(
        &mut self,
        run: &mut Run,
        workspace: &mut Workspace,
        on_usage: &mut (dyn FnMut(&Usage) + Send),
    ) -> Result<Option<Finish>, AgentError> {
        self.check_before_call(run)?;
        run.log.steps += 1;
        let resp = self.ask().await?;
        run.log.usage += resp.usage;
        on_usage(&resp.usage);
        self.config.report(ProgressEvent::Answered {
            step: run.log.steps,
            max_steps: self.limits().max_steps,
            usage: run.log.usage,
        });
        self.record_answer(run, &resp);
        self.paused = false;
        match resp.stop {
            StopReason::Refusal => {
                return Err(AgentError::Refused {
                    text: self.config.policy.secrets.redact(&resp.text()),
                });
            }
            StopReason::ContextWindowExceeded => return Err(AgentError::ContextFull),
            StopReason::PauseTurn if resp.tool_calls().is_empty() => {
                // Sent back as is (already in the conversation), the turn goes on.
                self.paused = true;
                self.check_spend(run)?;
                return Ok(None);
            }
            _ => {}
        }

        let calls = resp.tool_calls();
        if calls.is_empty() {
            self.nudge(run, &resp)?;
        } else {
            self.nudged = false;
            let (results, finished) = self.run_tools(run, workspace, calls).await?;
            if finished.is_some() {
                return Ok(finished);
            }
            self.messages.push(Message::tool_results(results));
        }
        self.check_spend(run)?;
        Ok(None)
    }

    /// Cancellation, the wall-time deadline and the step cap, before a model call.
    fn check_before_call(&self, run: &Run) -> Result<(), AgentError> {
        let limits = self.limits();
        if self.cancel.is_cancelled() {
            return Err(AgentError::Cancelled);
        }
        if Instant::now() >= self.deadline {
            return Err(AgentError::TimeLimit {
                max: limits.max_wall_time,
            });
        }
        if run.log.steps >= limits.max_steps {
            return Err(AgentError::StepLimit {
                max: limits.max_steps,
            });
        }
        Ok(())
    }

    /// Ask the model, aborting the request at once on cancellation or at the deadline.
    async fn ask(&self) -> Result<ChatResponse, AgentError> {
        let limits = self.limits();
        let req = ChatRequest {
            system: self.prompt.system.clone(),
            messages: self.messages.clone(),
            tools: self.tools.clone(),
            tool_choice: ToolChoice::Auto,
            max_tokens: limits.max_output_tokens,
            cache_prefix: true,
        };
        let call_cancel = self.cancel.child_token();
        let answer = tokio::select! {
            biased;
            () = self.cancel.cancelled() => Err(AgentError::Cancelled),
            () = tokio::time::sleep_until(self.deadline) => Err(AgentError::TimeLimit { max: limits.max_wall_time }),
            r = self.model.chat(&req, &call_cancel) => match r {
                Ok(r) => Ok(r),
                Err(LlmError::Cancelled) => Err(AgentError::Cancelled),
                Err(e) => Err(AgentError::Llm(e)),
            },
        };
        // Whatever happened, nothing may keep running on this call's behalf.
        call_cancel.cancel();
        answer
    }

    /// The answer into the transcript (redacted) and the conversation.
    fn record_answer(&mut self, run: &mut Run, resp: &ChatResponse) {
        let scanner = &self.config.policy.secrets;
        for part in &resp.content {
            run.log.transcript.push(match part {
                Content::Text(t) => TranscriptEntry::Assistant {
                    text: scanner.redact(t),
                },
                Content::ToolUse { id, name, input } => TranscriptEntry::ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    input: scanner.redact_json(input),
                },
                Content::ToolResult { .. }
                | Content::Thinking { .. }
                | Content::RedactedThinking { .. } => continue,
            });
        }
        // A paused turn's continuation belongs to the same assistant turn.
        if self.paused
            && let Some(last) = self.messages.last_mut()
        {
            last.content.extend(resp.content.iter().cloned());
            return;
        }
        self.messages.push(if resp.content.is_empty() {
            Message::assistant_text("(empty answer)")
        } else {
            resp.to_message()
        });
    }

    /// An answer without a tool call: remind the model to call `finish`, once; the second
    /// such answer in a row ends the run.
    fn nudge(&mut self, run: &mut Run, resp: &ChatResponse) -> Result<(), AgentError> {
        if self.nudged {
            return Err(AgentError::NoFinish {
                last_text: self.config.policy.secrets.redact(&resp.text()),
            });
        }
        self.nudged = true;
        let nudge = if resp.stop == StopReason::MaxTokens {
            "Your answer was cut off at the output limit. Continue in smaller steps (edit \
             files piece by piece), and call `finish` when you are done."
        } else {
            "You ended your turn without calling a tool. The work only counts once you call \
             `finish` with your summary and how each acceptance criterion is met. If you \
             are done, call `finish` now; otherwise continue with the tools."
        };
        run.log.transcript.push(TranscriptEntry::User {
            text: nudge.to_owned(),
        });
        self.messages.push(Message::user(nudge));
        Ok(())
    }

    /// Run the answer's tool calls in order; those after `finish` are not run.
    async fn run_tools(
        &self,
        run: &mut Run,
        workspace: &mut Workspace,
        calls: Vec<ToolCall<'_>>,
    ) -> Result<(Vec<Content>, Option<Finish>), AgentError> {
        let mut results = Vec::with_capacity(calls.len());
        let mut finished = None;
        for call in calls {
            if self.cancel.is_cancelled() {
                return Err(AgentError::Cancelled);
            }
            let (content, is_error) = if finished.is_some() {
                ("not run: `finish` was already called".to_owned(), true)
            } else {
                let target = tool_target(call.input);
                self.config.report(ProgressEvent::ToolStarted {
                    name: call.name.to_owned(),
                    target: target.clone(),
                });
                let (text, is_error) = self.run_tool(run, workspace, &call, &mut finished).await;
                self.config.report(ProgressEvent::ToolEnded {
                    name: call.name.to_owned(),
                    target,
                    ok: !is_error,
                    first_line: first_line(&text),
                });
                (text, is_error)
            };
            if self.cancel.is_cancelled() {
                return Err(AgentError::Cancelled);
            }
            run.log.transcript.push(TranscriptEntry::ToolResult {
                id: call.id.to_owned(),
                name: call.name.to_owned(),
                content: self.config.policy.secrets.redact(&content),
                is_error,
            });
            results.push(Content::ToolResult {
                tool_use_id: call.id.to_owned(),
                content,
                is_error,
            });
        }
        Ok((results, finished))
    }

    /// One tool call: its answer and whether it is an error; sets `finished` once `finish` is
    /// accepted (after the bot's own test run, when there is one).
    async fn run_tool(
        &self,
        run: &mut Run,
        workspace: &mut Workspace,
        call: &ToolCall<'_>,
        finished: &mut Option<Finish>,
    ) -> (String, bool) {
        let policy = &self.config.policy;
        if let (RUN_COMMAND, Some(runner)) = (call.name, &self.config.runner) {
            return match runner
                .run_command(workspace, call.input, policy, self.cancel)
                .await
            {
                Ok((record, answer)) => {
                    run.log.runs.push(record);
                    (answer, false)
                }
                Err(e) => (e, true),
            };
        }
        match tools::execute(
            workspace,
            policy,
            &mut run.log.refusals,
            call.name,
            call.input,
        ) {
            Outcome::Ok(text) => (text, false),
            Outcome::Err(text) => (text, true),
            Outcome::Finish(f) => {
                let Some(runner) = &self.config.runner else {
                    *finished = Some(f);
                    return ("finished".to_owned(), false);
                };
                let Some(test) = runner.test(workspace, policy, self.cancel).await else {
                    *finished = Some(f);
                    return ("finished".to_owned(), false);
                };
                let passed = test.record.succeeded();
                let answer = verify::describe(&test.record);
                self.config.report(ProgressEvent::Tested {
                    command: test.record.command.clone(),
                    passed,
                    result: verify::outcome_line(&test.record),
                });
                debug_assert_eq!(test.kind, RunKind::Test);
                run.log.runs.push(test);
                run.log.tests_pass = Some(passed);
                if passed || run.test_rounds_left == 0 {
                    *finished = Some(f);
                    return ("finished".to_owned(), false);
                }
                run.test_rounds_left -= 1;
                (
                    format!(
                        "not finished yet: the repository's tests fail. specbot ran them after \
                         your `finish`:\n{answer}\nFix the cause (not the tests' expectations, \
                         unless they are wrong) and call `finish` again."
                    ),
                    true,
                )
            }
        }
    }

    /// The token and cost caps, after a step.
    fn check_spend(&self, run: &Run) -> Result<(), AgentError> {
        let limits = self.limits();
        let tokens = run.log.usage.prompt_tokens() + run.log.usage.output_tokens;
        if tokens > limits.max_tokens {
            return Err(AgentError::TokenLimit {
                used: tokens,
                max: limits.max_tokens,
            });
        }
        if let (Some(max), Some(price)) = (limits.max_cost_usd, self.config.price) {
            let spent = price.cost(&run.log.usage);
            if spent > max {
                return Err(AgentError::CostLimit { spent, max });
            }
        }
        Ok(())
    }

    /// The workspace's changes once the model called `finish`, unless cancelled meanwhile:
    /// read from disk when commands could have written files, else from the tools' record.
    fn changes(&self, run: &mut Run, workspace: &Workspace) -> Result<Vec<FileChange>, AgentError> {
        if self.cancel.is_cancelled() {
            return Err(AgentError::Cancelled);
        }
        if self.config.runner.is_some() && !run.log.runs.is_empty() {
            return verify::disk_changes(workspace, &self.config.policy, &mut run.log.refusals)
                .map_err(|e| AgentError::Workspace(e.into()));
        }
        workspace.changes().map_err(AgentError::Workspace)
    }
}
