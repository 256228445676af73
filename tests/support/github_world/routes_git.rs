//! Git data routes of the GitHub simulator: refs (get, matching, create, fast-forward/forced
//! update, delete), commits, trees (with `base_tree`, nested paths, content or sha entries,
//! `sha: null` deletes), and blobs — with GitHub's 422 messages where it would refuse.

use base64::Engine;
use serde_json::{Value, json};

use super::git::{Commit, Signature, parse_iso};
use super::server::{Cx, HR, Resp};

pub fn route(cx: &mut Cx, method: &str, template: &str) -> Option<HR> {
    Some(match (method, template) {
        ("GET", "/repos/{owner}/{repo}/git/ref/{ref}") => get_ref(cx),
        ("GET", "/repos/{owner}/{repo}/git/matching-refs/{ref}") => matching_refs(cx),
        ("POST", "/repos/{owner}/{repo}/git/refs") => create_ref(cx),
        ("PATCH", "/repos/{owner}/{repo}/git/refs/{ref}") => update_ref(cx),
        ("DELETE", "/repos/{owner}/{repo}/git/refs/{ref}") => delete_ref(cx),
        ("GET", "/repos/{owner}/{repo}/git/commits/{commit_sha}") => get_commit(cx),
        ("POST", "/repos/{owner}/{repo}/git/commits") => create_commit(cx),
        ("GET", "/repos/{owner}/{repo}/git/trees/{tree_sha}") => get_tree(cx),
        ("POST", "/repos/{owner}/{repo}/git/trees") => create_tree(cx),
        ("POST", "/repos/{owner}/{repo}/git/blobs") => create_blob(cx),
        ("GET", "/repos/{owner}/{repo}/git/blobs/{file_sha}") => get_blob(cx),
        _ => return None,
    })
}

fn unprocessable(message: &str) -> Resp {
    Resp::message(422, message)
}

fn full_ref(r: &str) -> String {
    let r = r.trim_start_matches('/');
    if r.starts_with("refs/") {
        r.to_string()
    } else {
        format!("refs/{r}")
    }
}

fn get_ref(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let name = full_ref(cx.req.p("ref"));
    let repo = cx.st.repo(&key).expect("exists");
    if repo.refs.is_empty() {
        return Err(Resp::message(409, "Git Repository is empty."));
    }
    if !repo.refs.contains_key(&name) {
        return Err(Resp::not_found());
    }
    Resp::ok(cx.view().git_ref(repo, &name))
}

fn matching_refs(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let prefix = full_ref(cx.req.p("ref"));
    let repo = cx.st.repo(&key).expect("exists");
    let v = cx.view();
    let list = repo
        .refs
        .keys()
        .filter(|k| k.starts_with(&prefix))
        .map(|k| v.git_ref(repo, k))
        .collect();
    Resp::ok(Value::Array(list))
}

/// The App's manifest (`app-manifest.yml`) grants no `workflows` permission: like github.com,
/// refuse a ref update whose commit changes anything under `.github/workflows/`.
fn workflows_untouched(
    repo: &super::state::Repo,
    old: Option<&str>,
    new: &str,
) -> Result<(), Resp> {
    let workflows = |commit: Option<&str>| -> Vec<(String, (String, String))> {
        commit
            .and_then(|c| repo.tree_of(c))
            .map(|t| repo.objects.flatten(&t))
            .unwrap_or_default()
            .into_iter()
            .filter(|(p, _)| p.starts_with(".github/workflows/"))
            .collect()
    };
    let (before, after) = (workflows(old), workflows(Some(new)));
    let changed = after
        .iter()
        .find(|e| !before.contains(e))
        .or_else(|| before.iter().find(|e| !after.contains(e)));
    match changed {
        Some((path, _)) => Err(Resp::message(
            403,
            &format!(
                "refusing to allow a GitHub App to create or update workflow `{path}` without `workflows` permission"
            ),
        )),
        None => Ok(()),
    }
}

fn create_ref(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let name = cx.req.body["ref"].as_str().unwrap_or_default().to_string();
    let sha = cx.req.body["sha"].as_str().unwrap_or_default().to_string();
    if !name.starts_with("refs/") || name.matches('/').count() < 2 {
        return Err(unprocessable("Reference name is invalid"));
    }
    let repo = cx.st.repo_mut(&key).expect("exists");
    if repo.refs.contains_key(&name) {
        return Err(unprocessable("Reference already exists"));
    }
    if repo.objects.commit(&sha).is_none() {
        return Err(unprocessable("Object does not exist"));
    }
    let parent = repo
        .objects
        .commit(&sha)
        .and_then(|c| c.parents.first().cloned());
    workflows_untouched(repo, parent.as_deref(), &sha)?;
    repo.refs.insert(name.clone(), sha);
    let repo = cx.st.repo(&key).expect("exists");
    let body = cx.view().git_ref(repo, &name);
    let location = body["url"].as_str().unwrap_or_default().to_string();
    Ok(Resp::json(201, body).with_header("location", location))
}

fn update_ref(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let name = full_ref(cx.req.p("ref"));
    let sha = cx.req.body["sha"].as_str().unwrap_or_default().to_string();
    let force = cx.req.body["force"].as_bool().unwrap_or(false);
    let repo = cx.st.repo_mut(&key).expect("exists");
    let Some(old) = repo.refs.get(&name).cloned() else {
        return Err(unprocessable("Reference does not exist"));
    };
    if repo.objects.commit(&sha).is_none() {
        return Err(unprocessable("Object does not exist"));
    }
    if !force && !repo.objects.is_ancestor(&old, &sha) {
        return Err(unprocessable("Update is not a fast forward"));
    }
    workflows_untouched(repo, Some(&old), &sha)?;
    repo.refs.insert(name.clone(), sha);
    let repo = cx.st.repo(&key).expect("exists");
    Resp::ok(cx.view().git_ref(repo, &name))
}

fn delete_ref(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let name = full_ref(cx.req.p("ref"));
    let repo = cx.st.repo_mut(&key).expect("exists");
    let Some(old) = repo.refs.remove(&name) else {
        return Err(unprocessable("Reference does not exist"));
    };
    if let Some(branch) = name.strip_prefix("refs/heads/") {
        for i in repo.issues.values_mut() {
            if let Some(p) = i.pull.as_mut().filter(|p| p.head_ref == branch) {
                p.head_sha = old.clone();
            }
        }
    }
    Resp::no_content()
}

fn get_commit(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let repo = cx.st.repo(&key).expect("exists");
    let sha = repo
        .objects
        .expand(cx.req.p("commit_sha"))
        .filter(|s| repo.objects.commit(s).is_some())
        .ok_or_else(Resp::not_found)?;
    Resp::ok(cx.view().git_commit(repo, &sha))
}

fn signature(v: &Value, default: &Signature) -> Signature {
    if !v.is_object() {
        return default.clone();
    }
    Signature {
        name: v["name"].as_str().unwrap_or(&default.name).to_string(),
        email: v["email"].as_str().unwrap_or(&default.email).to_string(),
        date: v["date"]
            .as_str()
            .and_then(parse_iso)
            .unwrap_or(default.date),
    }
}

fn create_commit(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let t = cx.st.tick();
    let bot = cx.st.bot_login();
    let bot_id = cx.st.user_id(&bot);
    let body = &cx.req.body;
    let default = Signature {
        name: bot.clone(),
        email: format!("{bot_id}+{bot}@users.noreply.github.com"),
        date: t,
    };
    let author = signature(&body["author"], &default);
    let committer = signature(&body["committer"], &author);
    let tree = body["tree"].as_str().unwrap_or_default().to_string();
    let parents: Vec<String> = body["parents"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let repo = cx.st.repo_mut(&key).expect("exists");
    if repo.objects.tree(&tree).is_none() {
        return Err(unprocessable("Tree SHA does not exist"));
    }
    if parents.iter().any(|p| repo.objects.commit(p).is_none()) {
        return Err(unprocessable(
            "Parent SHA does not exist or is not a commit object",
        ));
    }
    let sha = repo.objects.put_commit(Commit {
        tree,
        parents,
        author,
        committer,
        message: body["message"].as_str().unwrap_or_default().to_string(),
    });
    let repo = cx.st.repo(&key).expect("exists");
    let v = cx.view().git_commit(repo, &sha);
    let location = v["url"].as_str().unwrap_or_default().to_string();
    Ok(Resp::json(201, v).with_header("location", location))
}

fn get_tree(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let repo = cx.st.repo(&key).expect("exists");
    let want = cx.req.p("tree_sha");
    let sha = repo
        .objects
        .expand(want)
        .and_then(|s| {
            if repo.objects.tree(&s).is_some() {
                Some(s)
            } else {
                repo.tree_of(&s)
            }
        })
        .or_else(|| repo.resolve(want).and_then(|c| repo.tree_of(&c)))
        .ok_or_else(Resp::not_found)?;
    let recursive = cx
        .req
        .q("recursive")
        .is_some_and(|v| !v.is_empty() && v != "0" && v != "false");
    let mut tree = cx.view().tree(repo, &sha, recursive);
    let limit = cx.st.tree_entry_limit;
    if let Some(entries) = tree["tree"].as_array_mut()
        && recursive
        && entries.len() > limit
    {
        entries.truncate(limit);
        tree["truncated"] = json!(true);
    }
    Resp::ok(tree)
}

fn create_tree(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let body = cx.req.body.clone();
    let repo = cx.st.repo_mut(&key).expect("exists");
    let mut flat = match body["base_tree"].as_str() {
        Some(base) => {
            if repo.objects.tree(base).is_none() {
                return Err(unprocessable("base_tree is not a valid tree oid"));
            }
            repo.objects.flatten(base)
        }
        None => Default::default(),
    };
    for entry in body["tree"].as_array().into_iter().flatten() {
        let path = entry["path"]
            .as_str()
            .unwrap_or_default()
            .trim_matches('/')
            .to_string();
        let mode = entry["mode"].as_str().unwrap_or("100644").to_string();
        let kind = entry["type"].as_str().unwrap_or("blob");
        let expected = match mode.as_str() {
            "040000" => "tree",
            "160000" => "commit",
            _ => "blob",
        };
        if path.is_empty() || kind != expected {
            return Err(unprocessable("Invalid tree info"));
        }
        let prefix = format!("{path}/");
        let remove = |flat: &mut super::git::Flat| {
            flat.remove(&path);
            flat.retain(|k, _| !k.starts_with(&prefix));
        };
        if let Some(content) = entry.get("content").and_then(Value::as_str) {
            if kind != "blob" {
                return Err(unprocessable("Invalid tree info"));
            }
            let sha = repo.objects.put_blob(content.as_bytes());
            remove(&mut flat);
            flat.insert(path, (mode, sha));
            continue;
        }
        match entry.get("sha") {
            // github.com refuses to delete what is not there.
            Some(Value::Null) if !flat.keys().any(|k| *k == path || k.starts_with(&prefix)) => {
                return Err(Resp::message(422, "GitRPC::BadObjectState"));
            }
            Some(Value::Null) => remove(&mut flat),
            Some(Value::String(sha)) => match kind {
                "tree" => {
                    if repo.objects.tree(sha).is_none() {
                        return Err(unprocessable("Invalid tree info"));
                    }
                    let sub = repo.objects.flatten(sha);
                    remove(&mut flat);
                    for (p, e) in sub {
                        flat.insert(format!("{prefix}{p}"), e);
                    }
                }
                "blob" => {
                    if repo.objects.blob(sha).is_none() {
                        return Err(unprocessable("Invalid tree info"));
                    }
                    remove(&mut flat);
                    flat.insert(path, (mode, sha.clone()));
                }
                _ => {
                    remove(&mut flat);
                    flat.insert(path, (mode, sha.clone()));
                }
            },
            _ => return Err(unprocessable("Must supply either tree.sha or tree.content")),
        }
    }
    let sha = repo.objects.build(&flat);
    let repo = cx.st.repo(&key).expect("exists");
    let v = cx.view().tree(repo, &sha, false);
    let location = v["url"].as_str().unwrap_or_default().to_string();
    Ok(Resp::json(201, v).with_header("location", location))
}

fn create_blob(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let content = cx.req.body["content"].as_str().unwrap_or_default();
    let data = match cx.req.body["encoding"].as_str().unwrap_or("utf-8") {
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(content.replace(['\n', '\r'], ""))
            .map_err(|_| unprocessable("Invalid base64 content"))?,
        "utf-8" | "utf8" => content.as_bytes().to_vec(),
        _ => return Err(unprocessable("encoding must be utf-8 or base64")),
    };
    let repo = cx.st.repo_mut(&key).expect("exists");
    let sha = repo.objects.put_blob(&data);
    let url = format!("{}/repos/{}/git/blobs/{sha}", cx.base, repo.full_name());
    Ok(Resp::json(201, json!({ "url": url, "sha": sha })).with_header("location", url))
}

fn get_blob(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let repo = cx.st.repo(&key).expect("exists");
    let sha = repo
        .objects
        .expand(cx.req.p("file_sha"))
        .filter(|s| repo.objects.blob(s).is_some())
        .ok_or_else(Resp::not_found)?;
    Resp::ok(cx.view().blob(repo, &sha))
}
