//! Issue routes of the GitHub simulator: issues (list with filters, create, get, update),
//! issue comments, reactions on issues and comments, labels, sub-issues (linked by the sub-issue's
//! **id**) and `blocked_by` dependencies. Writes through the API are made by the App's bot user.

use serde_json::{Value, json};

use super::server::{Cx, HR, Resp};
use super::state::ReactionTarget;

pub fn route(cx: &mut Cx, method: &str, template: &str) -> Option<HR> {
    Some(match (method, template) {
        ("GET", "/repos/{owner}/{repo}/issues") => list(cx),
        ("POST", "/repos/{owner}/{repo}/issues") => create(cx),
        ("GET", "/repos/{owner}/{repo}/issues/{issue_number}") => get(cx),
        ("PATCH", "/repos/{owner}/{repo}/issues/{issue_number}") => update(cx),
        ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments") => list_comments(cx),
        ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments") => create_comment(cx),
        ("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}") => get_comment(cx),
        ("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}") => update_comment(cx),
        ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/reactions") => {
            list_reactions(cx, false)
        }
        ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/reactions") => react(cx, false),
        ("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions") => {
            list_reactions(cx, true)
        }
        ("POST", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions") => react(cx, true),
        ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/labels") => issue_labels(cx),
        ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/labels") => add_labels(cx),
        ("DELETE", "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}") => remove_label(cx),
        ("GET", "/repos/{owner}/{repo}/labels") => list_labels(cx),
        ("GET", "/repos/{owner}/{repo}/labels/{name}") => get_label(cx),
        ("POST", "/repos/{owner}/{repo}/labels") => create_label(cx),
        ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/sub_issues") => list_sub_issues(cx),
        ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/sub_issues") => add_sub_issue(cx),
        ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/parent") => parent(cx),
        ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/dependencies/blocked_by") => {
            list_blocked_by(cx)
        }
        ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/dependencies/blocked_by") => {
            add_blocked_by(cx)
        }
        _ => return None,
    })
}

/// The issue number of the route, checked to exist.
fn issue_number(cx: &Cx, key: &str) -> Result<u64, Resp> {
    let n = cx.req.num("issue_number")?;
    let repo = cx.st.repo(key).expect("exists");
    if repo.issues.contains_key(&n) {
        Ok(n)
    } else {
        Err(Resp::not_found())
    }
}

fn label_names(v: &Value) -> Vec<String> {
    let list = match v {
        Value::Array(a) => a.clone(),
        Value::Object(o) => o
            .get("labels")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        Value::String(s) => vec![Value::String(s.clone())],
        _ => vec![],
    };
    list.iter()
        .filter_map(|l| match l {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("name").and_then(Value::as_str).map(String::from),
            _ => None,
        })
        .collect()
}

fn list(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let state = cx.req.q("state").unwrap_or("open");
    let wanted: Vec<String> = cx
        .req
        .q("labels")
        .map(|l| {
            l.split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let creator = cx.req.q("creator").map(str::to_ascii_lowercase);
    let asc = cx.req.q("direction") == Some("asc");
    let repo = cx.st.repo(&key).expect("exists");
    let v = cx.view();
    let mut items: Vec<Value> = repo
        .issues
        .values()
        .filter(|i| state == "all" || i.state == state)
        .filter(|i| {
            wanted
                .iter()
                .all(|w| i.labels.iter().any(|l| l.to_ascii_lowercase() == *w))
        })
        .filter(|i| {
            creator
                .as_ref()
                .is_none_or(|c| i.user.to_ascii_lowercase() == *c)
        })
        .map(|i| v.issue(repo, i.number))
        .collect();
    if !asc {
        items.reverse();
    }
    cx.page(items)
}

fn create(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let body = cx.req.body.clone();
    let title = match &body["title"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(Resp::validation("Issue", "title", "missing_field", None)),
    };
    let bot = cx.st.bot_login();
    let n = cx
        .st
        .new_issue(&key, &title, body["body"].as_str(), &bot, None);
    for label in label_names(&json!({ "labels": body["labels"] })) {
        let name = cx.st.ensure_label(&key, &label);
        let issue = cx
            .st
            .repo_mut(&key)
            .expect("exists")
            .issues
            .get_mut(&n)
            .expect("new");
        if !issue.labels.contains(&name) {
            issue.labels.push(name);
        }
    }
    if let Some(a) = body["assignees"].as_array() {
        let issue = cx
            .st
            .repo_mut(&key)
            .expect("exists")
            .issues
            .get_mut(&n)
            .expect("new");
        issue.assignees = a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect();
    }
    let repo = cx.st.repo(&key).expect("exists");
    let v = cx.view().issue(repo, n);
    let location = v["url"].as_str().unwrap_or_default().to_string();
    Ok(Resp::json(201, v).with_header("location", location))
}

fn get(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let n = issue_number(cx, &key)?;
    Resp::ok(cx.view().issue(cx.st.repo(&key).expect("exists"), n))
}

fn update(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let n = issue_number(cx, &key)?;
    let body = cx.req.body.clone();
    let t = cx.st.tick();
    let bot = cx.st.bot_login();
    if body.get("labels").is_some() {
        let names: Vec<String> = label_names(&json!({ "labels": body["labels"] }))
            .iter()
            .map(|l| cx.st.ensure_label(&key, l))
            .collect();
        cx.st
            .repo_mut(&key)
            .expect("exists")
            .issues
            .get_mut(&n)
            .expect("exists")
            .labels = names;
    }
    let issue = cx
        .st
        .repo_mut(&key)
        .expect("exists")
        .issues
        .get_mut(&n)
        .expect("exists");
    if let Some(title) = body["title"].as_str() {
        issue.title = title.into();
    }
    if let Some(b) = body.get("body") {
        issue.body = b.as_str().map(String::from);
    }
    if let Some(a) = body["assignees"].as_array() {
        issue.assignees = a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect();
    }
    match body["state"].as_str() {
        Some("closed") if issue.state != "closed" => {
            issue.state = "closed".into();
            issue.closed_at = Some(t);
            issue.closed_by = Some(bot);
            issue.state_reason = Some(body["state_reason"].as_str().unwrap_or("completed").into());
        }
        Some("open") if issue.state != "open" => {
            issue.state = "open".into();
            issue.closed_at = None;
            issue.closed_by = None;
            issue.state_reason = Some("reopened".into());
        }
        _ => {}
    }
    issue.updated_at = t;
    Resp::ok(cx.view().issue(cx.st.repo(&key).expect("exists"), n))
}

fn list_comments(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let n = issue_number(cx, &key)?;
    let repo = cx.st.repo(&key).expect("exists");
    let v = cx.view();
    let items = repo
        .comments
        .values()
        .filter(|c| c.issue == n)
        .map(|c| v.comment(repo, c.id))
        .collect();
    cx.page(items)
}

/// github.com's answer to the App writing in a locked conversation (it is no collaborator).
fn refuse_if_locked(cx: &Cx, key: &str, n: u64) -> Result<(), Resp> {
    let locked = cx
        .st
        .repo(key)
        .and_then(|r| r.issues.get(&n))
        .is_some_and(|i| i.locked);
    if locked {
        return Err(Resp::json(
            403,
            json!({
                "message": "Unable to create comment because issue is locked.",
                "documentation_url": "https://docs.github.com/articles/locking-conversations/",
                "status": "403",
            }),
        ));
    }
    Ok(())
}

fn create_comment(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let n = issue_number(cx, &key)?;
    refuse_if_locked(cx, &key, n)?;
    let body = cx.req.body["body"].as_str().unwrap_or_default().to_string();
    let bot = cx.st.bot_login();
    let id = cx
        .st
        .new_comment(&key, n, &bot, &body)
        .expect("issue exists");
    let v = cx.view().comment(cx.st.repo(&key).expect("exists"), id);
    let location = v["url"].as_str().unwrap_or_default().to_string();
    Ok(Resp::json(201, v).with_header("location", location))
}

fn comment_id(cx: &Cx, key: &str) -> Result<u64, Resp> {
    let id = cx.req.num("comment_id")?;
    if cx.st.repo(key).expect("exists").comments.contains_key(&id) {
        Ok(id)
    } else {
        Err(Resp::not_found())
    }
}

fn get_comment(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let id = comment_id(cx, &key)?;
    Resp::ok(cx.view().comment(cx.st.repo(&key).expect("exists"), id))
}

fn update_comment(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let id = comment_id(cx, &key)?;
    let issue = cx.st.repo(&key).expect("exists").comments[&id].issue;
    refuse_if_locked(cx, &key, issue)?;
    let t = cx.st.tick();
    let body = cx.req.body["body"].as_str().unwrap_or_default().to_string();
    let c = cx
        .st
        .repo_mut(&key)
        .expect("exists")
        .comments
        .get_mut(&id)
        .expect("exists");
    let before = std::mem::replace(&mut c.body, body);
    c.history.push(before);
    c.updated_at = t;
    Resp::ok(cx.view().comment(cx.st.repo(&key).expect("exists"), id))
}

fn reaction_target(cx: &Cx, key: &str, on_comment: bool) -> Result<ReactionTarget, Resp> {
    Ok(if on_comment {
        ReactionTarget::Comment(comment_id(cx, key)?)
    } else {
        ReactionTarget::Issue(issue_number(cx, key)?)
    })
}

fn list_reactions(cx: &mut Cx, on_comment: bool) -> HR {
    let key = cx.repo_key()?;
    let target = reaction_target(cx, &key, on_comment)?;
    let repo = cx.st.repo(&key).expect("exists");
    let list = match target {
        ReactionTarget::Issue(n) => &repo.issues[&n].reactions,
        ReactionTarget::Comment(c) => &repo.comments[&c].reactions,
    };
    let content = cx.req.q("content");
    let v = cx.view();
    let items = list
        .iter()
        .filter(|r| content.is_none_or(|c| r.content == c))
        .map(|r| v.reaction(r))
        .collect();
    cx.page(items)
}

fn react(cx: &mut Cx, on_comment: bool) -> HR {
    let key = cx.repo_key()?;
    let target = reaction_target(cx, &key, on_comment)?;
    let issue = match target {
        ReactionTarget::Issue(n) => n,
        ReactionTarget::Comment(c) => cx.st.repo(&key).expect("exists").comments[&c].issue,
    };
    refuse_if_locked(cx, &key, issue)?;
    let content = cx.req.body["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let bot = cx.st.bot_login();
    let (id, created) = cx
        .st
        .react(&key, target, &bot, &content)
        .expect("target exists");
    let repo = cx.st.repo(&key).expect("exists");
    let list = match target {
        ReactionTarget::Issue(n) => &repo.issues[&n].reactions,
        ReactionTarget::Comment(c) => &repo.comments[&c].reactions,
    };
    let r = list.iter().find(|r| r.id == id).expect("just added");
    Ok(Resp::json(
        if created { 201 } else { 200 },
        cx.view().reaction(r),
    ))
}

fn labels_json(cx: &Cx, key: &str, n: u64) -> Value {
    let repo = cx.st.repo(key).expect("exists");
    cx.view().issue(repo, n)["labels"].clone()
}

fn issue_labels(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let n = issue_number(cx, &key)?;
    let items = labels_json(cx, &key, n)
        .as_array()
        .cloned()
        .unwrap_or_default();
    cx.page(items)
}

fn add_labels(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let n = issue_number(cx, &key)?;
    for label in label_names(&cx.req.body.clone()) {
        let name = cx.st.ensure_label(&key, &label);
        let issue = cx
            .st
            .repo_mut(&key)
            .expect("exists")
            .issues
            .get_mut(&n)
            .expect("exists");
        if !issue.labels.iter().any(|l| l.eq_ignore_ascii_case(&name)) {
            issue.labels.push(name);
        }
    }
    Resp::ok(labels_json(cx, &key, n))
}

fn remove_label(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let n = issue_number(cx, &key)?;
    let name = cx.req.p("name").to_string();
    let issue = cx
        .st
        .repo_mut(&key)
        .expect("exists")
        .issues
        .get_mut(&n)
        .expect("exists");
    let before = issue.labels.len();
    issue.labels.retain(|l| !l.eq_ignore_ascii_case(&name));
    if issue.labels.len() == before {
        return Err(Resp::message(404, "Label does not exist"));
    }
    Resp::ok(labels_json(cx, &key, n))
}

fn list_labels(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let repo = cx.st.repo(&key).expect("exists");
    let v = cx.view();
    let items = repo.labels.values().map(|l| v.label(repo, l)).collect();
    cx.page(items)
}

fn get_label(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let repo = cx.st.repo(&key).expect("exists");
    let l = repo
        .labels
        .get(&cx.req.p("name").to_ascii_lowercase())
        .ok_or_else(Resp::not_found)?;
    Resp::ok(cx.view().label(repo, l))
}

fn create_label(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let name = cx.req.body["name"].as_str().unwrap_or_default().to_string();
    if cx
        .st
        .repo(&key)
        .expect("exists")
        .labels
        .contains_key(&name.to_ascii_lowercase())
    {
        return Err(Resp::validation("Label", "name", "already_exists", None));
    }
    cx.st.ensure_label(&key, &name);
    let color = cx.req.body["color"]
        .as_str()
        .map(|c| c.trim_start_matches('#').to_string());
    let description = cx.req.body["description"].as_str().map(String::from);
    let l = cx
        .st
        .repo_mut(&key)
        .expect("exists")
        .labels
        .get_mut(&name.to_ascii_lowercase())
        .expect("just made");
    if let Some(c) = color {
        l.color = c;
    }
    l.description = description;
    let repo = cx.st.repo(&key).expect("exists");
    Resp::created(
        cx.view()
            .label(repo, &repo.labels[&name.to_ascii_lowercase()]),
    )
}

fn list_sub_issues(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let n = issue_number(cx, &key)?;
    let repo = cx.st.repo(&key).expect("exists");
    let v = cx.view();
    let items = repo.issues[&n]
        .sub_issues
        .iter()
        .map(|s| v.issue(repo, *s))
        .collect();
    cx.page(items)
}

/// The number of the issue with global `id` in this repo.
fn number_by_id(cx: &Cx, key: &str, id: &Value) -> Result<u64, Resp> {
    let id = id
        .as_u64()
        .ok_or_else(|| Resp::validation("Issue", "id", "invalid", None))?;
    cx.st
        .repo(key)
        .expect("exists")
        .issues
        .values()
        .find(|i| i.id == id)
        .map(|i| i.number)
        .ok_or_else(|| Resp::message(404, "Not Found"))
}

fn add_sub_issue(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let n = issue_number(cx, &key)?;
    let sub = number_by_id(cx, &key, &cx.req.body["sub_issue_id"])?;
    let replace = cx.req.body["replace_parent"].as_bool().unwrap_or(false);
    let repo = cx.st.repo_mut(&key).expect("exists");
    if sub == n {
        return Err(Resp::message(
            422,
            "An issue cannot be a sub-issue of itself",
        ));
    }
    match repo.issues[&sub].parent {
        Some(p) if p == n => {
            return Err(Resp::message(
                422,
                "Issue is already a sub-issue of this issue",
            ));
        }
        Some(p) if !replace => {
            return Err(Resp::validation(
                "Issue",
                "sub_issue_id",
                "invalid",
                Some(&format!("Sub-issue already has a parent (#{p})")),
            ));
        }
        Some(p) => {
            if let Some(old) = repo.issues.get_mut(&p) {
                old.sub_issues.retain(|s| *s != sub);
            }
        }
        None => {}
    }
    repo.issues.get_mut(&sub).expect("exists").parent = Some(n);
    repo.issues
        .get_mut(&n)
        .expect("exists")
        .sub_issues
        .push(sub);
    Resp::created(cx.view().issue(cx.st.repo(&key).expect("exists"), n))
}

fn parent(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let n = issue_number(cx, &key)?;
    let repo = cx.st.repo(&key).expect("exists");
    let p = repo.issues[&n].parent.ok_or_else(Resp::not_found)?;
    Resp::ok(cx.view().issue(repo, p))
}

fn list_blocked_by(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let n = issue_number(cx, &key)?;
    let repo = cx.st.repo(&key).expect("exists");
    let v = cx.view();
    let items = repo.issues[&n]
        .blocked_by
        .iter()
        .map(|s| v.issue(repo, *s))
        .collect();
    cx.page(items)
}

fn add_blocked_by(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let n = issue_number(cx, &key)?;
    let blocker = number_by_id(cx, &key, &cx.req.body["issue_id"])?;
    if blocker == n {
        return Err(Resp::message(422, "An issue cannot be blocked by itself"));
    }
    let issue = cx
        .st
        .repo_mut(&key)
        .expect("exists")
        .issues
        .get_mut(&n)
        .expect("exists");
    if !issue.blocked_by.contains(&blocker) {
        issue.blocked_by.push(blocker);
    }
    Resp::created(cx.view().issue(cx.st.repo(&key).expect("exists"), blocker))
}
