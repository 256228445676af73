//! Parse errors, each with a one-sentence, friendly `Display` meant to be posted as a reply.

use std::fmt;

use crate::prompt::context::thousands;

/// Longest user text an error keeps (longer input is clipped with `…`), so that errors stay
/// small however large the comment.
pub(super) const MAX_ECHO_CHARS: usize = 60;

/// Something that looked like a command but could not be understood.
///
/// Text fields (`got`, `flag`) hold what the user typed, clipped to 60 characters; `command`
/// fields hold the bare command name (`"revise"`). `Display` renders user text in code spans,
/// so that an `@mention` in it never pings anyone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// `/implment`: not a command, but close enough to one that it was surely meant as one.
    /// `got` is the word without its slash.
    UnknownCommand {
        got: String,
        suggestion: Option<&'static str>,
    },
    /// `/revise` with no feedback.
    MissingArgument {
        command: &'static str,
        what: &'static str,
    },
    /// `/spec please`: a command that takes no arguments (or a stray word after `/implement`).
    UnexpectedArgument { command: &'static str, got: String },
    /// `/implement --froce`.
    UnknownFlag {
        command: &'static str,
        flag: String,
        suggestion: Option<&'static str>,
    },
    /// An argument over its limit, in characters (`/revise` feedback).
    TooLong {
        command: &'static str,
        limit: usize,
        got: usize,
    },
    /// More commands (and errors) in one comment than the limit; none of them is run.
    TooMany { limit: usize, got: usize },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::UnknownCommand {
                got,
                suggestion: Some(s),
            } => write!(
                f,
                "I don't know {} — did you mean `/{s}`?",
                code(&format!("/{got}"))
            ),
            ParseError::UnknownCommand {
                got,
                suggestion: None,
            } => write!(
                f,
                "I don't know {} — say `/help` to see what I can do.",
                code(&format!("/{got}"))
            ),
            ParseError::MissingArgument {
                command: "revise",
                what,
            } => write!(
                f,
                "`/revise` needs {what} — tell me what to change, e.g. `/revise make the error messages friendlier`."
            ),
            ParseError::MissingArgument { command, what } => write!(
                f,
                "`/{command}` needs {what} — usage: `{}`.",
                usage(command)
            ),
            ParseError::UnexpectedArgument { command, got } => write!(
                f,
                "`/{command}` doesn't take {} — usage: `{}`.",
                code(got),
                usage(command)
            ),
            ParseError::UnknownFlag {
                command,
                flag,
                suggestion: Some(s),
            } => write!(
                f,
                "`/{command}` has no flag {} — did you mean `{s}`?",
                code(flag)
            ),
            ParseError::UnknownFlag {
                command,
                flag,
                suggestion: None,
            } => write!(
                f,
                "`/{command}` has no flag {} — usage: `{}`.",
                code(flag),
                usage(command)
            ),
            ParseError::TooLong {
                command,
                limit,
                got,
            } => write!(
                f,
                "The feedback after `/{command}` is {} characters long; please keep it to {} or fewer.",
                thousands(*got),
                thousands(*limit)
            ),
            ParseError::TooMany { limit, got } => write!(
                f,
                "That comment holds {got} commands; I run at most {limit} per comment, so I ran none of them."
            ),
        }
    }
}

impl std::error::Error for ParseError {}

fn usage(command: &str) -> &'static str {
    match command {
        "spec" => "/spec",
        "implement" => "/implement [--force]",
        "revise" => "/revise <feedback>",
        "cancel" => "/cancel",
        _ => "/help",
    }
}

/// Keeps the first `MAX_ECHO_CHARS` characters of `s`, marking a cut with `…`.
pub(super) fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_ECHO_CHARS) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

/// `s` as a Markdown code span that survives any backticks inside it.
fn code(s: &str) -> String {
    let s = s.replace(['\r', '\n'], " ");
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_survive_backticks() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`a``"), "``` `a`` ```");
    }

    #[test]
    fn clips_long_text() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(100);
        assert_eq!(clip(&long), format!("{}…", "é".repeat(MAX_ECHO_CHARS)));
    }
}
