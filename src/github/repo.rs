//! Intent-level operations on one repository, each safe to repeat: a retried job or a
//! redelivered webhook calling them again finds what the first call made instead of making it
//! twice.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::Engine;
use http::Method;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::model::*;
use super::request::{Answer, GitHubError, Installation, Retry, decode};
use crate::messages::{fit_body, fit_title};

mod checks;
mod issues;
pub use checks::CheckRunOutcome;
pub use issues::ReactOn;

/// A file to write (or delete) in a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    /// `None` deletes the file.
    pub content: Option<String>,
    /// Written as an executable (mode `100755`); otherwise a replaced file keeps its mode.
    pub executable: bool,
}

/// What [`Repo::commit_files`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The branch head after the call.
    pub head: String,
    /// False when the branch already held exactly these files (nothing new was committed).
    pub new_commit: bool,
    /// The branch did not exist and was created.
    pub created_branch: bool,
}

/// One repository, through its installation's client.
#[derive(Debug, Clone)]
pub struct Repo {
    gh: Installation,
    owner: String,
    name: String,
}

/// `Ok(None)` where GitHub answers 404: the thing asked for is not there.
fn unless_missing<T>(result: Result<T, GitHubError>) -> Result<Option<T>, GitHubError> {
    match result {
        Ok(found) => Ok(Some(found)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The text behind a base64 `content` field (GitHub wraps it in lines).
fn base64_text(route: &'static str, content: &str) -> Result<String, GitHubError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(content.replace(['\n', '\r'], ""))
        .map_err(|e| GitHubError::Decode {
            route,
            reason: format!("base64: {e}"),
        })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The `location` of a redirect answer.
fn location(route: &'static str, answer: &Answer) -> Result<String, GitHubError> {
    answer
        .headers
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| GitHubError::Decode {
            route,
            reason: format!("status {} without a `location`", answer.status.as_u16()),
        })
}

/// A request's payload with its `title` and `body` (an issue's, a pull request's, a comment's or
/// a review's: no other write GitHub takes has them) cut to what GitHub takes.
fn fitted(payload: &Value) -> Cow<'_, Value> {
    let text = |key: &str| payload.get(key).and_then(Value::as_str);
    let title = text("title").map(fit_title);
    let body = text("body").map(fit_body);
    if !matches!(title, Some(Cow::Owned(_))) && !matches!(body, Some(Cow::Owned(_))) {
        return Cow::Borrowed(payload);
    }
    tracing::warn!(
        title_chars = text("title").map_or(0, |t| t.chars().count()),
        body_chars = text("body").map_or(0, |b| b.chars().count()),
        "a title or body longer than GitHub takes was cut"
    );
    let mut fitted = payload.clone();
    for (key, cut) in [("title", title), ("body", body)] {
        if let Some(Cow::Owned(cut)) = cut {
            fitted[key] = Value::String(cut);
        }
    }
    Cow::Owned(fitted)
}

/// Percent-encode one path segment (branch names and file paths keep their `/`).
fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
        .replace("%2F", "/")
}

impl Repo {
    pub(crate) fn new(gh: Installation, owner: &str, name: &str) -> Self {
        Repo {
            gh,
            owner: owner.to_string(),
            name: name.to_string(),
        }
    }

    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn path(&self, rest: &str) -> String {
        format!("/repos/{}/{}{}", enc(&self.owner), enc(&self.name), rest)
    }

    /// `GET` a path of this repository and decode the answer.
    async fn get<T: DeserializeOwned>(
        &self,
        route: &'static str,
        rest: &str,
    ) -> Result<T, GitHubError> {
        self.gh.get_json(route, &self.path(rest)).await
    }

    /// Send a request that is safe to repeat to a path of this repository; the method is the
    /// route's first word.
    async fn send(
        &self,
        route: &'static str,
        rest: &str,
        body: Option<&Value>,
    ) -> Result<Answer, GitHubError> {
        let method = route.split(' ').next().unwrap_or("GET");
        let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
        let body = body.map(fitted);
        self.gh
            .send(
                route,
                method,
                &self.path(rest),
                body.as_deref(),
                Retry::Safe,
            )
            .await
    }

    /// [`Repo::send`] with a body, decoding the answer.
    async fn send_json<T: DeserializeOwned>(
        &self,
        route: &'static str,
        rest: &str,
        body: &Value,
    ) -> Result<T, GitHubError> {
        let answer = self.send(route, rest, Some(body)).await?;
        decode(route, &answer.body)
    }

    /// `POST` something that must not be made twice (an issue, a comment, a PR). Never resent
    /// blindly: on an unclear answer `existing` looks for it first. The flag is true when this
    /// call made it.
    async fn create_once<T: DeserializeOwned>(
        &self,
        route: &'static str,
        rest: &str,
        payload: &Value,
        existing: impl AsyncFnOnce() -> Result<Option<T>, GitHubError>,
    ) -> Result<(T, bool), GitHubError> {
        let path = self.path(rest);
        let payload = fitted(payload);
        let send = || {
            self.gh
                .send_json::<T>(route, Method::POST, &path, &payload, Retry::Never)
        };
        match send().await {
            Err(GitHubError::Uncertain { .. }) => match existing().await? {
                Some(found) => Ok((found, false)),
                None => send().await.map(|made| (made, true)),
            },
            other => other.map(|made| (made, true)),
        }
    }

    /// Up to `pages` pages of 100 from a list (`rest` holds `per_page=100`), oldest page first,
    /// stopping at a short page or once `max` items are in.
    async fn list<T: DeserializeOwned>(
        &self,
        route: &'static str,
        rest: &str,
        pages: u32,
        max: usize,
    ) -> Result<Vec<T>, GitHubError> {
        let mut all = Vec::new();
        for page in 1..=pages {
            if all.len() >= max {
                break;
            }
            let batch: Vec<T> = self.get(route, &format!("{rest}&page={page}")).await?;
            let done = batch.len() < 100;
            all.extend(batch);
            if done {
                break;
            }
        }
        all.truncate(max);
        Ok(all)
    }

    pub async fn info(&self) -> Result<Repository, GitHubError> {
        self.get("GET /repos/{owner}/{repo}", "").await
    }

    /// The user's permission on this repository.
    pub async fn permission(&self, login: &str) -> Result<Permission, GitHubError> {
        let found: Option<CollaboratorPermission> = unless_missing(
            self.get(
                "GET /repos/{owner}/{repo}/collaborators/{username}/permission",
                &format!("/collaborators/{}/permission", enc(login)),
            )
            .await,
        )?;
        Ok(found.map_or(Permission::None, |p| p.level()))
    }

    /// A text file at `git_ref`, or `None` when there is no such file.
    pub async fn file(&self, path: &str, git_ref: &str) -> Result<Option<String>, GitHubError> {
        let route = "GET /repos/{owner}/{repo}/contents/{path}";
        let rest = format!("/contents/{}?ref={}", enc(path), enc(git_ref));
        let Some(answer) = unless_missing(self.send(route, &rest, None).await)? else {
            return Ok(None);
        };
        // A directory answers with an array: not a file.
        if answer.body.first() == Some(&b'[') {
            return Ok(None);
        }
        let file: ContentFile = decode(route, &answer.body)?;
        if file.kind != "file" && !file.kind.is_empty() {
            return Ok(None);
        }
        match (file.content.as_deref(), file.encoding.as_deref()) {
            (Some(c), Some("base64")) if !c.is_empty() || file.size == 0 => {
                base64_text(route, c).map(Some)
            }
            // Files over 1 MB come without content: read the blob.
            _ => self.blob_text(&file.sha).await.map(Some),
        }
    }

    async fn blob_text(&self, sha: &str) -> Result<String, GitHubError> {
        let route = "GET /repos/{owner}/{repo}/git/blobs/{file_sha}";
        let blob: ContentFile = self.get(route, &format!("/git/blobs/{}", enc(sha))).await?;
        base64_text(route, blob.content.as_deref().unwrap_or_default())
    }

    /// The head commit of a branch, or `None` when it does not exist.
    /// An empty repository (no commit yet) has no branch: GitHub answers 409 there.
    pub async fn branch_head(&self, branch: &str) -> Result<Option<String>, GitHubError> {
        let found: Option<Reference> = match self
            .get(
                "GET /repos/{owner}/{repo}/git/ref/{ref}",
                &format!("/git/ref/heads/{}", enc(branch)),
            )
            .await
        {
            Err(e) if e.status() == Some(409) => None,
            other => unless_missing(other)?,
        };
        Ok(found.map(|r| r.object.sha))
    }

    pub async fn commit(&self, sha: &str) -> Result<Commit, GitHubError> {
        self.get(
            "GET /repos/{owner}/{repo}/git/commits/{commit_sha}",
            &format!("/git/commits/{}", enc(sha)),
        )
        .await
    }

    /// Every path in the tree of a commit (recursive). GitHub cuts very large trees short
    /// (`truncated`): the answer then lists only part of the repository, which is logged.
    pub async fn tree(&self, commit_sha: &str) -> Result<Tree, GitHubError> {
        let commit = self.commit(commit_sha).await?;
        let tree: Tree = self
            .get(
                "GET /repos/{owner}/{repo}/git/trees/{tree_sha}",
                &format!("/git/trees/{}?recursive=1", enc(&commit.tree.sha)),
            )
            .await?;
        if tree.truncated {
            tracing::warn!(
                repo = %self.full_name(),
                listed = tree.tree.len(),
                "GitHub truncated the tree; only part of the repository is listed"
            );
        }
        Ok(tree)
    }

    /// Put `files` on `branch` in one commit (Git Data API: tree on `base_tree` → commit → create
    /// or fast-forward the ref). The branch starts from `base_branch` when it does not exist.
    /// Commits on top of whatever the branch holds (a human's commits are kept, never
    /// force-pushed over). When the branch already holds exactly these contents nothing new is
    /// committed, so repeating the call is harmless.
    pub async fn commit_files(
        &self,
        branch: &str,
        base_branch: &str,
        message: &str,
        files: &[FileChange],
    ) -> Result<Pushed, GitHubError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let existing = self.branch_head(branch).await?;
            let parent = match &existing {
                Some(sha) => sha.clone(),
                None => {
                    self.branch_head(base_branch)
                        .await?
                        .ok_or_else(|| GitHubError::Status {
                            route: "GET /repos/{owner}/{repo}/git/ref/{ref}",
                            status: 404,
                            message: format!("base branch `{base_branch}` not found"),
                        })?
                }
            };
            let parent_commit = self.commit(&parent).await?;
            let tree = self.write_tree(&parent_commit.tree.sha, files).await?;
            if tree == parent_commit.tree.sha && existing.is_some() {
                return Ok(Pushed {
                    head: parent,
                    new_commit: false,
                    created_branch: false,
                });
            }
            let commit: ShaOnly = self
                .send_json(
                    "POST /repos/{owner}/{repo}/git/commits",
                    "/git/commits",
                    &json!({"message": message, "tree": tree, "parents": [parent]}),
                )
                .await?;
            let moved = match existing {
                None => self
                    .send(
                        "POST /repos/{owner}/{repo}/git/refs",
                        "/git/refs",
                        Some(&json!({"ref": format!("refs/heads/{branch}"), "sha": commit.sha})),
                    )
                    .await
                    .map(|_| true),
                Some(_) => self
                    .send(
                        "PATCH /repos/{owner}/{repo}/git/refs/{ref}",
                        &format!("/git/refs/heads/{}", enc(branch)),
                        Some(&json!({"sha": commit.sha, "force": false})),
                    )
                    .await
                    .map(|_| false),
            };
            match moved {
                Ok(created_branch) => {
                    return Ok(Pushed {
                        head: commit.sha,
                        new_commit: true,
                        created_branch,
                    });
                }
                // Someone created or moved the branch meanwhile: rebuild on top of theirs.
                Err(e) if e.status() == Some(422) && tries < 3 => {
                    tracing::info!(branch, error = %e, "branch moved while committing; rebuilding on top");
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The tree of `base_tree` with `files` applied; its hash. A written file keeps the mode of
    /// the file it replaces (an executable stays executable) or is made executable when asked; deleting a path that is not there
    /// is dropped (GitHub refuses it with a 422).
    async fn write_tree(
        &self,
        base_tree: &str,
        files: &[FileChange],
    ) -> Result<String, GitHubError> {
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        let modes = self.modes_of(base_tree, &paths).await?;
        let entries: Vec<Value> = files
            .iter()
            .filter_map(|f| {
                let mode = modes.get(&f.path).map(String::as_str);
                match &f.content {
                    Some(content) => {
                        let mode = match mode {
                            _ if f.executable => "100755",
                            Some("100755") => "100755",
                            _ => "100644",
                        };
                        Some(json!({"path": f.path, "mode": mode, "type": "blob", "content": content}))
                    }
                    None => mode.map(|_| {
                        json!({"path": f.path, "mode": "100644", "type": "blob", "sha": null})
                    }),
                }
            })
            .collect();
        if entries.is_empty() {
            return Ok(base_tree.to_string());
        }
        let tree: ShaOnly = self
            .send_json(
                "POST /repos/{owner}/{repo}/git/trees",
                "/git/trees",
                &json!({"base_tree": base_tree, "tree": entries}),
            )
            .await?;
        Ok(tree.sha)
    }

    /// The mode of each of `paths` that is a file in `tree_sha`. One recursive read; where
    /// GitHub truncates it (a very large tree), the directories on each path are read instead.
    async fn modes_of(
        &self,
        tree_sha: &str,
        paths: &[&str],
    ) -> Result<HashMap<String, String>, GitHubError> {
        let route = "GET /repos/{owner}/{repo}/git/trees/{tree_sha}";
        let whole: Tree = self
            .get(route, &format!("/git/trees/{}?recursive=1", enc(tree_sha)))
            .await?;
        let file = |e: &TreeEntry| e.kind == "blob";
        if !whole.truncated {
            return Ok(whole
                .tree
                .into_iter()
                .filter(|e| file(e) && paths.contains(&e.path.as_str()))
                .map(|e| (e.path, e.mode))
                .collect());
        }
        let mut dirs: HashMap<String, Tree> = HashMap::new();
        let mut modes = HashMap::new();
        for path in paths {
            let mut dir = tree_sha.to_string();
            let parts: Vec<&str> = path.split('/').collect();
            for (i, part) in parts.iter().enumerate() {
                if !dirs.contains_key(&dir) {
                    let listed: Tree = self
                        .get(route, &format!("/git/trees/{}", enc(&dir)))
                        .await?;
                    dirs.insert(dir.clone(), listed);
                }
                let Some(entry) = dirs[&dir].tree.iter().find(|e| e.path == *part) else {
                    break;
                };
                if i + 1 == parts.len() {
                    if file(entry) {
                        modes.insert(path.to_string(), entry.mode.clone());
                    }
                } else if entry.kind == "tree" {
                    dir = entry.sha.clone();
                    continue;
                }
                break;
            }
        }
        Ok(modes)
    }

    /// Where GitHub serves the `.tar.gz` snapshot of `git_ref` (a short-lived, pre-signed URL:
    /// download it without credentials).
    pub async fn tarball_url(&self, git_ref: &str) -> Result<String, GitHubError> {
        let route = "GET /repos/{owner}/{repo}/tarball/{ref}";
        let answer = self
            .send(route, &format!("/tarball/{}", enc(git_ref)), None)
            .await?;
        location(route, &answer)
    }

    /// Where GitHub serves an Actions job's log (a signed URL valid for a minute: download it
    /// without credentials). Needs the `actions: read` permission (`403` without it).
    pub async fn job_log_url(&self, job_id: u64) -> Result<String, GitHubError> {
        let route = "GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs";
        let answer = self
            .send(route, &format!("/actions/jobs/{job_id}/logs"), None)
            .await?;
        location(route, &answer)
    }

    /// The check runs on a commit (the latest 100).
    pub async fn check_runs(&self, sha: &str) -> Result<Vec<CheckRun>, GitHubError> {
        let list: CheckRunList = self
            .get(
                "GET /repos/{owner}/{repo}/commits/{ref}/check-runs",
                &format!("/commits/{}/check-runs?per_page=100", enc(sha)),
            )
            .await?;
        Ok(list.check_runs)
    }

    /// A check run's annotations (the first 50).
    pub async fn check_run_annotations(
        &self,
        check_run_id: u64,
    ) -> Result<Vec<Annotation>, GitHubError> {
        self.get(
            "GET /repos/{owner}/{repo}/check-runs/{check_run_id}/annotations",
            &format!("/check-runs/{check_run_id}/annotations?per_page=50"),
        )
        .await
    }

    /// The pull request from `branch` (open or closed), if any.
    pub async fn find_pull(&self, branch: &str) -> Result<Option<PullRequest>, GitHubError> {
        let pulls: Vec<PullRequest> = self
            .get(
                "GET /repos/{owner}/{repo}/pulls",
                &format!(
                    "/pulls?head={}:{}&state=all&per_page=10",
                    enc(&self.owner),
                    enc(branch)
                ),
            )
            .await?;
        // Prefer an open one; otherwise the most recent.
        Ok(pulls
            .iter()
            .find(|p| p.state == "open")
            .or_else(|| pulls.first())
            .cloned())
    }

    pub async fn pull(&self, number: u64) -> Result<PullRequest, GitHubError> {
        self.get(
            "GET /repos/{owner}/{repo}/pulls/{pull_number}",
            &format!("/pulls/{number}"),
        )
        .await
    }

    /// Find the open PR from `head` or open one. A closed (unmerged) one is reopened and
    /// updated where GitHub allows it; where it refuses (the branch was deleted, recreated or
    /// force-pushed since), and after a merged one, a new PR is opened that names the old one.
    /// `draft` applies to a PR opened here (an existing one keeps its state).
    pub async fn open_pull(
        &self,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
        draft: bool,
    ) -> Result<(PullRequest, bool), GitHubError> {
        let mut body = body.to_string();
        match self.find_pull(head).await? {
            Some(found) if found.state == "open" => {
                let patch = json!({"title": title, "body": body});
                return Ok((self.update_pull(found.number, &patch).await?, false));
            }
            Some(found) if found.merged_at.is_none() => {
                let patch = json!({"title": title, "body": body, "state": "open"});
                match self.update_pull(found.number, &patch).await {
                    Ok(reopened) => return Ok((reopened, false)),
                    Err(e) if e.status() == Some(422) => {
                        tracing::info!(pull = found.number, error = %e, "cannot reopen; opening a new PR");
                        body.push_str(&format!("\n\nReplaces #{} (closed).", found.number));
                    }
                    Err(e) => return Err(e),
                }
            }
            Some(merged) => body.push_str(&format!("\n\nFollows #{} (merged).", merged.number)),
            None => {}
        }
        let open = async || {
            Ok(self
                .find_pull(head)
                .await?
                .filter(|p: &PullRequest| p.state == "open"))
        };
        let payload = json!({"title": title, "head": head, "base": base, "body": body, "maintainer_can_modify": true, "draft": draft});
        let route = "POST /repos/{owner}/{repo}/pulls";
        match self.create_once(route, "/pulls", &payload, open).await {
            // "A pull request already exists": it is there.
            Err(e) if e.status() == Some(422) => match open().await? {
                Some(found) => Ok((found, false)),
                None => Err(e),
            },
            other => other,
        }
    }

    pub async fn update_pull(
        &self,
        number: u64,
        patch: &Value,
    ) -> Result<PullRequest, GitHubError> {
        self.send_json(
            "PATCH /repos/{owner}/{repo}/pulls/{pull_number}",
            &format!("/pulls/{number}"),
            patch,
        )
        .await
    }

    pub async fn review(&self, pull: u64, review_id: u64) -> Result<Review, GitHubError> {
        self.get(
            "GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}",
            &format!("/pulls/{pull}/reviews/{review_id}"),
        )
        .await
    }

    /// The inline comments of one review.
    pub async fn review_comments(
        &self,
        pull: u64,
        review_id: u64,
    ) -> Result<Vec<ReviewComment>, GitHubError> {
        self.get(
            "GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}/comments",
            &format!("/pulls/{pull}/reviews/{review_id}/comments?per_page=100"),
        )
        .await
    }
}
