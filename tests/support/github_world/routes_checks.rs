//! Check routes of the GitHub simulator: check runs for a ref, for a suite, one run, its
//! annotations (tests add runs through the world's Rust API), and the Actions job log: a `302`
//! to a signed, short-lived URL on the world's log host (`/_joblogs/…`), which serves the log
//! only without an `Authorization` header.

use serde_json::{Value, json};

use super::server::{Cx, HR, Payload, Resp};
use super::state::State;

pub fn route(cx: &mut Cx, method: &str, template: &str) -> Option<HR> {
    Some(match (method, template) {
        ("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs") => for_ref(cx),
        ("GET", "/repos/{owner}/{repo}/check-suites/{check_suite_id}/check-runs") => for_suite(cx),
        ("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}") => get(cx),
        ("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}/annotations") => annotations(cx),
        ("GET", "/repos/{owner}/{repo}/actions/jobs/{job_id}/logs") => job_logs(cx),
        _ => return None,
    })
}

fn listing(cx: &Cx, key: &str, keep: impl Fn(&super::state::CheckRun) -> bool) -> HR {
    let repo = cx.st.repo(key).expect("exists");
    let name = cx.req.q("check_name");
    let status = cx.req.q("status");
    let v = cx.view();
    let runs: Vec<Value> = repo
        .check_runs
        .values()
        .filter(|r| keep(r))
        .filter(|r| name.is_none_or(|n| r.name == n))
        .filter(|r| status.is_none_or(|s| (s == "completed") == r.conclusion.is_some()))
        .rev()
        .map(|r| v.check_run(repo, r.id))
        .collect();
    let total = runs.len();
    let mut page = cx.page(runs)?;
    if let super::server::Payload::Json(list) = &page.payload {
        page.payload =
            super::server::Payload::Json(json!({ "total_count": total, "check_runs": list }));
    }
    Ok(page)
}

fn for_ref(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let sha = cx
        .st
        .repo(&key)
        .expect("exists")
        .resolve(cx.req.p("ref"))
        .ok_or_else(|| {
            Resp::message(
                422,
                &format!("No commit found for SHA: {}", cx.req.p("ref")),
            )
        })?;
    listing(cx, &key, |r| r.head_sha == sha)
}

fn for_suite(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let id = cx.req.num("check_suite_id")?;
    if !cx
        .st
        .repo(&key)
        .expect("exists")
        .check_suites
        .contains_key(&id)
    {
        return Err(Resp::not_found());
    }
    listing(cx, &key, |r| r.suite == id)
}

fn get(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let id = cx.req.num("check_run_id")?;
    let repo = cx.st.repo(&key).expect("exists");
    if !repo.check_runs.contains_key(&id) {
        return Err(Resp::not_found());
    }
    Resp::ok(cx.view().check_run(repo, id))
}

fn annotations(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let id = cx.req.num("check_run_id")?;
    let repo = cx.st.repo(&key).expect("exists");
    let run = repo.check_runs.get(&id).ok_or_else(Resp::not_found)?;
    let v = cx.view();
    let items = run
        .annotations
        .iter()
        .map(|a| v.annotation(repo, run, a))
        .collect();
    cx.page(items)
}

/// GitHub's answer to an App whose installation lacks a permission.
const NOT_ACCESSIBLE: &str = "Resource not accessible by integration";
const SIGNING_KEY: &str = "world-job-log-signing-key";
/// How long a signed log URL is valid (GitHub: one minute).
const LOG_URL_SECONDS: i64 = 60;

fn signature(repo: &str, job: u64, expires: i64) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(
        format!("{SIGNING_KEY}:{repo}:{job}:{expires}").as_bytes(),
    ))
}

/// `GET …/actions/jobs/{job_id}/logs`: `403` without `actions: read`, `404` for an unknown job,
/// `410` for an expired log, else `302` to the signed URL.
fn job_logs(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    if !cx.st.app_permissions.contains_key("actions") {
        return Err(Resp::message(403, NOT_ACCESSIBLE));
    }
    let job = cx.req.num("job_id")?;
    let repo = cx.st.repo(&key).expect("exists");
    let run = repo.check_runs.get(&job).ok_or_else(Resp::not_found)?;
    if run.log.is_none() {
        return Err(Resp::message(410, "Gone"));
    }
    let expires = super::git::now() + LOG_URL_SECONDS;
    let location = format!(
        "{}/_joblogs/{key}/jobs/{job}/signedlogcontent?urlExpires={expires}&urlSigningMethod=HMACV1&urlSignature={}",
        cx.base,
        signature(&key, job, expires)
    );
    Ok(Resp {
        status: 302,
        payload: Payload::Empty,
        headers: vec![("location".into(), location)],
    })
}

/// Serves `/_joblogs/{owner}/{repo}/jobs/{job}/signedlogcontent?…` like the log storage host:
/// a valid, unexpired signature and no `Authorization` header (a signed URL refuses one).
pub fn signed_log(
    st: &State,
    rest: &str,
    query: &[(String, String)],
    has_authorization: bool,
) -> HR {
    if has_authorization {
        return Err(Resp::message(
            400,
            "Authentication information is not given in the correct format (a signed URL takes no Authorization header)",
        ));
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let [owner, name, "jobs", job, "signedlogcontent"] = parts.as_slice() else {
        return Err(Resp::not_found());
    };
    let key = format!("{owner}/{name}");
    let job: u64 = job.parse().map_err(|_| Resp::not_found())?;
    let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let expires: i64 = q("urlExpires").and_then(|v| v.parse().ok()).unwrap_or(0);
    if q("urlSignature") != Some(signature(&key, job, expires).as_str()) {
        return Err(Resp::message(403, "Signature did not match"));
    }
    if expires < super::git::now() {
        return Err(Resp::message(403, "The signed URL expired"));
    }
    let log = st
        .repo(&key)
        .and_then(|r| r.check_runs.get(&job))
        .and_then(|run| run.log.clone())
        .ok_or_else(Resp::not_found)?;
    Ok(Resp {
        status: 200,
        payload: Payload::Bytes(log.into_bytes(), "text/plain; charset=utf-8"),
        headers: vec![],
    })
}
