//! Check routes of the GitHub simulator: check runs for a ref, for a suite, one run, its
//! annotations (tests add CI runs through the world's Rust API), the App's own check runs
//! (created and updated through the API, which needs `checks: write`; only the App that made a
//! run may update it), and the Actions job log: a `302` to a signed, short-lived URL on the
//! world's log host (`/_joblogs/…`), which serves the log only without an `Authorization`
//! header.

use serde_json::{Value, json};

use super::server::{Cx, HR, Payload, Resp};
use super::state::{Annotation, CheckRun, CheckSuite, State};

pub fn route(cx: &mut Cx, method: &str, template: &str) -> Option<HR> {
    Some(match (method, template) {
        ("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs") => for_ref(cx),
        ("GET", "/repos/{owner}/{repo}/check-suites/{check_suite_id}/check-runs") => for_suite(cx),
        ("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}") => get(cx),
        ("POST", "/repos/{owner}/{repo}/check-runs") => create(cx),
        ("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}") => update(cx),
        ("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}/annotations") => annotations(cx),
        ("GET", "/repos/{owner}/{repo}/actions/jobs/{job_id}/logs") => job_logs(cx),
        _ => return None,
    })
}

fn listing(cx: &Cx, key: &str, keep: impl Fn(&super::state::CheckRun) -> bool) -> HR {
    let repo = cx.st.repo(key).expect("exists");
    let name = cx.req.q("check_name");
    let status = cx.req.q("status");
    let app_id: Option<u64> = cx.req.q("app_id").and_then(|a| a.parse().ok());
    let ours = cx.st.app_id;
    // `filter=latest` (the default): the newest run of each name (and App) only.
    let latest = cx.req.q("filter") != Some("all");
    let mut seen = std::collections::BTreeSet::new();
    let v = cx.view();
    let runs: Vec<Value> = repo
        .check_runs
        .values()
        .filter(|r| keep(r))
        .filter(|r| name.is_none_or(|n| r.name == n))
        .filter(|r| status.is_none_or(|s| s == r.status))
        .filter(|r| app_id.is_none_or(|a| (a == ours) == r.by_app))
        .rev()
        .filter(|r| !latest || seen.insert((r.by_app, r.name.clone())))
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

/// Creating or updating a check run needs `checks: write`.
fn may_write_checks(cx: &Cx) -> Result<(), Resp> {
    match cx.st.app_permissions.get("checks").map(String::as_str) {
        Some("write") => Ok(()),
        _ => Err(Resp::message(403, NOT_ACCESSIBLE)),
    }
}

/// `status`, `conclusion`, `completed_at` and `output` of a create or update, applied to `run`
/// as GitHub does: a conclusion completes the run; `completed` needs a conclusion; `stale` is
/// GitHub's alone; a new `output` replaces title, summary and text, and adds its annotations.
fn apply(body: &Value, run: &mut CheckRun, now: i64) -> Result<(), Resp> {
    if let Some(status) = body.get("status").and_then(Value::as_str) {
        run.status = status.to_string();
    }
    if let Some(conclusion) = body.get("conclusion").and_then(Value::as_str) {
        if conclusion == "stale" {
            return Err(Resp::validation(
                "CheckRun",
                "conclusion",
                "invalid",
                Some("You cannot change a check run conclusion to stale"),
            ));
        }
        run.conclusion = Some(conclusion.to_string());
        run.status = "completed".into();
    }
    if run.status == "completed" && run.conclusion.is_none() {
        return Err(Resp::validation(
            "CheckRun",
            "conclusion",
            "missing_field",
            Some("conclusion is required when the status is completed"),
        ));
    }
    if run.status == "completed" && run.completed_at.is_none() {
        run.completed_at = Some(now);
    }
    if let Some(output) = body.get("output") {
        let text = |k: &str| output.get(k).and_then(Value::as_str).map(String::from);
        run.title = text("title");
        run.summary = text("summary");
        run.text = text("text");
        for a in output["annotations"].as_array().into_iter().flatten() {
            run.annotations.push(Annotation {
                path: a["path"].as_str().unwrap_or_default().into(),
                start_line: a["start_line"].as_u64().unwrap_or(1),
                end_line: a["end_line"].as_u64().unwrap_or(1),
                level: a["annotation_level"].as_str().unwrap_or("notice").into(),
                title: a["title"].as_str().map(String::from),
                message: a["message"].as_str().unwrap_or_default().into(),
            });
        }
    }
    if let Some(id) = body.get("external_id").and_then(Value::as_str) {
        run.external_id = id.to_string();
    }
    Ok(())
}

/// `POST …/check-runs`: a run of the App on a commit of the repository, in the App's check
/// suite for that commit (made on first use). `head_sha` must name a commit (not a branch).
fn create(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    may_write_checks(cx)?;
    let body = cx.req.body.clone();
    let head = body["head_sha"].as_str().unwrap_or_default().to_string();
    let name = body["name"].as_str().unwrap_or_default().to_string();
    let t = cx.st.tick();
    let run_id = cx.st.next_id();
    let new_suite = cx.st.next_id();
    let repo = cx.st.repo_mut(&key).expect("exists");
    let is_commit = head.len() == 40 && repo.objects.commit(&head).is_some();
    if !is_commit {
        return Err(Resp::validation(
            "CheckRun",
            "head_sha",
            "invalid",
            Some(&format!("No commit found for SHA: {head}")),
        ));
    }
    if name.trim().is_empty() {
        return Err(Resp::validation("CheckRun", "name", "missing_field", None));
    }
    let suite = match repo
        .check_suites
        .values()
        .find(|s| s.head_sha == head && s.by_app)
    {
        Some(s) => s.id,
        None => {
            let head_branch = repo
                .refs
                .iter()
                .find(|(_, s)| **s == head)
                .and_then(|(k, _)| k.strip_prefix("refs/heads/").map(String::from));
            repo.check_suites.insert(
                new_suite,
                CheckSuite {
                    id: new_suite,
                    head_sha: head.clone(),
                    head_branch,
                    by_app: true,
                },
            );
            new_suite
        }
    };
    let mut run = CheckRun {
        id: run_id,
        suite,
        head_sha: head,
        name,
        conclusion: None,
        title: None,
        summary: None,
        text: None,
        annotations: Vec::new(),
        started_at: t,
        log: None,
        by_app: true,
        status: "queued".into(),
        external_id: String::new(),
        completed_at: None,
    };
    apply(&body, &mut run, t)?;
    repo.check_runs.insert(run_id, run);
    let repo = cx.st.repo(&key).expect("exists");
    Resp::created(cx.view().check_run(repo, run_id))
}

/// `PATCH …/check-runs/{check_run_id}`: only the App that created a run may update it.
fn update(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    may_write_checks(cx)?;
    let id = cx.req.num("check_run_id")?;
    let body = cx.req.body.clone();
    let t = cx.st.tick();
    let app_id = cx.st.app_id;
    let repo = cx.st.repo_mut(&key).expect("exists");
    let run = repo.check_runs.get_mut(&id).ok_or_else(Resp::not_found)?;
    if !run.by_app {
        return Err(Resp::message(
            403,
            &format!(
                "Invalid app_id `{app_id}` - check run can only be modified by the GitHub App that created it."
            ),
        ));
    }
    let mut updated = run.clone();
    apply(&body, &mut updated, t)?;
    if let Some(name) = body.get("name").and_then(Value::as_str) {
        updated.name = name.to_string();
    }
    *run = updated;
    let repo = cx.st.repo(&key).expect("exists");
    Resp::ok(cx.view().check_run(repo, id))
}
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
