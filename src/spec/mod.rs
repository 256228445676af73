//! The spec document: the architect's answer as data, parsed from a tool call or from plain
//! text, validated, and rendered into the files and issues the bot writes.
//!
//! Owns: [`SpecAnswer`], [`Component`], [`ArtifactKind`] and [`Artifacts`]; the `submit_spec`
//! tool ([`submit_spec_tool`], [`parse_tool_input`]); the tolerant text parser
//! ([`parse_text_answer`]); validation and the repair prompt ([`validate`],
//! [`dependency_order`], [`repair_prompt`], [`drop_unusable_artifacts`]); the committed files and component issue bodies
//! ([`files_for`], [`render_spec_file`]; the component issues' [`spec_permalink`] and
//! [`parallel_components`], their text being `messages::component_issue_body`); the structured
//! requirements and their IDs ([`Requirement`], [`assign_ids`]); the check of a committed spec
//! file ([`check_spec_file`]); the criteria `/implement` is held to ([`criteria_in_scope`]).
//! Pure: no I/O.
//!
//! Parsing never panics and does bounded work on any input; answers over
//! [`MAX_ANSWER_BYTES`] are refused.

mod artifact;
mod component;
mod findings;
mod parse;
mod render;
mod requirements;
mod scope;
mod tool;
mod validate;

use serde::{Deserialize, Serialize};

pub use artifact::{ArtifactKind, Artifacts};
pub use component::{Component, parallel_components, slugify, spec_permalink};
pub use findings::{
    Coverage, Finding, Severity, SpecCheck, TEMPLATE_SECTIONS, VAGUE_WORDS, check_spec_file,
};
pub use parse::{MAX_OPEN_QUESTIONS, SpecError, parse_text_answer, parse_tool_input};
pub use render::{SpecFileMeta, files_for, render_spec_file, strip_spec_header, utc_date};
pub use requirements::{Criterion, IssuedIds, NonFunctional, Requirement, anchor, assign_ids};
pub use scope::criteria_in_scope;
pub use tool::{SUBMIT_SPEC_TOOL, ToolSpec, submit_spec_tool};
pub use validate::{
    DependencyError, MAX_ARTIFACT_BYTES, MAX_COMPONENTS, MAX_SPEC_BYTES, REQUIRED_SECTIONS,
    ValidationProblem, complete_components_section, dependency_order, drop_unusable_artifacts,
    repair_prompt, validate,
};

/// Largest model answer the parsers accept, in bytes.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// The architect's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecAnswer {
    /// The specification, markdown.
    pub specification: String,
    /// The components, each to become a follow-up issue.
    #[serde(default)]
    pub components: Vec<Component>,
    /// The optional artifact files.
    #[serde(default)]
    pub artifacts: Artifacts,
    /// For a revision: what changed, in a few lines (from `<changes>` or the tool's `changes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<String>,
    /// Optional artifacts left out because they were still unusable after the repair round,
    /// each as the problem that sank it (said in the spec PR's body).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    /// The functional requirements, each with its acceptance criteria.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<Requirement>,
    /// Non-functional requirements, each with a measurable threshold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub non_functional: Vec<NonFunctional>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assumptions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub risks: Vec<String>,
    /// Questions only a person can answer (at most 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_questions: Vec<String>,
    /// Instructions hidden in the issue or the repository that the model noticed and did not
    /// follow; listed in the spec, they block nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub injection_attempts: Vec<String>,
    /// What the spec file check still found after the repair round (said in the PR body).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<String>,
}

impl SpecAnswer {
    /// The open questions as the committed spec file lists them: what the spec check (and so
    /// the coverage job) reads back from it.
    pub fn filed_open_questions(&self) -> Vec<String> {
        check_spec_file(&render_spec_file(self, &SpecFileMeta::default())).open_questions()
    }

    /// Drop the artifacts the repository did not enable.
    pub fn retain_artifacts(&mut self, enabled: &[ArtifactKind]) {
        for kind in ArtifactKind::ALL {
            if !enabled.contains(&kind) {
                *self.artifacts.get_mut(kind) = None;
            }
        }
    }
}
