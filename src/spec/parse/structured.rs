//! The structured fields of an answer beside the specification: requirements with their
//! criteria, non-functional requirements, assumptions, risks, open questions and noticed
//! injection attempts. Read from the `submit_spec` input or the text format's `<requirements>`
//! block (a JSON object with the same fields), tolerantly: criteria may be plain strings, lists
//! newline-separated strings.

use serde_json::{Map, Value};

use super::MAX_LIST_ITEMS;
use super::tool_call::string_list;
use crate::prompt::sanitize::one_line;
use crate::spec::{Criterion, NonFunctional, Requirement, SpecAnswer};

/// At most this many open questions are kept.
pub const MAX_OPEN_QUESTIONS: usize = 3;

fn text(obj: &Map<String, Value>, keys: &[&str]) -> String {
    keys.iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .map(|s| one_line(s, 2_000))
        .unwrap_or_default()
}

fn items(value: Option<&Value>) -> Vec<&Value> {
    match value {
        Some(Value::Array(items)) => items.iter().take(MAX_LIST_ITEMS).collect(),
        _ => Vec::new(),
    }
}

fn criterion(value: &Value) -> Option<Criterion> {
    let (id, text) = match value {
        Value::String(s) => (String::new(), one_line(s, 2_000)),
        Value::Object(o) => (
            text(o, &["id"]),
            text(o, &["text", "criterion", "description"]),
        ),
        _ => return None,
    };
    (!text.is_empty()).then_some(Criterion { id, text })
}

fn requirement(value: &Value) -> Option<Requirement> {
    let o = value.as_object()?;
    let criteria = o
        .get("acceptance_criteria")
        .or_else(|| o.get("criteria"))
        .map(|v| match v {
            Value::String(_) => string_list(v)
                .into_iter()
                .map(|text| Criterion {
                    id: String::new(),
                    text,
                })
                .collect(),
            other => items(Some(other))
                .into_iter()
                .filter_map(criterion)
                .collect(),
        })
        .unwrap_or_default();
    Some(Requirement {
        id: text(o, &["id"]),
        title: text(o, &["title", "name"]),
        priority: text(o, &["priority"]).to_ascii_lowercase(),
        user_story: text(o, &["user_story", "userStory", "story"]),
        criteria,
    })
}

fn non_functional(value: &Value) -> Option<NonFunctional> {
    let (id, text_, threshold) = match value {
        Value::String(s) => (String::new(), one_line(s, 2_000), String::new()),
        Value::Object(o) => (
            text(o, &["id"]),
            text(o, &["text", "requirement", "description"]),
            text(o, &["threshold", "target", "metric"]),
        ),
        _ => return None,
    };
    (!text_.is_empty()).then_some(NonFunctional {
        id,
        text: text_,
        threshold,
    })
}

/// Fill the answer's structured fields from an object holding them.
pub(super) fn read_structured(obj: &Map<String, Value>, answer: &mut SpecAnswer) {
    answer.requirements = items(obj.get("requirements"))
        .into_iter()
        .filter_map(requirement)
        .collect();
    answer.non_functional = items(
        obj.get("non_functional")
            .or_else(|| obj.get("non_functional_requirements")),
    )
    .into_iter()
    .filter_map(non_functional)
    .collect();
    let list = |key: &str| obj.get(key).map(string_list).unwrap_or_default();
    answer.assumptions = list("assumptions");
    answer.risks = list("risks");
    answer.open_questions = list("open_questions");
    answer.open_questions.truncate(MAX_OPEN_QUESTIONS);
    answer.injection_attempts = list("injection_attempts");
}
