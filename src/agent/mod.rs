//! The engineer agent: on `/implement`, a language model edits a private snapshot of the
//! repository through a small set of tools, and the result is a list of file changes for the
//! GitHub side to commit as a pull request.
//!
//! Owns: the workspace ([`workspace`]: unpacking GitHub's tarball, tracking changes), path
//! normalisation ([`path`]), the tools ([`tools`]), the guardrails ([`guard`]), the secret
//! scanner ([`secrets`]) and the loop ([`run_agent`], in [`session`]), with its configuration,
//! outcome, errors and transcript types (here).
//!
//! ```ignore
//! let mut ws = Workspace::from_tarball(tarball_bytes.as_slice(), &WorkspaceLimits::default())?;
//! let prompt = render_engineer(&EngineerInput { tools: tool_notes(), .. }, None)?;
//! let outcome = run_agent(model, &prompt, &mut ws, &config, &cancel, &mut |u| meter.add(u)).await?;
//! // outcome.changes → one commit; outcome.summary / criteria / refusals → the PR body.
//! ```
//!
//! # Security model
//!
//! The model is **untrusted**: the specification, the issue and every repository file it reads
//! may carry prompt injections, so everything it asks for is treated as hostile input. It has
//! no shell, no network and no git; it can only call the tools below, and every call is checked
//! here, not trusted to the prompt.
//!
//! - **Confinement.** The snapshot lives in a fresh temporary directory with mode 0700, removed
//!   on drop. Tarball entries with absolute paths or `..` refuse the whole snapshot; symlinks,
//!   hard links and special files are never created (skipped and recorded), so nothing on disk
//!   points outside. Every tool path is normalised into a [`RepoPath`] (relative, no `..`, no
//!   NUL or control characters, no backslashes, bounded length and depth), and on use every
//!   existing component is checked not to be a symlink. Paths at or below a skipped entry are
//!   refused, so a link in the repository can be neither followed nor written through.
//! - **Protected paths.** `.github/workflows/**` is always refused (the App has no `workflows`
//!   permission, a push touching it would fail, and workflows run with repository secrets), as
//!   is any `.git` segment; the repository's configured globs are added ([`Policy::protect`]).
//! - **Caps.** The snapshot is capped in total bytes (on the decompressed stream, so bombs stop
//!   early), entries and depth. Changes are capped per file, in files changed and in total new
//!   bytes. Tool output is bounded (lines and bytes per read, matches per search, regex size).
//!   The loop is capped in steps, tokens, cost and wall time, and honours cancellation at once.
//! - **Content.** Only UTF-8 text without NUL bytes is written. The secret scanner
//!   ([`SecretScanner`]) checks every file written (known token shapes that were not already in
//!   that file, and the bot's own secret values anywhere) and every text the bot will post (the
//!   summary and the criteria); a hit refuses the call.
//! - **Feedback.** A refusal is returned to the model as a tool error saying why, so it can
//!   adapt, and recorded in [`AgentLog::refusals`] for the PR body. Refusal texts never
//!   quote a secret.
//! - **Records.** The transcript is redacted by the scanner before it is returned for storage.
//!   On any failure ([`AgentFailure`]) there is nothing to push.
//!
//! - **Commands.** With a [`Runner`], the model also gets `run_command`, and the repository's
//!   setup and test commands run; all of them in the sandbox ([`crate::sandbox`]), never on the
//!   host ([`verify`]). The changes are then read from disk, and what a command wrote under a
//!   protected path is refused like a tool write.
//!
//! Not covered here: what the GitHub side does with the changes (it must commit exactly
//! [`AgentOutcome::changes`]).

pub mod guard;
pub mod path;
pub mod progress;
pub mod secrets;
pub mod session;
pub mod tools;
pub mod verify;
pub mod workspace;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use guard::{InvalidGlob, Policy, Refusal, WORKFLOWS_DIR};
pub use path::{PathError, RepoPath};
pub use secrets::{SecretFinding, SecretScanner};
pub use session::run_agent;
pub use tools::{CriterionMet, CriterionStatus, tool_definitions, tool_notes};
pub use verify::{CommandRun, RunKind, Runner, TestChoice};
pub use workspace::{
    FileChange, SkippedEntry, Workspace, WorkspaceError, WorkspaceLimits, remove_abandoned,
};

use crate::llm::{LlmError, ModelPrice, Usage};

/// Caps on one run of the loop.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentLimits {
    /// Model calls.
    pub max_steps: u32,
    /// Prompt + output tokens over all calls (cached prompt tokens included).
    pub max_tokens: u64,
    /// USD over all calls; enforced only when [`AgentConfig::price`] is known.
    pub max_cost_usd: Option<f64>,
    /// From the start of the run; the in-flight request is aborted when it passes.
    pub max_wall_time: Duration,
    /// Output tokens per model call.
    pub max_output_tokens: u32,
}

impl Default for AgentLimits {
    /// 60 steps, 3 M tokens, $5, 30 minutes, 16 384 output tokens per call.
    fn default() -> Self {
        Self {
            max_steps: 60,
            max_tokens: 3_000_000,
            max_cost_usd: Some(5.0),
            max_wall_time: Duration::from_secs(30 * 60),
            max_output_tokens: 16_384,
        }
    }
}

/// Everything a run needs besides the model, the prompt and the workspace.
#[derive(Debug, Clone, Default)]
pub struct AgentConfig {
    pub limits: AgentLimits,
    pub policy: Policy,
    /// The model's price ([`crate::llm::PriceTable::price`]); `None` leaves only the token cap.
    pub price: Option<ModelPrice>,
    /// Where the loop reports what it is doing (the status comment's watcher), if anywhere.
    pub progress: Option<progress::ProgressSender>,
    /// Where the repository's commands run; `None`: no `run_command` tool, nothing runs.
    pub runner: Option<Runner>,
}

impl AgentConfig {
    /// Tell the watcher, if any (a watcher that went away is no error).
    pub fn report(&self, event: progress::ProgressEvent) {
        if let Some(tx) = &self.progress {
            let _ = tx.send(event);
        }
    }
}

/// A finished run: what to commit and what to say about it.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentOutcome {
    /// What differs from the snapshot, sorted by path (deletions are `content: None`).
    pub changes: Vec<FileChange>,
    /// The model's summary (checked free of secrets), for the PR body.
    pub summary: String,
    /// Each acceptance criterion as the model reports it (checked free of secrets).
    pub criteria: Vec<CriterionMet>,
    /// `None` when the model's price is unknown.
    pub cost_usd: Option<f64>,
    pub log: AgentLog,
}

/// What a run gathered, finished or not: its totals, refusals, transcript and commands, for
/// the PR body, storage and accounting. Serialised (into a job's checkpoint) without its usage,
/// already accounted, and its transcript, which is stored on its own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentLog {
    /// Model calls made.
    pub steps: u32,
    #[serde(skip)]
    pub usage: Usage,
    /// Calls the guardrails refused, in order.
    pub refusals: Vec<Refusal>,
    /// The conversation, redacted.
    #[serde(skip)]
    pub transcript: Vec<TranscriptEntry>,
    /// Every command that ran (setup, the engineer's, the bot's test runs), in order.
    pub runs: Vec<CommandRun>,
    /// The bot's last test run passed (`None`: no test ran).
    pub tests_pass: Option<bool>,
}

/// One item of the transcript, in order. Serialisable for storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TranscriptEntry {
    System {
        text: String,
    },
    /// The prompt, or a note the loop sent (a nudge to call `finish`).
    User {
        text: String,
    },
    Assistant {
        text: String,
    },
    ToolCall {
        id: String,
        name: String,
        input: Value,
    },
    ToolResult {
        id: String,
        name: String,
        content: String,
        is_error: bool,
    },
}

/// Why a run stopped without a result.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the run was cancelled")]
    Cancelled,
    #[error(
        "the engineer used all {max} steps without calling `finish`; the task may be too large \
         for one run (split it into components) or the step limit too low"
    )]
    StepLimit { max: u32 },
    #[error("the engineer used {used} tokens, more than the {max} allowed for one run")]
    TokenLimit { used: u64, max: u64 },
    #[error("the engineer spent ${spent:.2}, more than the ${max:.2} allowed for one run")]
    CostLimit { spent: f64, max: f64 },
    #[error("the engineer ran longer than the {} seconds allowed", max.as_secs())]
    TimeLimit { max: Duration },
    #[error(
        "the model stopped without calling `finish`, even after being reminded, so its work \
         was not used{}",
        last_words(last_text)
    )]
    NoFinish { last_text: String },
    #[error("the model declined the task{}", last_words(text))]
    Refused { text: String },
    #[error(
        "the conversation outgrew the model's context window before the engineer called \
         `finish`; split the task into smaller components or use a model with a larger window"
    )]
    ContextFull,
    #[error("the language model failed: {0}")]
    Llm(#[from] LlmError),
    #[error("the workspace failed: {0}")]
    Workspace(#[from] WorkspaceError),
}

fn last_words(text: &str) -> String {
    let t = text.trim();
    if t.is_empty() {
        return String::new();
    }
    let cut: String = t.chars().take(300).collect();
    let more = if cut.len() < t.len() { "…" } else { "" };
    format!(" (its last words: \"{cut}{more}\")")
}

/// A run that stopped without a result: the error, and what was gathered for storage and
/// accounting. There is nothing to push.
#[derive(Debug)]
pub struct AgentFailure {
    pub error: AgentError,
    pub log: AgentLog,
}

impl fmt::Display for AgentFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (after {} steps)", self.error, self.log.steps)
    }
}

impl std::error::Error for AgentFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
