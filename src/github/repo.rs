//! Intent-level operations on one repository, each safe to repeat: a retried job or a
//! redelivered webhook calling them again finds what the first call made instead of making it
//! twice.

use base64::Engine;
use http::Method;
use serde_json::json;

use super::request::{GitHubError, Installation, Retry, decode};
use super::types::*;

/// A file to write (or delete) in a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    /// `None` deletes the file.
    pub content: Option<String>,
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

    pub async fn info(&self) -> Result<RepoInfo, GitHubError> {
        self.gh
            .get_json("GET /repos/{owner}/{repo}", &self.path(""))
            .await
    }

    /// The user's permission on this repository.
    pub async fn permission(&self, login: &str) -> Result<Permission, GitHubError> {
        let info: PermissionInfo = match self
            .gh
            .get_json(
                "GET /repos/{owner}/{repo}/collaborators/{username}/permission",
                &self.path(&format!("/collaborators/{}/permission", enc(login))),
            )
            .await
        {
            Ok(info) => info,
            Err(e) if e.is_not_found() => return Ok(Permission::None),
            Err(e) => return Err(e),
        };
        Ok(info.level())
    }

    /// A text file at `git_ref`, or `None` when there is no such file.
    pub async fn file(&self, path: &str, git_ref: &str) -> Result<Option<String>, GitHubError> {
        let route = "GET /repos/{owner}/{repo}/contents/{path}";
        let url = self.path(&format!("/contents/{}?ref={}", enc(path), enc(git_ref)));
        let answer = match self
            .gh
            .send(route, Method::GET, &url, None, Retry::Safe)
            .await
        {
            Ok(a) => a,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        // A directory answers with an array: not a file.
        if answer.body.first() == Some(&b'[') {
            return Ok(None);
        }
        let file: ContentFile = decode(route, &answer.body)?;
        if file.kind != "file" && !file.kind.is_empty() {
            return Ok(None);
        }
        let content = match (file.content.as_deref(), file.encoding.as_deref()) {
            (Some(c), Some("base64")) if !c.is_empty() || file.size == 0 => c.to_string(),
            // Files over 1 MB come without content: read the blob.
            _ => return self.blob_text(&file.sha).await.map(Some),
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(content.replace(['\n', '\r'], ""))
            .map_err(|e| GitHubError::Decode {
                route,
                reason: format!("base64: {e}"),
            })?;
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    async fn blob_text(&self, sha: &str) -> Result<String, GitHubError> {
        let route = "GET /repos/{owner}/{repo}/git/blobs/{file_sha}";
        let blob: ContentFile = self
            .gh
            .get_json(route, &self.path(&format!("/git/blobs/{}", enc(sha))))
            .await?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(blob.content.unwrap_or_default().replace(['\n', '\r'], ""))
            .map_err(|e| GitHubError::Decode {
                route,
                reason: format!("base64: {e}"),
            })?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The head commit of a branch, or `None` when it does not exist.
    pub async fn branch_head(&self, branch: &str) -> Result<Option<String>, GitHubError> {
        match self
            .gh
            .get_json::<RefInfo>(
                "GET /repos/{owner}/{repo}/git/ref/{ref}",
                &self.path(&format!("/git/ref/heads/{}", enc(branch))),
            )
            .await
        {
            Ok(r) => Ok(Some(r.object.sha)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn commit(&self, sha: &str) -> Result<CommitInfo, GitHubError> {
        self.gh
            .get_json(
                "GET /repos/{owner}/{repo}/git/commits/{commit_sha}",
                &self.path(&format!("/git/commits/{}", enc(sha))),
            )
            .await
    }

    /// Every path in the tree of a commit (recursive).
    pub async fn tree(&self, commit_sha: &str) -> Result<Tree, GitHubError> {
        let commit = self.commit(commit_sha).await?;
        self.gh
            .get_json(
                "GET /repos/{owner}/{repo}/git/trees/{tree_sha}",
                &self.path(&format!("/git/trees/{}?recursive=1", enc(&commit.tree.sha))),
            )
            .await
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
            let entries: Vec<serde_json::Value> = files
                .iter()
                .map(|f| match &f.content {
                    Some(content) => json!({"path": f.path, "mode": "100644", "type": "blob", "content": content}),
                    None => json!({"path": f.path, "mode": "100644", "type": "blob", "sha": null}),
                })
                .collect();
            let tree: ShaOnly = self
                .gh
                .send_json(
                    "POST /repos/{owner}/{repo}/git/trees",
                    Method::POST,
                    &self.path("/git/trees"),
                    &json!({"base_tree": parent_commit.tree.sha, "tree": entries}),
                    Retry::Safe,
                )
                .await?;
            if tree.sha == parent_commit.tree.sha && existing.is_some() {
                return Ok(Pushed {
                    head: parent,
                    new_commit: false,
                    created_branch: false,
                });
            }
            let commit: ShaOnly = self
                .gh
                .send_json(
                    "POST /repos/{owner}/{repo}/git/commits",
                    Method::POST,
                    &self.path("/git/commits"),
                    &json!({"message": message, "tree": tree.sha, "parents": [parent]}),
                    Retry::Safe,
                )
                .await?;
            let moved = match existing {
                None => self
                    .gh
                    .send(
                        "POST /repos/{owner}/{repo}/git/refs",
                        Method::POST,
                        &self.path("/git/refs"),
                        Some(&json!({"ref": format!("refs/heads/{branch}"), "sha": commit.sha})),
                        Retry::Safe,
                    )
                    .await
                    .map(|_| true),
                Some(_) => self
                    .gh
                    .send(
                        "PATCH /repos/{owner}/{repo}/git/refs/{ref}",
                        Method::PATCH,
                        &self.path(&format!("/git/refs/heads/{}", enc(branch))),
                        Some(&json!({"sha": commit.sha, "force": false})),
                        Retry::Safe,
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

    /// Where GitHub serves the `.tar.gz` snapshot of `git_ref` (a short-lived, pre-signed URL:
    /// download it without credentials).
    pub async fn tarball_url(&self, git_ref: &str) -> Result<String, GitHubError> {
        let route = "GET /repos/{owner}/{repo}/tarball/{ref}";
        let answer = self
            .gh
            .send(
                route,
                Method::GET,
                &self.path(&format!("/tarball/{}", enc(git_ref))),
                None,
                Retry::Safe,
            )
            .await?;
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

    /// The check runs on a commit (the latest 100).
    pub async fn check_runs(&self, sha: &str) -> Result<Vec<CheckRunInfo>, GitHubError> {
        let list: CheckRunList = self
            .gh
            .get_json(
                "GET /repos/{owner}/{repo}/commits/{ref}/check-runs",
                &self.path(&format!("/commits/{}/check-runs?per_page=100", enc(sha))),
            )
            .await?;
        Ok(list.check_runs)
    }

    /// A check run's annotations (the first 50).
    pub async fn check_run_annotations(
        &self,
        check_run_id: u64,
    ) -> Result<Vec<AnnotationInfo>, GitHubError> {
        self.gh
            .get_json(
                "GET /repos/{owner}/{repo}/check-runs/{check_run_id}/annotations",
                &self.path(&format!(
                    "/check-runs/{check_run_id}/annotations?per_page=50"
                )),
            )
            .await
    }

    /// The pull request from `branch` (open or closed), if any.
    pub async fn find_pull(&self, branch: &str) -> Result<Option<PullInfo>, GitHubError> {
        let pulls: Vec<PullInfo> = self
            .gh
            .get_json(
                "GET /repos/{owner}/{repo}/pulls",
                &self.path(&format!(
                    "/pulls?head={}:{}&state=all&per_page=10",
                    enc(&self.owner),
                    enc(branch)
                )),
            )
            .await?;
        // Prefer an open one; otherwise the most recent.
        Ok(pulls
            .iter()
            .find(|p| p.state == "open")
            .or_else(|| pulls.first())
            .cloned())
    }

    pub async fn pull(&self, number: u64) -> Result<PullInfo, GitHubError> {
        self.gh
            .get_json(
                "GET /repos/{owner}/{repo}/pulls/{pull_number}",
                &self.path(&format!("/pulls/{number}")),
            )
            .await
    }

    /// Find the PR from `head` or open one. A closed (unmerged) one is reopened and updated.
    pub async fn open_pull(
        &self,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<(PullInfo, bool), GitHubError> {
        if let Some(found) = self.find_pull(head).await? {
            let mut patch = json!({"title": title, "body": body});
            if found.state == "closed" && found.merged_at.is_none() {
                patch["state"] = json!("open");
            }
            let updated = self.update_pull(found.number, &patch).await?;
            return Ok((updated, false));
        }
        let payload = json!({"title": title, "head": head, "base": base, "body": body, "maintainer_can_modify": true});
        let path = self.path("/pulls");
        let send = || {
            self.gh.send_json::<PullInfo>(
                "POST /repos/{owner}/{repo}/pulls",
                Method::POST,
                &path,
                &payload,
                Retry::Never,
            )
        };
        match send().await {
            Ok(pull) => Ok((pull, true)),
            // "A pull request already exists": it is there.
            Err(e) if e.status() == Some(422) => match self.find_pull(head).await? {
                Some(found) => Ok((found, false)),
                None => Err(e),
            },
            // An unclear answer: look before sending again.
            Err(GitHubError::Uncertain { .. }) => match self.find_pull(head).await? {
                Some(found) => Ok((found, false)),
                None => send().await.map(|p| (p, true)),
            },
            Err(e) => Err(e),
        }
    }

    pub async fn update_pull(
        &self,
        number: u64,
        patch: &serde_json::Value,
    ) -> Result<PullInfo, GitHubError> {
        self.gh
            .send_json(
                "PATCH /repos/{owner}/{repo}/pulls/{pull_number}",
                Method::PATCH,
                &self.path(&format!("/pulls/{number}")),
                patch,
                Retry::Safe,
            )
            .await
    }

    pub async fn review(&self, pull: u64, review_id: u64) -> Result<ReviewInfo, GitHubError> {
        self.gh
            .get_json(
                "GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}",
                &self.path(&format!("/pulls/{pull}/reviews/{review_id}")),
            )
            .await
    }

    /// The inline comments of one review.
    pub async fn review_comments(
        &self,
        pull: u64,
        review_id: u64,
    ) -> Result<Vec<ReviewCommentInfo>, GitHubError> {
        self.gh
            .get_json(
                "GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}/comments",
                &self.path(&format!(
                    "/pulls/{pull}/reviews/{review_id}/comments?per_page=100"
                )),
            )
            .await
    }

    /// Add labels to an issue or PR (GitHub creates missing labels; adding twice is harmless).
    pub async fn add_labels(&self, number: u64, labels: &[String]) -> Result<(), GitHubError> {
        self.gh
            .send(
                "POST /repos/{owner}/{repo}/issues/{issue_number}/labels",
                Method::POST,
                &self.path(&format!("/issues/{number}/labels")),
                Some(&json!({"labels": labels})),
                Retry::Safe,
            )
            .await
            .map(|_| ())
    }

    pub async fn issue(&self, number: u64) -> Result<IssueInfo, GitHubError> {
        self.gh
            .get_json(
                "GET /repos/{owner}/{repo}/issues/{issue_number}",
                &self.path(&format!("/issues/{number}")),
            )
            .await
    }

    /// Comments on an issue or PR, oldest first (up to `max`).
    pub async fn comments(&self, number: u64, max: usize) -> Result<Vec<CommentInfo>, GitHubError> {
        let mut all = Vec::new();
        let mut page = 1;
        while all.len() < max {
            let batch: Vec<CommentInfo> = self
                .gh
                .get_json(
                    "GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
                    &self.path(&format!(
                        "/issues/{number}/comments?per_page=100&page={page}"
                    )),
                )
                .await?;
            let done = batch.len() < 100;
            all.extend(batch);
            if done || page >= 10 {
                break;
            }
            page += 1;
        }
        all.truncate(max);
        Ok(all)
    }

    /// Issues (not PRs) carrying `label`, any state, newest first (up to 300).
    pub async fn issues_with_label(&self, label: &str) -> Result<Vec<IssueInfo>, GitHubError> {
        let mut all = Vec::new();
        for page in 1..=3 {
            let batch: Vec<IssueInfo> = self
                .gh
                .get_json(
                    "GET /repos/{owner}/{repo}/issues",
                    &self.path(&format!(
                        "/issues?labels={}&state=all&per_page=100&page={page}",
                        enc(label)
                    )),
                )
                .await?;
            let done = batch.len() < 100;
            all.extend(batch.into_iter().filter(|i| i.pull_request.is_none()));
            if done {
                break;
            }
        }
        Ok(all)
    }

    /// Create an issue. Not retried blindly: callers that must not duplicate pass a `marker`
    /// that is in `body`, and on an unclear answer the issues with `label` are searched for it.
    pub async fn create_issue(
        &self,
        title: &str,
        body: &str,
        labels: &[String],
        marker: &str,
    ) -> Result<IssueInfo, GitHubError> {
        let payload = json!({"title": title, "body": body, "labels": labels});
        let path = self.path("/issues");
        let send = || {
            self.gh.send_json::<IssueInfo>(
                "POST /repos/{owner}/{repo}/issues",
                Method::POST,
                &path,
                &payload,
                Retry::Never,
            )
        };
        match send().await {
            Err(GitHubError::Uncertain { .. }) => {
                // Look before sending again: it may have been created after all.
                if let Some(label) = labels.first()
                    && let Some(found) = self
                        .issues_with_label(label)
                        .await?
                        .into_iter()
                        .find(|i| i.body.as_deref().unwrap_or("").contains(marker))
                {
                    return Ok(found);
                }
                send().await
            }
            other => other,
        }
    }

    pub async fn update_issue(
        &self,
        number: u64,
        patch: &serde_json::Value,
    ) -> Result<IssueInfo, GitHubError> {
        self.gh
            .send_json(
                "PATCH /repos/{owner}/{repo}/issues/{issue_number}",
                Method::PATCH,
                &self.path(&format!("/issues/{number}")),
                patch,
                Retry::Safe,
            )
            .await
    }

    /// Post a comment holding `marker` (a hidden HTML comment) once: if a comment with the
    /// marker exists it is returned (and edited to `body`) instead.
    pub async fn comment_once(
        &self,
        number: u64,
        marker: &str,
        body: &str,
    ) -> Result<CommentInfo, GitHubError> {
        let existing = self.comments(number, 1000).await?;
        self.comment_once_among(number, marker, body, &existing)
            .await
    }

    /// [`Repo::comment_once`] when the issue's comments were just listed (saves a request).
    pub async fn comment_once_among(
        &self,
        number: u64,
        marker: &str,
        body: &str,
        existing: &[CommentInfo],
    ) -> Result<CommentInfo, GitHubError> {
        let found = existing
            .iter()
            .find(|c| c.body.as_deref().unwrap_or("").contains(marker))
            .cloned();
        if let Some(found) = found {
            if found.body.as_deref() != Some(body) {
                return self.update_comment(found.id, body).await;
            }
            return Ok(found);
        }
        let payload = json!({"body": body});
        let path = self.path(&format!("/issues/{number}/comments"));
        let send = || {
            self.gh.send_json::<CommentInfo>(
                "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
                Method::POST,
                &path,
                &payload,
                Retry::Never,
            )
        };
        match send().await {
            // Look before sending again: it may have been posted after all.
            Err(GitHubError::Uncertain { .. }) => match self.find_comment(number, marker).await? {
                Some(found) => Ok(found),
                None => send().await,
            },
            other => other,
        }
    }

    /// The first comment whose body contains `marker`.
    pub async fn find_comment(
        &self,
        number: u64,
        marker: &str,
    ) -> Result<Option<CommentInfo>, GitHubError> {
        Ok(self
            .comments(number, 1000)
            .await?
            .into_iter()
            .find(|c| c.body.as_deref().unwrap_or("").contains(marker)))
    }

    pub async fn update_comment(&self, id: u64, body: &str) -> Result<CommentInfo, GitHubError> {
        self.gh
            .send_json(
                "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}",
                Method::PATCH,
                &self.path(&format!("/issues/comments/{id}")),
                &json!({"body": body}),
                Retry::Safe,
            )
            .await
    }

    /// React to an issue (GitHub answers 200 instead of 201 for a reaction that exists).
    pub async fn react_to_issue(&self, number: u64, content: &str) -> Result<(), GitHubError> {
        self.gh
            .send(
                "POST /repos/{owner}/{repo}/issues/{issue_number}/reactions",
                Method::POST,
                &self.path(&format!("/issues/{number}/reactions")),
                Some(&json!({"content": content})),
                Retry::Safe,
            )
            .await
            .map(|_| ())
    }

    pub async fn react_to_comment(
        &self,
        comment_id: u64,
        content: &str,
    ) -> Result<(), GitHubError> {
        self.gh
            .send(
                "POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
                Method::POST,
                &self.path(&format!("/issues/comments/{comment_id}/reactions")),
                Some(&json!({"content": content})),
                Retry::Safe,
            )
            .await
            .map(|_| ())
    }

    /// Make sure a label exists (created with `color` if missing).
    pub async fn ensure_label(
        &self,
        name: &str,
        color: &str,
        description: &str,
    ) -> Result<(), GitHubError> {
        match self
            .gh
            .send(
                "GET /repos/{owner}/{repo}/labels/{name}",
                Method::GET,
                &self.path(&format!("/labels/{}", enc(name))),
                None,
                Retry::Safe,
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        match self
            .gh
            .send(
                "POST /repos/{owner}/{repo}/labels",
                Method::POST,
                &self.path("/labels"),
                Some(&json!({"name": name, "color": color, "description": description})),
                Retry::Safe,
            )
            .await
        {
            // 422 "already_exists": someone made it meanwhile.
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(422) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Sub-issues of `parent` (their issue numbers).
    pub async fn sub_issues(&self, parent: u64) -> Result<Vec<IssueInfo>, GitHubError> {
        self.gh
            .get_json(
                "GET /repos/{owner}/{repo}/issues/{issue_number}/sub_issues",
                &self.path(&format!("/issues/{parent}/sub_issues?per_page=100")),
            )
            .await
    }

    /// Make `child_id` (an issue **id**, not its number) a sub-issue of `parent`. Linking twice
    /// is fine. `Ok(false)` when this GitHub has no sub-issues (older GitHub Enterprise Server).
    pub async fn link_sub_issue(&self, parent: u64, child_id: u64) -> Result<bool, GitHubError> {
        match self
            .gh
            .send(
                "POST /repos/{owner}/{repo}/issues/{issue_number}/sub_issues",
                Method::POST,
                &self.path(&format!("/issues/{parent}/sub_issues")),
                Some(&json!({"sub_issue_id": child_id})),
                Retry::Safe,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) if e.status() == Some(422) => {
                // Already linked (to this parent) is success; check rather than guess.
                let linked = self.sub_issues(parent).await?;
                if linked.iter().any(|i| i.id == child_id) {
                    Ok(true)
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Record that `issue` is blocked by `blocker_id` (an issue id). `Ok(false)` where the API
    /// is missing.
    pub async fn add_blocked_by(&self, issue: u64, blocker_id: u64) -> Result<bool, GitHubError> {
        match self
            .gh
            .send(
                "POST /repos/{owner}/{repo}/issues/{issue_number}/dependencies/blocked_by",
                Method::POST,
                &self.path(&format!("/issues/{issue}/dependencies/blocked_by")),
                Some(&json!({"issue_id": blocker_id})),
                Retry::Safe,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) if e.status() == Some(422) => Ok(true),
            Err(e) => Err(e),
        }
    }
}
