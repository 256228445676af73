//! From a scanned comment to commands: finding command lines, reading their arguments, and
//! collecting `/revise` feedback.

use super::error::clip;
use super::markdown::{Document, Line, LineKind};
use super::suggest::{self, NAMES};
use super::{Command, MAX_FEEDBACK_CHARS, ParseError};

/// One command line's outcome, in comment order.
pub(super) type Item = Result<Command, ParseError>;

/// Longest `/word` (in bytes) worth lower-casing: nothing longer is or resembles a command.
const MAX_WORD_BYTES: usize = 64;

enum Head {
    /// One of ours, by its canonical name.
    Exact(&'static str),
    /// A near miss: what was typed (without the slash) and what it resembles.
    NearMiss(String, &'static str),
}

struct CommandLine {
    line: usize,
    head: Head,
    /// Byte offset just past the `/word`.
    word_end: usize,
}

/// Every command line of `src`, parsed, in order, with no cap on their number.
pub(super) fn items(src: &str) -> Vec<Item> {
    let doc = Document::scan(src);
    let found: Vec<CommandLine> = doc
        .lines
        .iter()
        .enumerate()
        .filter_map(|(i, line)| command_line(&doc, i, line))
        .collect();

    let mut items = Vec::with_capacity(found.len());
    for (k, cl) in found.iter().enumerate() {
        let item = match &cl.head {
            Head::NearMiss(word, suggestion) => Err(ParseError::UnknownCommand {
                got: clip(word),
                suggestion: Some(suggestion),
            }),
            Head::Exact("revise") => {
                // Feedback runs to the next command line, or to the end of the comment.
                let end = found
                    .get(k + 1)
                    .map_or(src.len(), |next| doc.lines[next.line].start);
                revise(&doc.visible_text(cl.word_end..end))
            }
            Head::Exact(name) => {
                let rest = doc.visible_text(cl.word_end..doc.lines[cl.line].end);
                one_line(name, rest.trim())
            }
        };
        items.push(item);
    }
    items
}

/// Whether `src` has any line that could be a command line at all (a cheap pre-filter).
pub(super) fn may_hold_commands(src: &str) -> bool {
    src.lines()
        .any(|l| l.trim_start_matches([' ', '\t']).starts_with('/'))
}

/// The command (or near miss) that `line` starts with, if it is a command line.
fn command_line(doc: &Document<'_>, index: usize, line: &Line) -> Option<CommandLine> {
    if line.kind != LineKind::Text || line.indent > 3 {
        return None;
    }
    let after_slash = doc.src[line.content..line.end].strip_prefix('/')?;
    if doc.is_masked(line.content) {
        return None;
    }
    let word_len = after_slash
        .find(char::is_whitespace)
        .unwrap_or(after_slash.len());
    let word = &after_slash[..word_len];
    if word.is_empty() || word.len() > MAX_WORD_BYTES {
        return None;
    }
    let lower = word.to_lowercase();
    let head = match NAMES.iter().find(|name| **name == lower) {
        Some(name) => Head::Exact(name),
        None => Head::NearMiss(word.to_owned(), suggest::near_command(&lower)?),
    };
    Some(CommandLine {
        line: index,
        head,
        word_end: line.content + 1 + word_len,
    })
}

/// A command whose arguments live on its own line: everything but `/revise`.
fn one_line(name: &'static str, rest: &str) -> Item {
    let command = match name {
        "spec" => Command::Spec,
        "cancel" => Command::Cancel,
        "help" => Command::Help,
        _ => return implement(rest),
    };
    if rest.is_empty() {
        Ok(command)
    } else {
        Err(ParseError::UnexpectedArgument {
            command: name,
            got: clip(rest),
        })
    }
}

/// `/implement [--force | -f]`, flags case-insensitive, repeats allowed.
fn implement(rest: &str) -> Item {
    let mut force = false;
    for token in rest.split_whitespace() {
        if token.eq_ignore_ascii_case("--force") || token.eq_ignore_ascii_case("-f") {
            force = true;
        } else if token.starts_with(['-', '\u{2013}', '\u{2014}']) {
            // En and em dashes: phones like to turn `--` into one.
            return Err(ParseError::UnknownFlag {
                command: "implement",
                flag: clip(token),
                suggestion: suggest::near_flag(token),
            });
        } else {
            return Err(ParseError::UnexpectedArgument {
                command: "implement",
                got: clip(token),
            });
        }
    }
    Ok(Command::Implement { force })
}

/// `/revise` from the text after the word `/revise` to the next command line.
///
/// The feedback is the rest of the `/revise` line, trimmed, then the lines below it verbatim
/// (indentation, blank lines, code blocks and quotes kept; HTML comments and trailing
/// whitespace dropped), without leading or trailing blank lines.
fn revise(text: &str) -> Item {
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or_default().trim();
    let mut kept: Vec<&str> = Vec::new();
    if !first.is_empty() {
        kept.push(first);
    }
    for line in lines {
        let line = line.trim_end();
        // Leading blank lines go; inner ones stay.
        if !kept.is_empty() || !line.is_empty() {
            kept.push(line);
        }
    }
    while kept.last().is_some_and(|line| line.is_empty()) {
        kept.pop();
    }
    let feedback = kept.join("\n");
    if feedback.is_empty() {
        return Err(ParseError::MissingArgument {
            command: "revise",
            what: "feedback",
        });
    }
    if feedback.len() > MAX_FEEDBACK_CHARS {
        let chars = feedback.chars().count();
        if chars > MAX_FEEDBACK_CHARS {
            return Err(ParseError::TooLong {
                command: "revise",
                limit: MAX_FEEDBACK_CHARS,
                got: chars,
            });
        }
    }
    Ok(Command::Revise { feedback })
}
