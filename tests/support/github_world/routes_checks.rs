//! Check routes of the GitHub simulator: check runs for a ref, for a suite, one run, and its
//! annotations (tests add runs through the world's Rust API).

use serde_json::{Value, json};

use super::server::{Cx, HR, Resp};

pub fn route(cx: &mut Cx, method: &str, template: &str) -> Option<HR> {
    Some(match (method, template) {
        ("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs") => for_ref(cx),
        ("GET", "/repos/{owner}/{repo}/check-suites/{check_suite_id}/check-runs") => for_suite(cx),
        ("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}") => get(cx),
        ("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}/annotations") => annotations(cx),
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
