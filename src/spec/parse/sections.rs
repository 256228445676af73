//! Components written as a markdown `## Components` section instead of JSON, and the heading
//! helpers validation shares.

use std::ops::ControlFlow;

use super::words::{clean_title, is_none_word, strip_bullet};
use super::{MAX_LIST_ITEMS, MAX_PARSED_COMPONENTS};
use crate::prompt::sanitize::one_line;
use crate::spec::Component;

/// The lines of a markdown text outside code fences (the fence lines left out too).
pub(crate) fn lines_outside_fences(markdown: &str) -> impl Iterator<Item = &str> {
    let mut in_fence = false;
    markdown.lines().filter(move |line| {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            in_fence = !in_fence;
            return false;
        }
        !in_fence
    })
}

/// An ATX heading line's level and text.
pub(crate) fn heading(line: &str) -> Option<(usize, &str)> {
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

/// What the bullets under a component are, after the last label.
enum Mode {
    Summary,
    Criteria,
    Depends,
}

/// Components from a `## Components` section: each `### Title` (one level deeper) starts a
/// component; "Acceptance criteria" and "Depends on" labels (as text, bold or sub-headings)
/// switch what the following bullets are; other bullets are criteria, other lines the summary.
pub(super) fn components_from_markdown(spec: &str) -> Vec<Component> {
    let mut reader = SectionReader {
        out: Vec::new(),
        section_level: None,
        mode: Mode::Summary,
    };
    for line in lines_outside_fences(spec) {
        let trimmed = line.trim();
        if let Some((level, text)) = heading(line) {
            if reader.heading(level, text).is_break() {
                break;
            }
            continue;
        }
        if reader.section_level.is_some() && !trimmed.is_empty() {
            reader.line(trimmed);
        }
    }
    reader.out
}

/// The state of a read through the spec: the components so far, the level of the components
/// section while inside one, and what the current component's bullets are.
struct SectionReader {
    out: Vec<Component>,
    section_level: Option<usize>,
    mode: Mode,
}

impl SectionReader {
    /// A heading: enters or leaves the section, starts a component or switches the mode.
    /// Breaks once the section ends with the most components already read.
    fn heading(&mut self, level: usize, text: &str) -> ControlFlow<()> {
        let words = heading_words(text);
        match self.section_level {
            None => {
                if words == "components"
                    || words.starts_with("components ")
                    || words == "key components"
                {
                    self.section_level = Some(level);
                }
            }
            Some(sec) if level <= sec => {
                self.section_level = None;
                if self.out.len() >= MAX_PARSED_COMPONENTS {
                    return ControlFlow::Break(());
                }
                if words.starts_with("components") {
                    self.section_level = Some(level);
                }
            }
            Some(sec) => {
                if level > sec + 1 && !self.out.is_empty() {
                    if words.starts_with("acceptance") {
                        self.mode = Mode::Criteria;
                        return ControlFlow::Continue(());
                    }
                    if words.starts_with("depend") {
                        self.mode = Mode::Depends;
                        return ControlFlow::Continue(());
                    }
                }
                if self.out.len() < MAX_PARSED_COMPONENTS {
                    self.out.push(Component {
                        title: clean_title(text),
                        ..Component::default()
                    });
                }
                self.mode = Mode::Summary;
            }
        }
        ControlFlow::Continue(())
    }

    /// A non-empty line inside the section, not a heading: a label, a bullet or summary text.
    fn line(&mut self, trimmed: &str) {
        let Some(current) = self.out.last_mut() else {
            return;
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
            self.mode = Mode::Criteria;
            return;
        }
        if let Some(rest) = depends_label(trimmed) {
            self.mode = Mode::Depends;
            for dep in rest.split([',', ';']) {
                push_dependency(current, dep);
            }
            return;
        }
        if let Some(rest) = lower.strip_prefix("summary") {
            let offset = plain.len() - rest.len();
            let text = plain[offset..].trim_start_matches([':', '*', ' ']).trim();
            if !text.is_empty() {
                current.summary = one_line(text, 4_000);
            }
            return;
        }
        match (is_bullet, &self.mode) {
            (true, Mode::Depends) => push_dependency(current, strip_bullet(trimmed)),
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
}

/// The text after a "Depends on:" label (bulleted, bold or plain), if the line is one.
fn depends_label(line: &str) -> Option<String> {
    let stripped = strip_bullet(line);
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
}

/// Add a dependency by its title, unless it is empty, a "none" or one too many.
fn push_dependency(component: &mut Component, title: &str) {
    let dep = clean_title(title);
    if !dep.is_empty() && !is_none_word(&dep) && component.depends_on.len() < MAX_LIST_ITEMS {
        component.depends_on.push(dep);
    }
}
