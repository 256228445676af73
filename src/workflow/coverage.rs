//! The coverage job: the spec file on a spec PR's head commit, checked by the same code as
//! `specbot check-spec` ([`crate::spec::check_spec_file`]), becomes the "spec coverage" check
//! run on that commit (conclusion `success` when every criterion is covered and the core is
//! usable, `failure` otherwise), and its open questions become the spec's record and the
//! checklists in the spec PR's body and the status comment.
//!
//! It runs for every push to the spec branch (`pull_request` `opened`, `synchronize` and
//! `reopened` of the recorded spec PR: the bot's own revisions and people's commits alike) and
//! is queued by the spec and revise jobs for the head they pushed, so it does not wait for
//! GitHub's webhook. One job per head (the dedupe key holds the commit), and one check run per
//! head (found again by name and App before one is created). It writes nothing to the branch,
//! so it causes no push; its check run is on a spec branch, which the CI-fix job never acts on.
//!
//! Without the `checks: write` permission (an installation that has not accepted it yet
//! answers 403) the coverage goes into the spec PR's body between hidden markers, with a note
//! saying so, and the job still succeeds. The PR body and the record follow the branch's head
//! only: a job for an older commit writes that commit's check run and nothing else.

use crate::app::App;
use crate::github::repo::CheckRunOutcome;
use crate::github::{GitHubError, Repo};
use crate::jobs::Job;
use crate::messages::{self, COVERAGE_CHECK, CoverageReport};
use crate::workflow::branch::BotBranch;
use crate::workflow::job::{CoverageRequest, RepoTarget, spec_branch_key};
use crate::workflow::records::{self, SpecRecord, SpecState, issue_key};
use crate::workflow::step::{JobCtx, StepResult, load_config, repo_client};
use crate::workflow::{Ending, Workflow};

/// Open questions kept in the record at most (a person may add many to the file).
const MAX_QUESTIONS: usize = 50;

impl Workflow for CoverageRequest {
    const KIND: &'static str = "coverage";

    /// One check per head commit.
    fn dedupe_key(&self) -> String {
        format!(
            "coverage:{}#{}@{}",
            self.repo.repo_id, self.issue_number, self.head_sha
        )
    }

    /// In turn with the jobs that write the spec branch and its record: the check reads what
    /// they left.
    fn serial_key(&self) -> Option<String> {
        Some(spec_branch_key(self.repo.repo_id, self.issue_number))
    }

    async fn run(self, ctx: &mut JobCtx) -> StepResult {
        run(ctx, self).await
    }

    /// A coverage that failed for good before its check run was written is a red check run on
    /// its commit, saying why: a required check must not wait for ever with nothing said. A
    /// check run the job did write stands.
    async fn report(&self, app: &App, _job: &Job, end: Ending<'_>) -> Result<(), GitHubError> {
        let (Ending::Failed(error), Some(repo)) = (end, repo_client(app, &self.repo)?) else {
            return Ok(());
        };
        if repo
            .own_check_run(&self.head_sha, COVERAGE_CHECK)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let report = messages::coverage_not_checked(error);
        repo.show_check_run(&self.head_sha, &check_run(&report))
            .await?;
        Ok(())
    }
}

/// Queue the coverage job for `head` of the spec PR `pull` (the spec and revise jobs call this
/// for the head they pushed).
pub async fn queue(
    ctx: &JobCtx,
    target: &RepoTarget,
    issue_number: u64,
    pull_number: u64,
    head: &str,
) -> StepResult {
    let job = CoverageRequest {
        repo: target.clone(),
        pull_number,
        issue_number,
        head_sha: head.to_string(),
        rerun: false,
    }
    .into_job(ctx.app.settings.jobs.max_attempts);
    ctx.app.store.enqueue(&job, ctx.app.now()).await?;
    ctx.app.kick();
    Ok(())
}

async fn run(ctx: &mut JobCtx, req: CoverageRequest) -> StepResult {
    let store = &*ctx.app.store;
    let found = records::spec_of_pull(store, req.repo.repo_id, req.issue_number, req.pull_number);
    let Some(rec) = found.await? else {
        return Ok(());
    };
    let repo = ctx.repo(&req.repo)?;
    let path = if rec.path.is_empty() {
        let info = repo.info().await?;
        let (config, _) = load_config(&repo, &info.default_branch).await?;
        config.spec_path_for(req.issue_number)
    } else {
        rec.path.clone()
    };
    let check = repo
        .file(&path, &req.head_sha)
        .await?
        .map(|text| crate::spec::check_spec_file(&text));
    let report = messages::coverage_report(check.as_ref(), &path, rec.state.words());
    let outcome = CheckRunOutcome {
        rewrite: req.rerun,
        ..check_run(&report)
    };
    let fallback = match repo.show_check_run(&req.head_sha, &outcome).await {
        Ok(run) => {
            tracing::info!(check_run = run.id, conclusion = report.conclusion, head = %req.head_sha, "spec coverage shown");
            None
        }
        // A 403 that is not a rate limit: the installation has not granted `checks: write`.
        Err(e) if e.status() == Some(403) && !e.message().to_lowercase().contains("rate limit") => {
            tracing::warn!(error = %e, "no `checks: write`: the coverage goes into the spec PR's body");
            Some(&report)
        }
        Err(e) => return Err(e.into()),
    };
    let questions = match &check {
        Some(check) => {
            let mut questions = check.open_questions();
            questions.truncate(MAX_QUESTIONS);
            questions
        }
        // No file, no questions to read: the last ones known stand.
        None => rec.open_questions.clone(),
    };
    // The usual case (the check run written, the questions as recorded) needs nothing more.
    if fallback.is_none() && !rec.coverage_in_body && questions == rec.open_questions {
        return Ok(());
    }
    let branch = BotBranch::Spec(req.issue_number).to_string();
    if repo.branch_head(&branch).await?.as_deref() != Some(req.head_sha.as_str()) {
        tracing::info!(head = %req.head_sha, "not the spec branch's head any more: its check run is all this job writes");
        return Ok(());
    }
    if fallback.is_some() || rec.coverage_in_body {
        show_in_body(ctx, &repo, &req, fallback).await?;
    }
    record_questions(ctx, &repo, &req.repo, req.issue_number, questions, &path).await
}

/// The "spec coverage" check run that shows `report`.
fn check_run(report: &CoverageReport) -> CheckRunOutcome<'_> {
    CheckRunOutcome {
        name: COVERAGE_CHECK,
        conclusion: report.conclusion,
        title: &report.title,
        summary: &report.summary,
        text: &report.text,
        rewrite: false,
    }
}

/// The coverage section of the spec PR's body: the report, when there is no check run for it;
/// taken out once there is. Recorded, so that the usual run need not read the body.
async fn show_in_body(
    ctx: &JobCtx,
    repo: &Repo,
    req: &CoverageRequest,
    report: Option<&CoverageReport>,
) -> StepResult {
    let body = repo.pull(req.pull_number).await?.body.unwrap_or_default();
    let new = messages::with_coverage_section(&body, &req.head_sha, report);
    if new != body {
        repo.update_pull(req.pull_number, &serde_json::json!({ "body": new }))
            .await?;
    }
    let key = issue_key(req.repo.repo_id, req.issue_number);
    let store = &*ctx.app.store;
    if let Some(mut rec) = records::load::<SpecRecord>(store, &key).await? {
        rec.coverage_in_body = report.is_some();
        records::save(store, &key, &rec, ctx.app.now()).await?;
    }
    Ok(())
}

/// The spec's live status in its PR's body, edited only when it changed; the PR's head commit.
pub async fn show_spec_status(repo: &Repo, pull: u64, state: SpecState) -> StepResult<String> {
    let pr = repo.pull(pull).await?;
    let body = pr.body.unwrap_or_default();
    let new = messages::with_spec_status(&body, state.words());
    if new != body {
        repo.update_pull(pull, &serde_json::json!({ "body": new }))
            .await?;
    }
    Ok(pr.head.sha)
}

/// Record the spec's open questions; when they changed, the checklists in the spec PR's body
/// and in the status comment on the feature issue follow.
pub async fn record_questions(
    ctx: &JobCtx,
    repo: &Repo,
    target: &RepoTarget,
    issue_number: u64,
    questions: Vec<String>,
    spec_path: &str,
) -> StepResult {
    let key = issue_key(target.repo_id, issue_number);
    let store = &*ctx.app.store;
    let Some(mut rec) = records::load::<SpecRecord>(store, &key).await? else {
        return Ok(());
    };
    if rec.open_questions == questions {
        return Ok(());
    }
    if let Some(number) = rec.pull {
        let body = repo.pull(number).await?.body.unwrap_or_default();
        let new = messages::with_open_questions(&body, &questions, None, spec_path);
        if new != body {
            repo.update_pull(number, &serde_json::json!({ "body": new }))
                .await?;
        }
    }
    let marker = messages::status_marker(issue_number);
    if let Some(status) = repo.find_comment(issue_number, &marker).await? {
        let body = status.body.unwrap_or_default();
        let new = messages::with_open_questions(&body, &questions, rec.pull, spec_path);
        if new != body {
            repo.show_status(Some(status.id), issue_number, &marker, &new)
                .await?;
        }
    }
    rec.open_questions = questions;
    records::save(store, &key, &rec, ctx.app.now()).await
}
