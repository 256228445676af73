//! The implement job: `/implement` → engineer agent over a snapshot of the repository → one
//! commit on `specbot/implement-<n>` → a PR that closes the issue.
//!
//! Steps (checkpoint names `implement:<step>`), each checkpointed so a retried or resumed job
//! continues where it stopped:
//!
//! 1. `ack` — the one status comment on the issue ("Implementing…"), found again by marker.
//! 2. `spec` — the spec read (default branch, or the spec PR's branch) and named in the status;
//!    the criteria of the scope read from it with their IDs (every criterion, or the
//!    component's), which the engineer answers for by ID.
//! 3. `engineer` — the component, the repository's conventions files and what people with
//!    write access wrote on the issue (the rest is left out, and the status says how much); a
//!    snapshot of the
//!    base (the implementation branch when it exists, so a re-run continues the earlier work;
//!    else the default branch) from the tarball endpoint; the agent loop; the redacted
//!    transcript stored; the changes, summary and criteria kept in the checkpoint so a crash
//!    after this never pays the model twice.
//! 4. `commit` — a last secret scan over everything to be pushed, then every change in one
//!    commit (Git Data API) with the attribution trailer.
//! 5. `pull` — find or open the PR from that branch (`Closes #<n>`), body per criterion: each
//!    criterion of the scope with its status, files and tests as reported, held to the scope.
//! 6. `done` — the implementation's record (for CI fixes) and the final status.

use serde::{Deserialize, Serialize};

use crate::agent::SecretScanner;
use crate::app::App;
use crate::config::repo::RepoConfig;
use crate::github::model::Repository;
use crate::github::{GitHubError, Repo};
use crate::jobs::Job;
use crate::messages::{self, ImplementPull, ImplementStage, ImplementStatus};
use crate::spec::Component;
use crate::workflow::branch::BotBranch;
use crate::workflow::engineer::{self, Assignment, Engineered};
use crate::workflow::job::{ImplementRequest, implement_job_key};
use crate::workflow::quota::{Admission, admit};
use crate::workflow::records::{self, ImplementationRecord, SpecRecord, SpecState, issue_key};
use crate::workflow::spend::Spend;
use crate::workflow::step::load_config;
use crate::workflow::step::{JobCtx, StepError, StepResult, last_progress};
use crate::workflow::watch::StatusBoard;
use crate::workflow::{Ending, Workflow};

/// What the job has done so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImplementProgress {
    pub status_comment: Option<u64>,
    /// (spec path, ref it was read from)
    pub spec: Option<(String, String)>,
    /// The criteria the engineer answers for, read from that spec file (empty: no IDs in it).
    pub criteria: Vec<crate::spec::Criterion>,
    pub result: Option<Engineered>,
    #[serde(flatten)]
    pub spend: Spend,
    pub head: Option<String>,
    pub pull: Option<(u64, String)>,
    /// Texts by people without write access left out of the engineer's input.
    pub left_out: usize,
    /// What is wrong in `.github/specbot.yml` (defaults used), for the status comment.
    pub config_problems: Vec<String>,
}

impl Workflow for ImplementRequest {
    const KIND: &'static str = "implement";

    fn dedupe_key(&self) -> String {
        implement_job_key(self.repo.repo_id, self.issue_number)
    }

    async fn run(self, ctx: &mut JobCtx) -> StepResult {
        run(ctx, self).await
    }

    /// Say so in the status comment.
    async fn report(&self, app: &App, job: &Job, end: Ending<'_>) -> Result<(), GitHubError> {
        let Some((repo, progress)) =
            last_progress::<ImplementProgress>(app, job, &self.repo).await?
        else {
            return Ok(());
        };
        let (stage, error) = end.shown_as(ImplementStage::Failed, ImplementStage::Cancelled);
        // The component's title is not needed to say what went wrong.
        show(&repo, self, &progress, None, stage, error).await
    }
}

/// Where the job works: the repository, its settings, the spec's record and the component.
struct Desk<'a> {
    repo: &'a Repo,
    req: &'a ImplementRequest,
    info: &'a Repository,
    config: &'a RepoConfig,
    spec_record: Option<&'a SpecRecord>,
    component: Option<&'a Component>,
}

impl Desk<'_> {
    async fn show(&self, progress: &ImplementProgress, stage: ImplementStage) -> StepResult {
        show(self.repo, self.req, progress, self.component, stage, None).await?;
        Ok(())
    }
}

/// Show the status comment at `stage`.
async fn show(
    repo: &Repo,
    req: &ImplementRequest,
    progress: &ImplementProgress,
    component: Option<&Component>,
    stage: ImplementStage,
    error: Option<&str>,
) -> Result<(), GitHubError> {
    let status = status(req, progress, component, stage, error.map(str::to_string));
    let marker = messages::implement_marker(req.issue_number);
    let body = messages::implement_status(&status);
    repo.show_status(progress.status_comment, req.issue_number, &marker, &body)
        .await
}

async fn run(ctx: &mut JobCtx, req: ImplementRequest) -> StepResult {
    let repo = ctx.repo(&req.repo)?;
    let info = repo.info().await?;
    let (config, problems) = load_config(&repo, &info.default_branch).await?;
    if admit(ctx, &req.repo, Some(&req.requested_by)).await? == Admission::Drop {
        return Ok(());
    }
    let mut progress: ImplementProgress = ctx.progress()?;
    progress.config_problems = problems;
    let key = issue_key(req.repo.repo_id, req.spec_issue);
    let spec_record: Option<SpecRecord> = records::load(&*ctx.app.store, &key).await?;
    let component = match &req.component {
        Some(slug) => Some(component_of(spec_record.as_ref(), slug, req.spec_issue)?),
        None => None,
    };
    let desk = Desk {
        repo: &repo,
        req: &req,
        info: &info,
        config: &config,
        spec_record: spec_record.as_ref(),
        component: component.as_ref(),
    };
    if progress.status_comment.is_none() {
        let status = status(
            &req,
            &progress,
            component.as_ref(),
            ImplementStage::Working,
            None,
        );
        let comment = repo
            .comment_once(
                req.issue_number,
                &messages::implement_marker(req.issue_number),
                &messages::implement_status(&status),
            )
            .await?;
        progress.status_comment = comment.map(|c| c.id);
        ctx.save("implement:ack", &progress).await?;
    }
    if progress.result.is_none() {
        let result = engineer_step(ctx, &desk, &mut progress).await?;
        progress.result = Some(result);
        ctx.save("implement:engineer", &progress).await?;
    }
    let result = progress
        .result
        .clone()
        .ok_or_else(|| StepError::permanent("no engineer result"))?;
    publish(ctx, &desk, &result, &mut progress).await?;
    finish(ctx, &desk, &progress).await
}

/// The component `/implement` was asked for, as the current spec defines it.
fn component_of(record: Option<&SpecRecord>, slug: &str, spec_issue: u64) -> StepResult<Component> {
    record
        .iter()
        .flat_map(|r| r.designed.iter())
        .find(|c| c.slug() == slug)
        .cloned()
        .ok_or_else(|| {
            StepError::permanent(format!(
                "the component `{slug}` is not in the current spec of #{spec_issue} (was it removed by a revision?)"
            ))
        })
}

/// Read the spec, take a snapshot of the base, and let the engineer work on it.
async fn engineer_step(
    ctx: &mut JobCtx,
    desk: &Desk<'_>,
    progress: &mut ImplementProgress,
) -> StepResult<Engineered> {
    let (repo, req, config) = (desk.repo, desk.req, desk.config);
    let default_branch = &desk.info.default_branch;
    let (spec_path, spec_ref) = spec_location(req, desk.spec_record, config, default_branch);
    let spec_text = repo.file(&spec_path, &spec_ref).await?.ok_or_else(|| {
        StepError::permanent(messages::no_spec_at(
            &spec_path,
            &spec_ref,
            req.spec_issue,
            &config.trigger_label,
        ))
    })?;
    progress.spec = Some((spec_path.clone(), spec_ref));
    progress.criteria = crate::spec::criteria_in_scope(&spec_text, desk.component);
    desk.show(progress, ImplementStage::Working).await?;
    ctx.save("implement:spec", progress).await?;
    let branch = BotBranch::Implementation(req.issue_number).to_string();
    let base = match repo.branch_head(&branch).await? {
        Some(sha) => sha,
        None => repo.branch_head(default_branch).await?.ok_or_else(|| {
            StepError::permanent(format!(
                "the default branch `{default_branch}` has no commits"
            ))
        })?,
    };
    let mut workspace = engineer::snapshot(repo, &base).await?;
    let heard = engineer::maintainers_words(ctx, repo, req.issue_number).await?;
    progress.left_out = heard.left_out;
    let input = crate::prompt::templates::EngineerInput {
        issue_number: req.issue_number,
        spec_path,
        spec: spec_text,
        component: desk.component.cloned(),
        criteria: progress.criteria.clone(),
        context_blocks: engineer::conventions(&workspace, heard),
        tools: crate::agent::tool_notes(),
    };
    let custom = match &config.engineer_prompt {
        Some(path) => repo.file(path, default_branch).await?,
        None => None,
    };
    let prompt = crate::prompt::templates::render_engineer(&input, custom.as_deref())
        .map_err(|e| StepError::permanent(e.to_string()))?;
    // The status comment shows the engineer's step and action as it works.
    let working = status(req, progress, desk.component, ImplementStage::Working, None);
    let render = move |live: &messages::LiveWork| messages::implement_live(&working, live);
    let work = Assignment {
        prompt: &prompt,
        config,
        target: &req.repo,
        issue_number: req.issue_number,
        board: progress.status_comment.map(|comment_id| StatusBoard {
            repo,
            comment_id,
            render: &render,
        }),
    };
    let result = engineer::engineer(ctx, &work, &mut workspace, &mut progress.spend).await?;
    if result.changes.is_empty() {
        return Err(StepError::permanent(messages::engineer_changed_nothing(
            &result.summary,
        )));
    }
    // The snapshot's directory is removed before the checkpoint (and its crash point).
    drop(workspace);
    Ok(result)
}

/// Commit the engineer's changes and open the PR.
async fn publish(
    ctx: &mut JobCtx,
    desk: &Desk<'_>,
    result: &Engineered,
    progress: &mut ImplementProgress,
) -> StepResult {
    let (repo, req) = (desk.repo, desk.req);
    let branch = BotBranch::Implementation(req.issue_number).to_string();
    let default_branch = &desk.info.default_branch;
    if progress.head.is_some() && progress.pull.is_some() {
        return Ok(());
    }
    let title =
        messages::implement_title(req.issue_number, &repo.issue(req.issue_number).await?.title);
    if progress.head.is_none() {
        let scanner = SecretScanner::new(ctx.app.settings.own_secrets());
        engineer::check_clean(&scanner, result)?;
        let message = messages::commit_message(
            &title,
            &result.summary,
            req.spec_issue,
            &result.model,
            desk.config.implement.attribution,
        );
        let changes = engineer::to_github(&result.changes);
        let pushed = repo
            .commit_files(&branch, default_branch, &message, &changes)
            .await?;
        progress.head = Some(pushed.head);
        ctx.save("implement:commit", progress).await?;
    }
    if progress.pull.is_none() {
        let (spec_path, spec_ref) = progress.spec.clone().unwrap_or_default();
        let body = messages::implement_pull_body(&ImplementPull {
            issue: req.issue_number,
            spec_issue: req.spec_issue,
            spec_path,
            spec_ref,
            component: desk.component.map(|c| c.title.clone()),
            summary: result.summary.clone(),
            scope: progress.criteria.clone(),
            criteria: result.criteria.clone(),
            files: result
                .changes
                .iter()
                .map(|c| (c.path.clone(), c.content.is_none()))
                .collect(),
            refusals: result.log.refusals.clone(),
            skipped: result.skipped.clone(),
            model: result.model.clone(),
            steps: result.log.steps,
            tokens: progress.spend.tokens,
            cost_usd: result.cost_known.then_some(progress.spend.cost_usd),
            verification: Some(verification(result)),
        });
        // Failing tests: pushed all the same (nothing is lost), but not ready for review.
        let draft = result.log.tests_pass == Some(false);
        let (pull, _) = repo
            .open_pull(&branch, default_branch, &title, &body, draft)
            .await?;
        progress.pull = Some((pull.number, pull.html_url.clone()));
        ctx.save("implement:pull", progress).await?;
    }
    Ok(())
}

/// What the bot ran, for the PR body.
fn verification(result: &Engineered) -> messages::Verification {
    messages::Verification {
        runs: result.log.runs.clone(),
        test: result.test.clone(),
        tests_pass: result.log.tests_pass,
        not_run: result.not_run.clone(),
    }
}

/// The implementation's record (for CI fixes) and the final status.
async fn finish(ctx: &mut JobCtx, desk: &Desk<'_>, progress: &ImplementProgress) -> StepResult {
    let req = desk.req;
    let key = issue_key(req.repo.repo_id, req.issue_number);
    let store = &*ctx.app.store;
    let previous: ImplementationRecord = records::load(store, &key).await?.unwrap_or_default();
    let (spec_path, spec_ref) = progress.spec.clone().unwrap_or_default();
    let record = ImplementationRecord {
        branch: BotBranch::Implementation(req.issue_number).to_string(),
        pull: progress.pull.as_ref().map(|p| p.0),
        spec_issue: req.spec_issue,
        spec_path,
        spec_ref,
        component: req.component.clone(),
        // A new `/implement` starts a fresh budget of fix rounds.
        fix_attempts: 0,
        handled_heads: previous.handled_heads,
    };
    records::save(store, &key, &record, ctx.app.now()).await?;
    desk.show(progress, ImplementStage::Done).await?;
    ctx.save("implement:done", progress).await
}

/// Where to read the spec: the path the spec job recorded (or the configured one), on the
/// default branch once merged, on the spec PR's branch otherwise.
fn spec_location(
    req: &ImplementRequest,
    record: Option<&SpecRecord>,
    config: &RepoConfig,
    default_branch: &str,
) -> (String, String) {
    let path = record
        .map(|r| r.path.clone())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| config.spec_path_for(req.spec_issue));
    let git_ref = match record {
        Some(r) if req.from_spec_branch && r.state != SpecState::Merged && !r.branch.is_empty() => {
            r.branch.clone()
        }
        _ => default_branch.to_string(),
    };
    (path, git_ref)
}

fn status(
    req: &ImplementRequest,
    p: &ImplementProgress,
    component: Option<&Component>,
    stage: ImplementStage,
    error: Option<String>,
) -> ImplementStatus {
    ImplementStatus {
        issue: req.issue_number,
        stage,
        spec: p.spec.clone(),
        component: component.map(|c| c.title.clone()),
        pr: p.pull.clone(),
        tokens: p.spend.tokens,
        cost_usd: p.spend.cost_usd,
        error,
        left_out: p.left_out,
        test: p.result.as_ref().and_then(|r| r.test.clone()),
        tests_pass: p.result.as_ref().and_then(|r| r.log.tests_pass),
        left_out_files: p
            .result
            .iter()
            .flat_map(|r| r.skipped.iter())
            .filter(|e| e.reason.starts_with("larger than"))
            .map(|e| format!("`{}`: {}", e.path.replace('`', "'"), e.reason))
            .collect(),
        config_problems: p.config_problems.clone(),
        criteria: p
            .result
            .as_ref()
            .and_then(|r| messages::criteria_tally(&p.criteria, &r.criteria)),
    }
}
