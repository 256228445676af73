//! Issues and their conversation: reading issues and comments, filing an issue once,
//! commenting once (found again by a hidden marker), reacting, labels, and the sub-issue and
//! dependency links between issues.

use serde_json::{Value, json};

use super::{GitHubError, Repo, enc, unless_missing};
use crate::github::model::{Comment, Issue};
use crate::messages::fit_body;

/// What a reaction goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReactOn {
    Issue(u64),
    Comment(u64),
}

/// A link from one issue to another, listed on the first.
#[derive(Debug, Clone, Copy)]
enum IssueLink {
    SubIssue,
    BlockedBy,
}

impl IssueLink {
    /// The routes that add and list it, its path below the issue, and the field naming the
    /// other issue.
    fn api(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            IssueLink::SubIssue => (
                "POST /repos/{owner}/{repo}/issues/{issue_number}/sub_issues",
                "GET /repos/{owner}/{repo}/issues/{issue_number}/sub_issues",
                "sub_issues",
                "sub_issue_id",
            ),
            IssueLink::BlockedBy => (
                "POST /repos/{owner}/{repo}/issues/{issue_number}/dependencies/blocked_by",
                "GET /repos/{owner}/{repo}/issues/{issue_number}/dependencies/blocked_by",
                "dependencies/blocked_by",
                "issue_id",
            ),
        }
    }
}

/// `None` where GitHub refused the App's write because the conversation is locked.
fn unless_locked<T>(result: Result<T, GitHubError>) -> Result<Option<T>, GitHubError> {
    match result {
        Ok(made) => Ok(Some(made)),
        Err(e) if e.is_locked() => {
            tracing::warn!(error = %e, "the conversation is locked: the bot says nothing there");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

impl Repo {
    /// Add labels to an issue or PR (GitHub creates missing labels; adding twice is harmless).
    pub async fn add_labels(&self, number: u64, labels: &[String]) -> Result<(), GitHubError> {
        self.send(
            "POST /repos/{owner}/{repo}/issues/{issue_number}/labels",
            &format!("/issues/{number}/labels"),
            Some(&json!({"labels": labels})),
        )
        .await
        .map(|_| ())
    }

    pub async fn issue(&self, number: u64) -> Result<Issue, GitHubError> {
        self.get(
            "GET /repos/{owner}/{repo}/issues/{issue_number}",
            &format!("/issues/{number}"),
        )
        .await
    }

    /// Comments on an issue or PR, oldest first (up to `max`).
    pub async fn comments(&self, number: u64, max: usize) -> Result<Vec<Comment>, GitHubError> {
        self.list(
            "GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
            &format!("/issues/{number}/comments?per_page=100"),
            10,
            max,
        )
        .await
    }

    /// Issues (not PRs) carrying `label`, any state, newest first (up to 300).
    pub async fn issues_with_label(&self, label: &str) -> Result<Vec<Issue>, GitHubError> {
        let all: Vec<Issue> = self
            .list(
                "GET /repos/{owner}/{repo}/issues",
                &format!("/issues?labels={}&state=all&per_page=100", enc(label)),
                3,
                usize::MAX,
            )
            .await?;
        Ok(all.into_iter().filter(|i| !i.is_pull_request()).collect())
    }

    /// Create an issue. Not retried blindly: callers that must not duplicate pass a `marker`
    /// that is in `body`, and on an unclear answer the issues with `label` are searched for it.
    pub async fn create_issue(
        &self,
        title: &str,
        body: &str,
        labels: &[String],
        marker: &str,
    ) -> Result<Issue, GitHubError> {
        let payload = json!({"title": title, "body": body, "labels": labels});
        let existing = async || {
            let Some(label) = labels.first() else {
                return Ok(None);
            };
            Ok(self
                .issues_with_label(label)
                .await?
                .into_iter()
                .find(|i| i.body.as_deref().unwrap_or("").contains(marker)))
        };
        self.create_once(
            "POST /repos/{owner}/{repo}/issues",
            "/issues",
            &payload,
            existing,
        )
        .await
        .map(|(issue, _)| issue)
    }

    pub async fn update_issue(&self, number: u64, patch: &Value) -> Result<Issue, GitHubError> {
        self.send_json(
            "PATCH /repos/{owner}/{repo}/issues/{issue_number}",
            &format!("/issues/{number}"),
            patch,
        )
        .await
    }

    /// Post a comment holding `marker` (a hidden HTML comment) once: if a comment with the
    /// marker exists it is returned (and edited to `body`) instead. `None` when the
    /// conversation is locked: the App may not write in it, and the job goes on without.
    pub async fn comment_once(
        &self,
        number: u64,
        marker: &str,
        body: &str,
    ) -> Result<Option<Comment>, GitHubError> {
        let existing = self.comments(number, 1000).await?;
        self.comment_once_among(number, marker, body, &existing)
            .await
    }

    /// Show a status comment: edit comment `id` when it is known, else post `body` on issue
    /// `number` once (found again by its marker, so a re-run edits rather than duplicates).
    pub async fn show_status(
        &self,
        id: Option<u64>,
        number: u64,
        marker: &str,
        body: &str,
    ) -> Result<(), GitHubError> {
        match id {
            Some(id) => unless_locked(self.update_comment(id, body).await).map(|_| ()),
            None => self.comment_once(number, marker, body).await.map(|_| ()),
        }
    }

    /// [`Repo::comment_once`] when the issue's comments were just listed (saves a request).
    /// Only a comment the App wrote itself counts: anyone can paste a marker.
    pub async fn comment_once_among(
        &self,
        number: u64,
        marker: &str,
        body: &str,
        existing: &[Comment],
    ) -> Result<Option<Comment>, GitHubError> {
        if let Some(found) = self.own_with_marker(existing, marker).await? {
            // Compared as GitHub keeps it: a body cut to fit is not edited again on every run.
            if found.body.as_deref() != Some(&*fit_body(body)) {
                return unless_locked(self.update_comment(found.id, body).await);
            }
            return Ok(Some(found));
        }
        let made = self
            .create_once(
                "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
                &format!("/issues/{number}/comments"),
                &json!({"body": body}),
                async || self.find_comment(number, marker).await,
            )
            .await;
        unless_locked(made.map(|(comment, _)| comment))
    }

    /// The first comment the App wrote whose body contains `marker`.
    async fn own_with_marker(
        &self,
        comments: &[Comment],
        marker: &str,
    ) -> Result<Option<Comment>, GitHubError> {
        for c in comments {
            if c.body.as_deref().unwrap_or("").contains(marker) && self.gh.wrote(c).await? {
                return Ok(Some(c.clone()));
            }
        }
        Ok(None)
    }

    /// The first comment the App wrote whose body contains `marker`.
    pub async fn find_comment(
        &self,
        number: u64,
        marker: &str,
    ) -> Result<Option<Comment>, GitHubError> {
        let comments = self.comments(number, 1000).await?;
        self.own_with_marker(&comments, marker).await
    }

    pub async fn update_comment(&self, id: u64, body: &str) -> Result<Comment, GitHubError> {
        self.send_json(
            "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}",
            &format!("/issues/comments/{id}"),
            &json!({"body": body}),
        )
        .await
    }

    /// React to an issue or a comment (GitHub answers 200 instead of 201 for a reaction that
    /// exists, so a second call changes nothing). Nothing, in a locked conversation.
    pub async fn react(&self, on: ReactOn, content: &str) -> Result<(), GitHubError> {
        let (route, rest) = match on {
            ReactOn::Issue(number) => (
                "POST /repos/{owner}/{repo}/issues/{issue_number}/reactions",
                format!("/issues/{number}/reactions"),
            ),
            ReactOn::Comment(id) => (
                "POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
                format!("/issues/comments/{id}/reactions"),
            ),
        };
        let body = json!({"content": content});
        unless_locked(self.send(route, &rest, Some(&body)).await).map(|_| ())
    }

    /// Make sure a label exists (created with `color` if missing).
    pub async fn ensure_label(
        &self,
        name: &str,
        color: &str,
        description: &str,
    ) -> Result<(), GitHubError> {
        let route = "GET /repos/{owner}/{repo}/labels/{name}";
        let rest = format!("/labels/{}", enc(name));
        if unless_missing(self.send(route, &rest, None).await)?.is_some() {
            return Ok(());
        }
        let made = self
            .send(
                "POST /repos/{owner}/{repo}/labels",
                "/labels",
                Some(&json!({"name": name, "color": color, "description": description})),
            )
            .await;
        match made {
            // 422 "already_exists": someone made it meanwhile.
            Err(e) if e.status() != Some(422) => Err(e),
            _ => Ok(()),
        }
    }

    /// Make `child_id` (an issue **id**, not its number) a sub-issue of `parent`. Linking twice
    /// is fine. `Ok(false)` when this GitHub has no sub-issues (older GitHub Enterprise Server).
    pub async fn link_sub_issue(&self, parent: u64, child_id: u64) -> Result<bool, GitHubError> {
        self.link(IssueLink::SubIssue, parent, child_id).await
    }

    /// Record that `issue` is blocked by `blocker_id` (an issue id). `Ok(false)` where the API
    /// is missing. Recording twice is fine; any other refusal is an error.
    pub async fn add_blocked_by(&self, issue: u64, blocker_id: u64) -> Result<bool, GitHubError> {
        self.link(IssueLink::BlockedBy, issue, blocker_id).await
    }

    /// Link `issue` to the issue with id `other_id`. A 422 is success only when the link is
    /// listed afterwards (it was there already); a 404 is `Ok(false)` when the issue exists,
    /// since then the route is what this GitHub lacks.
    async fn link(&self, link: IssueLink, issue: u64, other_id: u64) -> Result<bool, GitHubError> {
        let (add, list, below, field) = link.api();
        let rest = format!("/issues/{issue}/{below}");
        let mut payload = serde_json::Map::new();
        payload.insert(field.to_string(), other_id.into());
        match self.send(add, &rest, Some(&Value::Object(payload))).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => match unless_missing(self.issue(issue).await)? {
                Some(_) => Ok(false),
                None => Err(e),
            },
            Err(e) if e.status() == Some(422) => {
                let linked: Vec<Issue> = self.get(list, &format!("{rest}?per_page=100")).await?;
                if linked.iter().any(|i| i.id == other_id) {
                    Ok(true)
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }
}
