//! What `/implement` holds the engineer to: the acceptance criteria of its scope, with their IDs
//! and texts, read from the committed spec file by the same reader as `specbot check-spec`
//! ([`super::check_spec_file`]).
//!
//! Owns: [`criteria_in_scope`]. For the whole spec, every criterion of the file; for one
//! component, the criteria it covers: its row in the file's `### Components` traceability table
//! (a person's edit of the file counts), else the component's own `covers`. A file without
//! criterion IDs (an older or hand-written spec) has no scope: the engineer then reports
//! free-text criteria, as before IDs existed.

use std::collections::BTreeSet;

use super::findings::parse;
use super::{Component, Criterion, slugify};

/// The criteria of `file` that `/implement` answers for, in the file's order: all of them, or
/// those `component` covers. Empty when the file has no criterion IDs, or the component covers
/// none of them.
pub fn criteria_in_scope(file: &str, component: Option<&Component>) -> Vec<Criterion> {
    let parsed = parse(file);
    let mut seen = BTreeSet::new();
    let all = parsed
        .requirements
        .iter()
        .flat_map(|(_, criteria)| criteria.iter())
        // An ID used twice is a finding of the check; the first text stands.
        .filter(|(id, _)| seen.insert(id.clone()))
        .map(|(id, text)| Criterion {
            id: id.clone(),
            text: text.trim().to_string(),
        });
    let Some(component) = component else {
        return all.collect();
    };
    let slug = component.slug();
    let covers: BTreeSet<&str> = parsed
        .components
        .iter()
        .find(|(name, _)| slugify(name) == slug)
        .map(|(_, ids)| ids.iter().map(String::as_str).collect())
        .unwrap_or_else(|| component.covers.iter().map(|id| id.trim()).collect());
    all.filter(|c| covers.contains(c.id.as_str())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# Dark mode\n\n## Requirements\n\n### <a id=\"req-1\"></a>REQ-1: Theme\n\n\
        - <a id=\"ac-1-1\"></a>**AC-1.1** WHEN the user picks dark THE SYSTEM SHALL apply it\n\
        - <a id=\"ac-1-2\"></a>**AC-1.2** WHEN the page reloads THE SYSTEM SHALL keep it\n\n\
        ### REQ-2: Toggle\n\n- **AC-2.1** WHEN clicked THE SYSTEM SHALL cycle\n\n\
        ## Traceability\n\n### Components\n\n| Component | Covers | Touches | Tests |\n\
        | --- | --- | --- | --- |\n| Theme store | [AC-1.2](#ac-1-2), [AC-2.1](#ac-2-1) | — | — |\n";

    fn component(title: &str, covers: &[&str]) -> Component {
        Component {
            title: title.into(),
            covers: covers.iter().map(|c| c.to_string()).collect(),
            ..Component::default()
        }
    }

    #[test]
    fn the_whole_spec_holds_every_criterion_with_its_text() {
        let all = criteria_in_scope(FILE, None);
        let ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["AC-1.1", "AC-1.2", "AC-2.1"]);
        assert_eq!(
            all[0].text,
            "WHEN the user picks dark THE SYSTEM SHALL apply it"
        );
    }

    #[test]
    fn a_component_holds_what_the_file_says_it_covers() {
        // The file's row wins over the record's `covers` (a person may have edited the file).
        let scope = criteria_in_scope(FILE, Some(&component("Theme store", &["AC-1.1"])));
        let ids: Vec<&str> = scope.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["AC-1.2", "AC-2.1"]);
        // Not in the table: the component's own `covers`, limited to the file's criteria.
        let scope = criteria_in_scope(FILE, Some(&component("Toggle", &["AC-2.1", "AC-9.9"])));
        let ids: Vec<&str> = scope.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["AC-2.1"]);
    }

    #[test]
    fn a_spec_without_ids_has_no_scope() {
        let old = "# Old\n\n## Acceptance criteria\n- The toggle persists.\n";
        assert!(criteria_in_scope(old, None).is_empty());
        assert!(criteria_in_scope(old, Some(&component("Toggle", &[]))).is_empty());
    }
}
