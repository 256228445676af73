//! What a running engineer loop tells its watcher, as it goes: each model answer (the step
//! and the usage so far) and each tool call (what it touches, then whether it worked). The
//! loop only sends; it never waits for the watcher (an unbounded channel, dropped events are
//! fine), so a slow GitHub edit cannot slow the engineer down.

use crate::llm::Usage;

/// One thing the loop did.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgressEvent {
    /// A model answer came back: the step just taken, the cap, the run's usage so far.
    Answered {
        step: u32,
        max_steps: u32,
        usage: Usage,
    },
    /// A tool call starts: its name and what it works on (a path, a command), if any.
    ToolStarted {
        name: String,
        target: Option<String>,
    },
    /// A tool call ended: whether it worked, and the first line of its answer (for a command:
    /// its exit code).
    ToolEnded {
        name: String,
        target: Option<String>,
        ok: bool,
        first_line: String,
    },
    /// specbot ran the repository's tests itself (after the engineer's `finish`).
    Tested {
        command: String,
        passed: bool,
        /// How it ended (`exit code 1 after 0.2 s`).
        result: String,
    },
}

/// Where the loop sends its [`ProgressEvent`]s.
pub type ProgressSender = tokio::sync::mpsc::UnboundedSender<ProgressEvent>;

/// What a tool call works on, from its input: `path`, else `command`, cut to one short line.
pub fn tool_target(input: &serde_json::Value) -> Option<String> {
    let value = ["path", "command", "pattern"]
        .iter()
        .find_map(|k| input.get(*k).and_then(|v| v.as_str()))?;
    let line: String = value
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(120)
        .collect();
    Some(line)
}

/// The first line of a tool's answer, cut short.
pub fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(160)
        .collect()
}
