//! The OpenAPI checker of the GitHub simulator: loads the trimmed description
//! (`tests/fixtures/github-openapi/api.github.com.trimmed.json`), matches requests to operations by
//! path template, checks required path/query parameters and validates JSON bodies against the
//! operation's request-body schema (OpenAPI 3.0 rewritten to JSON Schema draft 4, validators
//! compiled once per operation). It also validates the simulator's own responses against the
//! response schemas, so the fake's shapes stay honest.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value, json};

/// A request (or, for responses, an answer of the simulator) that does not match the description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub method: String,
    pub path: String,
    pub reason: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.method, self.path, self.reason)
    }
}

#[derive(Debug)]
struct Param {
    name: String,
    location: String,
    required: bool,
    schema: Value,
}

struct Operation {
    method: String,
    template: String,
    segments: Vec<String>,
    params: Vec<Param>,
    body_required: bool,
    body_schema: Option<Value>,
    responses: BTreeMap<String, Value>,
}

type Compiled = Arc<Result<jsonschema::Validator, String>>;

/// A matched route: the operation's template and the decoded path parameters.
#[derive(Clone, Debug)]
pub struct RouteMatch {
    pub template: String,
    pub params: BTreeMap<String, String>,
}

/// Outcome of checking one request.
#[derive(Debug)]
pub enum Check {
    Ok,
    /// No operation has this method and path: GitHub answers 404.
    UnknownRoute(String),
    /// Parameters or body do not match: GitHub answers 422 (or 404 for a bad path parameter).
    Invalid {
        status: u16,
        reason: String,
    },
}

pub struct Checker {
    ops: Vec<Operation>,
    doc: Value,
    cache: Mutex<HashMap<String, Compiled>>,
}

/// The checker, loaded once per test binary.
pub fn checker() -> &'static Checker {
    static CHECKER: OnceLock<Checker> = OnceLock::new();
    CHECKER.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/github-openapi/api.github.com.trimmed.json"
        );
        let text = std::fs::read_to_string(path).expect("read the trimmed OpenAPI description");
        Checker::new(serde_json::from_str(&text).expect("parse the trimmed OpenAPI description"))
    })
}

fn resolve<'a>(doc: &'a Value, node: &'a Value) -> &'a Value {
    let mut node = node;
    for _ in 0..16 {
        match node.get("$ref").and_then(Value::as_str) {
            Some(r) => match doc.pointer(r.trim_start_matches('#')) {
                Some(target) => node = target,
                None => return node,
            },
            None => return node,
        }
    }
    node
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

const IGNORED: &[&str] = &[
    "nullable",
    "example",
    "examples",
    "discriminator",
    "xml",
    "externalDocs",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// Rewrites an OpenAPI 3.0 schema into JSON Schema draft 4; `$ref`s go to `definitions`.
fn convert(doc: &Value, node: &Value, defs: &mut BTreeMap<String, Value>) -> Value {
    let Some(obj) = node.as_object() else {
        return node.clone();
    };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        let name = r
            .trim_start_matches("#/components/")
            .replace('/', "__")
            .replace('~', "_");
        if !defs.contains_key(&name) {
            defs.insert(name.clone(), Value::Bool(true));
            let target = doc
                .pointer(r.trim_start_matches('#'))
                .cloned()
                .unwrap_or(Value::Bool(true));
            let converted = convert(doc, &target, defs);
            defs.insert(name.clone(), converted);
        }
        return json!({ "$ref": format!("#/definitions/{name}") });
    }
    let mut out = Map::new();
    for (k, v) in obj {
        if IGNORED.contains(&k.as_str()) || k.starts_with("x-") {
            continue;
        }
        let converted = match k.as_str() {
            "properties" | "patternProperties" => Value::Object(
                v.as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(pk, pv)| (pk.clone(), convert(doc, pv, defs)))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            "items" | "additionalProperties" | "not" => convert(doc, v, defs),
            "allOf" | "anyOf" | "oneOf" => Value::Array(
                v.as_array()
                    .map(|a| a.iter().map(|s| convert(doc, s, defs)).collect())
                    .unwrap_or_default(),
            ),
            _ => v.clone(),
        };
        out.insert(k.clone(), converted);
    }
    if obj.get("nullable") == Some(&Value::Bool(true)) {
        if let Some(e) = out.get_mut("enum").and_then(Value::as_array_mut)
            && !e.contains(&Value::Null)
        {
            e.push(Value::Null);
        }
        match out.get("type").cloned() {
            Some(Value::String(t)) => {
                out.insert("type".into(), json!([t, "null"]));
            }
            Some(_) => {}
            None => return json!({ "anyOf": [Value::Object(out), { "type": "null" }] }),
        }
    }
    Value::Object(out)
}

fn root_schema(doc: &Value, schema: &Value) -> Value {
    let mut defs = BTreeMap::new();
    let mut root = convert(doc, schema, &mut defs);
    if !defs.is_empty() {
        let defs: Map<String, Value> = defs.into_iter().collect();
        match root.as_object_mut() {
            Some(o) if !o.contains_key("$ref") => {
                o.insert("definitions".into(), Value::Object(defs));
            }
            _ => root = json!({ "allOf": [root], "definitions": defs }),
        }
    }
    root
}

fn json_schema_of(doc: &Value, content_holder: &Value) -> Option<Value> {
    let holder = resolve(doc, content_holder);
    let content = holder.get("content")?;
    let media = content
        .get("application/json")
        .or_else(|| content.as_object()?.values().next())?;
    media.get("schema").cloned()
}

impl Checker {
    fn new(doc: Value) -> Self {
        let mut ops = Vec::new();
        let paths = doc["paths"].as_object().cloned().unwrap_or_default();
        for (template, item) in &paths {
            let shared: Vec<Value> = item
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (method, op) in item.as_object().into_iter().flatten() {
                if method == "parameters" || !op.is_object() {
                    continue;
                }
                let mut params = Vec::new();
                let own = op
                    .get("parameters")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for p in shared.iter().chain(own.iter()) {
                    let p = resolve(&doc, p);
                    params.push(Param {
                        name: p["name"].as_str().unwrap_or_default().to_string(),
                        location: p["in"].as_str().unwrap_or_default().to_string(),
                        required: p["required"].as_bool().unwrap_or(false),
                        schema: p.get("schema").cloned().unwrap_or(Value::Bool(true)),
                    });
                }
                let (body_required, body_schema) = match op.get("requestBody") {
                    Some(rb) => (
                        resolve(&doc, rb)["required"].as_bool().unwrap_or(false),
                        json_schema_of(&doc, rb),
                    ),
                    None => (false, None),
                };
                let mut responses = BTreeMap::new();
                for (status, r) in op["responses"].as_object().into_iter().flatten() {
                    if let Some(s) = json_schema_of(&doc, r) {
                        responses.insert(status.clone(), s);
                    }
                }
                ops.push(Operation {
                    method: method.to_ascii_uppercase(),
                    template: template.clone(),
                    segments: template
                        .trim_start_matches('/')
                        .split('/')
                        .map(String::from)
                        .collect(),
                    params,
                    body_required,
                    body_schema,
                    responses,
                });
            }
        }
        Checker {
            ops,
            doc,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Every `METHOD template` the description holds.
    pub fn operations(&self) -> Vec<String> {
        self.ops
            .iter()
            .map(|o| format!("{} {}", o.method, o.template))
            .collect()
    }

    fn match_op(&self, method: &str, path: &str) -> Option<(&Operation, RouteMatch)> {
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut best: Option<(usize, &Operation, BTreeMap<String, String>)> = None;
        for op in self.ops.iter().filter(|o| o.method == method) {
            let Some(params) = match_segments(&op.segments, &segs) else {
                continue;
            };
            let literals = op.segments.iter().filter(|s| !s.starts_with('{')).count();
            if best.as_ref().is_none_or(|(l, _, _)| literals > *l) {
                best = Some((literals, op, params));
            }
        }
        best.map(|(_, op, params)| {
            (
                op,
                RouteMatch {
                    template: op.template.clone(),
                    params,
                },
            )
        })
    }

    /// The operation template for `method` + `path`, with its decoded path parameters.
    pub fn route(&self, method: &str, path: &str) -> Option<RouteMatch> {
        self.match_op(method, path).map(|(_, m)| m)
    }

    fn compiled(&self, key: String, schema: &Value) -> Compiled {
        let mut cache = self.cache.lock().expect("checker cache");
        cache
            .entry(key)
            .or_insert_with(|| {
                let root = root_schema(&self.doc, schema);
                Arc::new(
                    jsonschema::draft4::options()
                        .build(&root)
                        .map_err(|e| format!("schema does not compile: {e}")),
                )
            })
            .clone()
    }

    /// Checks a request against the description.
    pub fn check_request(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
        body_is_json: bool,
    ) -> (Option<RouteMatch>, Check) {
        let Some((op, m)) = self.match_op(method, path) else {
            return (
                None,
                Check::UnknownRoute(format!("no operation matches {method} {path}")),
            );
        };
        for p in &op.params {
            match p.location.as_str() {
                "path" => {
                    let v = m.params.get(&p.name).cloned().unwrap_or_default();
                    if let Some(reason) = check_scalar(&p.name, &v, &p.schema) {
                        return (
                            Some(m),
                            Check::Invalid {
                                status: 404,
                                reason,
                            },
                        );
                    }
                }
                "query" => {
                    let v = query.iter().find(|(k, _)| *k == p.name);
                    match v {
                        None if p.required => {
                            return (
                                Some(m),
                                Check::Invalid {
                                    status: 422,
                                    reason: format!(
                                        "required query parameter `{}` missing",
                                        p.name
                                    ),
                                },
                            );
                        }
                        Some((_, v)) => {
                            if let Some(reason) = check_scalar(&p.name, v, &p.schema) {
                                return (
                                    Some(m),
                                    Check::Invalid {
                                        status: 422,
                                        reason,
                                    },
                                );
                            }
                        }
                        None => {}
                    }
                }
                _ => {}
            }
        }
        if !body_is_json {
            return (
                Some(m),
                Check::Invalid {
                    status: 400,
                    reason: "request body is not JSON".into(),
                },
            );
        }
        match (&op.body_schema, body) {
            (Some(_), None) if op.body_required => (
                Some(m),
                Check::Invalid {
                    status: 422,
                    reason: "request body required".into(),
                },
            ),
            (Some(schema), Some(b)) => {
                let key = format!("req {} {}", op.method, op.template);
                let v = self.compiled(key, schema);
                match v.as_ref() {
                    Err(e) => (
                        Some(m),
                        Check::Invalid {
                            status: 500,
                            reason: e.clone(),
                        },
                    ),
                    Ok(v) => {
                        let errors: Vec<String> = v
                            .iter_errors(b)
                            .take(5)
                            .map(|e| format!("{} at `{}`", e, e.instance_path()))
                            .collect();
                        if errors.is_empty() {
                            (Some(m), Check::Ok)
                        } else {
                            (
                                Some(m),
                                Check::Invalid {
                                    status: 422,
                                    reason: format!("body invalid: {}", errors.join("; ")),
                                },
                            )
                        }
                    }
                }
            }
            (None, Some(b)) if !b.is_null() && !matches!(b, Value::Object(o) if o.is_empty()) => (
                Some(m),
                Check::Invalid {
                    status: 422,
                    reason: "operation takes no request body".into(),
                },
            ),
            _ => (Some(m), Check::Ok),
        }
    }

    /// Validates a JSON answer of the simulator against the operation's response schema.
    pub fn check_response(
        &self,
        method: &str,
        template: &str,
        status: u16,
        body: &Value,
    ) -> Option<String> {
        let op = self
            .ops
            .iter()
            .find(|o| o.method == method && o.template == template)?;
        let schema = op.responses.get(&status.to_string())?;
        let v = self.compiled(format!("resp {status} {method} {template}"), schema);
        match v.as_ref() {
            Err(e) => Some(e.clone()),
            Ok(v) => {
                let errors: Vec<String> = v
                    .iter_errors(body)
                    .take(5)
                    .map(|e| format!("{} at `{}`", e, e.instance_path()))
                    .collect();
                (!errors.is_empty()).then(|| errors.join("; "))
            }
        }
    }
}

fn match_segments(template: &[String], segs: &[&str]) -> Option<BTreeMap<String, String>> {
    // `{path}` and `{ref}` at the end take the rest of the path, slashes included.
    let greedy = matches!(
        template.last().map(String::as_str),
        Some("{path}" | "{ref}")
    );
    if segs.len() < template.len() || (segs.len() > template.len() && !greedy) {
        return None;
    }
    let mut params = BTreeMap::new();
    for (i, t) in template.iter().enumerate() {
        if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            let value = if i == template.len() - 1 {
                segs[i..].join("/")
            } else {
                segs[i].to_string()
            };
            if value.is_empty() {
                return None;
            }
            params.insert(name.to_string(), percent_decode(&value));
        } else if segs[i] != t {
            return None;
        }
    }
    Some(params)
}

fn check_scalar(name: &str, value: &str, schema: &Value) -> Option<String> {
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") if value.parse::<i64>().is_err() => {
            return Some(format!(
                "parameter `{name}` must be an integer, got `{value}`"
            ));
        }
        Some("boolean") if value != "true" && value != "false" => {
            return Some(format!(
                "parameter `{name}` must be a boolean, got `{value}`"
            ));
        }
        _ => {}
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.iter().any(|x| x.as_str() == Some(value))
    {
        return Some(format!(
            "parameter `{name}` must be one of {e:?}, got `{value}`"
        ));
    }
    None
}
