//! The `/help` reply: one Markdown list item per command.

/// The command list, as posted in replies (and in answer to `/help`).
const HELP: &str = "\
- `/spec` — write the spec for this issue, or write it again from scratch
- `/implement [--force]` — implement the spec in a pull request; `--force` (or `-f`) goes ahead even where a check would normally stop me
- `/revise <feedback>` — change the spec (or the pull request) as you say; the feedback is the rest of the line and the lines below it, up to the next command
- `/cancel` — stop what I am working on here
- `/help` — show this list
";

/// A Markdown list, one line per command, for replies.
#[must_use]
pub fn help_text() -> &'static str {
    HELP
}
