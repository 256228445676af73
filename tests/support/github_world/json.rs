//! JSON shapes of the GitHub simulator, built to the OpenAPI response schemas (and the matching
//! webhook shapes): users, repositories, issues, pull requests, comments, reactions, labels,
//! reviews, git objects and refs, contents, check runs, the App and its installation.

use base64::Engine;
use serde_json::{Value, json};

use super::git::iso;
use super::state::{Annotation, CheckRun, Issue, Label, Reaction, Repo, State};

pub const HTML: &str = "https://github.com";

/// What every builder needs: the state and the simulator's base URL (API urls point back at it).
pub struct View<'a> {
    pub st: &'a State,
    pub base: &'a str,
}

/// A stable id for a login (FNV-1a of the lower-cased login), so ids never depend on order.
pub fn user_id(login: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in login.to_ascii_lowercase().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    1_000_000 + h % 90_000_000
}

fn node_id(prefix: &str, id: u64) -> String {
    let b = base64::engine::general_purpose::STANDARD_NO_PAD.encode(id.to_be_bytes());
    format!("{prefix}_kw{b}")
}

fn opt_time(t: Option<i64>) -> Value {
    t.map(iso).map(Value::String).unwrap_or(Value::Null)
}

impl View<'_> {
    pub fn user(&self, login: &str) -> Value {
        let id = user_id(login);
        let bot = login.ends_with("[bot]");
        let escaped = login.replace('[', "%5B").replace(']', "%5D");
        let api = format!("{}/users/{escaped}", self.base);
        json!({
            "login": login,
            "id": id,
            "node_id": node_id(if bot { "BOT" } else { "U" }, id),
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
            "gravatar_id": "",
            "url": api,
            "html_url": if bot {
                format!("{HTML}/apps/{}", login.trim_end_matches("[bot]"))
            } else {
                format!("{HTML}/{escaped}")
            },
            "followers_url": format!("{api}/followers"),
            "following_url": format!("{api}/following{{/other_user}}"),
            "gists_url": format!("{api}/gists{{/gist_id}}"),
            "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
            "subscriptions_url": format!("{api}/subscriptions"),
            "organizations_url": format!("{api}/orgs"),
            "repos_url": format!("{api}/repos"),
            "events_url": format!("{api}/events{{/privacy}}"),
            "received_events_url": format!("{api}/received_events"),
            "type": if bot { "Bot" } else { "User" },
            "user_view_type": "public",
            "site_admin": false
        })
    }

    pub fn repo(&self, r: &Repo) -> Value {
        let full = r.full_name();
        let api = format!("{}/repos/{full}", self.base);
        let html = format!("{HTML}/{full}");
        let open = r.issues.values().filter(|i| i.state == "open").count();
        let pushed = r
            .branch_sha(&r.default_branch)
            .and_then(|s| r.objects.commit(&s).map(|c| c.committer.date))
            .unwrap_or(r.created_at);
        let mut v = json!({
            "id": r.id,
            "node_id": node_id("R", r.id),
            "name": r.name,
            "full_name": full,
            "private": r.private,
            "owner": self.user(&r.owner),
            "html_url": html,
            "description": null,
            "fork": false,
            "url": api,
            "archive_url": format!("{api}/{{archive_format}}{{/ref}}"),
            "assignees_url": format!("{api}/assignees{{/user}}"),
            "blobs_url": format!("{api}/git/blobs{{/sha}}"),
            "branches_url": format!("{api}/branches{{/branch}}"),
            "collaborators_url": format!("{api}/collaborators{{/collaborator}}"),
            "comments_url": format!("{api}/comments{{/number}}"),
            "commits_url": format!("{api}/commits{{/sha}}"),
            "compare_url": format!("{api}/compare/{{base}}...{{head}}"),
            "contents_url": format!("{api}/contents/{{+path}}"),
            "contributors_url": format!("{api}/contributors"),
            "deployments_url": format!("{api}/deployments"),
            "downloads_url": format!("{api}/downloads"),
            "events_url": format!("{api}/events"),
            "forks_url": format!("{api}/forks")
        });
        let urls = json!({
            "git_commits_url": format!("{api}/git/commits{{/sha}}"),
            "git_refs_url": format!("{api}/git/refs{{/sha}}"),
            "git_tags_url": format!("{api}/git/tags{{/sha}}"),
            "git_url": format!("git://github.com/{full}.git"),
            "hooks_url": format!("{api}/hooks"),
            "issue_comment_url": format!("{api}/issues/comments{{/number}}"),
            "issue_events_url": format!("{api}/issues/events{{/number}}"),
            "issues_url": format!("{api}/issues{{/number}}"),
            "keys_url": format!("{api}/keys{{/key_id}}"),
            "labels_url": format!("{api}/labels{{/name}}"),
            "languages_url": format!("{api}/languages"),
            "merges_url": format!("{api}/merges"),
            "milestones_url": format!("{api}/milestones{{/number}}"),
            "notifications_url": format!("{api}/notifications{{?since,all,participating}}"),
            "pulls_url": format!("{api}/pulls{{/number}}"),
            "releases_url": format!("{api}/releases{{/id}}"),
            "ssh_url": format!("git@github.com:{full}.git"),
            "stargazers_url": format!("{api}/stargazers"),
            "statuses_url": format!("{api}/statuses/{{sha}}"),
            "subscribers_url": format!("{api}/subscribers"),
            "subscription_url": format!("{api}/subscription"),
            "tags_url": format!("{api}/tags"),
            "teams_url": format!("{api}/teams"),
            "trees_url": format!("{api}/git/trees{{/sha}}")
        });
        let more = json!({
            "clone_url": format!("{html}.git"),
            "mirror_url": null,
            "svn_url": html,
            "homepage": null,
            "language": null,
            "forks_count": 0,
            "forks": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "watchers": 0,
            "size": 1,
            "default_branch": r.default_branch,
            "open_issues_count": open,
            "open_issues": open,
            "is_template": false,
            "topics": [],
            "has_issues": true,
            "has_projects": true,
            "has_wiki": true,
            "has_pages": false,
            "has_downloads": true,
            "has_discussions": false,
            "archived": false,
            "disabled": false,
            "visibility": if r.private { "private" } else { "public" },
            "license": null,
            "allow_forking": true,
            "web_commit_signoff_required": false,
            "pushed_at": iso(pushed),
            "created_at": iso(r.created_at),
            "updated_at": iso(pushed),
            "allow_squash_merge": true,
            "allow_merge_commit": true,
            "allow_rebase_merge": true,
            "allow_auto_merge": false,
            "delete_branch_on_merge": false,
            "network_count": 0,
            "subscribers_count": 0
        });
        for part in [urls, more] {
            if let (Some(a), Value::Object(b)) = (v.as_object_mut(), part) {
                a.extend(b);
            }
        }
        v
    }

    pub fn label(&self, r: &Repo, l: &Label) -> Value {
        json!({
            "id": l.id,
            "node_id": node_id("LA", l.id),
            "url": format!("{}/repos/{}/labels/{}", self.base, r.full_name(), l.name.replace(' ', "%20")),
            "name": l.name,
            "description": l.description,
            "color": l.color,
            "default": false
        })
    }

    fn labels_of(&self, r: &Repo, i: &Issue) -> Value {
        Value::Array(
            i.labels
                .iter()
                .filter_map(|n| r.labels.get(&n.to_ascii_lowercase()))
                .map(|l| self.label(r, l))
                .collect(),
        )
    }

    pub fn reactions_rollup(&self, url: String, list: &[Reaction]) -> Value {
        let count = |c: &str| list.iter().filter(|r| r.content == c).count();
        json!({
            "url": url,
            "total_count": list.len(),
            "+1": count("+1"), "-1": count("-1"), "laugh": count("laugh"),
            "hooray": count("hooray"), "confused": count("confused"), "heart": count("heart"),
            "rocket": count("rocket"), "eyes": count("eyes")
        })
    }

    pub fn reaction(&self, x: &Reaction) -> Value {
        json!({
            "id": x.id,
            "node_id": node_id("REA", x.id),
            "user": self.user(&x.user),
            "content": x.content,
            "created_at": iso(x.created_at)
        })
    }

    fn association(&self, r: &Repo, login: &str) -> &'static str {
        if login.eq_ignore_ascii_case(&r.owner) {
            return "OWNER";
        }
        match r
            .permissions
            .get(&login.to_ascii_lowercase())
            .map(String::as_str)
        {
            Some("admin" | "maintain" | "write" | "triage") => "COLLABORATOR",
            _ => "NONE",
        }
    }

    pub fn issue(&self, r: &Repo, n: u64) -> Value {
        let Some(i) = r.issues.get(&n) else {
            return Value::Null;
        };
        let full = r.full_name();
        let api = format!("{}/repos/{full}/issues/{n}", self.base);
        let kind = if i.pull.is_some() { "pull" } else { "issues" };
        let comments = r.comments.values().filter(|c| c.issue == n).count();
        let done = i
            .sub_issues
            .iter()
            .filter(|s| r.issues.get(s).is_some_and(|x| x.state == "closed"))
            .count();
        let total = i.sub_issues.len();
        let mut v = json!({
            "id": i.id,
            "node_id": node_id(if i.pull.is_some() { "PR" } else { "I" }, i.id),
            "url": api,
            "repository_url": format!("{}/repos/{full}", self.base),
            "labels_url": format!("{api}/labels{{/name}}"),
            "comments_url": format!("{api}/comments"),
            "events_url": format!("{api}/events"),
            "html_url": format!("{HTML}/{full}/{kind}/{n}"),
            "number": n,
            "state": i.state,
            "state_reason": i.state_reason,
            "title": i.title,
            "body": i.body,
            "user": self.user(&i.user),
            "labels": self.labels_of(r, i),
            "assignee": i.assignees.first().map(|a| self.user(a)),
            "assignees": i.assignees.iter().map(|a| self.user(a)).collect::<Vec<_>>(),
            "milestone": null,
            "locked": i.locked,
            "active_lock_reason": null,
            "comments": comments,
            "closed_at": opt_time(i.closed_at),
            "created_at": iso(i.created_at),
            "updated_at": iso(i.updated_at),
            "closed_by": i.closed_by.as_deref().map(|u| self.user(u)),
            "author_association": self.association(r, &i.user),
            "timeline_url": format!("{api}/timeline"),
            "performed_via_github_app": null,
            "reactions": self.reactions_rollup(format!("{api}/reactions"), &i.reactions),
            "sub_issues_summary": {
                "total": total,
                "completed": done,
                "percent_completed": (done * 100).checked_div(total).unwrap_or(0)
            }
        });
        if let Some(parent) = i.parent {
            v["parent_issue_url"] = json!(format!("{}/repos/{full}/issues/{parent}", self.base));
        }
        if let Some(p) = &i.pull {
            v["draft"] = json!(p.draft);
            v["pull_request"] = json!({
                "url": format!("{}/repos/{full}/pulls/{n}", self.base),
                "html_url": format!("{HTML}/{full}/pull/{n}"),
                "diff_url": format!("{HTML}/{full}/pull/{n}.diff"),
                "patch_url": format!("{HTML}/{full}/pull/{n}.patch"),
                "merged_at": opt_time(p.merged_at)
            });
        }
        v
    }

    pub fn pull(&self, r: &Repo, n: u64) -> Value {
        let Some(i) = r.issues.get(&n) else {
            return Value::Null;
        };
        let Some(p) = &i.pull else {
            return Value::Null;
        };
        let full = r.full_name();
        let api = format!("{}/repos/{full}/pulls/{n}", self.base);
        let issue_api = format!("{}/repos/{full}/issues/{n}", self.base);
        let head_sha = r.pull_head_sha(p);
        let base_sha = if p.merged {
            p.base_sha.clone()
        } else {
            r.branch_sha(&p.base_ref)
                .unwrap_or_else(|| p.base_sha.clone())
        };
        let side = |branch: &str, sha: &str| {
            json!({
                "label": format!("{}:{branch}", r.owner),
                "ref": branch,
                "sha": sha,
                "user": self.user(&r.owner),
                "repo": self.repo(r)
            })
        };
        let commits = r
            .objects
            .history(&head_sha)
            .iter()
            .take_while(|s| !r.objects.is_ancestor(s, &base_sha))
            .count();
        let links = json!({
            "self": { "href": api },
            "html": { "href": format!("{HTML}/{full}/pull/{n}") },
            "issue": { "href": issue_api },
            "comments": { "href": format!("{issue_api}/comments") },
            "review_comments": { "href": format!("{api}/comments") },
            "review_comment": { "href": format!("{}/repos/{full}/pulls/comments{{/number}}", self.base) },
            "commits": { "href": format!("{api}/commits") },
            "statuses": { "href": format!("{}/repos/{full}/statuses/{head_sha}", self.base) }
        });
        let mut v = json!({
            "url": api,
            "id": i.id + 500_000_000,
            "node_id": node_id("PR", i.id),
            "html_url": format!("{HTML}/{full}/pull/{n}"),
            "diff_url": format!("{HTML}/{full}/pull/{n}.diff"),
            "patch_url": format!("{HTML}/{full}/pull/{n}.patch"),
            "issue_url": issue_api,
            "commits_url": format!("{api}/commits"),
            "review_comments_url": format!("{api}/comments"),
            "review_comment_url": format!("{}/repos/{full}/pulls/comments{{/number}}", self.base),
            "comments_url": format!("{issue_api}/comments"),
            "statuses_url": format!("{}/repos/{full}/statuses/{head_sha}", self.base),
            "number": n,
            "state": i.state,
            "locked": i.locked,
            "title": i.title,
            "user": self.user(&i.user),
            "body": i.body,
            "labels": self.labels_of(r, i),
            "milestone": null,
            "active_lock_reason": null,
            "created_at": iso(i.created_at),
            "updated_at": iso(i.updated_at),
            "closed_at": opt_time(i.closed_at),
            "merged_at": opt_time(p.merged_at),
            "merge_commit_sha": p.merge_commit_sha,
            "assignee": i.assignees.first().map(|a| self.user(a)),
            "assignees": i.assignees.iter().map(|a| self.user(a)).collect::<Vec<_>>(),
            "requested_reviewers": [],
            "requested_teams": [],
            "head": side(&p.head_ref, &head_sha)
        });
        let more = json!({
            "base": side(&p.base_ref, &base_sha),
            "_links": links,
            "author_association": self.association(r, &i.user),
            "auto_merge": null,
            "draft": p.draft,
            "merged": p.merged,
            "mergeable": if i.state == "open" { json!(true) } else { Value::Null },
            "rebaseable": if i.state == "open" { json!(true) } else { Value::Null },
            "mergeable_state": if i.state == "open" { "clean" } else { "unknown" },
            "merged_by": p.merged_by.as_deref().map(|u| self.user(u)),
            "comments": r.comments.values().filter(|c| c.issue == n).count(),
            "review_comments": r.review_comments.values().filter(|c| c.pull == n).count(),
            "maintainer_can_modify": p.maintainer_can_modify,
            "commits": commits,
            "additions": 0,
            "deletions": 0,
            "changed_files": 0
        });
        if let (Some(a), Value::Object(b)) = (v.as_object_mut(), more) {
            a.extend(b);
        }
        v
    }

    pub fn comment(&self, r: &Repo, id: u64) -> Value {
        let Some(c) = r.comments.get(&id) else {
            return Value::Null;
        };
        let full = r.full_name();
        let kind = match r.issues.get(&c.issue) {
            Some(i) if i.pull.is_some() => "pull",
            _ => "issues",
        };
        let api = format!("{}/repos/{full}/issues/comments/{id}", self.base);
        json!({
            "id": id,
            "node_id": node_id("IC", id),
            "url": api,
            "html_url": format!("{HTML}/{full}/{kind}/{}#issuecomment-{id}", c.issue),
            "issue_url": format!("{}/repos/{full}/issues/{}", self.base, c.issue),
            "body": c.body,
            "user": self.user(&c.user),
            "created_at": iso(c.created_at),
            "updated_at": iso(c.updated_at),
            "author_association": self.association(r, &c.user),
            "performed_via_github_app": null,
            "reactions": self.reactions_rollup(format!("{api}/reactions"), &c.reactions)
        })
    }

    pub fn review(&self, r: &Repo, id: u64) -> Value {
        let Some(v) = r.reviews.get(&id) else {
            return Value::Null;
        };
        let full = r.full_name();
        let html = format!("{HTML}/{full}/pull/{}#pullrequestreview-{id}", v.pull);
        let pr = format!("{}/repos/{full}/pulls/{}", self.base, v.pull);
        json!({
            "id": id,
            "node_id": node_id("PRR", id),
            "user": self.user(&v.user),
            "body": v.body,
            "state": v.state,
            "commit_id": v.commit_id,
            "html_url": html,
            "pull_request_url": pr,
            "submitted_at": iso(v.submitted_at),
            "author_association": self.association(r, &v.user),
            "_links": { "html": { "href": html }, "pull_request": { "href": pr } }
        })
    }

    pub fn review_comment(&self, r: &Repo, id: u64) -> Value {
        let Some(c) = r.review_comments.get(&id) else {
            return Value::Null;
        };
        let full = r.full_name();
        let api = format!("{}/repos/{full}/pulls/comments/{id}", self.base);
        let html = format!("{HTML}/{full}/pull/{}#discussion_r{id}", c.pull);
        let pr = format!("{}/repos/{full}/pulls/{}", self.base, c.pull);
        let mut v = json!({
            "url": api,
            "id": id,
            "node_id": node_id("PRRC", id),
            "pull_request_review_id": c.review_id,
            "diff_hunk": "@@ -1 +1 @@",
            "path": c.path,
            "position": c.line,
            "original_position": c.line,
            "line": c.line,
            "original_line": c.line,
            "side": "RIGHT",
            "subject_type": if c.line.is_some() { "line" } else { "file" },
            "commit_id": c.commit_id,
            "original_commit_id": c.commit_id,
            "user": self.user(&c.user),
            "body": c.body,
            "created_at": iso(c.created_at),
            "updated_at": iso(c.created_at),
            "html_url": html,
            "pull_request_url": pr,
            "author_association": self.association(r, &c.user),
            "_links": {
                "self": { "href": api },
                "html": { "href": html },
                "pull_request": { "href": pr }
            },
            "reactions": self.reactions_rollup(format!("{api}/reactions"), &[])
        });
        if let Some(p) = c.in_reply_to {
            v["in_reply_to_id"] = json!(p);
        }
        v
    }

    pub fn git_commit(&self, r: &Repo, sha: &str) -> Value {
        let Some(c) = r.objects.commit(sha) else {
            return Value::Null;
        };
        let full = r.full_name();
        let api = format!("{}/repos/{full}/git/commits", self.base);
        let sig = |s: &super::git::Signature| json!({ "name": s.name, "email": s.email, "date": iso(s.date) });
        json!({
            "sha": sha,
            "node_id": node_id("C", u64::from_str_radix(&sha[..12], 16).unwrap_or(0)),
            "url": format!("{api}/{sha}"),
            "html_url": format!("{HTML}/{full}/commit/{sha}"),
            "author": sig(&c.author),
            "committer": sig(&c.committer),
            "message": c.message,
            "tree": { "sha": c.tree, "url": format!("{}/repos/{full}/git/trees/{}", self.base, c.tree) },
            "parents": c.parents.iter().map(|p| json!({
                "sha": p,
                "url": format!("{api}/{p}"),
                "html_url": format!("{HTML}/{full}/commit/{p}")
            })).collect::<Vec<_>>(),
            "verification": { "verified": false, "reason": "unsigned", "signature": null, "payload": null, "verified_at": null }
        })
    }

    pub fn git_ref(&self, r: &Repo, full_ref: &str) -> Value {
        let sha = r.refs.get(full_ref).cloned().unwrap_or_default();
        let full = r.full_name();
        json!({
            "ref": full_ref,
            "node_id": format!("REF_{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(full_ref)),
            "url": format!("{}/repos/{full}/git/{full_ref}", self.base),
            "object": {
                "type": "commit",
                "sha": sha,
                "url": format!("{}/repos/{full}/git/commits/{sha}", self.base)
            }
        })
    }

    pub fn tree(&self, r: &Repo, sha: &str, recursive: bool) -> Value {
        let full = r.full_name();
        let mut entries = Vec::new();
        let mut todo = vec![(String::new(), sha.to_string())];
        while let Some((prefix, t)) = todo.pop() {
            for e in r.objects.tree(&t).unwrap_or(&[]) {
                let path = format!("{prefix}{}", e.name);
                let kind = e.kind();
                let mut v = json!({
                    "path": path,
                    "mode": e.mode,
                    "type": kind,
                    "sha": e.sha,
                    "url": format!("{}/repos/{full}/git/{}s/{}", self.base, kind, e.sha)
                });
                if kind == "blob" {
                    v["size"] = json!(r.objects.blob(&e.sha).map(<[u8]>::len).unwrap_or(0));
                }
                entries.push(v);
                if recursive && kind == "tree" {
                    todo.push((format!("{path}/"), e.sha.clone()));
                }
            }
        }
        entries.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
        json!({
            "sha": sha,
            "url": format!("{}/repos/{full}/git/trees/{sha}", self.base),
            "tree": entries,
            "truncated": false
        })
    }

    pub fn blob(&self, r: &Repo, sha: &str) -> Value {
        let data = r.objects.blob(sha).unwrap_or(&[]);
        json!({
            "sha": sha,
            "node_id": format!("B_{}", &sha[..12]),
            "size": data.len(),
            "url": format!("{}/repos/{}/git/blobs/{sha}", self.base, r.full_name()),
            "content": wrapped_base64(data),
            "encoding": "base64"
        })
    }

    /// One entry of the contents API (`with_content` for a file fetched by its own path).
    pub fn content_entry(
        &self,
        r: &Repo,
        git_ref: &str,
        path: &str,
        mode: &str,
        sha: &str,
        with_content: bool,
    ) -> Value {
        let full = r.full_name();
        let kind = match mode {
            "040000" => "dir",
            "120000" => "symlink",
            "160000" => "submodule",
            _ => "file",
        };
        let name = path.rsplit('/').next().unwrap_or(path);
        let url = format!("{}/repos/{full}/contents/{path}?ref={git_ref}", self.base);
        let git_url = format!(
            "{}/repos/{full}/git/{}/{sha}",
            self.base,
            if kind == "dir" { "trees" } else { "blobs" }
        );
        let html_url = format!(
            "{HTML}/{full}/{}/{git_ref}/{path}",
            if kind == "dir" { "tree" } else { "blob" }
        );
        let data = r.objects.blob(sha).unwrap_or(&[]);
        let mut v = json!({
            "type": kind,
            "size": if kind == "dir" { 0 } else { data.len() },
            "name": name,
            "path": path,
            "sha": sha,
            "url": url,
            "git_url": git_url,
            "html_url": html_url,
            "download_url": if kind == "dir" { Value::Null } else {
                json!(format!("https://raw.githubusercontent.com/{full}/{git_ref}/{path}"))
            },
            "_links": { "self": url, "git": git_url, "html": html_url }
        });
        if with_content && kind != "dir" {
            v["content"] = json!(wrapped_base64(data));
            v["encoding"] = json!("base64");
        }
        if kind == "symlink" && with_content {
            v["target"] = json!(String::from_utf8_lossy(data));
        }
        v
    }

    pub fn annotation(&self, r: &Repo, run: &CheckRun, a: &Annotation) -> Value {
        json!({
            "path": a.path,
            "blob_href": format!("{HTML}/{}/blob/{}/{}", r.full_name(), run.head_sha, a.path),
            "start_line": a.start_line,
            "end_line": a.end_line,
            "start_column": null,
            "end_column": null,
            "annotation_level": a.level,
            "title": a.title,
            "message": a.message,
            "raw_details": null
        })
    }

    pub fn check_run(&self, r: &Repo, id: u64) -> Value {
        let Some(c) = r.check_runs.get(&id) else {
            return Value::Null;
        };
        let full = r.full_name();
        let suite = r.check_suites.get(&c.suite);
        let pulls: Vec<Value> = r
            .issues
            .values()
            .filter(|i| {
                i.pull
                    .as_ref()
                    .is_some_and(|p| r.pull_head_sha(p) == c.head_sha && i.state == "open")
            })
            .map(|i| {
                let p = i.pull.as_ref().expect("filtered to pulls");
                let mini = json!({ "id": r.id, "url": format!("{}/repos/{full}", self.base), "name": r.name });
                json!({
                    "id": i.id + 500_000_000,
                    "number": i.number,
                    "url": format!("{}/repos/{full}/pulls/{}", self.base, i.number),
                    "head": { "ref": p.head_ref, "sha": r.pull_head_sha(p), "repo": mini },
                    "base": { "ref": p.base_ref, "sha": r.branch_sha(&p.base_ref).unwrap_or_default(), "repo": mini }
                })
            })
            .collect();
        let (details_url, app) = if c.by_app {
            // No details URL given: GitHub shows the App's homepage.
            ("https://example.com/specbot".to_string(), self.app())
        } else {
            // An Actions job: its check run shares the job's id; the workflow run is the suite.
            (
                format!("{HTML}/{full}/actions/runs/{}/job/{id}", c.suite),
                self.ci_app(),
            )
        };
        json!({
            "id": id,
            "node_id": node_id("CR", id),
            "head_sha": c.head_sha,
            "external_id": c.external_id,
            "url": format!("{}/repos/{full}/check-runs/{id}", self.base),
            "html_url": format!("{HTML}/{full}/runs/{id}"),
            "details_url": details_url,
            "status": c.status,
            "conclusion": c.conclusion,
            "started_at": iso(c.started_at),
            "completed_at": c.completed_at.map(iso),
            "output": {
                "title": c.title,
                "summary": c.summary,
                "text": c.text,
                "annotations_count": c.annotations.len(),
                "annotations_url": format!("{}/repos/{full}/check-runs/{id}/annotations", self.base)
            },
            "name": c.name,
            "check_suite": { "id": suite.map(|s| s.id).unwrap_or(c.suite) },
            "app": app,
            "pull_requests": pulls
        })
    }

    /// The CI system's App, which owns the check runs tests add.
    fn ci_app(&self) -> Value {
        json!({
            "id": 15_368,
            "slug": "github-actions",
            "node_id": "MDM6QXBwMTUzNjg=",
            "client_id": "Iv1.ci",
            "owner": self.user("github"),
            "name": "GitHub Actions",
            "description": "Automate your workflow from idea to production",
            "external_url": "https://help.github.com/en/actions",
            "html_url": format!("{HTML}/apps/github-actions"),
            "created_at": "2018-07-30T09:30:17Z",
            "updated_at": "2024-04-10T20:33:16Z",
            "permissions": { "checks": "write", "contents": "write", "metadata": "read" },
            "events": ["check_run", "check_suite"]
        })
    }

    pub fn permissions(&self) -> Value {
        json!(self.st.app_permissions)
    }

    pub fn app(&self) -> Value {
        let st = self.st;
        json!({
            "id": st.app_id,
            "slug": st.app_slug,
            "node_id": node_id("A", st.app_id),
            "client_id": format!("Iv23li{}", st.app_id),
            "owner": self.user(&st.app_owner),
            "name": st.app_slug,
            "description": "Issues become specs, specs become pull requests.",
            "external_url": "https://example.com/specbot",
            "html_url": format!("{HTML}/apps/{}", st.app_slug),
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "permissions": self.permissions(),
            "events": ["issues", "issue_comment", "pull_request", "pull_request_review", "pull_request_review_comment", "check_run", "check_suite"],
            "installations_count": 1
        })
    }

    pub fn installation(&self) -> Value {
        let st = self.st;
        let id = st.installation_id;
        json!({
            "id": id,
            "account": self.user(&st.installation_account),
            "repository_selection": "all",
            "access_tokens_url": format!("{}/app/installations/{id}/access_tokens", self.base),
            "repositories_url": format!("{}/installation/repositories", self.base),
            "html_url": format!("{HTML}/organizations/{}/settings/installations/{id}", st.installation_account),
            "app_id": st.app_id,
            "app_slug": st.app_slug,
            "client_id": format!("Iv23li{}", st.app_id),
            "target_id": user_id(&st.installation_account),
            "target_type": "Organization",
            "permissions": self.permissions(),
            "events": ["issues", "issue_comment", "pull_request", "pull_request_review", "check_run"],
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "single_file_name": null,
            "has_multiple_single_files": false,
            "single_file_paths": [],
            "suspended_by": null,
            "suspended_at": null
        })
    }
}

/// Base64 broken into 60-character lines, the way the contents and blobs APIs send it.
pub fn wrapped_base64(data: &[u8]) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(b.len() + b.len() / 60 + 1);
    for chunk in b.as_bytes().chunks(60) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ascii"));
        out.push('\n');
    }
    out
}
