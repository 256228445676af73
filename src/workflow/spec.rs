//! The spec job: `needs-spec` label or `/spec` → architect prompt → spec PR → one sub-issue per
//! component.
//!
//! Steps, each checkpointed in the job so a retried or resumed job continues where it stopped:
//!
//! 1. `gate` — the label is the repository's trigger label; the requester may write.
//! 2. `ack` — 👀 on the issue and the one status comment ("Drafting…"), found again by marker.
//! 3. `draft` — context gathered, architect prompt run, answer parsed and validated (one repair
//!    round), the result kept in the checkpoint so a crash after this never pays twice.
//! 4. `commit` — every file in one commit on `specbot/spec-<n>` (Git Data API).
//! 5. `pull` — find or open the PR from that branch (`Refs #<n>`).
//! 6. `component:<slug>` — find (store record, then marker) or file each component issue, link it
//!    as a sub-issue, record its dependencies.
//! 7. `done` — the spec's state is recorded and the status comment links everything.

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::config::repo::RepoConfig;
use crate::github::model::{Comment, Issue, Permission, Repository};
use crate::github::{GitHubError, ReactOn, Repo};
use crate::jobs::Job;
use crate::messages::{self, SpecPhase, SpecStage, SpecStatus};
use crate::spec::SpecAnswer;
use crate::workflow::branch::BotBranch;
use crate::workflow::components::{self, Filed};
use crate::workflow::job::{SpecRequest, SpecTrigger, spec_branch_key, spec_job_key};
use crate::workflow::quota::{self, Admission, admit};
use crate::workflow::records::{self, SpecRecord, SpecState, issue_key};
use crate::workflow::spend::Spend;
use crate::workflow::step::{JobCtx, StepResult, last_progress, load_config};
use crate::workflow::watch::{PhaseBoard, Throttle};
use crate::workflow::{Ending, Workflow, context, coverage};

/// What the job has done so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SpecProgress {
    pub status_comment: Option<u64>,
    pub config_problems: Vec<String>,
    /// Where the spec file goes (from the repository's config).
    pub spec_path: String,
    pub answer: Option<SpecAnswer>,
    #[serde(flatten)]
    pub spend: Spend,
    /// The default branch's commit the context was read at (the spec's base commit).
    pub base_commit: Option<String>,
    /// The spec file a re-run replaces: the record of the requirement IDs issued so far.
    pub previous: Option<String>,
    pub head: Option<String>,
    pub pull: Option<(u64, String)>,
    /// Component slug → (issue number, issue id).
    pub components: Filed,
}

impl Workflow for SpecRequest {
    const KIND: &'static str = "spec";

    fn dedupe_key(&self) -> String {
        spec_job_key(self.repo.repo_id, self.issue_number)
    }

    fn serial_key(&self) -> Option<String> {
        Some(spec_branch_key(self.repo.repo_id, self.issue_number))
    }

    async fn run(self, ctx: &mut JobCtx) -> StepResult {
        run(ctx, self).await
    }

    /// Say so in the status comment, in plain words.
    async fn report(&self, app: &App, job: &Job, end: Ending<'_>) -> Result<(), GitHubError> {
        let Some((repo, progress)) = last_progress::<SpecProgress>(app, job, &self.repo).await?
        else {
            return Ok(());
        };
        let (stage, error) = end.shown_as(SpecStage::Failed, SpecStage::Cancelled);
        show(&repo, self, &progress, stage, error).await
    }
}

/// Where the job works: the repository, its settings, and the issue.
struct Desk<'a> {
    repo: &'a Repo,
    req: &'a SpecRequest,
    info: &'a Repository,
    config: &'a RepoConfig,
    issue: &'a Issue,
    /// Paces the status comment's phase edits.
    throttle: std::sync::Mutex<Throttle>,
}

async fn run(ctx: &mut JobCtx, req: SpecRequest) -> StepResult {
    let repo = ctx.repo(&req.repo)?;
    let info = repo.info().await?;
    let (config, problems) = load_config(&repo, &info.default_branch).await?;
    if !gate(ctx, &repo, &req, &config).await? {
        return Ok(());
    }
    if admit(ctx, &req.repo, Some(&req.requested_by)).await? == Admission::Drop {
        return Ok(());
    }
    let mut progress: SpecProgress = ctx.progress()?;
    progress.config_problems = problems;
    progress.spec_path = config.spec_path_for(req.issue_number);
    let issue = repo.issue(req.issue_number).await?;
    let comments = repo.comments(req.issue_number, 100).await?;
    let desk = Desk {
        repo: &repo,
        req: &req,
        info: &info,
        config: &config,
        issue: &issue,
        throttle: std::sync::Mutex::new(Throttle::new(
            ctx.app.settings.github.status_edit_gap.unwrap_or_default(),
        )),
    };
    acknowledge(ctx, &desk, &comments, &mut progress).await?;
    let answer = draft(ctx, &desk, &comments, &mut progress).await?;
    publish(ctx, &desk, &answer, &mut progress).await?;
    finish(ctx, &desk, &answer, &progress).await
}

/// The architect's answer: from the checkpoint when an earlier attempt got it, else gathered,
/// asked for and checkpointed.
async fn draft(
    ctx: &mut JobCtx,
    desk: &Desk<'_>,
    comments: &[Comment],
    progress: &mut SpecProgress,
) -> StepResult<SpecAnswer> {
    if let Some(answer) = &progress.answer {
        return Ok(answer.clone());
    }
    let (repo, config, default_branch) = (desk.repo, desk.config, &desk.info.default_branch);
    let app = ctx.app.clone();
    let board = phase_board(&app, desk, progress);
    if let Some(b) = &board {
        b.show(SpecPhase::ReadingContext).await;
    }
    let (mut input, base_commit) =
        context::gather_for_spec(repo, desk.issue, comments, config, default_branch).await?;
    let previous = previous_spec(ctx, desk, &mut input).await?;
    let model = ctx.model(config.model.as_deref())?;
    let prompt =
        context::architect_prompt(repo, config, default_branch, &input, model.context_tokens())
            .await?;
    if let Some(b) = &board {
        b.show(SpecPhase::Drafting).await;
    }
    let mut session = context::ArchitectSession::new(&prompt, &config.artifacts);
    if let Some(previous) = &previous {
        session = session.revising(previous);
    }
    progress.base_commit = Some(base_commit);
    progress.previous = previous;
    let drafted = context::ask_architect(
        ctx,
        &*model,
        session,
        config.max_cost_usd,
        &mut progress.spend,
        board.as_ref(),
    )
    .await?;
    ctx.keep("draft", progress, |p| &mut p.answer, drafted)
        .await
}

/// The spec file a re-run replaces, the record of the requirement IDs issued so far: the one on
/// the spec branch when an earlier run made it (shown to the architect too, so that it can keep
/// their IDs), else the default branch's copy (a merged spec) among the documents read. A first
/// run asks GitHub for nothing more.
async fn previous_spec(
    ctx: &JobCtx,
    desk: &Desk<'_>,
    input: &mut crate::prompt::context::ContextInput,
) -> StepResult<Option<String>> {
    let number = desk.req.issue_number;
    let spec_path = desk.config.spec_path_for(number);
    let key = issue_key(desk.req.repo.repo_id, number);
    if let Some(rec) = records::load::<SpecRecord>(&*ctx.app.store, &key).await? {
        let path = if rec.path.is_empty() {
            &spec_path
        } else {
            &rec.path
        };
        let branch = BotBranch::Spec(number).to_string();
        if let Some(text) = desk.repo.file(path, &branch).await? {
            context::show_current_spec(input, path, &text);
            return Ok(Some(text));
        }
    }
    Ok(input
        .docs
        .iter()
        .find(|d| d.path == spec_path)
        .map(|d| d.text.clone()))
}

/// Whether the job goes ahead: the label is the repository's trigger label (a label job), and
/// the requester may write (anyone else gets one polite reply).
async fn gate(
    ctx: &JobCtx,
    repo: &Repo,
    req: &SpecRequest,
    config: &RepoConfig,
) -> StepResult<bool> {
    if let SpecTrigger::Label { name } = &req.trigger
        && !name.eq_ignore_ascii_case(&config.trigger_label)
    {
        tracing::debug!(label = %name, "not the trigger label");
        return Ok(false);
    }
    let permission = ctx.app.permission(repo, &req.requested_by).await?;
    if permission >= Permission::Write {
        return Ok(true);
    }
    let marker = match &req.trigger {
        SpecTrigger::Command { comment_id } => messages::reply_marker(*comment_id),
        SpecTrigger::Label { .. } => messages::delivery_reply_marker(&req.delivery_id),
    };
    quota::refuse(ctx, repo, req.issue_number, &req.requested_by, &marker).await?;
    Ok(false)
}

/// 👀 on the issue and the one status comment.
async fn acknowledge(
    ctx: &mut JobCtx,
    desk: &Desk<'_>,
    comments: &[Comment],
    progress: &mut SpecProgress,
) -> StepResult {
    if progress.status_comment.is_some() {
        return Ok(());
    }
    let issue = desk.req.issue_number;
    desk.repo.react(ReactOn::Issue(issue), "eyes").await?;
    let status = status(desk.req, progress, SpecStage::Drafting, None);
    let comment = desk
        .repo
        .comment_once_among(
            issue,
            &messages::status_marker(issue),
            &messages::spec_status(&status),
            comments,
        )
        .await?;
    progress.status_comment = comment.map(|c| c.id);
    ctx.save("ack", progress).await
}

/// Commit the spec's files, open its PR, file its component issues.
async fn publish(
    ctx: &mut JobCtx,
    desk: &Desk<'_>,
    answer: &SpecAnswer,
    progress: &mut SpecProgress,
) -> StepResult {
    let req = desk.req;
    let branch = BotBranch::Spec(req.issue_number).to_string();
    let spec_path = desk.config.spec_path_for(req.issue_number);
    let default_branch = &desk.info.default_branch;
    let app = ctx.app.clone();
    if progress.head.is_none() {
        if let Some(b) = phase_board(&app, desk, progress) {
            b.show(SpecPhase::Committing).await;
        }
        let meta = crate::spec::SpecFileMeta {
            issue_number: req.issue_number,
            issue_title: desk.issue.title.clone(),
            base_commit: progress.base_commit.clone(),
            date: Some(crate::spec::utc_date(ctx.app.now())),
            model: ctx
                .model(desk.config.model.as_deref())
                .ok()
                .map(|m| m.model().to_string()),
            requested_by: Some(req.requested_by.clone()),
            previous: progress.previous.clone(),
        };
        let files = crate::spec::files_for(answer, &spec_path, &meta);
        let message = messages::spec_commit(req.issue_number, &desk.issue.title);
        let pushed = desk
            .repo
            .commit_files(
                &branch,
                default_branch,
                &message,
                &components::changes(files),
            )
            .await?;
        progress.head = Some(pushed.head);
        ctx.save("commit", progress).await?;
    }
    if progress.pull.is_none() {
        let title = messages::spec_pull_title(req.issue_number, &desk.issue.title);
        let body = messages::with_spec_status(
            &messages::spec_pull_body(
                req.issue_number,
                &spec_path,
                &answer.components,
                &answer.dropped,
                &answer.gaps,
                &answer.filed_open_questions(),
            ),
            SpecState::InReview.words(),
        );
        let (pull, _) = desk
            .repo
            .open_pull(&branch, default_branch, &title, &body, false)
            .await?;
        progress.pull = Some((pull.number, pull.html_url.clone()));
        show(desk.repo, req, progress, SpecStage::FilingIssues, None).await?;
        ctx.save("pull", progress).await?;
    }
    if desk.config.follow_up_issues {
        let board = phase_board(&app, desk, progress);
        let spec_url = components::spec_url(desk.info, progress.head.as_deref(), &spec_path);
        let at = components::Filing {
            repo: desk.repo,
            target: &req.repo,
            spec_issue: req.issue_number,
            config: desk.config,
            spec_path: &spec_path,
            spec_url: spec_url.as_deref(),
            board: board.as_ref(),
        };
        components::file(ctx, &at, answer, progress, |p| &mut p.components).await?;
    }
    Ok(())
}

/// Record the spec's state and show the finished status.
async fn finish(
    ctx: &mut JobCtx,
    desk: &Desk<'_>,
    answer: &SpecAnswer,
    progress: &SpecProgress,
) -> StepResult {
    let req = desk.req;
    let record = SpecRecord {
        state: SpecState::InReview,
        branch: BotBranch::Spec(req.issue_number).to_string(),
        path: desk.config.spec_path_for(req.issue_number),
        pull: progress.pull.as_ref().map(|p| p.0),
        components: components::numbers(&progress.components),
        designed: answer.components.clone(),
        pull_url: progress.pull.as_ref().map(|p| p.1.clone()),
        open_questions: answer.filed_open_questions(),
        ..SpecRecord::default()
    };
    let key = issue_key(req.repo.repo_id, req.issue_number);
    records::save(&*ctx.app.store, &key, &record, ctx.app.now()).await?;
    show(desk.repo, req, progress, SpecStage::Done, None).await?;
    if let (Some((pull, _)), Some(head)) = (&progress.pull, &progress.head) {
        coverage::queue(ctx, &req.repo, req.issue_number, *pull, head).await?;
    }
    ctx.save("done", progress).await
}

/// The status comment as a board for the job's phases, drawn from the progress so far.
fn phase_board<'a>(
    app: &'a App,
    desk: &'a Desk<'a>,
    progress: &SpecProgress,
) -> Option<PhaseBoard<'a>> {
    let comment_id = progress.status_comment?;
    app.settings.github.status_edit_gap?;
    let base = status(desk.req, progress, SpecStage::Drafting, None);
    Some(PhaseBoard::new(
        app,
        desk.repo,
        comment_id,
        &desk.throttle,
        move |phase, elapsed| {
            let mut now = base.clone();
            now.stage = match phase {
                SpecPhase::Committing => SpecStage::Committing,
                SpecPhase::Filing { .. } => SpecStage::FilingIssues,
                _ => SpecStage::Drafting,
            };
            messages::spec_status(&now) + &messages::spec_phase(phase, elapsed)
        },
    ))
}

fn status(
    req: &SpecRequest,
    p: &SpecProgress,
    stage: SpecStage,
    error: Option<String>,
) -> SpecStatus {
    let mut components: Vec<(u64, String)> = Vec::new();
    let mut open_questions = Vec::new();
    if let Some(answer) = &p.answer {
        for c in &answer.components {
            if let Some((number, _)) = p.components.get(&c.slug()) {
                components.push((*number, c.title.clone()));
            }
        }
        if stage == SpecStage::Done {
            open_questions = answer.filed_open_questions();
        }
    }
    SpecStatus {
        issue: req.issue_number,
        stage,
        pr: p.pull.clone(),
        components,
        tokens: p.spend.tokens,
        cost_usd: p.spend.cost_usd,
        config_problems: p.config_problems.clone(),
        error,
        open_questions,
        spec_path: p.spec_path.clone(),
    }
}

/// Show the status comment at `stage`.
async fn show(
    repo: &Repo,
    req: &SpecRequest,
    progress: &SpecProgress,
    stage: SpecStage,
    error: Option<&str>,
) -> Result<(), GitHubError> {
    let body = messages::spec_status(&status(req, progress, stage, error.map(str::to_string)));
    let marker = messages::status_marker(req.issue_number);
    repo.show_status(progress.status_comment, req.issue_number, &marker, &body)
        .await
}
