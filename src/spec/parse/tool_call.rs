//! The `submit_spec` tool call's input: a JSON object, read tolerantly (strings holding JSON,
//! lists as newline-separated strings, alternative field names), and the lenient JSON reader
//! the text format's `<components>` block uses too.

use serde_json::Value;

use super::tags::{Tags, clean_spec, strip_code_fence};
use super::words::{clean_title, is_none_word, parsed_answer, strip_bullet};
use super::{MAX_LIST_ITEMS, MAX_PARSED_COMPONENTS, SpecError};
use crate::prompt::sanitize::{one_line, strip_invisible};
use crate::spec::{ArtifactKind, Artifacts, Component, MAX_ANSWER_BYTES, SpecAnswer};

/// Read a `submit_spec` tool call's input. Tolerant: the input may be a JSON string holding the
/// object; `components` may be a JSON string; lists may be newline-separated strings; an OpenAPI
/// artifact given as an object is kept as JSON (which is YAML).
pub fn parse_tool_input(input: &Value) -> Result<SpecAnswer, SpecError> {
    let owned;
    let input = match input {
        Value::String(s) => {
            if s.len() > MAX_ANSWER_BYTES {
                return Err(SpecError::TooLarge {
                    bytes: s.len(),
                    max: MAX_ANSWER_BYTES,
                });
            }
            owned = relaxed_json(s).ok_or_else(|| {
                SpecError::BadToolInput("it is a string that is not a JSON object".into())
            })?;
            &owned
        }
        v => v,
    };
    let Some(obj) = input.as_object() else {
        return Err(SpecError::BadToolInput("it is not a JSON object".into()));
    };
    let spec = ["specification", "spec", "markdown"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .ok_or_else(|| {
            SpecError::BadToolInput(
                "the `specification` field (a markdown string) is missing".into(),
            )
        })?;
    if spec.len() > MAX_ANSWER_BYTES {
        return Err(SpecError::TooLarge {
            bytes: spec.len(),
            max: MAX_ANSWER_BYTES,
        });
    }
    let mut specification = clean_spec(spec);
    // A model sometimes wraps the field in the text format's tags.
    if let Some((_, inner)) = Tags::new(&specification).outer("specification") {
        specification = clean_spec(inner);
    }
    // An empty `specification` is still the tool's input, well formed: validation says it is
    // empty, and the repair round asks again (a constrained server can emit `""`).
    let components = obj
        .get("components")
        .map(components_from_value)
        .unwrap_or_default();
    let mut artifacts = Artifacts::default();
    let nested = obj.get("artifacts").and_then(Value::as_object);
    for kind in ArtifactKind::ALL {
        let value = nested
            .and_then(|a| a.get(kind.key()))
            .or_else(|| obj.get(kind.key()));
        let text = match value {
            Some(Value::String(s)) => Some(strip_code_fence(&strip_invisible(s)).to_string()),
            Some(Value::Null) | None => None,
            Some(other) => serde_json::to_string_pretty(other).ok(),
        };
        *artifacts.get_mut(kind) = text.filter(|t| !t.trim().is_empty());
    }
    let changes = obj.get("changes").and_then(Value::as_str);
    let mut answer = parsed_answer(specification, components, artifacts, changes);
    super::structured::read_structured(obj, &mut answer);
    Ok(answer)
}

/// Components from a JSON value: an array of objects, `{"components": […]}`, or a string
/// holding either.
pub(super) fn components_from_value(value: &Value) -> Vec<Component> {
    match value {
        Value::Array(items) => items
            .iter()
            .take(MAX_PARSED_COMPONENTS)
            .filter_map(component_from_value)
            .collect(),
        Value::Object(obj) => match obj.get("components") {
            Some(inner @ Value::Array(_)) => components_from_value(inner),
            _ => component_from_value(value).into_iter().collect(),
        },
        Value::String(s) => relaxed_json(s)
            .filter(|v| !v.is_string())
            .map(|v| components_from_value(&v))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn first_field<'a>(obj: &'a serde_json::Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| obj.get(*k))
}

fn component_from_value(value: &Value) -> Option<Component> {
    let obj = value.as_object()?;
    let title = first_field(obj, &["title", "name"])
        .and_then(Value::as_str)
        .map(clean_title)
        .unwrap_or_default();
    let summary = first_field(obj, &["summary", "description"])
        .and_then(Value::as_str)
        .map(|s| strip_invisible(s).trim().to_string())
        .unwrap_or_default();
    let acceptance_criteria = first_field(
        obj,
        &["acceptance_criteria", "acceptanceCriteria", "criteria"],
    )
    .map(string_list)
    .unwrap_or_default();
    let deps = first_field(obj, &["depends_on", "dependsOn", "dependencies"]);
    let depends_on = deps
        .map(string_list)
        .unwrap_or_default()
        .into_iter()
        .map(|d| clean_title(&d))
        .filter(|d| !d.is_empty())
        .collect();
    let list = |keys: &[&str]| first_field(obj, keys).map(string_list).unwrap_or_default();
    Some(Component {
        title,
        summary,
        acceptance_criteria,
        depends_on,
        dependency_reasons: deps.map(dependency_reasons).unwrap_or_default(),
        covers: list(&["covers"]),
        touches: list(&["touches", "files", "modules"]),
        tests: list(&["tests"]),
    })
}

/// Why each dependency is needed, from the items given as objects (`{"title": …, "reason": …}`),
/// keyed by the title as [`string_list`] and [`clean_title`] read it. Plain titles (older
/// answers) have none.
fn dependency_reasons(value: &Value) -> std::collections::BTreeMap<String, String> {
    let Value::Array(items) = value else {
        return Default::default();
    };
    items
        .iter()
        .take(MAX_LIST_ITEMS)
        .filter_map(|item| {
            let o = item.as_object()?;
            let title = first_field(o, &["title", "name"])?.as_str()?;
            let reason = first_field(o, &["reason", "why", "because"])?.as_str()?;
            let title = clean_title(&one_line(strip_bullet(title), 2_000));
            let reason = one_line(&strip_invisible(reason), 1_000);
            (!title.is_empty() && !reason.is_empty()).then_some((title, reason))
        })
        .collect()
}

/// A list of strings from an array (non-strings stringified) or a newline-separated string.
pub(super) fn string_list(value: &Value) -> Vec<String> {
    let items: Vec<String> = match value {
        Value::Array(items) => items
            .iter()
            .take(MAX_LIST_ITEMS)
            .map(|v| match v {
                Value::String(s) => s.clone(),
                Value::Object(o) => first_field(o, &["title", "name", "text", "criterion"])
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
                other => other.to_string(),
            })
            .collect(),
        Value::String(s) => s.lines().take(MAX_LIST_ITEMS).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    items
        .iter()
        .map(|s| one_line(strip_bullet(s), 2_000))
        .filter(|s| !s.is_empty() && !is_none_word(s))
        .collect()
}

/// Parse JSON leniently: an optional code fence around it, text before the first `[`/`{`,
/// `//` and `/* */` comments, trailing commas, and anything after the first complete value.
pub(super) fn relaxed_json(text: &str) -> Option<Value> {
    let body = strip_code_fence(text);
    let start = body.find(['[', '{'])?;
    let cleaned = strip_json_comments_and_trailing_commas(&body[start..]);
    let mut stream = serde_json::Deserializer::from_str(&cleaned).into_iter::<Value>();
    stream.next()?.ok()
}

fn strip_json_comments_and_trailing_commas(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    let mut escaped = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '/' if chars.peek() == Some(&'/') => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
                out.push(' ');
            }
            '}' | ']' => {
                let trimmed = out.trim_end().len();
                out.truncate(trimmed);
                if out.ends_with(',') {
                    out.pop();
                }
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}
