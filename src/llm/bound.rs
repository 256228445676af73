//! Size bounds for tool schemas sent to small local servers (`LLM_CONTEXT_TOKENS` set).
//!
//! Servers that enforce a tool's schema by constrained decoding (llama.cpp's grammars) keep a
//! small model inside JSON, but not from writing one string forever: the answer then stops at
//! `max_tokens`, cut off mid-JSON, and cannot be read. With `maxItems` on every array and
//! `maxLength` on every string, sized so that the longest answer the schema allows fits in the
//! output limit, every answer the server completes is whole. The required top-level strings
//! (the specification itself) share half of the room; every other string the rest.

use serde_json::{Map, Value, json};

/// Items allowed in an array that names no `maxItems`.
const MAX_ITEMS: u64 = 3;
/// Tokens kept for whitespace a server may put between the JSON's parts.
const SYNTAX_TOKENS: u64 = 256;
/// No string is bounded below this.
const MIN_CHARS: u64 = 8;

/// `schema` with `maxItems` on its arrays and `maxLength` on its strings, so that an instance
/// stays within `output_tokens`. A character is counted as two tokens at most (an escape such
/// as `\n` is two bytes, and a token is at least one byte).
pub fn bound(schema: &Value, output_tokens: u32) -> Value {
    let mut out = schema.clone();
    // Keys, quotes, commas and brackets of the fullest instance: a byte is a token at most.
    let skeleton = skeleton_bytes(schema);
    let chars =
        (u64::from(output_tokens).saturating_sub(SYNTAX_TOKENS + skeleton) / 2).max(MIN_CHARS * 2);
    let required: Vec<String> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let is_main = |name: &str, v: &Value| {
        required.iter().any(|r| r == name)
            && v.get("type").and_then(Value::as_str) == Some("string")
    };
    let main: Vec<String> = schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(k, v)| is_main(k, v))
        .map(|(k, _)| k.clone())
        .collect();
    let rest_slots: u64 = schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(k, _)| !main.contains(k))
        .map(|(_, v)| slots(v))
        .sum();
    let (main_chars, rest_chars) = match (main.len() as u64, rest_slots) {
        (0, 0) => (0, 0),
        (0, r) => (0, chars / r),
        (m, 0) => (chars / m, 0),
        // The rest first, at its floor if need be; the specification takes what is left.
        (m, r) => {
            let rest = (chars / 2 / r).max(MIN_CHARS);
            (chars.saturating_sub(rest * r) / m, rest)
        }
    };
    if let Some(props) = out.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, v) in props.iter_mut() {
            let each = if main.contains(name) {
                main_chars
            } else {
                rest_chars
            };
            apply(v, each.max(MIN_CHARS));
        }
    }
    out
}

/// The bytes of the fullest instance of `v` (arrays full, optional properties present) with
/// every string empty: what its keys and punctuation cost whatever the strings hold (and an
/// enum's longest value, which the model does not choose the length of).
fn skeleton_bytes(v: &Value) -> u64 {
    if let Some(values) = v.get("enum").and_then(Value::as_array) {
        // An enum's longest value, whatever its type: fixed, not a string the model writes.
        return values
            .iter()
            .map(|e| e.to_string().len() as u64)
            .max()
            .unwrap_or(2);
    }
    match v.get("type").and_then(Value::as_str) {
        Some("string") => 2,
        Some("array") => {
            let n = v.as_object().map_or(MAX_ITEMS, max_items);
            2 + n * (v.get("items").map_or(4, skeleton_bytes) + 1)
        }
        Some("object") => {
            2 + v
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, p)| k.len() as u64 + 4 + skeleton_bytes(p))
                .sum::<u64>()
        }
        _ => 5,
    }
}

/// The most items an array schema allows once bounded: its own `maxItems`, at most
/// [`MAX_ITEMS`].
fn max_items(schema: &Map<String, Value>) -> u64 {
    schema
        .get("maxItems")
        .and_then(Value::as_u64)
        .map_or(MAX_ITEMS, |n| n.min(MAX_ITEMS))
}

/// How many strings an instance of `v` can hold at most, once arrays are bounded (an enum's
/// value is not one: its length is fixed).
fn slots(v: &Value) -> u64 {
    if v.get("enum").is_some() {
        return 0;
    }
    match v.get("type").and_then(Value::as_str) {
        Some("string") => 1,
        Some("array") => v
            .as_object()
            .map_or(MAX_ITEMS, max_items)
            .saturating_mul(v.get("items").map_or(0, slots)),
        Some("object") => v
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(_, p)| slots(p))
            .sum(),
        _ => 0,
    }
}

/// Bound every string under `v` to `chars` and every array to [`MAX_ITEMS`] (or its own bound).
fn apply(v: &mut Value, chars: u64) {
    let Some(obj) = v.as_object_mut() else {
        return;
    };
    if obj.contains_key("enum") {
        // Its values bound it already, and counted in the skeleton.
        return;
    }
    match obj.get("type").and_then(Value::as_str) {
        Some("string") => {
            let own = obj
                .get("maxLength")
                .and_then(Value::as_u64)
                .unwrap_or(u64::MAX);
            obj.insert("maxLength".into(), json!(own.min(chars)));
        }
        Some("array") => {
            obj.insert("maxItems".into(), json!(max_items(obj)));
            if let Some(items) = obj.get_mut("items") {
                apply(items, chars);
            }
        }
        Some("object") => {
            if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
                for (_, p) in props.iter_mut() {
                    apply(p, chars);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The longest instance the bounded schema allows: every array full, every string at its
    /// `maxLength`, every optional property present.
    fn longest(v: &Value) -> Value {
        if let Some(first) = v
            .get("enum")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
        {
            return first.clone();
        }
        match v.get("type").and_then(Value::as_str) {
            Some("string") => {
                let n = v.get("maxLength").and_then(Value::as_u64).unwrap_or(10_000) as usize;
                Value::String("x".repeat(n))
            }
            Some("array") => {
                let n = v.get("maxItems").and_then(Value::as_u64).unwrap_or(100) as usize;
                Value::Array(vec![longest(&v["items"]); n])
            }
            Some("object") => Value::Object(
                v["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, p)| (k.clone(), longest(p)))
                    .collect(),
            ),
            _ => Value::Null,
        }
    }

    #[test]
    fn the_longest_spec_answer_fits_the_output_limit() {
        let schema = crate::spec::submit_spec_tool().input_schema;
        let skeleton = skeleton_bytes(&schema);
        assert!(
            skeleton < 2048,
            "the answer's keys alone take {skeleton} bytes"
        );
        for limit in [4096u32, 8192, 16_000] {
            let b = bound(&schema, limit);
            let text = longest(&b).to_string();
            // Keys and punctuation a token a byte, the strings letters two tokens each.
            let letters = text.len() as u64 - skeleton;
            assert!(
                skeleton + letters * 2 <= u64::from(limit),
                "{limit}: {} chars",
                text.len()
            );
            let spec = b["properties"]["specification"]["maxLength"]
                .as_u64()
                .unwrap();
            let title = b["properties"]["components"]["items"]["properties"]["title"]["maxLength"]
                .as_u64()
                .unwrap();
            assert!(spec > title * 5, "{limit}: the specification gets the room");
            assert_eq!(b["properties"]["components"]["maxItems"], 3);
        }
        // Still a schema the answers it allows pass.
        let b = bound(&schema, 4096);
        let validator = jsonschema::validator_for(&b).expect("valid schema");
        assert!(validator.is_valid(&longest(&b)));
    }

    /// A report of the engineer's kind (items with an enum status, nested arrays): its longest
    /// bounded answer fits too, and the enum keeps its values, taking no string's room.
    #[test]
    fn the_longest_report_fits_the_output_limit() {
        let schema = &json!({"type": "object", "required": ["summary", "criteria"], "properties": {
            "summary": {"type": "string"},
            "criteria": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "string"},
                "status": {"type": "string", "enum": ["done", "not_done"]},
                "how_met": {"type": "string"},
                "files": {"type": "array", "items": {"type": "string"}},
            }}},
        }});
        assert_eq!(slots(schema), 1 + 3 * (2 + 3));
        let skeleton = skeleton_bytes(schema);
        for limit in [2048u32, 4096, 16_384] {
            let b = bound(schema, limit);
            let text = longest(&b).to_string();
            let letters = text.len() as u64 - skeleton;
            assert!(
                skeleton + letters * 2 <= u64::from(limit),
                "{limit}: {text}"
            );
            let item = &b["properties"]["criteria"]["items"]["properties"];
            assert!(item["status"].get("maxLength").is_none(), "{limit}");
            assert!(item["how_met"]["maxLength"].as_u64() >= Some(MIN_CHARS));
            let validator = jsonschema::validator_for(&b).expect("valid schema");
            assert!(validator.is_valid(&longest(&b)), "{limit}");
        }
    }
}
