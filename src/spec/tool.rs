//! The `submit_spec` tool offered to providers with tool calling.
//!
//! Owns: [`SUBMIT_SPEC_TOOL`], [`ToolSpec`] and [`submit_spec_tool`]. The input it describes is
//! read by [`super::parse_tool_input`].

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The tool's name.
pub const SUBMIT_SPEC_TOOL: &str = "submit_spec";

/// A provider-neutral tool definition: name, description and the JSON schema of its input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub input_schema: Value,
}

/// The `submit_spec` tool: `{ specification, components[], artifacts{…}, changes? }`.
pub fn submit_spec_tool() -> ToolSpec {
    let text = |d: &str| json!({"type": "string", "description": d});
    let list = |d: &str| json!({"type": "array", "items": {"type": "string"}, "description": d});
    ToolSpec {
        name: SUBMIT_SPEC_TOOL.to_string(),
        description: "Submit the finished implementation specification, its components (one follow-up issue each) and the requested artifacts. Call it exactly once, with the complete specification.".to_string(),
        input_schema: json!({
            "type": "object",
            "properties": {
                "specification": text("The complete specification in GitHub-flavoured markdown, with the required sections."),
                "components": {
                    "type": "array",
                    "description": "The independently implementable components of the design, each to become a follow-up issue.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "title": text("A short, unique title (it becomes the issue title)."),
                            "summary": text("What this component is and does, in a few sentences."),
                            "acceptance_criteria": list("Concrete, testable acceptance criteria."),
                            "depends_on": list("Titles of the other components this one needs first (exactly as written in their `title`).")
                        },
                        "required": ["title", "summary", "acceptance_criteria", "depends_on"]
                    }
                },
                "artifacts": {
                    "type": "object",
                    "description": "Only the artifacts the prompt asks for.",
                    "properties": {
                        "diagram": text("Mermaid source, starting with the diagram type."),
                        "openapi": text("An OpenAPI 3.1 description in YAML."),
                        "test_plan": text("The test plan, markdown."),
                        "rollout_plan": text("The rollout plan, markdown.")
                    }
                },
                "changes": text("When revising: what changed and why, in a few lines.")
            },
            "required": ["specification", "components"]
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_accepts_a_good_input_and_rejects_a_bad_one() {
        let tool = submit_spec_tool();
        assert_eq!(tool.name, "submit_spec");
        let validator = jsonschema::validator_for(&tool.input_schema).expect("valid schema");
        let good = json!({
            "specification": "# S",
            "components": [{"title": "A", "summary": "s", "acceptance_criteria": ["x"], "depends_on": []}],
            "artifacts": {"diagram": "graph TD"}
        });
        assert!(validator.is_valid(&good));
        assert!(!validator.is_valid(&json!({"components": []})));
        // And what the schema describes, the parser reads.
        assert!(crate::spec::parse_tool_input(&good).is_ok());
    }
}
