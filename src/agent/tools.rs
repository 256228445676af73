//! The engineer's tools: their definitions (name, description, JSON schema) and their
//! execution over the [`Workspace`], every change going through the [`Policy`] first.
//!
//! Owns: [`tool_definitions`], [`tool_notes`], the output bounds ([`MAX_READ_LINES`],
//! [`MAX_READ_BYTES`], [`MAX_SEARCH_MATCHES`], …), the report `finish` carries per criterion
//! ([`CriterionMet`]: by ID, with status, files and tests; bounded and normalised here) and
//! `execute` (crate-private). Every
//! failure is an `Err(String)` written for the model; policy refusals are also pushed to the
//! refusal list.

use std::fmt::Write as _;
use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::guard::{Policy, Refusal};
use super::path::RepoPath;
use super::workspace::{Kind, Workspace};
use crate::llm::Tool;
use crate::prompt::glob::Glob;
use crate::prompt::templates::ToolNote;

/// Most lines one `read_file` call returns.
pub const MAX_READ_LINES: usize = 2_000;
/// Most bytes one `read_file` call returns.
pub const MAX_READ_BYTES: usize = 100_000;
/// Longer lines are cut in `read_file` output.
pub const MAX_LINE_CHARS: usize = 4_000;
/// Most entries one `list_directory` call shows.
pub const MAX_LIST_ENTRIES: usize = 1_000;
/// Most matches one `search` call returns.
pub const MAX_SEARCH_MATCHES: usize = 100;
/// Longest `search` pattern, in bytes.
pub const MAX_PATTERN_BYTES: usize = 1_000;
/// Compiled-regex size limit for `search`.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Files larger than this are not searched.
pub const MAX_SEARCH_FILE_BYTES: u64 = 1024 * 1024;
/// Most bytes one `search` call reads.
pub const MAX_SEARCH_TOTAL_BYTES: u64 = 64 * 1024 * 1024;
/// Longest summary `finish` accepts (a PR body holds 65 536 characters).
pub const MAX_SUMMARY_CHARS: usize = 50_000;

pub const LIST_DIRECTORY: &str = "list_directory";
pub const READ_FILE: &str = "read_file";
pub const SEARCH: &str = "search";
pub const WRITE_FILE: &str = "write_file";
pub const EDIT_FILE: &str = "edit_file";
pub const DELETE_FILE: &str = "delete_file";
pub const FINISH: &str = "finish";

/// Most criteria one `finish` reports.
pub const MAX_REPORTED_CRITERIA: usize = 200;
/// Most files, and most tests, one criterion's report names.
pub const MAX_CRITERION_REFS: usize = 50;
/// Longest text of one criterion's report (its criterion, how it is met, the reason).
pub const MAX_CRITERION_CHARS: usize = 4_000;

/// Whether the engineer says a criterion is met.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CriterionStatus {
    /// Met by the change (also what a report without a status means, as before statuses).
    #[default]
    Done,
    #[serde(
        alias = "not done",
        alias = "notdone",
        alias = "partial",
        alias = "partially_done"
    )]
    NotDone,
}

/// One acceptance criterion as the engineer reports it in `finish`: by its ID when the spec's
/// criteria have IDs (`AC-1.2`), else by its text; whether it is done (and why not); how the
/// change meets it; the files that implement it and the tests that check it. The model's
/// words, checked free of secrets, never trusted: the PR body holds them against the scope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CriterionMet {
    /// The criterion's ID, upper case (`AC-1.2`); empty for a free-text criterion.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The criterion's text (free-text criteria; optional beside an ID).
    pub criterion: String,
    pub status: CriterionStatus,
    pub how_met: String,
    /// Why it is not done.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Files that implement it, as the model names them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Tests that check it, as the model names them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<String>,
}

impl CriterionMet {
    /// Every text of the report, for the secret scan.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        [&self.id, &self.criterion, &self.how_met, &self.reason]
            .into_iter()
            .chain(&self.files)
            .chain(&self.tests)
            .map(String::as_str)
    }
}

/// What `finish` carries.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Finish {
    pub summary: String,
    #[serde(default)]
    pub criteria: Vec<CriterionMet>,
}

/// The result of one tool call.
#[derive(Debug)]
pub(crate) enum Outcome {
    Ok(String),
    Err(String),
    Finish(Finish),
}

/// The tools, in the order the model sees them.
pub fn tool_definitions() -> Vec<Tool> {
    let path = json!({"type": "string", "description": "Path relative to the repository root, e.g. `src/main.rs`."});
    vec![
        Tool {
            name: LIST_DIRECTORY.into(),
            description: "List a directory of the repository: sub-directories end with `/`, files show their size.".into(),
            input_schema: json!({
                "type": "object",
                "properties": {"path": {"type": "string", "description": "Directory relative to the repository root; empty or `.` for the root."}},
            }),
        },
        Tool {
            name: READ_FILE.into(),
            description: format!("Read a text file, with line numbers. At most {MAX_READ_LINES} lines per call; use start_line / end_line (1-based, inclusive) for the rest."),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "path": path,
                    "start_line": {"type": "integer", "minimum": 1},
                    "end_line": {"type": "integer", "minimum": 1},
                },
                "required": ["path"],
            }),
        },
        Tool {
            name: SEARCH.into(),
            description: format!("Search the repository's text files with a regular expression (Rust regex syntax), optionally only paths matching a glob (`src/**/*.rs`). Returns at most {MAX_SEARCH_MATCHES} matching lines as `path:line: text`."),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "A regular expression."},
                    "path_glob": {"type": "string", "description": "Only search paths matching this glob: `**` any directories, `*` any characters in a name."},
                },
                "required": ["pattern"],
            }),
        },
        Tool {
            name: WRITE_FILE.into(),
            description: "Create a file, or replace a file's whole content. Directories are created as needed. Prefer edit_file for changes to existing files.".into(),
            input_schema: json!({
                "type": "object",
                "properties": {"path": path, "content": {"type": "string", "description": "The complete new content."}},
                "required": ["path", "content"],
            }),
        },
        Tool {
            name: EDIT_FILE.into(),
            description: "Replace one exact piece of text in a file. `old` must occur exactly once in the file (copy it exactly, whitespace included; add surrounding lines to make it unique).".into(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "path": path,
                    "old": {"type": "string", "description": "The exact text to replace; it must occur exactly once."},
                    "new": {"type": "string", "description": "The replacement text."},
                },
                "required": ["path", "old", "new"],
            }),
        },
        Tool {
            name: DELETE_FILE.into(),
            description: "Delete a file.".into(),
            input_schema: json!({
                "type": "object",
                "properties": {"path": path},
                "required": ["path"],
            }),
        },
        Tool {
            name: FINISH.into(),
            description: "Finish the work: a summary for the pull request description (what changed and why, the tests added, anything left out) and a report on every acceptance criterion you were given: by its ID (`AC-1.2`) when it has one, else by its text; `done` or `not_done` (with the reason); how the change meets it; the files that implement it; the tests that check it. Call it once, last.".into(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "summary": {"type": "string"},
                    "criteria": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "id": {"type": "string", "description": "The criterion's ID, e.g. `AC-1.2`; empty when the criteria have no IDs."},
                                "criterion": {"type": "string", "description": "The criterion's text, when it has no ID."},
                                "status": {"type": "string", "enum": ["done", "not_done"]},
                                "how_met": {"type": "string", "description": "How the change meets it."},
                                "reason": {"type": "string", "description": "Why it is not done (for `not_done`)."},
                                "files": {"type": "array", "items": {"type": "string"}, "description": "Paths of the files that implement it."},
                                "tests": {"type": "array", "items": {"type": "string"}, "description": "The tests that check it (test names or test files)."},
                            },
                            "required": ["status", "how_met"],
                        },
                    },
                },
                "required": ["summary", "criteria"],
            }),
        },
    ]
}

/// The tools as the engineer prompt lists them ([`crate::prompt::templates::EngineerInput::tools`]).
pub fn tool_notes() -> Vec<ToolNote> {
    tool_definitions()
        .into_iter()
        .map(|t| ToolNote {
            name: t.name,
            description: t.description,
        })
        .collect()
}

/// Run one tool call.
pub(crate) fn execute(
    ws: &mut Workspace,
    policy: &Policy,
    refusals: &mut Vec<Refusal>,
    name: &str,
    input: &Value,
) -> Outcome {
    let mut refuse = |path: Option<String>, reason: String| {
        refusals.push(Refusal {
            tool: name.to_owned(),
            path,
            reason: reason.clone(),
        });
        Outcome::Err(format!("refused: {reason}"))
    };
    let result = match name {
        LIST_DIRECTORY => {
            args(input).and_then(|a: PathArg| list_directory(ws, a.path.as_deref().unwrap_or("")))
        }
        READ_FILE => args(input).and_then(|a: ReadArgs| read_file(ws, &a)),
        SEARCH => args(input).and_then(|a: SearchArgs| search(ws, &a)),
        WRITE_FILE | EDIT_FILE | DELETE_FILE => {
            let Some(raw) = input.get("path").and_then(Value::as_str) else {
                return Outcome::Err("invalid arguments: missing field `path`".into());
            };
            let path = match RepoPath::parse(raw) {
                Ok(p) => p,
                Err(e) => return refuse(Some(raw.to_owned()), e.to_string()),
            };
            if let Err(reason) = policy.check_target(ws, &path) {
                return refuse(Some(path.to_string()), reason);
            }
            let next = match name {
                WRITE_FILE => args::<WriteArgs>(input).map(|a| Some(a.content)),
                EDIT_FILE => args::<EditArgs>(input).and_then(|a| edit(ws, &path, &a).map(Some)),
                _ => delete_check(ws, &path).map(|()| None),
            };
            let next = match next {
                Ok(n) => n,
                Err(e) => return Outcome::Err(e),
            };
            let verdict = match &next {
                Some(content) => policy.check_write(ws, &path, content),
                None => policy.check_delete(ws, &path),
            };
            if let Err(reason) = verdict {
                return refuse(Some(path.to_string()), reason);
            }
            apply(ws, &path, name, next)
        }
        FINISH => {
            return match args::<Finish>(input) {
                Ok(f) => finish(policy, f, &mut refuse),
                Err(e) => Outcome::Err(e),
            };
        }
        other => Err(format!(
            "unknown tool `{other}`; the tools are {}",
            tool_definitions()
                .iter()
                .map(|t| format!("`{}`", t.name))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    };
    match result {
        Ok(text) => Outcome::Ok(text),
        Err(text) => Outcome::Err(text),
    }
}

fn args<T: DeserializeOwned>(input: &Value) -> Result<T, String> {
    serde_json::from_value(input.clone()).map_err(|e| format!("invalid arguments: {e}"))
}

#[derive(Deserialize)]
struct PathArg {
    path: Option<String>,
}

#[derive(Deserialize)]
struct ReadArgs {
    path: String,
    start_line: Option<u64>,
    end_line: Option<u64>,
}

#[derive(Deserialize)]
struct SearchArgs {
    pattern: String,
    path_glob: Option<String>,
}

#[derive(Deserialize)]
struct WriteArgs {
    content: String,
}

#[derive(Deserialize)]
struct EditArgs {
    old: String,
    new: String,
}

/// Write (or delete, for `None`) a change that passed the policy.
fn apply(
    ws: &mut Workspace,
    path: &RepoPath,
    tool: &str,
    next: Option<String>,
) -> Result<String, String> {
    let Some(content) = next else {
        ws.delete(path)
            .map_err(|e| format!("could not delete `{path}`: {e}"))?;
        return Ok(format!("deleted `{path}`"));
    };
    let existed = match ws.kind(Some(path)) {
        Ok(Kind::File(_)) => true,
        Ok(Kind::Dir) => return Err(format!("`{path}` is a directory")),
        Ok(Kind::Skipped(why) | Kind::Invalid(why)) => return Err(why),
        Ok(Kind::Missing) => false,
        Err(e) => return Err(format!("could not write `{path}`: {e}")),
    };
    ws.write(path, content.as_bytes())
        .map_err(|e| format!("could not write `{path}`: {e}"))?;
    let (bytes, lines) = (content.len(), content.lines().count());
    Ok(match (tool, existed) {
        (EDIT_FILE, _) => format!("edited `{path}` (now {lines} lines)"),
        (_, true) => format!("replaced `{path}` ({bytes} bytes, {lines} lines)"),
        (_, false) => format!("created `{path}` ({bytes} bytes, {lines} lines)"),
    })
}

fn delete_check(ws: &Workspace, path: &RepoPath) -> Result<(), String> {
    match ws.kind(Some(path)) {
        Ok(Kind::File(_)) => Ok(()),
        Ok(Kind::Dir) => Err(format!(
            "`{path}` is a directory; delete its files one by one"
        )),
        Ok(Kind::Missing) => Err(format!("`{path}` does not exist")),
        Ok(Kind::Skipped(why) | Kind::Invalid(why)) => Err(why),
        Err(e) => Err(format!("could not read `{path}`: {e}")),
    }
}

/// The file's text, or an error for the model.
fn text_of(ws: &Workspace, path: &RepoPath) -> Result<String, String> {
    match ws.kind(Some(path)) {
        Ok(Kind::File(_)) => {}
        Ok(Kind::Dir) => {
            return Err(format!(
                "`{path}` is a directory; use list_directory to see its content"
            ));
        }
        Ok(Kind::Missing) => {
            return Err(format!(
                "`{path}` does not exist; use list_directory or search to find the right path"
            ));
        }
        Ok(Kind::Skipped(why) | Kind::Invalid(why)) => {
            return Err(format!("`{path}` cannot be read: {why}"));
        }
        Err(e) => return Err(format!("could not read `{path}`: {e}")),
    }
    let bytes = ws
        .read(path)
        .map_err(|e| format!("could not read `{path}`: {e}"))?;
    let binary = || {
        format!(
            "`{path}` is a binary file ({} bytes); it cannot be shown or edited",
            bytes.len()
        )
    };
    if bytes.contains(&0) {
        return Err(binary());
    }
    String::from_utf8(bytes.clone()).map_err(|_| binary())
}

fn edit(ws: &Workspace, path: &RepoPath, a: &EditArgs) -> Result<String, String> {
    if a.old.is_empty() {
        return Err(
            "`old` is empty; give the exact text to replace (use write_file to create a file)"
                .into(),
        );
    }
    if a.old == a.new {
        return Err("`old` and `new` are the same; nothing would change".into());
    }
    let text = text_of(ws, path)?;
    let (mut old, mut new) = (a.old.clone(), a.new.clone());
    let mut count = occurrences(&text, &old);
    // A CRLF file read through read_file shows plain lines; match the model's LF text too.
    if count == 0 && text.contains("\r\n") && !old.contains('\r') {
        old = old.replace('\n', "\r\n");
        new = new.replace("\r\n", "\n").replace('\n', "\r\n");
        count = occurrences(&text, &old);
    }
    match count {
        0 => Err(format!(
            "`old` does not occur in `{path}`. Read the file again and copy the text exactly, \
             including whitespace and indentation"
        )),
        1 => Ok(text.replacen(old.as_str(), &new, 1)),
        _ => Err(format!(
            "`old` occurs more than once in `{path}`; it must occur exactly once. Include more \
             of the surrounding lines to make it unique"
        )),
    }
}

/// Occurrences of `needle` in `hay`, overlapping ones included (`aa` occurs twice in `aaa`),
/// counted up to two: all an edit needs to know is none, one or more. Counting every match
/// would take quadratic time on a long needle in a file of repeated text.
fn occurrences(hay: &str, needle: &str) -> usize {
    let Some(first) = hay.find(needle) else {
        return 0;
    };
    // Step one character, not one byte, to stay on a boundary.
    let next = first + hay[first..].chars().next().map_or(1, char::len_utf8);
    if hay[next..].contains(needle) { 2 } else { 1 }
}

fn list_directory(ws: &Workspace, raw: &str) -> Result<String, String> {
    let dir = RepoPath::parse_dir(raw).map_err(|e| e.to_string())?;
    let shown = dir.as_ref().map_or(".".to_owned(), ToString::to_string);
    match ws.kind(dir.as_ref()) {
        Ok(Kind::Dir) => {}
        Ok(Kind::File(_)) => return Err(format!("`{shown}` is a file; use read_file")),
        Ok(Kind::Missing) => return Err(format!("`{shown}` does not exist")),
        Ok(Kind::Skipped(why) | Kind::Invalid(why)) => {
            return Err(format!("`{shown}` cannot be listed: {why}"));
        }
        Err(e) => return Err(format!("could not list `{shown}`: {e}")),
    }
    let entries = ws
        .list(dir.as_ref())
        .map_err(|e| format!("could not list `{shown}`: {e}"))?;
    if entries.is_empty() {
        return Ok(format!("`{shown}` is empty"));
    }
    let mut out = format!("`{shown}` ({} entries):\n", entries.len());
    for (name, kind) in entries.iter().take(MAX_LIST_ENTRIES) {
        let _ = match kind {
            Kind::Dir => writeln!(out, "{name}/"),
            Kind::File(len) => writeln!(out, "{name}  ({len} bytes)"),
            Kind::Skipped(why) | Kind::Invalid(why) => {
                writeln!(out, "{name}  (not available: {why})")
            }
            Kind::Missing => Ok(()),
        };
    }
    if entries.len() > MAX_LIST_ENTRIES {
        let _ = writeln!(
            out,
            "… and {} more entries (not shown)",
            entries.len() - MAX_LIST_ENTRIES
        );
    }
    Ok(out)
}

fn read_file(ws: &Workspace, a: &ReadArgs) -> Result<String, String> {
    let path = RepoPath::parse(&a.path).map_err(|e| e.to_string())?;
    let text = text_of(ws, &path)?;
    let lines: Vec<&str> = text.lines().collect();
    let total = lines.len();
    if total == 0 {
        return Ok(format!("`{path}` is empty"));
    }
    let start = a.start_line.unwrap_or(1).max(1);
    let start = usize::try_from(start).unwrap_or(usize::MAX);
    if start > total {
        return Err(format!(
            "`{path}` has {total} lines; start_line {start} is past the end"
        ));
    }
    let wanted_end = a
        .end_line
        .and_then(|e| usize::try_from(e).ok())
        .unwrap_or(total)
        .clamp(start, total);
    let mut body = String::new();
    let mut end = start - 1;
    for (i, line) in lines.iter().enumerate().take(wanted_end).skip(start - 1) {
        if i + 1 - start >= MAX_READ_LINES || body.len() >= MAX_READ_BYTES {
            break;
        }
        let shown: String = if line.chars().count() > MAX_LINE_CHARS {
            let cut: String = line.chars().take(MAX_LINE_CHARS).collect();
            format!("{cut} [… line cut at {MAX_LINE_CHARS} characters]")
        } else {
            (*line).to_owned()
        };
        let _ = writeln!(body, "{:>6}\t{shown}", i + 1);
        end = i + 1;
    }
    let mut out = format!("`{path}` (lines {start}–{end} of {total}):\n{body}");
    if end < wanted_end {
        let _ = writeln!(
            out,
            "[output limit reached: call read_file with start_line={} for more]",
            end + 1
        );
    }
    Ok(out)
}

fn search(ws: &Workspace, a: &SearchArgs) -> Result<String, String> {
    if a.pattern.len() > MAX_PATTERN_BYTES {
        return Err(format!(
            "the pattern is longer than {MAX_PATTERN_BYTES} bytes"
        ));
    }
    let re = RegexBuilder::new(&a.pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid regular expression: {e}"))?;
    let glob = match a
        .path_glob
        .as_deref()
        .map(str::trim)
        .filter(|g| !g.is_empty())
    {
        Some(g) => Some(Glob::new(g).ok_or_else(|| format!("invalid path_glob `{g}`"))?),
        None => None,
    };
    let files = ws
        .walk(None)
        .map_err(|e| format!("could not walk the repository: {e}"))?;
    let mut out = String::new();
    let mut matches = 0usize;
    let mut read = 0u64;
    let mut more = false;
    let mut stopped_early = false;
    'files: for path in files {
        if glob.as_ref().is_some_and(|g| !g.is_match(path.as_str())) {
            continue;
        }
        let Ok(Kind::File(len)) = ws.kind(Some(&path)) else {
            continue;
        };
        if len > MAX_SEARCH_FILE_BYTES {
            continue;
        }
        if read + len > MAX_SEARCH_TOTAL_BYTES {
            stopped_early = true;
            break;
        }
        read += len;
        let Ok(bytes) = ws.read(&path) else { continue };
        if bytes.contains(&0) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            if re.is_match(line) {
                if matches == MAX_SEARCH_MATCHES {
                    more = true;
                    break 'files;
                }
                matches += 1;
                let shown: String = line.trim_end().chars().take(300).collect();
                let _ = writeln!(out, "{path}:{}: {shown}", n + 1);
            }
        }
    }
    if matches == 0 {
        out = "no matches".into();
        if stopped_early {
            out.push_str(" in the files searched");
        }
        out.push('\n');
    }
    if more {
        let _ = writeln!(
            out,
            "[more than {MAX_SEARCH_MATCHES} matches: narrow the pattern or the path_glob]"
        );
    }
    if stopped_early {
        let _ = writeln!(
            out,
            "[stopped after reading {MAX_SEARCH_TOTAL_BYTES} bytes: use a path_glob]"
        );
    }
    Ok(out)
}

fn finish(
    policy: &Policy,
    mut f: Finish,
    refuse: &mut impl FnMut(Option<String>, String) -> Outcome,
) -> Outcome {
    if f.summary.trim().is_empty() {
        return Outcome::Err("the summary is empty; describe what you changed and why".into());
    }
    if f.summary.chars().count() > MAX_SUMMARY_CHARS {
        return Outcome::Err(format!(
            "the summary is longer than {MAX_SUMMARY_CHARS} characters; shorten it"
        ));
    }
    if let Err(reason) = policy.check_message("summary", &f.summary) {
        return refuse(None, reason);
    }
    if let Err(problem) = check_criteria(&mut f.criteria) {
        return Outcome::Err(problem);
    }
    for c in &f.criteria {
        let text = c.texts().collect::<Vec<_>>().join("\n");
        if let Err(reason) = policy.check_message("report on the criteria", &text) {
            return refuse(None, reason);
        }
    }
    Outcome::Finish(f)
}

static CRITERION_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[^\w]{0,4}(?i:AC)-(\d{1,4})\.(\d{1,4})\b").expect("static regex")
});

/// The criteria's reports within bounds, each ID in its usual form (`ac-1.2` → `AC-1.2`; an ID
/// written at the start of the criterion's text is taken as its ID), and a reason for every
/// criterion that is not done; else what to fix, for the model.
fn check_criteria(criteria: &mut [CriterionMet]) -> Result<(), String> {
    if criteria.len() > MAX_REPORTED_CRITERIA {
        return Err(format!(
            "{} criteria reported; at most {MAX_REPORTED_CRITERIA} are accepted",
            criteria.len()
        ));
    }
    for c in criteria.iter_mut() {
        let from = if c.id.trim().is_empty() {
            c.criterion.clone()
        } else {
            c.id.clone()
        };
        if let Some(m) = CRITERION_ID.captures(&from) {
            c.id = format!("AC-{}.{}", &m[1], &m[2]);
        } else {
            c.id = c.id.trim().to_uppercase();
        }
        let name = if c.id.is_empty() {
            format!(
                "the criterion \"{}\"",
                c.criterion.chars().take(60).collect::<String>()
            )
        } else {
            c.id.clone()
        };
        if c.id.is_empty() && c.criterion.trim().is_empty() {
            return Err("a criterion's report has neither `id` nor `criterion`; give the criterion's ID (or its text when it has none)".into());
        }
        if c.status == CriterionStatus::NotDone && c.reason.trim().is_empty() {
            return Err(format!(
                "{name} is `not_done` without a `reason`; say why it is not done"
            ));
        }
        if c.files.len() > MAX_CRITERION_REFS || c.tests.len() > MAX_CRITERION_REFS {
            return Err(format!(
                "{name} names more than {MAX_CRITERION_REFS} files or tests; name the main ones"
            ));
        }
        if c.texts().any(|t| t.chars().count() > MAX_CRITERION_CHARS) {
            return Err(format!(
                "a text in the report on {name} is longer than {MAX_CRITERION_CHARS} characters; shorten it"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_overlapping_occurrences() {
        for (text, needle, want) in [
            ("aaa", "aa", 2),
            ("abcabc", "abc", 2),
            ("héhé", "é", 2),
            ("aaaaaa", "a", 2),
        ] {
            assert_eq!(occurrences(text, needle), want, "{needle} in {text}");
        }
        assert_eq!(occurrences("abc", "x"), 0);
    }

    fn finish_with(criteria: Value) -> Result<Finish, String> {
        let f: Finish = args(&json!({"summary": "Done.", "criteria": criteria}))?;
        let mut criteria = f.criteria;
        check_criteria(&mut criteria).map(|()| Finish {
            summary: f.summary,
            criteria,
        })
    }

    #[test]
    fn finish_reports_each_criterion_by_id() {
        let f = finish_with(json!([
            {"id": "ac-1.1 ", "status": "done", "how_met": "`apply()`", "files": ["src/theme.rs"], "tests": ["tests/theme.rs"]},
            {"criterion": "**AC-1.2** WHEN the page reloads …", "status": "not_done", "how_met": "", "reason": "needs the profile API"},
            {"criterion": "The toggle persists.", "how_met": "saved"},
        ]))
        .expect("accepted");
        let ids: Vec<&str> = f.criteria.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["AC-1.1", "AC-1.2", ""]);
        assert_eq!(f.criteria[0].files, ["src/theme.rs"]);
        assert_eq!(f.criteria[1].status, CriterionStatus::NotDone);
        // The old shape (no status) means done.
        assert_eq!(f.criteria[2].status, CriterionStatus::Done);
        assert_eq!(f.criteria[2].criterion, "The toggle persists.");
    }

    #[test]
    fn finish_asks_again_for_what_it_cannot_use() {
        let not_done = finish_with(json!([{"id": "AC-1.2", "status": "not_done", "how_met": ""}]));
        assert!(
            not_done
                .as_ref()
                .is_err_and(|e| e.contains("AC-1.2 is `not_done` without a `reason`")),
            "{not_done:?}"
        );
        let nameless = finish_with(json!([{"status": "done", "how_met": "somehow"}]));
        assert!(nameless.is_err_and(|e| e.contains("neither `id` nor `criterion`")));
        let unknown = finish_with(json!([{"id": "AC-1.1", "status": "maybe", "how_met": "x"}]));
        assert!(unknown.is_err_and(|e| e.starts_with("invalid arguments")));
        let many =
            finish_with(json!([{"id": "AC-1.1", "how_met": "x", "files": vec!["a.rs"; 51]}]));
        assert!(many.is_err_and(|e| e.contains("more than 50 files or tests")));
    }

    #[test]
    fn every_tool_has_an_object_schema() {
        let tools = tool_definitions();
        assert_eq!(tools.len(), 7);
        for t in &tools {
            assert_eq!(t.input_schema["type"], "object", "{}", t.name);
            assert!(!t.description.is_empty());
        }
        assert_eq!(tool_notes().len(), 7);
    }
}
