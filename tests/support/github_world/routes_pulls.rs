//! Pull-request routes of the GitHub simulator: list (by `head=owner:branch`, `state`), create
//! (422 when an open PR for the head exists or there is nothing to merge), get, update, reviews,
//! review comments and replies. Pull requests are issues with a `pull` part, sharing the numbers.

use serde_json::Value;

use super::server::{Cx, HR, Resp};
use super::state::{Pull, Review, ReviewComment};

pub fn route(cx: &mut Cx, method: &str, template: &str) -> Option<HR> {
    Some(match (method, template) {
        ("GET", "/repos/{owner}/{repo}/pulls") => list(cx),
        ("POST", "/repos/{owner}/{repo}/pulls") => create(cx),
        ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}") => get(cx),
        ("PATCH", "/repos/{owner}/{repo}/pulls/{pull_number}") => update(cx),
        ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews") => list_reviews(cx),
        ("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews") => create_review(cx),
        ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}") => get_review(cx),
        ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}/comments") => {
            review_comments(cx, true)
        }
        ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/comments") => review_comments(cx, false),
        ("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/comments/{comment_id}/replies") => {
            reply(cx)
        }
        _ => return None,
    })
}

fn pull_number(cx: &Cx, key: &str) -> Result<u64, Resp> {
    let n = cx.req.num("pull_number")?;
    match cx.st.repo(key).expect("exists").issues.get(&n) {
        Some(i) if i.pull.is_some() => Ok(n),
        _ => Err(Resp::not_found()),
    }
}

fn list(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let state = cx.req.q("state").unwrap_or("open");
    let head = cx.req.q("head").map(|h| {
        let (owner, branch) = h.split_once(':').unwrap_or(("", h));
        (owner.to_ascii_lowercase(), branch.to_string())
    });
    let base = cx.req.q("base");
    let asc = cx.req.q("direction") == Some("asc");
    let repo = cx.st.repo(&key).expect("exists");
    let v = cx.view();
    let mut items: Vec<Value> = repo
        .issues
        .values()
        .filter(|i| state == "all" || i.state == state)
        .filter_map(|i| i.pull.as_ref().map(|p| (i, p)))
        .filter(|(_, p)| {
            head.as_ref().is_none_or(|(owner, branch)| {
                p.head_ref == *branch
                    && (owner.is_empty() || *owner == repo.owner.to_ascii_lowercase())
            })
        })
        .filter(|(_, p)| base.is_none_or(|b| p.base_ref == b))
        .map(|(i, _)| v.pull(repo, i.number))
        .collect();
    if !asc {
        items.reverse();
    }
    cx.page(items)
}

fn create(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let body = cx.req.body.clone();
    let head_spec = body["head"].as_str().unwrap_or_default().to_string();
    let head = head_spec
        .split_once(':')
        .map(|(_, b)| b.to_string())
        .unwrap_or_else(|| head_spec.clone());
    let repo = cx.st.repo(&key).expect("exists");
    let base = body["base"]
        .as_str()
        .unwrap_or(&repo.default_branch)
        .to_string();
    let Some(head_sha) = repo.branch_sha(&head) else {
        return Err(Resp::validation("PullRequest", "head", "invalid", None));
    };
    let Some(base_sha) = repo.branch_sha(&base) else {
        return Err(Resp::validation("PullRequest", "base", "invalid", None));
    };
    if repo.open_pull_for_head(&head).is_some() {
        let msg = format!("A pull request already exists for {}:{head}.", repo.owner);
        return Err(Resp::validation("PullRequest", "", "custom", Some(&msg)));
    }
    if repo.objects.is_ancestor(&head_sha, &base_sha) {
        let msg = format!("No commits between {base} and {head}");
        return Err(Resp::validation("PullRequest", "", "custom", Some(&msg)));
    }
    let title = body["title"].as_str().unwrap_or_default().to_string();
    if title.is_empty() && body.get("issue").is_none() {
        return Err(Resp::validation(
            "PullRequest",
            "title",
            "missing_field",
            None,
        ));
    }
    let pull = Pull {
        head_ref: head,
        head_sha,
        base_ref: base,
        base_sha,
        merged: false,
        merged_at: None,
        merged_by: None,
        merge_commit_sha: None,
        draft: body["draft"].as_bool().unwrap_or(false),
        maintainer_can_modify: body["maintainer_can_modify"].as_bool().unwrap_or(false),
    };
    let bot = cx.st.bot_login();
    let n = cx
        .st
        .new_issue(&key, &title, body["body"].as_str(), &bot, Some(pull));
    let v = cx.view().pull(cx.st.repo(&key).expect("exists"), n);
    let location = v["url"].as_str().unwrap_or_default().to_string();
    Ok(Resp::json(201, v).with_header("location", location))
}

fn get(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let n = pull_number(cx, &key)?;
    Resp::ok(cx.view().pull(cx.st.repo(&key).expect("exists"), n))
}

fn update(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let n = pull_number(cx, &key)?;
    let body = cx.req.body.clone();
    let t = cx.st.tick();
    let repo = cx.st.repo_mut(&key).expect("exists");
    if let Some(base) = body["base"].as_str()
        && repo.branch_sha(base).is_none()
    {
        return Err(Resp::validation("PullRequest", "base", "invalid", None));
    }
    // github.com refuses to reopen a PR whose branch was deleted, or recreated or
    // force-pushed since it was closed (the head it closed with is no longer in the branch).
    let reopen_conflict =
        body["state"].as_str() == Some("open") && repo.issues[&n].state == "closed" && {
            let pull = repo.issues[&n].pull.as_ref().expect("pull");
            repo.open_pull_for_head(&pull.head_ref).is_some()
                || repo
                    .branch_sha(&pull.head_ref)
                    .is_none_or(|tip| !repo.objects.is_ancestor(&pull.head_sha, &tip))
        };
    if reopen_conflict {
        return Err(Resp::validation(
            "PullRequest",
            "state",
            "invalid",
            Some(
                "state cannot be changed. The branch has been deleted or another pull request is open.",
            ),
        ));
    }
    let head_tip = repo.branch_sha(&repo.issues[&n].pull.as_ref().expect("pull").head_ref);
    let issue = repo.issues.get_mut(&n).expect("exists");
    if let Some(title) = body["title"].as_str() {
        issue.title = title.into();
    }
    if let Some(b) = body.get("body") {
        issue.body = b.as_str().map(String::from);
    }
    let pull = issue.pull.as_mut().expect("pull");
    if let Some(base) = body["base"].as_str() {
        pull.base_ref = base.into();
    }
    if let Some(m) = body["maintainer_can_modify"].as_bool() {
        pull.maintainer_can_modify = m;
    }
    match body["state"].as_str() {
        Some("closed") if issue.state == "open" && !pull.merged => {
            issue.state = "closed".into();
            issue.closed_at = Some(t);
            if let Some(tip) = head_tip {
                pull.head_sha = tip;
            }
        }
        Some("open") if issue.state == "closed" && !pull.merged => {
            issue.state = "open".into();
            issue.closed_at = None;
        }
        _ => {}
    }
    issue.updated_at = t;
    Resp::ok(cx.view().pull(cx.st.repo(&key).expect("exists"), n))
}

fn list_reviews(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let n = pull_number(cx, &key)?;
    let repo = cx.st.repo(&key).expect("exists");
    let v = cx.view();
    let items = repo
        .reviews
        .values()
        .filter(|r| r.pull == n)
        .map(|r| v.review(repo, r.id))
        .collect();
    cx.page(items)
}

fn create_review(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let n = pull_number(cx, &key)?;
    let body = cx.req.body.clone();
    let state = match body["event"].as_str() {
        Some("APPROVE") => "APPROVED",
        Some("REQUEST_CHANGES") => "CHANGES_REQUESTED",
        Some("COMMENT") => "COMMENTED",
        _ => "PENDING",
    };
    let bot = cx.st.bot_login();
    let comments: Vec<(String, Option<u64>, String)> = body["comments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["path"].as_str().unwrap_or_default().to_string(),
                c["line"].as_u64().or_else(|| c["position"].as_u64()),
                c["body"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let id = add_review(
        cx.st,
        &key,
        n,
        &bot,
        state,
        body["body"].as_str().unwrap_or_default(),
        &comments,
    );
    Ok(Resp::json(
        200,
        cx.view().review(cx.st.repo(&key).expect("exists"), id),
    ))
}

/// Records a review (and its inline comments) on pull `n`; returns the review id.
pub fn add_review(
    st: &mut super::state::State,
    key: &str,
    n: u64,
    user: &str,
    state: &str,
    body: &str,
    comments: &[(String, Option<u64>, String)],
) -> u64 {
    let id = st.next_id();
    let t = st.tick();
    let ids: Vec<u64> = comments.iter().map(|_| st.next_id()).collect();
    let repo = st.repo_mut(key).expect("exists");
    let pull = repo.issues[&n].pull.clone().expect("a pull request");
    let commit_id = repo.pull_head_sha(&pull);
    repo.reviews.insert(
        id,
        Review {
            id,
            pull: n,
            user: user.into(),
            state: state.into(),
            body: body.into(),
            commit_id: commit_id.clone(),
            submitted_at: t,
        },
    );
    for (cid, (path, line, text)) in ids.into_iter().zip(comments) {
        repo.review_comments.insert(
            cid,
            ReviewComment {
                id: cid,
                pull: n,
                review_id: Some(id),
                in_reply_to: None,
                user: user.into(),
                body: text.clone(),
                path: path.clone(),
                line: *line,
                commit_id: commit_id.clone(),
                created_at: t,
            },
        );
    }
    id
}

fn get_review(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let n = pull_number(cx, &key)?;
    let id = cx.req.num("review_id")?;
    let repo = cx.st.repo(&key).expect("exists");
    match repo.reviews.get(&id) {
        Some(r) if r.pull == n => Resp::ok(cx.view().review(repo, id)),
        _ => Err(Resp::not_found()),
    }
}

fn review_comments(cx: &mut Cx, of_review: bool) -> HR {
    let key = cx.repo_key()?;
    let n = pull_number(cx, &key)?;
    let review = if of_review {
        let id = cx.req.num("review_id")?;
        match cx.st.repo(&key).expect("exists").reviews.get(&id) {
            Some(r) if r.pull == n => Some(id),
            _ => return Err(Resp::not_found()),
        }
    } else {
        None
    };
    let repo = cx.st.repo(&key).expect("exists");
    let v = cx.view();
    let items: Vec<Value> = repo
        .review_comments
        .values()
        .filter(|c| c.pull == n && review.is_none_or(|r| c.review_id == Some(r)))
        .map(|c| {
            let mut j = v.review_comment(repo, c.id);
            if of_review {
                // The review-comment listing uses the `review-comment` shape without `line`s.
                j.as_object_mut().map(|o| o.remove("subject_type"));
            }
            j
        })
        .collect();
    cx.page(items)
}

fn reply(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let n = pull_number(cx, &key)?;
    let to = cx.req.num("comment_id")?;
    let Some(parent) = cx
        .st
        .repo(&key)
        .expect("exists")
        .review_comments
        .get(&to)
        .cloned()
    else {
        return Err(Resp::not_found());
    };
    if parent.pull != n {
        return Err(Resp::not_found());
    }
    let id = cx.st.next_id();
    let t = cx.st.tick();
    let bot = cx.st.bot_login();
    let text = cx.req.body["body"].as_str().unwrap_or_default().to_string();
    cx.st
        .repo_mut(&key)
        .expect("exists")
        .review_comments
        .insert(
            id,
            ReviewComment {
                id,
                pull: n,
                review_id: None,
                in_reply_to: Some(parent.in_reply_to.unwrap_or(to)),
                user: bot,
                body: text,
                path: parent.path,
                line: parent.line,
                commit_id: parent.commit_id,
                created_at: t,
            },
        );
    let v = cx
        .view()
        .review_comment(cx.st.repo(&key).expect("exists"), id);
    Resp::created(v)
}
