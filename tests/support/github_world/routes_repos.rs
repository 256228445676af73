//! Repository routes of the GitHub simulator: the repository, contents (files and directories,
//! `?ref=`), the tarball redirect and the codeload-like `.tar.gz` it points at (top folder
//! `owner-repo-<short sha>/`), branches, and collaborator permissions.

use serde_json::json;

use super::server::{Cx, HR, Payload, Resp};
use super::state::State;

pub fn route(cx: &mut Cx, method: &str, template: &str) -> Option<HR> {
    Some(match (method, template) {
        ("GET", "/repos/{owner}/{repo}") => get_repo(cx),
        ("GET", "/repos/{owner}/{repo}/contents/{path}") => contents(cx),
        ("GET", "/repos/{owner}/{repo}/tarball/{ref}") => tarball(cx),
        ("GET", "/repos/{owner}/{repo}/branches/{branch}") => branch(cx),
        ("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission") => permission(cx),
        _ => return None,
    })
}

fn get_repo(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let v = cx.view();
    let mut r = v.repo(v.st.repo(&key).expect("exists"));
    r["permissions"] =
        json!({ "admin": false, "maintain": false, "push": true, "triage": true, "pull": true });
    Resp::ok(r)
}

fn contents(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let st: &State = cx.st;
    let repo = st.repo(&key).expect("exists");
    let git_ref = cx
        .req
        .q("ref")
        .map(String::from)
        .unwrap_or_else(|| repo.default_branch.clone());
    let commit = repo
        .resolve(&git_ref)
        .ok_or_else(|| Resp::message(404, &format!("No commit found for the ref {git_ref}")))?;
    let tree = repo.tree_of(&commit).ok_or_else(Resp::not_found)?;
    let path = cx.req.p("path").trim_matches('/').to_string();
    let entry = repo
        .objects
        .lookup(&tree, &path)
        .ok_or_else(Resp::not_found)?;
    let v = cx.view();
    if entry.mode == "040000" {
        let items = repo
            .objects
            .tree(&entry.sha)
            .unwrap_or(&[])
            .iter()
            .map(|e| {
                let p = if path.is_empty() {
                    e.name.clone()
                } else {
                    format!("{path}/{}", e.name)
                };
                v.content_entry(repo, &git_ref, &p, &e.mode, &e.sha, false)
            })
            .collect();
        return Resp::ok(serde_json::Value::Array(items));
    }
    Resp::ok(v.content_entry(repo, &git_ref, &path, &entry.mode, &entry.sha, true))
}

fn tarball(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let repo = cx.st.repo(&key).expect("exists");
    let sha = repo.resolve(cx.req.p("ref")).ok_or_else(Resp::not_found)?;
    let location = format!(
        "{}/_codeload/{}/legacy.tar.gz/{sha}",
        cx.base,
        repo.full_name()
    );
    Ok(Resp {
        status: 302,
        payload: Payload::Empty,
        headers: vec![("location".into(), location)],
    })
}

/// Serves `/_codeload/{owner}/{repo}/legacy.tar.gz/{sha}` (no auth, like codeload's signed URLs).
pub fn codeload(st: &State, rest: &str) -> HR {
    let parts: Vec<&str> = rest.splitn(4, '/').collect();
    let [owner, name, "legacy.tar.gz", sha] = parts.as_slice() else {
        return Err(Resp::not_found());
    };
    let repo = st
        .repo(&format!("{owner}/{name}"))
        .ok_or_else(Resp::not_found)?;
    let commit = repo.objects.commit(sha).ok_or_else(Resp::not_found)?;
    let top = format!("{}-{}-{}", repo.owner, repo.name, &sha[..7]);
    let mtime = commit.committer.date as u64;
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let dir = |tar: &mut tar::Builder<_>, path: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o775);
        h.set_size(0);
        h.set_mtime(mtime);
        tar.append_data(&mut h, format!("{path}/"), std::io::empty())
            .expect("tar dir");
    };
    dir(&mut tar, &top);
    let mut seen_dirs = std::collections::BTreeSet::new();
    for (path, (mode, blob)) in repo.objects.flatten(&commit.tree) {
        let mut prefix = String::new();
        for part in path
            .split('/')
            .collect::<Vec<_>>()
            .iter()
            .rev()
            .skip(1)
            .rev()
        {
            prefix = if prefix.is_empty() {
                (*part).to_string()
            } else {
                format!("{prefix}/{part}")
            };
            if seen_dirs.insert(prefix.clone()) {
                dir(&mut tar, &format!("{top}/{prefix}"));
            }
        }
        let data = repo.objects.blob(&blob).unwrap_or(&[]);
        let mut h = tar::Header::new_gnu();
        h.set_mtime(mtime);
        let full = format!("{top}/{path}");
        match mode.as_str() {
            "120000" => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                tar.append_link(&mut h, &full, String::from_utf8_lossy(data).as_ref())
                    .expect("tar symlink");
            }
            "160000" => {}
            _ => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                h.set_mode(if mode == "100755" { 0o775 } else { 0o664 });
                tar.append_data(&mut h, &full, data).expect("tar file");
            }
        }
    }
    let bytes = tar
        .into_inner()
        .expect("tar finish")
        .finish()
        .expect("gzip finish");
    Ok(Resp {
        status: 200,
        payload: Payload::Bytes(bytes, "application/x-gzip"),
        headers: vec![(
            "content-disposition".into(),
            format!("attachment; filename={top}.tar.gz"),
        )],
    })
}

fn branch(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let repo = cx.st.repo(&key).expect("exists");
    let name = cx.req.p("branch");
    let sha = repo
        .branch_sha(name)
        .ok_or_else(|| Resp::message(404, "Branch not found"))?;
    let v = cx.view();
    let full = repo.full_name();
    let c = v.git_commit(repo, &sha);
    let api = format!("{}/repos/{full}", cx.base);
    Resp::ok(json!({
        "name": name,
        "commit": {
            "sha": sha,
            "node_id": c["node_id"],
            "url": format!("{api}/commits/{sha}"),
            "html_url": format!("https://github.com/{full}/commit/{sha}"),
            "comments_url": format!("{api}/commits/{sha}/comments"),
            "commit": {
                "url": c["url"], "author": c["author"], "committer": c["committer"],
                "message": c["message"], "tree": c["tree"], "comment_count": 0,
                "verification": c["verification"]
            },
            "author": null,
            "committer": null,
            "parents": c["parents"]
        },
        "_links": { "self": format!("{api}/branches/{name}"), "html": format!("https://github.com/{full}/tree/{name}") },
        "protected": false,
        "protection": { "enabled": false, "required_status_checks": { "enforcement_level": "off", "contexts": [], "checks": [] } },
        "protection_url": format!("{api}/branches/{name}/protection")
    }))
}

fn permission(cx: &mut Cx) -> HR {
    let key = cx.repo_key()?;
    let login = cx.req.p("username").to_string();
    let (permission, role) = cx.st.permission(&key, &login);
    let mut user = cx.view().user(&login);
    user["permissions"] = json!({
        "admin": permission == "admin",
        "maintain": role == "maintain" || permission == "admin",
        "push": permission == "admin" || permission == "write",
        "triage": permission != "none",
        "pull": permission != "none"
    });
    user["role_name"] = json!(role);
    Resp::ok(json!({ "permission": permission, "role_name": role, "user": user }))
}
