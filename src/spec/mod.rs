//! The spec document: the architect's answer as data, parsed from a tool call or from plain
//! text, validated, and rendered into the files and issues the bot writes.
//!
//! Owns: [`SpecAnswer`], [`Component`], [`ArtifactKind`] and [`Artifacts`]; the `submit_spec`
//! tool ([`submit_spec_tool`], [`parse_tool_input`]); the tolerant text parser
//! ([`parse_text_answer`]); validation and the repair prompt ([`validate`],
//! [`dependency_order`], [`repair_prompt`], [`drop_unusable_artifacts`]); the committed files and component issue bodies
//! ([`files_for`], [`render_spec_file`], [`Component::render_issue_body`]). Pure: no I/O.
//!
//! Parsing never panics and does bounded work on any input; answers over
//! [`MAX_ANSWER_BYTES`] are refused.

mod artifact;
mod component;
mod parse;
mod render;
mod tool;
mod validate;

use serde::{Deserialize, Serialize};

pub use artifact::{ArtifactKind, Artifacts};
pub use component::{Component, component_marker, parse_component_marker, slugify};
pub use parse::{SpecError, parse_text_answer, parse_tool_input};
pub use render::{SpecFileMeta, files_for, render_spec_file, strip_spec_header};
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
}

impl SpecAnswer {
    /// Drop the artifacts the repository did not enable.
    pub fn retain_artifacts(&mut self, enabled: &[ArtifactKind]) {
        for kind in ArtifactKind::ALL {
            if !enabled.contains(&kind) {
                *self.artifacts.get_mut(kind) = None;
            }
        }
    }
}
