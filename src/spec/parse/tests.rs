use super::tool_call::relaxed_json;
use super::*;
use crate::spec::MAX_ANSWER_BYTES;
use serde_json::{Value, json};

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
    let o = answer.artifacts.openapi.as_deref().unwrap_or_default();
    assert!(o.starts_with("openapi: 3.1.0"), "{o}");
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
    let o = answer.artifacts.openapi.as_deref().unwrap_or_default();
    assert!(o.contains("\"openapi\": \"3.1.0\""), "{o}");

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
    // Well formed but empty: it decodes, and validation names the problem.
    let empty = parse_tool_input(&json!({"specification": " "})).expect("decodes");
    let problems = crate::spec::validate::validate(&empty, &[]).expect_err("not valid");
    assert!(problems.contains(&crate::spec::validate::ValidationProblem::EmptySpecification));
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
