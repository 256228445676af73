//! Parsing the architect's answer, from a `submit_spec` tool call or from plain text.
//!
//! Owns: [`parse_tool_input`], [`parse_text_answer`], [`SpecError`] and the tolerant helpers
//! (relaxed JSON, tag and fence extraction, the markdown "Components" section).
//!
//! The text format, as the architect prompt asks for it:
//!
//! ```text
//! <planning>…dropped…</planning>
//! <specification>…markdown…</specification>
//! <components>[{"title": …, "summary": …, "acceptance_criteria": […], "depends_on": […]}]</components>
//! <diagram>…</diagram> <openapi>…</openapi> <test_plan>…</test_plan> <rollout_plan>…</rollout_plan>
//! <changes>…</changes>   (revisions only)
//! ```
//!
//! Tolerated: tags in any case and with attributes, an unterminated last tag, the spec wrapped
//! in a code fence, components JSON in a ```` ```json ```` fence with comments and trailing
//! commas (or an object `{"components": […]}`), components only as a `## Components` markdown
//! section (`### Title` + bullets), artifacts as fenced ```` ```mermaid ```` / ```` ```yaml ````
//! blocks instead of tags. All scans are linear; nothing here can panic on any input.

use serde_json::Value;

use super::{ArtifactKind, Artifacts, Component, MAX_ANSWER_BYTES, SpecAnswer};
use crate::prompt::sanitize::{one_line, strip_invisible};

/// At most this many components are read from an answer (validation allows fewer).
const MAX_PARSED_COMPONENTS: usize = 100;
/// At most this many items per list (criteria, dependencies).
const MAX_LIST_ITEMS: usize = 100;

/// Why an answer could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("the answer is {bytes} bytes long, more than the {max} bytes accepted")]
    TooLarge { bytes: usize, max: usize },
    #[error(
        "the answer has no specification: put the whole specification inside <specification> and </specification> tags (or call the submit_spec tool)"
    )]
    NoSpecification,
    #[error("the specification is empty")]
    EmptySpecification,
    #[error("the submit_spec tool input is not usable: {0}")]
    BadToolInput(String),
}

// ---------------------------------------------------------------------------------------------
// Tool input

/// Read a `submit_spec` tool call's input. Tolerant: the input may be a JSON string holding the
/// object; `components` may be a JSON string; lists may be newline-separated strings; an OpenAPI
/// artifact given as an object is kept as JSON (which is YAML).
pub fn parse_tool_input(input: &Value) -> Result<SpecAnswer, SpecError> {
    let owned;
    let input = match input {
        Value::String(s) => {
            if s.len() > MAX_ANSWER_BYTES {
                return Err(SpecError::TooLarge {
                    bytes: s.len(),
                    max: MAX_ANSWER_BYTES,
                });
            }
            owned = relaxed_json(s).ok_or_else(|| {
                SpecError::BadToolInput("it is a string that is not a JSON object".into())
            })?;
            &owned
        }
        v => v,
    };
    let Some(obj) = input.as_object() else {
        return Err(SpecError::BadToolInput("it is not a JSON object".into()));
    };
    let spec = ["specification", "spec", "markdown"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .ok_or_else(|| {
            SpecError::BadToolInput(
                "the `specification` field (a markdown string) is missing".into(),
            )
        })?;
    if spec.len() > MAX_ANSWER_BYTES {
        return Err(SpecError::TooLarge {
            bytes: spec.len(),
            max: MAX_ANSWER_BYTES,
        });
    }
    let mut specification = clean_spec(spec);
    // A model sometimes wraps the field in the text format's tags.
    if let Some((_, inner)) = Tags::new(&specification).outer("specification") {
        specification = clean_spec(inner);
    }
    if specification.trim().is_empty() {
        return Err(SpecError::EmptySpecification);
    }
    let components = obj
        .get("components")
        .map(components_from_value)
        .unwrap_or_default();
    let mut artifacts = Artifacts::default();
    let nested = obj.get("artifacts").and_then(Value::as_object);
    for kind in ArtifactKind::ALL {
        let value = nested
            .and_then(|a| a.get(kind.key()))
            .or_else(|| obj.get(kind.key()));
        let text = match value {
            Some(Value::String(s)) => Some(strip_code_fence(&strip_invisible(s)).to_string()),
            Some(Value::Null) | None => None,
            Some(other) => serde_json::to_string_pretty(other).ok(),
        };
        *artifacts.get_mut(kind) = text.filter(|t| !t.trim().is_empty());
    }
    let changes = obj
        .get("changes")
        .and_then(Value::as_str)
        .map(|s| strip_invisible(s).trim().to_string())
        .filter(|s| !s.is_empty());
    Ok(SpecAnswer {
        specification,
        components,
        artifacts,
        changes,
    })
}

/// Components from a JSON value: an array of objects, `{"components": […]}`, or a string
/// holding either.
fn components_from_value(value: &Value) -> Vec<Component> {
    match value {
        Value::Array(items) => items
            .iter()
            .take(MAX_PARSED_COMPONENTS)
            .filter_map(component_from_value)
            .collect(),
        Value::Object(obj) => match obj.get("components") {
            Some(inner @ Value::Array(_)) => components_from_value(inner),
            _ => component_from_value(value).into_iter().collect(),
        },
        Value::String(s) => relaxed_json(s)
            .filter(|v| !v.is_string())
            .map(|v| components_from_value(&v))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn first_field<'a>(obj: &'a serde_json::Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| obj.get(*k))
}

fn component_from_value(value: &Value) -> Option<Component> {
    let obj = value.as_object()?;
    let title = first_field(obj, &["title", "name"])
        .and_then(Value::as_str)
        .map(clean_title)
        .unwrap_or_default();
    let summary = first_field(obj, &["summary", "description"])
        .and_then(Value::as_str)
        .map(|s| strip_invisible(s).trim().to_string())
        .unwrap_or_default();
    let acceptance_criteria = first_field(
        obj,
        &["acceptance_criteria", "acceptanceCriteria", "criteria"],
    )
    .map(string_list)
    .unwrap_or_default();
    let depends_on = first_field(obj, &["depends_on", "dependsOn", "dependencies"])
        .map(string_list)
        .unwrap_or_default()
        .into_iter()
        .map(|d| clean_title(&d))
        .filter(|d| !d.is_empty())
        .collect();
    Some(Component {
        title,
        summary,
        acceptance_criteria,
        depends_on,
    })
}

/// A list of strings from an array (non-strings stringified) or a newline-separated string.
fn string_list(value: &Value) -> Vec<String> {
    let items: Vec<String> = match value {
        Value::Array(items) => items
            .iter()
            .take(MAX_LIST_ITEMS)
            .map(|v| match v {
                Value::String(s) => s.clone(),
                Value::Object(o) => first_field(o, &["title", "name", "text", "criterion"])
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
                other => other.to_string(),
            })
            .collect(),
        Value::String(s) => s.lines().take(MAX_LIST_ITEMS).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    items
        .iter()
        .map(|s| one_line(strip_bullet(s), 2_000))
        .filter(|s| !s.is_empty() && !is_none_word(s))
        .collect()
}

fn is_none_word(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().trim_end_matches('.'),
        "none" | "n/a" | "-" | "nothing"
    )
}

/// A title: one line, no markdown emphasis or code ticks, no numbering, at most 500 chars.
fn clean_title(s: &str) -> String {
    let line = one_line(s, 500);
    let mut t = line
        .trim()
        .trim_matches(|c| c == '*' || c == '`' || c == '_')
        .trim();
    // "1. Title", "1) Title", "Component 2: Title"
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && digits < 4 {
        let rest = &t[digits..];
        if let Some(r) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(')')) {
            t = r.trim();
        }
    }
    let lower = t.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("component")
        && let Some(colon) = rest.find(':')
        && rest[..colon]
            .trim()
            .chars()
            .all(|c| c.is_ascii_alphanumeric())
    {
        t = t["component".len() + colon + 1..].trim();
    }
    t.trim_matches(|c| c == '*' || c == '`' || c == '_')
        .trim()
        .to_string()
}

fn strip_bullet(s: &str) -> &str {
    let t = s.trim();
    let t = t
        .strip_prefix("- ")
        .or_else(|| t.strip_prefix("* "))
        .or_else(|| t.strip_prefix("+ "))
        .unwrap_or(t)
        .trim_start();
    let t = ["[ ] ", "[x] ", "[X] "]
        .iter()
        .find_map(|p| t.strip_prefix(p))
        .unwrap_or(t);
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && digits < 4 {
        let rest = &t[digits..];
        if let Some(r) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return r.trim();
        }
    }
    t.trim()
}

/// Parse JSON leniently: an optional code fence around it, text before the first `[`/`{`,
/// `//` and `/* */` comments, trailing commas, and anything after the first complete value.
pub(crate) fn relaxed_json(text: &str) -> Option<Value> {
    let body = strip_code_fence(text);
    let start = body.find(['[', '{'])?;
    let cleaned = strip_json_comments_and_trailing_commas(&body[start..]);
    let mut stream = serde_json::Deserializer::from_str(&cleaned).into_iter::<Value>();
    stream.next()?.ok()
}

fn strip_json_comments_and_trailing_commas(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    let mut escaped = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '/' if chars.peek() == Some(&'/') => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
                out.push(' ');
            }
            '}' | ']' => {
                let trimmed = out.trim_end().len();
                out.truncate(trimmed);
                if out.ends_with(',') {
                    out.pop();
                }
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Tags and fences

/// Tag lookup over a text and its ASCII-lowercased twin (same byte offsets).
struct Tags<'a> {
    text: &'a str,
    lower: String,
}

/// Where a tagged block is: the whole block `outer` (open tag to close tag) and its content.
#[derive(Debug, Clone, Copy)]
struct Found {
    outer: (usize, usize),
    inner: (usize, usize),
}

const KNOWN_TAGS: &[&str] = &[
    "specification",
    "components",
    "diagram",
    "openapi",
    "test_plan",
    "rollout_plan",
    "changes",
    "planning",
    "architectural_planning",
    "thinking",
];

impl<'a> Tags<'a> {
    fn new(text: &'a str) -> Tags<'a> {
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

    /// The first opening tag `<name>` / `<name attr…>` at or after `from`: (tag start, content start).
    fn open(&self, name: &str, from: usize) -> Option<(usize, usize)> {
        let needle = format!("<{name}");
        let mut at = from;
        while at <= self.lower.len() {
            let rel = self.lower.get(at..)?.find(&needle)?;
            let start = at + rel;
            let after = start + needle.len();
            match self.lower.as_bytes().get(after) {
                Some(b'>') => return Some((start, after + 1)),
                Some(b) if b.is_ascii_whitespace() => {
                    if let Some(gt) = self.byte_within(after, 300, b'>') {
                        return Some((start, gt + 1));
                    }
                }
                _ => {}
            }
            at = after;
        }
        None
    }

    /// The first closing tag at or after `from`: (tag start, tag end).
    fn close(&self, name: &str, from: usize) -> Option<(usize, usize)> {
        let needle = format!("</{name}");
        let mut at = from;
        while at <= self.lower.len() {
            let rel = self.lower.get(at..)?.find(&needle)?;
            let start = at + rel;
            let after = start + needle.len();
            if let Some(gt) = self.byte_within(after, 8, b'>')
                && self.lower.as_bytes()[after..gt]
                    .iter()
                    .all(u8::is_ascii_whitespace)
            {
                return Some((start, gt + 1));
            }
            at = after;
        }
        None
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
        KNOWN_TAGS
            .iter()
            .filter_map(|t| self.open(t, from).map(|(s, _)| s))
            .min()
            .unwrap_or(self.text.len())
    }

    /// The block `<name>…</name>` starting at or after `from`. Unterminated: up to the next
    /// known tag or the end. With `greedy`, the content runs to the *last* closing tag.
    fn find(&self, name: &str, from: usize, greedy: bool) -> Option<Found> {
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
    fn outer(&self, name: &str) -> Option<((usize, usize), &'a str)> {
        let found = self.find(name, 0, false)?;
        Some((found.outer, self.text.get(found.inner.0..found.inner.1)?))
    }
}

/// Remove `<planning>`, `<architectural_planning>` and `<thinking>` blocks (an unterminated one
/// runs to the next `<specification>` or the end).
fn drop_planning(text: &str) -> String {
    let mut current = text.to_string();
    for name in ["planning", "architectural_planning", "thinking"] {
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
pub(crate) fn strip_code_fence(text: &str) -> &str {
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
fn fenced_block<'t>(text: &'t str, langs: &[&str], must_contain: Option<&str>) -> Option<&'t str> {
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
fn clean_spec(text: &str) -> String {
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

// ---------------------------------------------------------------------------------------------
// Plain text answer

/// Read an answer in the text format (see the module docs).
pub fn parse_text_answer(text: &str) -> Result<SpecAnswer, SpecError> {
    if text.len() > MAX_ANSWER_BYTES {
        return Err(SpecError::TooLarge {
            bytes: text.len(),
            max: MAX_ANSWER_BYTES,
        });
    }
    let cleaned = drop_planning(text);
    let tags = Tags::new(&cleaned);
    let spec_found = tags.find("specification", 0, true);
    // Other blocks: after the spec first, then before it, then inside it.
    let outside = |name: &str| -> Option<Found> {
        match spec_found {
            Some(spec) => tags
                .find(name, spec.outer.1, false)
                .or_else(|| {
                    tags.find(name, 0, false)
                        .filter(|f| f.outer.1 <= spec.outer.0)
                })
                .or_else(|| {
                    tags.find(name, spec.inner.0, false)
                        .filter(|f| f.outer.1 <= spec.inner.1)
                }),
            None => tags.find(name, 0, false),
        }
    };
    let mut blocks: Vec<(&str, Found)> = Vec::new();
    for name in [
        "components",
        "diagram",
        "openapi",
        "test_plan",
        "rollout_plan",
        "changes",
    ] {
        if let Some(found) = outside(name) {
            blocks.push((name, found));
        }
    }
    let content = |f: &Found| cleaned.get(f.inner.0..f.inner.1).unwrap_or("");

    // The specification, without any tagged block nested in it.
    let spec_text = match spec_found {
        Some(spec) => cut_ranges(&cleaned, spec.inner, &blocks),
        None => {
            let whole = cut_ranges(&cleaned, (0, cleaned.len()), &blocks);
            if !whole.lines().any(|l| l.trim_start().starts_with('#')) {
                return Err(SpecError::NoSpecification);
            }
            whole
        }
    };
    let specification = clean_spec(&spec_text);
    if specification.trim().is_empty() {
        return Err(SpecError::EmptySpecification);
    }

    let get = |name: &str| {
        blocks
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| content(f))
    };
    let components = get("components")
        .and_then(relaxed_json)
        .map(|v| components_from_value(&v))
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| components_from_markdown(&specification));

    // Artifacts: tags, else fenced blocks outside the spec (the diagram also from inside it).
    let outside_spec = match spec_found {
        Some(spec) => format!(
            "{}\n{}",
            cleaned.get(..spec.outer.0).unwrap_or(""),
            cleaned.get(spec.outer.1..).unwrap_or("")
        ),
        None => String::new(),
    };
    let mut artifacts = Artifacts::default();
    for kind in ArtifactKind::ALL {
        let tagged = get(kind.key()).map(|t| strip_code_fence(&strip_invisible(t)).to_string());
        let fenced = || -> Option<String> {
            let found = match kind {
                ArtifactKind::Diagram => fenced_block(&outside_spec, &["mermaid", "mmd"], None)
                    .or_else(|| fenced_block(&specification, &["mermaid", "mmd"], None)),
                ArtifactKind::OpenApi => {
                    fenced_block(&outside_spec, &["yaml", "yml", "openapi"], Some("openapi"))
                }
                ArtifactKind::TestPlan | ArtifactKind::RolloutPlan => None,
            };
            found.map(|t| strip_invisible(t).trim().to_string())
        };
        *artifacts.get_mut(kind) = tagged.or_else(fenced).filter(|t| !t.trim().is_empty());
    }
    let changes = get("changes")
        .map(|t| strip_invisible(t).trim().to_string())
        .filter(|t| !t.is_empty());
    Ok(SpecAnswer {
        specification,
        components,
        artifacts,
        changes,
    })
}

/// The text in `range` with the outer ranges of `blocks` that lie inside it removed.
fn cut_ranges(text: &str, range: (usize, usize), blocks: &[(&str, Found)]) -> String {
    let mut inner: Vec<(usize, usize)> = blocks
        .iter()
        .map(|(_, f)| f.outer)
        .filter(|(s, e)| *s >= range.0 && *e <= range.1)
        .collect();
    inner.sort_unstable();
    let mut out = String::new();
    let mut at = range.0;
    for (s, e) in inner {
        if s >= at {
            out.push_str(text.get(at..s).unwrap_or(""));
            at = e;
        }
    }
    out.push_str(text.get(at..range.1).unwrap_or(""));
    out
}

// ---------------------------------------------------------------------------------------------
// Components from markdown

fn heading(line: &str) -> Option<(usize, &str)> {
    let t = line.trim_start();
    let level = t.chars().take_while(|c| *c == '#').count();
    if level == 0 || level > 6 {
        return None;
    }
    let rest = &t[level..];
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    Some((level, rest.trim().trim_end_matches('#').trim()))
}

/// Lowercase heading text without numbering ("5.", "4.3", "IV.") or emphasis.
pub(crate) fn heading_words(text: &str) -> String {
    let t = text.trim().trim_matches(|c| c == '*' || c == '_').trim();
    let t = t.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ')');
    t.trim().to_lowercase()
}

enum Mode {
    Summary,
    Criteria,
    Depends,
}

/// Components from a `## Components` section: each `### Title` (one level deeper) starts a
/// component; "Acceptance criteria" and "Depends on" labels (as text, bold or sub-headings)
/// switch what the following bullets are; other bullets are criteria, other lines the summary.
fn components_from_markdown(spec: &str) -> Vec<Component> {
    let mut out: Vec<Component> = Vec::new();
    let mut section_level: Option<usize> = None;
    let mut mode = Mode::Summary;
    let mut in_fence = false;
    for line in spec.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        if let Some((level, text)) = heading(line) {
            match section_level {
                None => {
                    let words = heading_words(text);
                    if words == "components"
                        || words.starts_with("components ")
                        || words == "key components"
                    {
                        section_level = Some(level);
                    }
                    continue;
                }
                Some(sec) if level <= sec => {
                    section_level = None;
                    if out.len() >= MAX_PARSED_COMPONENTS {
                        break;
                    }
                    let words = heading_words(text);
                    if words.starts_with("components") {
                        section_level = Some(level);
                    }
                    continue;
                }
                Some(sec) => {
                    let words = heading_words(text);
                    if level > sec + 1 && !out.is_empty() {
                        if words.starts_with("acceptance") {
                            mode = Mode::Criteria;
                            continue;
                        }
                        if words.starts_with("depend") {
                            mode = Mode::Depends;
                            continue;
                        }
                    }
                    if out.len() < MAX_PARSED_COMPONENTS {
                        out.push(Component {
                            title: clean_title(text),
                            ..Component::default()
                        });
                    }
                    mode = Mode::Summary;
                    continue;
                }
            }
        }
        if section_level.is_none() || trimmed.is_empty() {
            continue;
        }
        let Some(current) = out.last_mut() else {
            continue;
        };
        let plain = trimmed.trim_matches(|c| c == '*' || c == '_');
        let lower = plain.to_ascii_lowercase();
        let is_bullet = trimmed.starts_with("- ")
            || trimmed.starts_with("* ")
            || trimmed.starts_with("+ ")
            || trimmed.chars().take_while(char::is_ascii_digit).count() > 0
                && trimmed.contains(". ");
        if !is_bullet
            && (lower.starts_with("acceptance criteria") || lower.starts_with("acceptance"))
        {
            mode = Mode::Criteria;
            continue;
        }
        let label_body = |p: &str| -> Option<String> {
            let stripped = strip_bullet(p);
            let l = stripped.to_ascii_lowercase();
            let l = l.trim_start_matches(['*', '_']);
            ["depends on", "dependencies", "depends"]
                .iter()
                .find_map(|k| {
                    l.strip_prefix(k).map(|_| {
                        let offset = stripped.len() - l.len();
                        let rest = &stripped[offset + k.len()..];
                        rest.trim_start_matches(['*', '_', ':', ' '])
                            .trim_start_matches(['*', '_'])
                            .trim()
                            .to_string()
                    })
                })
        };
        if let Some(rest) = label_body(trimmed) {
            mode = Mode::Depends;
            for dep in rest.split([',', ';']) {
                let dep = clean_title(dep);
                if !dep.is_empty()
                    && !is_none_word(&dep)
                    && current.depends_on.len() < MAX_LIST_ITEMS
                {
                    current.depends_on.push(dep);
                }
            }
            continue;
        }
        if let Some(rest) = lower.strip_prefix("summary") {
            let offset = plain.len() - rest.len();
            let text = plain[offset..].trim_start_matches([':', '*', ' ']).trim();
            if !text.is_empty() {
                current.summary = one_line(text, 4_000);
            }
            continue;
        }
        match (is_bullet, &mode) {
            (true, Mode::Depends) => {
                let dep = clean_title(strip_bullet(trimmed));
                if !dep.is_empty()
                    && !is_none_word(&dep)
                    && current.depends_on.len() < MAX_LIST_ITEMS
                {
                    current.depends_on.push(dep);
                }
            }
            (true, _) => {
                let item = one_line(strip_bullet(trimmed), 2_000);
                if !item.is_empty() && current.acceptance_criteria.len() < MAX_LIST_ITEMS {
                    current.acceptance_criteria.push(item);
                }
            }
            (false, _) => {
                if current.summary.len() < 4_000 {
                    if !current.summary.is_empty() {
                        current.summary.push(' ');
                    }
                    current.summary.push_str(trimmed);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SPEC: &str = "# Rate limiting\n\n## Summary\nLimit.\n\n## Design\nToken bucket.\n\n## Components\n\nSee below.\n";

    #[test]
    fn text_answer_with_tags() {
        let text = format!(
            "<planning>think <specification>not this</specification></planning>\nHere it is:\n<specification>\n{SPEC}</specification>\n<components>\n```json\n[\n  // the limiter\n  {{\"title\": \"Limiter\", \"summary\": \"Buckets.\", \"acceptance_criteria\": [\"429 after 10 req/s\",], \"depends_on\": [],}},\n  {{\"title\": \"Config\", \"summary\": \"Knobs\", \"acceptance_criteria\": \"- a\\n- b\", \"depends_on\": [\"Limiter\"]}},\n]\n```\n</components>\n<diagram>\n```mermaid\nflowchart TD\n  A-->B\n```\n</diagram>\n<OpenAPI version=\"3.1\">openapi: 3.1.0\ninfo: {{title: x, version: '1'}}\npaths: {{}}\n</OpenAPI>\nAnything else?"
        );
        let answer = parse_text_answer(&text).expect("parses");
        assert_eq!(answer.specification, SPEC.trim());
        assert_eq!(answer.components.len(), 2);
        assert_eq!(
            answer.components[0].acceptance_criteria,
            ["429 after 10 req/s"]
        );
        assert_eq!(answer.components[1].acceptance_criteria, ["a", "b"]);
        assert_eq!(answer.components[1].depends_on, ["Limiter"]);
        assert_eq!(
            answer.artifacts.diagram.as_deref(),
            Some("flowchart TD\n  A-->B")
        );
        assert!(
            answer
                .artifacts
                .openapi
                .as_deref()
                .is_some_and(|o| o.starts_with("openapi: 3.1.0"))
        );
        assert_eq!(answer.artifacts.test_plan, None);
    }

    #[test]
    fn components_from_markdown_section() {
        let spec = "## Summary\nx\n## Design\ny\n## 5. Components\n### 1. Storage layer\nKeeps counters.\n**Acceptance criteria:**\n- [ ] survives restart\n- counts per key\n**Depends on:** none\n### Component 2: API\nSummary: the endpoints.\n- returns 429\nDepends on: Storage layer, Auth\n#### Depends on\n- Metrics\n## Open questions\n- Q?\n";
        let text = format!("<specification>{spec}</specification>");
        let answer = parse_text_answer(&text).expect("parses");
        let c = &answer.components;
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].title, "Storage layer");
        assert_eq!(c[0].summary, "Keeps counters.");
        assert_eq!(
            c[0].acceptance_criteria,
            ["survives restart", "counts per key"]
        );
        assert!(c[0].depends_on.is_empty());
        assert_eq!(c[1].title, "API");
        assert_eq!(c[1].summary, "the endpoints.");
        assert_eq!(c[1].acceptance_criteria, ["returns 429"]);
        assert_eq!(c[1].depends_on, ["Storage layer", "Auth", "Metrics"]);
    }

    #[test]
    fn fallbacks_and_errors() {
        assert_eq!(
            parse_text_answer("just words"),
            Err(SpecError::NoSpecification)
        );
        assert_eq!(
            parse_text_answer("<specification>  </specification>"),
            Err(SpecError::EmptySpecification)
        );
        // No tags, but a markdown document: take it.
        let answer = parse_text_answer(SPEC).expect("parses");
        assert!(answer.specification.starts_with("# Rate limiting"));
        // Unterminated spec runs to the next known tag.
        let answer =
            parse_text_answer("<specification>\n# A\n<diagram>graph TD\nA-->B").expect("parses");
        assert_eq!(answer.specification, "# A");
        assert_eq!(answer.artifacts.diagram.as_deref(), Some("graph TD\nA-->B"));
        // Fenced artifacts outside the spec.
        let text = "<specification># S</specification>\n```yaml\nopenapi: 3.1.0\n```\n```mermaid\nsequenceDiagram\n```";
        let answer = parse_text_answer(text).expect("parses");
        assert_eq!(answer.artifacts.openapi.as_deref(), Some("openapi: 3.1.0"));
        assert_eq!(answer.artifacts.diagram.as_deref(), Some("sequenceDiagram"));
        // Components nested inside the spec are cut out of it.
        let text =
            "<specification># S\n<components>[{\"title\":\"A\"}]</components>\nend</specification>";
        let answer = parse_text_answer(text).expect("parses");
        assert_eq!(answer.specification, "# S\n\nend");
        assert_eq!(answer.components[0].title, "A");
        // Changes.
        let answer =
            parse_text_answer("<specification># S</specification><changes>Renamed X.</changes>")
                .expect("parses");
        assert_eq!(answer.changes.as_deref(), Some("Renamed X."));
    }

    #[test]
    fn tool_input_table() {
        let ok = json!({
            "specification": "# S\n## Summary\n",
            "components": [{"title": "A", "summary": "s", "acceptance_criteria": ["x"], "depends_on": []}],
            "artifacts": {"diagram": "```mermaid\nflowchart LR\n```", "openapi": {"openapi": "3.1.0"}}
        });
        let answer = parse_tool_input(&ok).expect("parses");
        assert_eq!(answer.components[0].title, "A");
        assert_eq!(answer.artifacts.diagram.as_deref(), Some("flowchart LR"));
        assert!(
            answer
                .artifacts
                .openapi
                .as_deref()
                .is_some_and(|o| o.contains("\"openapi\": \"3.1.0\""))
        );

        let stringly = json!({
            "specification": "<specification># S</specification>",
            "components": "[{\"name\": \"A\", \"dependencies\": \"B\\nnone\",}]",
            "diagram": "graph TD",
        });
        let answer = parse_tool_input(&stringly).expect("parses");
        assert_eq!(answer.specification, "# S");
        assert_eq!(answer.components[0].title, "A");
        assert_eq!(answer.components[0].depends_on, ["B"]);
        assert_eq!(answer.artifacts.diagram.as_deref(), Some("graph TD"));

        let as_string = Value::String(ok.to_string());
        assert!(parse_tool_input(&as_string).is_ok());

        for bad in [
            json!(null),
            json!([1]),
            json!({"components": []}),
            json!("not json"),
            json!({"specification": 3}),
        ] {
            assert!(
                matches!(parse_tool_input(&bad), Err(SpecError::BadToolInput(_))),
                "{bad}"
            );
        }
        assert_eq!(
            parse_tool_input(&json!({"specification": " "})),
            Err(SpecError::EmptySpecification)
        );
    }

    #[test]
    fn relaxed_json_table() {
        let cases = [
            ("[1, 2,]", json!([1, 2])),
            (
                "```json\n{\"a\": [1,], /* c */ \"b\": \"//not a comment,]\"}\n```",
                json!({"a": [1], "b": "//not a comment,]"}),
            ),
            ("Here: [ {\"a\": 1}, ] trailing words", json!([{"a": 1}])),
            ("[\"esc \\\" quote\",]", json!(["esc \" quote"])),
        ];
        for (text, want) in cases {
            assert_eq!(relaxed_json(text), Some(want), "{text}");
        }
        assert_eq!(relaxed_json("no json here"), None);
        assert_eq!(relaxed_json("[1, 2"), None);
    }

    #[test]
    fn hostile_inputs_never_panic() {
        let big_lt = "<".repeat(1 << 20);
        let nested = "<specification>".repeat(10_000);
        let deep_json = format!(
            "<specification># S</specification><components>{}</components>",
            "[".repeat(100_000)
        );
        let many_fences = "```\n".repeat(50_000);
        let many_headings = format!("## Components\n{}", "### C\n- x\n".repeat(20_000));
        let inputs: Vec<String> = vec![
            String::new(),
            "<specification>".into(),
            "</specification>".into(),
            "<specification></specification>".into(),
            "<specification><specification># A</specification></specification>".into(),
            "<components>".into(),
            "<planning>".into(),
            "<planning><specification># x".into(),
            "<specification># x\n```mermaid\nflowchart".into(),
            "<diagram>```".into(),
            "```".into(),
            "<specification # x".into(),
            "<specification\u{FEFF}>é</specification>".into(),
            "<ſpecification>".into(),
            "<specification>İ".into(),
            big_lt,
            nested,
            deep_json,
            many_fences,
            many_headings,
            "\u{0}\u{202E}".repeat(1000),
        ];
        for input in &inputs {
            let _ = parse_text_answer(input);
            let _ = parse_tool_input(&Value::String(input.clone()));
            let _ = parse_tool_input(&json!({"specification": input, "components": input}));
        }
        let huge = "x".repeat(MAX_ANSWER_BYTES + 1);
        assert!(matches!(
            parse_text_answer(&huge),
            Err(SpecError::TooLarge { .. })
        ));
    }
}
