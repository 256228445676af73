//! The plain-text answer format (see the parent module's docs): the specification and the
//! other blocks found by tag, with fenced blocks and a markdown section as fallbacks.

use super::SpecError;
use super::sections::components_from_markdown;
use super::tags::{
    ANSWER_BLOCKS, Found, Tags, clean_spec, drop_planning, fenced_block, strip_code_fence,
};
use super::tool_call::{components_from_value, relaxed_json};
use super::words::parsed_answer;
use crate::prompt::sanitize::strip_invisible;
use crate::spec::{ArtifactKind, Artifacts, MAX_ANSWER_BYTES, SpecAnswer};

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
    for name in ANSWER_BLOCKS {
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
    let mut answer = parsed_answer(specification, components, artifacts, get("changes"));
    if let Some(serde_json::Value::Object(obj)) = get("requirements").and_then(relaxed_json) {
        super::structured::read_structured(&obj, &mut answer);
    }
    Ok(answer)
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
