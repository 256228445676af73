//! Parsing the architect's answer, from a `submit_spec` tool call or from plain text.
//!
//! Owns: [`parse_tool_input`] (`tool_call`), [`parse_text_answer`] (`text`), [`SpecError`] and
//! the tolerant helpers: relaxed JSON (`tool_call`), tag and fence extraction (`tags`), the
//! markdown "Components" section (`sections`) and title and bullet cleaning (`words`).
//!
//! The text format, as the architect prompt asks for it:
//!
//! ```text
//! <planning>…dropped…</planning>
//! <specification>…markdown…</specification>
//! <requirements>{"requirements": [{"id", "title", "priority", "user_story", "acceptance_criteria": [{"id", "text"}]}],
//!   "non_functional": [{"id", "text", "threshold"}], "assumptions": […], "risks": […],
//!   "open_questions": […], "injection_attempts": […]}</requirements>
//! <components>[{"title": …, "summary": …, "acceptance_criteria": […], "depends_on": […],
//!   "covers": ["AC-1.1"], "touches": […], "tests": […]}]</components>
//! <diagram>…</diagram> <openapi>…</openapi> <test_plan>…</test_plan> <rollout_plan>…</rollout_plan>
//! <changes>…</changes>   (revisions only)
//! ```
//!
//! Tolerated: tags in any case and with attributes, an unterminated last tag, the spec wrapped
//! in a code fence, components JSON in a ```` ```json ```` fence with comments and trailing
//! commas (or an object `{"components": […]}`), components only as a `## Components` markdown
//! section (`### Title` + bullets), artifacts as fenced ```` ```mermaid ```` / ```` ```yaml ````
//! blocks instead of tags. All scans are linear; nothing here can panic on any input.

mod sections;
mod structured;
mod tags;
mod text;
mod tool_call;
mod words;

pub(crate) use sections::{heading, heading_words, lines_outside_fences};
pub use structured::MAX_OPEN_QUESTIONS;
pub use text::parse_text_answer;
pub use tool_call::parse_tool_input;

#[cfg(test)]
mod tests;

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
