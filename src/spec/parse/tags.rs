//! Tagged blocks (`<specification>…</specification>`) and code fences in a model's answer:
//! finding them case-insensitively, with attributes or unterminated, dropping planning blocks,
//! and unwrapping an all-enclosing fence. Every scan is linear.

use crate::prompt::sanitize::strip_invisible;

/// Tag lookup over a text and its ASCII-lowercased twin (same byte offsets).
pub(super) struct Tags<'a> {
    text: &'a str,
    lower: String,
}

/// Where a tagged block is: the whole block `outer` (open tag to close tag) and its content.
#[derive(Debug, Clone, Copy)]
pub(super) struct Found {
    pub(super) outer: (usize, usize),
    pub(super) inner: (usize, usize),
}

/// The blocks of an answer beside the specification, in the order they are looked for.
pub(super) const ANSWER_BLOCKS: [&str; 7] = [
    "components",
    "requirements",
    "diagram",
    "openapi",
    "test_plan",
    "rollout_plan",
    "changes",
];

/// The blocks dropped with their content before anything is read.
const PLANNING_BLOCKS: [&str; 3] = ["planning", "architectural_planning", "thinking"];

impl<'a> Tags<'a> {
    pub(super) fn new(text: &'a str) -> Tags<'a> {
        Tags {
            text,
            lower: text.to_ascii_lowercase(),
        }
    }

    /// The position of `byte` within `len` bytes from `from`.
    fn byte_within(&self, from: usize, len: usize, byte: u8) -> Option<usize> {
        let bytes = self.lower.as_bytes();
        let end = from.saturating_add(len).min(bytes.len());
        bytes
            .get(from..end)?
            .iter()
            .position(|b| *b == byte)
            .map(|p| from + p)
    }

    /// The first `needle` at or after `from` whose tag `tag_end` accepts, given where the
    /// needle ends: (tag start, what `tag_end` returned).
    fn first_tag(
        &self,
        needle: &str,
        from: usize,
        tag_end: impl Fn(usize) -> Option<usize>,
    ) -> Option<(usize, usize)> {
        let mut at = from;
        while at <= self.lower.len() {
            let rel = self.lower.get(at..)?.find(needle)?;
            let start = at + rel;
            let after = start + needle.len();
            if let Some(end) = tag_end(after) {
                return Some((start, end));
            }
            at = after;
        }
        None
    }

    /// The first opening tag `<name>` / `<name attr…>` at or after `from`: (tag start, content start).
    pub(super) fn open(&self, name: &str, from: usize) -> Option<(usize, usize)> {
        self.first_tag(&format!("<{name}"), from, |after| {
            match self.lower.as_bytes().get(after) {
                Some(b'>') => Some(after + 1),
                Some(b) if b.is_ascii_whitespace() => {
                    self.byte_within(after, 300, b'>').map(|gt| gt + 1)
                }
                _ => None,
            }
        })
    }

    /// The first closing tag at or after `from`: (tag start, tag end).
    fn close(&self, name: &str, from: usize) -> Option<(usize, usize)> {
        self.first_tag(&format!("</{name}"), from, |after| {
            let gt = self.byte_within(after, 8, b'>')?;
            self.lower.as_bytes()[after..gt]
                .iter()
                .all(u8::is_ascii_whitespace)
                .then_some(gt + 1)
        })
    }

    /// The last closing tag after `from`.
    fn last_close(&self, name: &str, from: usize) -> Option<(usize, usize)> {
        let needle = format!("</{name}");
        let rel = self.lower.get(from..)?.rfind(&needle)?;
        let start = from + rel;
        let end = self.lower[start..]
            .find('>')
            .map(|gt| start + gt + 1)
            .unwrap_or(self.lower.len());
        Some((start, end))
    }

    /// Where the next known opening tag after `from` starts (the end of an unterminated block).
    fn next_known_open(&self, from: usize) -> usize {
        std::iter::once("specification")
            .chain(ANSWER_BLOCKS)
            .chain(PLANNING_BLOCKS)
            .filter_map(|t| self.open(t, from).map(|(s, _)| s))
            .min()
            .unwrap_or(self.text.len())
    }

    /// The block `<name>…</name>` starting at or after `from`. Unterminated: up to the next
    /// known tag or the end. With `greedy`, the content runs to the *last* closing tag.
    pub(super) fn find(&self, name: &str, from: usize, greedy: bool) -> Option<Found> {
        let (start, content) = self.open(name, from)?;
        let close = if greedy {
            self.last_close(name, content)
        } else {
            self.close(name, content)
        };
        Some(match close {
            Some((cs, ce)) => Found {
                outer: (start, ce),
                inner: (content, cs),
            },
            None => {
                let end = self.next_known_open(content);
                Found {
                    outer: (start, end),
                    inner: (content, end),
                }
            }
        })
    }

    /// The first `<name>…</name>` content anywhere, with its outer range.
    pub(super) fn outer(&self, name: &str) -> Option<((usize, usize), &'a str)> {
        let found = self.find(name, 0, false)?;
        Some((found.outer, self.text.get(found.inner.0..found.inner.1)?))
    }
}

/// Remove `<planning>`, `<architectural_planning>` and `<thinking>` blocks (an unterminated one
/// runs to the next `<specification>` or the end).
pub(super) fn drop_planning(text: &str) -> String {
    let mut current = text.to_string();
    for name in PLANNING_BLOCKS {
        let tags = Tags::new(&current);
        let mut out = String::with_capacity(current.len());
        let mut at = 0;
        // Once a search for a closing tag fails, every later one would too: remember it, so
        // many unterminated openers cost linear, not quadratic, time.
        let mut closes_left = true;
        while let Some((start, content)) = tags.open(name, at) {
            out.push_str(&current[at..start]);
            let close = if closes_left {
                tags.close(name, content)
            } else {
                None
            };
            closes_left = close.is_some();
            at = match close {
                Some((_, end)) => end,
                None => tags
                    .open("specification", content)
                    .map(|(s, _)| s)
                    .unwrap_or(current.len()),
            };
        }
        out.push_str(current.get(at..).unwrap_or(""));
        current = out;
    }
    current
}

/// The content of a text wrapped as a whole in a code fence (```` ```lang … ``` ````), else the
/// trimmed text.
pub(super) fn strip_code_fence(text: &str) -> &str {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("```").or_else(|| t.strip_prefix("~~~")) else {
        return t;
    };
    let Some(newline) = rest.find('\n') else {
        return t;
    };
    let body = &rest[newline + 1..];
    let body = body
        .trim_end()
        .strip_suffix("```")
        .or_else(|| body.trim_end().strip_suffix("~~~"))
        .unwrap_or(body);
    body.trim_matches('\n').trim_end()
}

/// The content of the first fenced block whose info string is one of `langs` (lowercase) and,
/// if `must_contain` is given, whose content contains it.
pub(super) fn fenced_block<'t>(
    text: &'t str,
    langs: &[&str],
    must_contain: Option<&str>,
) -> Option<&'t str> {
    let lower = text.to_ascii_lowercase();
    let mut at = 0;
    while let Some(rel) = lower.get(at..)?.find("```") {
        let start = at + rel;
        let line_start = start == 0 || lower.as_bytes().get(start - 1) == Some(&b'\n');
        let info_end = lower[start..]
            .find('\n')
            .map(|n| start + n)
            .unwrap_or(lower.len());
        let info = lower[start + 3..info_end].trim();
        let content_start = (info_end + 1).min(lower.len());
        let close = lower[content_start..]
            .find("\n```")
            .map(|n| content_start + n)
            .unwrap_or(lower.len());
        if line_start && langs.contains(&info) {
            let content = text.get(content_start..close)?;
            if must_contain.is_none_or(|needle| content.contains(needle)) {
                return Some(content.trim_end());
            }
        }
        // Skip past this block's closing fence.
        at = (close + 4).min(lower.len());
        if at >= lower.len() {
            break;
        }
    }
    None
}

/// The spec as committed: invisible characters removed, an all-enclosing fence dropped.
pub(super) fn clean_spec(text: &str) -> String {
    let clean = strip_invisible(text);
    let t = clean.trim();
    let lower_start = t.get(..12).unwrap_or(t).to_ascii_lowercase();
    if lower_start.starts_with("```markdown")
        || lower_start.starts_with("```md")
        || t.starts_with("```\n")
    {
        strip_code_fence(t).to_string()
    } else {
        t.to_string()
    }
}
