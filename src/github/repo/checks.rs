//! Check runs the App writes itself (the "spec coverage" check): one per name and commit,
//! found again by its name and the App's id, created once and updated in place after that.
//!
//! Creating or updating a check run needs the `checks: write` permission; an installation that
//! has not accepted it answers `403` ("Resource not accessible by integration"), which the
//! caller sees as [`GitHubError::Status`] with status 403.

use serde_json::{Value, json};

use super::{GitHubError, Repo, enc};
use crate::github::model::{CheckRun, CheckRunList};

/// How a completed check run ends and what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckRunOutcome<'a> {
    pub name: &'a str,
    /// `success`, `failure`, `neutral`, …
    pub conclusion: &'a str,
    pub title: &'a str,
    /// Markdown, at most 65,535 characters.
    pub summary: &'a str,
    /// Markdown, at most 65,535 characters; empty for none.
    pub text: &'a str,
    /// Written even when the run already says exactly this: someone asked for a re-run, and
    /// GitHub queued the run's suite again, waiting for the App to write the run.
    pub rewrite: bool,
}

impl CheckRunOutcome<'_> {
    /// The run already says exactly this.
    fn shown_by(&self, run: &CheckRun) -> bool {
        let output = run.output.clone().unwrap_or_default();
        run.status.as_deref() == Some("completed")
            && run.conclusion.as_deref() == Some(self.conclusion)
            && output.title.as_deref() == Some(self.title)
            && output.summary.as_deref() == Some(self.summary)
            && output.text.as_deref().unwrap_or("") == self.text
    }

    fn fields(&self) -> Value {
        let mut output = json!({"title": self.title, "summary": self.summary});
        if !self.text.is_empty() {
            output["text"] = json!(self.text);
        }
        json!({"status": "completed", "conclusion": self.conclusion, "output": output})
    }
}

impl Repo {
    /// This App's newest check run named `name` on commit `sha`, if there is one.
    pub async fn own_check_run(
        &self,
        sha: &str,
        name: &str,
    ) -> Result<Option<CheckRun>, GitHubError> {
        let app = self.gh.app_id();
        let mut rest = format!(
            "/commits/{}/check-runs?check_name={}&filter=all&per_page=100",
            enc(sha),
            enc(name)
        );
        if let Some(app) = app {
            rest.push_str(&format!("&app_id={app}"));
        }
        let list: CheckRunList = self
            .get("GET /repos/{owner}/{repo}/commits/{ref}/check-runs", &rest)
            .await?;
        let ours = |run: &CheckRun| {
            run.name == name && app.is_none_or(|id| run.app.as_ref().is_some_and(|a| a.id == id))
        };
        Ok(list.check_runs.into_iter().find(ours))
    }

    /// Show `outcome` as this App's completed check run on `sha`: the existing run of that
    /// name is updated (left alone when it already says exactly this), else one is created.
    /// A retried job or a redelivered event never makes a second run for the same commit.
    pub async fn show_check_run(
        &self,
        sha: &str,
        outcome: &CheckRunOutcome<'_>,
    ) -> Result<CheckRun, GitHubError> {
        if let Some(run) = self.own_check_run(sha, outcome.name).await? {
            if !outcome.rewrite && outcome.shown_by(&run) {
                return Ok(run);
            }
            return self
                .send_json(
                    "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}",
                    &format!("/check-runs/{}", run.id),
                    &outcome.fields(),
                )
                .await;
        }
        let mut payload = outcome.fields();
        payload["name"] = json!(outcome.name);
        payload["head_sha"] = json!(sha);
        self.create_once(
            "POST /repos/{owner}/{repo}/check-runs",
            "/check-runs",
            &payload,
            async || self.own_check_run(sha, outcome.name).await,
        )
        .await
        .map(|(run, _)| run)
    }
}
