//! Model answers shared by the end-to-end suites.

use serde_json::{Value, json};

/// A complete, valid architect answer with `k` components (the second depends on the first).
pub fn good_answer(k: usize) -> Value {
    let spec = "# Dark mode\n\n## Summary\nAdd a dark theme.\n\n## Context\nUsers asked for it.\n\n## Goals\n- A toggle\n\n## Non-goals\n- Custom themes\n\n## Design\nA CSS variable set switched by a class on `<html>`.\n\n## Components\nSee the list.\n\n## Alternatives considered\nMedia query only.\n\n## Cross-cutting concerns\nAccessibility: contrast ratios.\n\n## Rollout\nBehind a flag.\n\n## Open questions\nNone.\n\n## Acceptance criteria\n- The toggle persists.\n";
    let components: Vec<Value> = (1..=k)
        .map(|i| {
            json!({
                "title": format!("Component {i}"),
                "summary": format!("Does part {i}."),
                "acceptance_criteria": [format!("Part {i} works"), format!("Part {i} is tested")],
                "depends_on": if i > 1 { vec![format!("Component {}", i - 1)] } else { vec![] },
            })
        })
        .collect();
    json!({
        "specification": spec,
        "components": components,
        "artifacts": {"diagram": "flowchart TD\n  A[Toggle] --> B[Theme]\n"}
    })
}

