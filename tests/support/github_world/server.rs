//! The HTTP side of the GitHub simulator: one axum fallback handler that logs each request,
//! runs the OpenAPI checker, applies injected faults, authenticates (App JWT or installation
//! token), dispatches to the route modules, adds rate-limit headers, and checks its own answer
//! against the response schema. Also the request/response types the routes share.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::faults::{self, Fault};
use super::json::View;
use super::openapi::{self, Check, Violation};
use super::state::{RequestRecord, State};
use super::{routes_apps, routes_checks, routes_git, routes_issues, routes_pulls, routes_repos};

pub struct Shared {
    pub state: Mutex<State>,
    pub base: String,
    pub public_key_pem: String,
}

/// A parsed request, as the routes see it.
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub params: BTreeMap<String, String>,
    pub body: Value,
    pub template: String,
}

impl Req {
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn p(&self, key: &str) -> &str {
        self.params.get(key).map(String::as_str).unwrap_or_default()
    }

    pub fn num(&self, key: &str) -> Result<u64, Resp> {
        self.p(key).parse().map_err(|_| Resp::not_found())
    }

    /// `owner/repo` of a repository route.
    pub fn repo(&self) -> String {
        format!("{}/{}", self.p("owner"), self.p("repo"))
    }
}

pub enum Payload {
    Json(Value),
    Bytes(Vec<u8>, &'static str),
    Empty,
}

pub struct Resp {
    pub status: u16,
    pub payload: Payload,
    pub headers: Vec<(String, String)>,
}

pub type HR = Result<Resp, Resp>;

pub const DOCS: &str = "https://docs.github.com/rest";

impl Resp {
    pub fn json(status: u16, v: Value) -> Resp {
        Resp {
            status,
            payload: Payload::Json(v),
            headers: vec![],
        }
    }

    pub fn ok(v: Value) -> HR {
        Ok(Resp::json(200, v))
    }

    pub fn created(v: Value) -> HR {
        Ok(Resp::json(201, v))
    }

    pub fn no_content() -> HR {
        Ok(Resp {
            status: 204,
            payload: Payload::Empty,
            headers: vec![],
        })
    }

    pub fn message(status: u16, message: &str) -> Resp {
        Resp::json(
            status,
            json!({ "message": message, "documentation_url": DOCS, "status": status.to_string() }),
        )
    }

    pub fn not_found() -> Resp {
        Resp::message(404, "Not Found")
    }

    /// GitHub's 422 `Validation Failed` with one error object.
    pub fn validation(resource: &str, field: &str, code: &str, message: Option<&str>) -> Resp {
        let mut err = json!({ "resource": resource, "field": field, "code": code });
        if let Some(m) = message {
            err["message"] = json!(m);
        }
        Resp::json(
            422,
            json!({ "message": "Validation Failed", "errors": [err], "documentation_url": DOCS, "status": "422" }),
        )
    }

    pub fn with_header(mut self, k: &str, v: String) -> Resp {
        self.headers.push((k.to_string(), v));
        self
    }
}

/// What a route handler gets.
pub struct Cx<'a> {
    pub st: &'a mut State,
    pub base: &'a str,
    pub req: &'a Req,
}

impl Cx<'_> {
    pub fn view(&self) -> View<'_> {
        View {
            st: self.st,
            base: self.base,
        }
    }

    /// The repo of a `/repos/{owner}/{repo}/…` route, or 404.
    pub fn repo_key(&self) -> Result<String, Resp> {
        let key = self.req.repo();
        self.st
            .repo(&key)
            .map(|r| r.full_name())
            .ok_or_else(Resp::not_found)
    }

    /// A list answer, paginated with `per_page`/`page` and a `Link` header like GitHub's.
    pub fn page(&self, items: Vec<Value>) -> HR {
        let per_page = self
            .req
            .q("per_page")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(30)
            .clamp(1, 100);
        let page = self
            .req
            .q("page")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let last = items.len().div_ceil(per_page).max(1);
        let slice: Vec<Value> = items
            .into_iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .collect();
        let mut resp = Resp::json(200, Value::Array(slice));
        if last > 1 {
            let url = |p: usize| {
                let mut q: Vec<String> = self
                    .req
                    .query
                    .iter()
                    .filter(|(k, _)| k != "page")
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                q.push(format!("page={p}"));
                format!("<{}{}?{}>", self.base, self.req.path, q.join("&"))
            };
            let mut links = Vec::new();
            if page < last {
                links.push(format!("{}; rel=\"next\"", url(page + 1)));
                links.push(format!("{}; rel=\"last\"", url(last)));
            }
            if page > 1 {
                links.push(format!("{}; rel=\"prev\"", url(page - 1)));
                links.push(format!("{}; rel=\"first\"", url(1)));
            }
            resp = resp.with_header("link", links.join(", "));
        }
        Ok(resp)
    }
}

enum Auth {
    None,
    Jwt,
    Token,
}

fn auth_kind(method: &str, template: &str) -> Auth {
    match (method, template) {
        ("POST", "/app-manifests/{code}/conversions") => Auth::None,
        ("GET", "/app")
        | ("GET", "/app/installations/{installation_id}")
        | ("POST", "/app/installations/{installation_id}/access_tokens")
        | ("GET", "/repos/{owner}/{repo}/installation") => Auth::Jwt,
        _ => Auth::Token,
    }
}

fn credential(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then(|| rest.trim().to_string())
}

fn check_auth(st: &State, public_key: &str, kind: Auth, headers: &HeaderMap) -> Result<(), Resp> {
    let bad = || Resp::message(401, "Bad credentials");
    match kind {
        Auth::None => Ok(()),
        Auth::Token => {
            let cred =
                credential(headers).ok_or_else(|| Resp::message(401, "Requires authentication"))?;
            match st.tokens.get(&cred) {
                Some(t) if t.expires_at > super::git::now() => Ok(()),
                _ => Err(bad()),
            }
        }
        Auth::Jwt => {
            let cred = credential(headers)
                .ok_or_else(|| Resp::message(401, "A JSON web token could not be decoded"))?;
            routes_apps::verify_jwt(st, public_key, &cred)
        }
    }
}

/// The most characters github.com takes in the `body` of an issue, a pull request, a comment
/// or a review; a longer one is refused with 422 whatever the OpenAPI description says.
const MAX_BODY_CHARS: usize = 65_536;

/// What github.com calls the resource a write of `title` or `body` makes, for those it limits.
fn body_resource(method: &str, template: &str) -> Option<&'static str> {
    Some(match (method, template) {
        ("POST", "/repos/{owner}/{repo}/issues")
        | ("PATCH", "/repos/{owner}/{repo}/issues/{issue_number}") => "Issue",
        ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
        | ("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}") => "IssueComment",
        ("POST", "/repos/{owner}/{repo}/pulls")
        | ("PATCH", "/repos/{owner}/{repo}/pulls/{pull_number}") => "PullRequest",
        ("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews") => "PullRequestReview",
        ("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/comments/{comment_id}/replies") => {
            "PullRequestReviewComment"
        }
        _ => return None,
    })
}

/// The most characters github.com's API takes in an issue's or a pull request's `title` (the
/// web form takes more).
const MAX_TITLE_CHARS: usize = 256;

/// github.com's answer to a body over [`MAX_BODY_CHARS`] or a title over [`MAX_TITLE_CHARS`]
/// characters. A pull request's title is refused as the issue's it is ("resource": "Issue").
fn refuse_long_text(cx: &Cx) -> Result<(), Resp> {
    let Some(resource) = body_resource(&cx.req.method, &cx.req.template) else {
        return Ok(());
    };
    let chars = |key: &str| {
        cx.req
            .body
            .get(key)
            .and_then(Value::as_str)
            .map_or(0, |t| t.chars().count())
    };
    if matches!(resource, "Issue" | "PullRequest") && chars("title") > MAX_TITLE_CHARS {
        return Err(Resp::validation(
            "Issue",
            "title",
            "custom",
            Some("title is too long (maximum is 256 characters)"),
        ));
    }
    if chars("body") > MAX_BODY_CHARS {
        return Err(Resp::validation(
            resource,
            "body",
            "custom",
            Some("body is too long (maximum is 65536 characters)"),
        ));
    }
    Ok(())
}

fn dispatch(cx: &mut Cx) -> HR {
    refuse_long_text(cx)?;
    let m = cx.req.method.clone();
    let t = cx.req.template.clone();
    routes_apps::route(cx, &m, &t)
        .or_else(|| routes_repos::route(cx, &m, &t))
        .or_else(|| routes_git::route(cx, &m, &t))
        .or_else(|| routes_issues::route(cx, &m, &t))
        .or_else(|| routes_pulls::route(cx, &m, &t))
        .or_else(|| routes_checks::route(cx, &m, &t))
        .unwrap_or_else(|| {
            Err(Resp::message(
                501,
                &format!("simulator has no handler for {m} {t}"),
            ))
        })
}

fn to_response(resp: Resp, rate: Vec<(String, String)>) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    let headers = builder.headers_mut().expect("fresh builder");
    for (k, v) in rate.into_iter().chain(resp.headers) {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            headers.insert(k, v);
        }
    }
    headers.insert(
        "x-github-api-version-selected",
        HeaderValue::from_static("2022-11-28"),
    );
    let body = match resp.payload {
        Payload::Json(v) => {
            headers.insert(
                "content-type",
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            Body::from(serde_json::to_vec(&v).expect("serialize"))
        }
        Payload::Bytes(b, ct) => {
            headers.insert("content-type", HeaderValue::from_static(ct));
            Body::from(b)
        }
        Payload::Empty => Body::empty(),
    };
    builder.body(body).expect("response")
}

pub async fn handle(shared: Arc<Shared>, req: Request<Body>) -> Response {
    let method = req.method().as_str().to_ascii_uppercase();
    let uri = req.uri().clone();
    let headers = req.headers().clone();
    let bytes = axum::body::to_bytes(req.into_body(), 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    match process(&shared, method, &uri, &headers, &bytes) {
        Some(resp) => resp,
        None => std::future::pending().await,
    }
}

/// Answers one request; `None` means "hang" (an injected fault).
fn process(
    shared: &Shared,
    method: String,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Option<Response> {
    let path = uri.path().to_string();
    let path_q = uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_else(|| path.clone());
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();

    let mut st = shared.state.lock().expect("world state");
    let now = super::git::now();
    if now >= st.rate_reset {
        st.rate_reset = now + st.rate_window;
        st.rate_used = 0;
    }
    st.rate_used += 1;
    let used = st.rate_used;
    let rate = faults::rate_limit_headers(used, st.rate_limit, st.rate_reset);

    if let Some(resp) = super::routes_web::route(&mut st, &method, &path, &query, bytes) {
        st.requests.push(RequestRecord {
            method,
            path: path_q,
            route: Some("/_web".into()),
            status: resp.status,
        });
        return Some(to_response(resp, rate));
    }

    if let Some(rest) = path.strip_prefix("/_codeload/") {
        let resp = routes_repos::codeload(&st, rest).unwrap_or_else(|e| e);
        st.requests.push(RequestRecord {
            method,
            path: path_q,
            route: Some("/_codeload".into()),
            status: resp.status,
        });
        return Some(to_response(resp, rate));
    }

    if let Some(rest) = path.strip_prefix("/_joblogs/") {
        let has_authorization = headers.contains_key("authorization");
        let resp = super::routes_checks::signed_log(&st, rest, &query, has_authorization)
            .unwrap_or_else(|e| e);
        st.requests.push(RequestRecord {
            method,
            path: path_q,
            route: Some("/_joblogs".into()),
            status: resp.status,
        });
        return Some(to_response(resp, rate));
    }

    if used > st.rate_limit {
        let resp = Resp::json(
            403,
            json!({
                "message": faults::PRIMARY_RATE_LIMIT_MESSAGE,
                "documentation_url": faults::SECONDARY_RATE_LIMIT_DOCS,
                "status": "403"
            }),
        );
        st.requests.push(RequestRecord {
            method,
            path: path_q,
            route: None,
            status: 403,
        });
        return Some(to_response(resp, rate));
    }

    let (body, is_json) = if bytes.is_empty() {
        (None, true)
    } else {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(v) => (Some(v), true),
            Err(_) => (None, false),
        }
    };
    let (m, check) =
        openapi::checker().check_request(&method, &path, &query, body.as_ref(), is_json);
    let template = m.as_ref().map(|m| m.template.clone());
    let mut refusal = None;
    match &check {
        Check::Ok => {}
        Check::UnknownRoute(reason) => {
            st.violations.push(Violation {
                method: method.clone(),
                path: path_q.clone(),
                reason: reason.clone(),
            });
            refusal = Some(Resp::not_found());
        }
        Check::Invalid { status, reason } => {
            st.violations.push(Violation {
                method: method.clone(),
                path: path_q.clone(),
                reason: reason.clone(),
            });
            refusal = Some(match status {
                404 => Resp::not_found(),
                400 => Resp::message(400, "Problems parsing JSON"),
                _ => Resp::json(
                    422,
                    json!({
                        "message": format!("Invalid request.\n\n{reason}"),
                        "documentation_url": DOCS,
                        "status": "422"
                    }),
                ),
            });
        }
    }

    let fault = st
        .faults
        .iter_mut()
        .find(|r| r.matches(&method, template.as_deref(), &path))
        .map(|r| {
            if r.times != usize::MAX {
                r.times -= 1;
            }
            r.fault.clone()
        });
    let lose_answer = fault == Some(Fault::LoseAnswer);
    if let Some(fault) = fault.filter(|f| *f != Fault::LoseAnswer) {
        let resp = match fault {
            Fault::Hang => {
                st.requests.push(RequestRecord {
                    method,
                    path: path_q,
                    route: template,
                    status: 0,
                });
                return None;
            }
            Fault::Status(code) => Resp::message(
                code,
                if code >= 500 {
                    "Server Error"
                } else {
                    "Injected fault"
                },
            ),
            Fault::SecondaryRateLimit { retry_after, reset } => {
                let mut r = Resp::json(
                    403,
                    json!({
                        "message": faults::SECONDARY_RATE_LIMIT_MESSAGE,
                        "documentation_url": faults::SECONDARY_RATE_LIMIT_DOCS,
                        "status": "403"
                    }),
                );
                if let Some(s) = retry_after {
                    r = r.with_header("retry-after", s.to_string());
                }
                if let Some(t) = reset {
                    r = r
                        .with_header("x-ratelimit-remaining", "0".into())
                        .with_header("x-ratelimit-reset", t.to_string());
                }
                r
            }
            Fault::LoseAnswer => unreachable!("carried out below"),
        };
        st.requests.push(RequestRecord {
            method,
            path: path_q,
            route: template,
            status: resp.status,
        });
        return Some(to_response(resp, rate));
    }

    let resp = match (&template, refusal) {
        (Some(t), refusal) => {
            match check_auth(&st, &shared.public_key_pem, auth_kind(&method, t), headers) {
                Err(r) => r,
                Ok(()) => match refusal {
                    Some(r) => r,
                    None => {
                        let m = m.expect("matched");
                        let req = Req {
                            method: method.clone(),
                            path: path.clone(),
                            query,
                            params: m.params,
                            body: body.unwrap_or(Value::Null),
                            template: t.clone(),
                        };
                        let mut cx = Cx {
                            st: &mut st,
                            base: &shared.base,
                            req: &req,
                        };
                        dispatch(&mut cx).unwrap_or_else(|e| e)
                    }
                },
            }
        }
        (None, refusal) => refusal.unwrap_or_else(Resp::not_found),
    };
    if let (Some(t), Payload::Json(v)) = (&template, &resp.payload)
        && (200..300).contains(&resp.status)
        && let Some(problem) = openapi::checker().check_response(&method, t, resp.status, v)
    {
        st.response_problems.push(Violation {
            method: method.clone(),
            path: path_q.clone(),
            reason: problem,
        });
    }
    let resp = if lose_answer {
        Resp::message(502, "Server Error")
    } else {
        resp
    };
    st.requests.push(RequestRecord {
        method,
        path: path_q,
        route: template,
        status: resp.status,
    });
    Some(to_response(resp, rate))
}
