//! The comment grammar: slash commands in issue and pull-request comments, parsed into typed
//! [`Command`]s with friendly [`ParseError`]s. This module owns what counts as a command, what
//! is ignored, and the wording of every parse error and of the help text; it runs nothing.
//!
//! # The grammar in brief
//!
//! ```text
//! /spec
//! /implement [--force | -f]
//! /revise <feedback>          feedback: rest of the line + following lines, up to the next command
//! /cancel
//! /help
//! ```
//!
//! - A command is a line that *starts* with it, after at most 3 spaces. Names and flags are
//!   case-insensitive. `please /spec this` is not a command.
//! - Ignored: fenced code blocks (```` ``` ```` or `~~~`, 3+ long, closed by a fence of the
//!   same character at least as long; an unclosed fence hides the rest of the comment),
//!   indented code (4+ columns), block-quote lines (`>`, so quoting someone's `/revise` does
//!   nothing), code spans, and HTML comments (`<!-- … -->`, over any number of lines).
//! - `/revise` needs feedback; `/spec`, `/cancel` and `/help` take no arguments; `/implement`
//!   takes only `--force`/`-f`. Anything else after them is an error.
//! - An unknown `/word` is an error only when it looks like a botched command (`/implment`,
//!   `/specs`, `/revse`, `/imp`): [`ParseError::UnknownCommand`] with a suggestion. Any other
//!   `/word` (`/usr/bin`, `/cc @someone`, `/assign`, `/review`) is quietly ignored: the bot
//!   must not answer comments that were not meant for it.
//! - A comment may hold several commands, in order; more than [`MAX_COMMANDS`] (commands and
//!   errors together) is one [`ParseError::TooMany`] and nothing runs. Feedback longer than
//!   [`MAX_FEEDBACK_CHARS`] characters is [`ParseError::TooLong`].
//!
//! Edited comments go through [`added_by_edit`], which keeps only what the edit added.
//!
//! The scanner is a careful hand-written subset of CommonMark (no dependency): linear in the
//! input, no recursion, never panics. Block quotes are `>` lines only (CommonMark's "lazy"
//! continuation of a quote onto a following un-prefixed line is not followed: a command on
//! such a line runs).

mod error;
mod help;
mod markdown;
mod parser;
mod suggest;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use error::ParseError;
pub use help::help_text;

/// Most commands (plus errors) one comment may hold; past it, none runs.
pub const MAX_COMMANDS: usize = 10;

/// Longest `/revise` feedback, in characters.
pub const MAX_FEEDBACK_CHARS: usize = 20_000;

/// A command a user gave in a comment.
///
/// Serialises as `{"command": "implement", "force": true}`, for job payloads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// `/spec`: write (or rewrite) the spec.
    Spec,
    /// `/implement [--force]`.
    Implement { force: bool },
    /// `/revise <feedback>`: `feedback` is never empty, holds at most [`MAX_FEEDBACK_CHARS`]
    /// characters, has `\n` line endings and no HTML comments.
    Revise { feedback: String },
    /// `/cancel`: stop the running job.
    Cancel,
    /// `/help`: reply with [`help_text`].
    Help,
}

impl Command {
    /// The bare name, without the slash: `"implement"`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name_and_usage().0
    }

    /// The usage line: `"/implement [--force]"`.
    #[must_use]
    pub fn usage(&self) -> &'static str {
        self.name_and_usage().1
    }

    fn name_and_usage(&self) -> (&'static str, &'static str) {
        match self {
            Command::Spec => ("spec", "/spec"),
            Command::Implement { .. } => ("implement", "/implement [--force]"),
            Command::Revise { .. } => ("revise", "/revise <feedback>"),
            Command::Cancel => ("cancel", "/cancel"),
            Command::Help => ("help", "/help"),
        }
    }
}

/// The canonical form: `/implement --force`, `/revise <the feedback>`. It parses back to the
/// same command, except for feedback whose Markdown reads differently once re-laid (a fence or
/// `<!--` on its first line, text that was glued to a removed HTML comment).
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Implement { force: true } => f.write_str("/implement --force"),
            // Feedback over several lines goes on a line of its own, as it was typed, so that
            // its Markdown (a fence, an indented block) reads back the same; a leading slash
            // stays on the `/revise` line, where it cannot start a command.
            Command::Revise { feedback }
                if !feedback.starts_with('/')
                    && (feedback.contains('\n') || feedback.starts_with(char::is_whitespace)) =>
            {
                write!(f, "/revise\n{feedback}")
            }
            Command::Revise { feedback } => write!(f, "/revise {feedback}"),
            other => write!(f, "/{}", other.name()),
        }
    }
}

/// What a comment asked for.
///
/// `commands` and `errors` are each in comment order (the relative order of a command and an
/// error is not kept: callers run the commands and answer the errors). At most
/// [`MAX_COMMANDS`] entries in all; past that, `commands` is empty and `errors` holds a single
/// [`ParseError::TooMany`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub commands: Vec<Command>,
    pub errors: Vec<ParseError>,
}

impl Parsed {
    /// No commands and no errors: the comment was not for us.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty() && self.errors.is_empty()
    }

    fn from_items(items: Vec<parser::Item>) -> Self {
        if items.len() > MAX_COMMANDS {
            return Parsed {
                commands: Vec::new(),
                errors: vec![ParseError::TooMany {
                    limit: MAX_COMMANDS,
                    got: items.len(),
                }],
            };
        }
        let mut parsed = Parsed::default();
        for item in items {
            match item {
                Ok(command) => parsed.commands.push(command),
                Err(error) => parsed.errors.push(error),
            }
        }
        parsed
    }
}

/// The commands (and errors) in a comment body.
#[must_use]
pub fn parse(comment_body: &str) -> Parsed {
    Parsed::from_items(parser::items(comment_body))
}

/// Edited comments run only what the edit added: commands (and errors) in `new` that were not
/// in `old`, as a multiset difference, so an edit that adds a second `/help` runs one.
///
/// Commands compare whole: editing a `/revise`'s feedback makes a new `/revise`, which runs.
/// The [`MAX_COMMANDS`] cap applies to what was added.
#[must_use]
pub fn added_by_edit(old: &str, new: &str) -> Parsed {
    let old = parser::items(old);
    let mut seen: HashMap<&parser::Item, usize> = HashMap::new();
    for item in &old {
        *seen.entry(item).or_default() += 1;
    }
    let added = parser::items(new)
        .into_iter()
        .filter(|item| match seen.get_mut(item) {
            Some(count) if *count > 0 => {
                *count -= 1;
                false
            }
            _ => true,
        })
        .collect();
    Parsed::from_items(added)
}

/// Whether a comment needs a job at all: true exactly when [`parse`] would yield at least one
/// command or error. Cheap for the common case (no line starts with `/`).
#[must_use]
pub fn mentions_command(body: &str) -> bool {
    parser::may_hold_commands(body) && !parse(body).is_empty()
}
