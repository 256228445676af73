//! The revise job: a "Request changes" review or `/revise <feedback>` on a spec PR becomes a
//! new commit on the same branch, a reply, and reconciled component issues.
//!
//! A revision builds on whatever the branch holds — a human's commits included — and never
//! force-pushes. Component issues are matched by their slug: new ones are filed, changed ones
//! edited, removed ones closed with a note (never deleted).
//!
//! Steps (checkpoints `revise:<step>`): `draft` (the revised answer kept) → `commit` →
//! `component:<slug>` for each component → `components` → `done` (the reply and the record).

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::config::repo::RepoConfig;
use crate::github::model::{Permission, Repository};
use crate::github::{GitHubError, Repo};
use crate::jobs::Job;
use crate::messages;
use crate::prompt::templates::{Feedback, ReviseInput};
use crate::spec::SpecAnswer;
use crate::workflow::branch::BotBranch;
use crate::workflow::components::{self, Filed};
use crate::workflow::context::{self, ArchitectSession, Draft};
use crate::workflow::job::{FeedbackSource, ReviseRequest, spec_branch_key};
use crate::workflow::quota::{self, Admission, admit};
use crate::workflow::records::{self, ActedRecord, SpecRecord, SpecState, issue_key};
use crate::workflow::spend::{self, Spend};
use crate::workflow::step::load_config;
use crate::workflow::step::{JobCtx, StepError, StepResult, repo_client};
use crate::workflow::{Ending, Workflow, coverage};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct ReviseProgress {
    answer: Option<SpecAnswer>,
    head: Option<String>,
    /// Component issues filed or updated for the revised design.
    components: Filed,
    reconciled: bool,
    #[serde(flatten)]
    spend: Spend,
}

impl Workflow for ReviseRequest {
    const KIND: &'static str = "revise";

    /// One revision per piece of feedback.
    fn dedupe_key(&self) -> String {
        let (repo, pull) = (self.repo.repo_id, self.pull_number);
        match &self.source {
            FeedbackSource::Review { review_id } => {
                format!("revise:{repo}#{pull}:review:{review_id}")
            }
            FeedbackSource::Command { comment_id, .. } => {
                format!("revise:{repo}#{pull}:comment:{comment_id}")
            }
        }
    }

    fn serial_key(&self) -> Option<String> {
        Some(spec_branch_key(self.repo.repo_id, self.issue_number))
    }

    async fn run(self, ctx: &mut JobCtx) -> StepResult {
        run(ctx, self).await
    }

    /// A revision failed for good: one reply saying so.
    async fn report(&self, app: &App, _: &Job, end: Ending<'_>) -> Result<(), GitHubError> {
        let Ending::Failed(error) = end else {
            return Ok(());
        };
        let Some(repo) = repo_client(app, &self.repo)? else {
            return Ok(());
        };
        let marker = reply_marker(&self.source);
        let body = messages::revision_failed(&marker, error);
        repo.comment_once(self.pull_number, &marker, &body).await?;
        Ok(())
    }
}

fn reply_marker(source: &FeedbackSource) -> String {
    match source {
        FeedbackSource::Review { review_id } => messages::review_reply_marker(*review_id),
        FeedbackSource::Command { comment_id, .. } => messages::reply_marker(*comment_id),
    }
}

/// Where the revision works.
struct Desk<'a> {
    repo: &'a Repo,
    req: &'a ReviseRequest,
    info: &'a Repository,
    config: &'a RepoConfig,
    marker: &'a str,
    spec_path: &'a str,
    /// The time and the model name for the spec file's metadata.
    now: i64,
    model: Option<String>,
}

async fn run(ctx: &mut JobCtx, req: ReviseRequest) -> StepResult {
    if ctx.is_before_memory(req.written_at.as_deref()) {
        tracing::warn!(pull = req.pull_number, written_at = ?req.written_at, "feedback older than the deliveries kept: a replay, acted on not at all");
        return Ok(());
    }
    let repo = ctx.repo(&req.repo)?;
    let marker = reply_marker(&req.source);
    let permission = ctx.app.permission(&repo, &req.requested_by).await?;
    if permission < Permission::Write {
        return quota::refuse(ctx, &repo, req.pull_number, &req.requested_by, &marker).await;
    }
    let info = repo.info().await?;
    let (config, _) = load_config(&repo, &info.default_branch).await?;
    let store = &*ctx.app.store;
    let found = records::spec_of_pull(store, req.repo.repo_id, req.issue_number, req.pull_number);
    let Some(rec) = found.await? else {
        return Ok(());
    };
    let acted = match req.source {
        FeedbackSource::Review { review_id } => {
            let key = ActedRecord::key(req.repo.repo_id, "review", review_id, "revise");
            if ActedRecord::seen(store, &key, ctx.job.id).await? {
                tracing::info!(
                    review = review_id,
                    "this review was acted on already: ignored"
                );
                return Ok(());
            }
            Some(key)
        }
        // Commands are remembered by the command job that queued this one.
        FeedbackSource::Command { .. } => None,
    };
    if rec.state.is_finished() {
        let body = messages::spec_finished(&marker, rec.state.words(), req.issue_number);
        repo.comment_once(req.pull_number, &marker, &body).await?;
        return Ok(());
    }
    let spec_path = if rec.path.is_empty() {
        config.spec_path_for(req.issue_number)
    } else {
        rec.path.clone()
    };
    if admit(ctx, &req.repo, Some(&req.requested_by)).await? == Admission::Drop {
        return Ok(());
    }
    let desk = Desk {
        repo: &repo,
        req: &req,
        info: &info,
        config: &config,
        marker: &marker,
        spec_path: &spec_path,
        now: ctx.app.now(),
        model: ctx
            .model(config.model.as_deref())
            .ok()
            .map(|m| m.model().to_string()),
    };
    let mut progress: ReviseProgress = ctx.progress()?;
    let answer = match progress.answer.clone() {
        Some(answer) => answer,
        None => match draft(ctx, &desk, &rec, &mut progress.spend).await? {
            Some(answer) => {
                ctx.keep("revise:draft", &mut progress, |p| &mut p.answer, answer)
                    .await?
            }
            None => return Ok(()),
        },
    };
    if progress.head.is_none() {
        let Some(head) = commit(&desk, &answer).await? else {
            return Ok(());
        };
        progress.head = Some(head);
        ctx.save("revise:commit", &progress).await?;
    }
    if !progress.reconciled && config.follow_up_issues {
        let spec_url = components::spec_url(&info, progress.head.as_deref(), &spec_path);
        let at = components::Filing {
            repo: &repo,
            target: &req.repo,
            spec_issue: req.issue_number,
            config: &config,
            spec_path: &spec_path,
            spec_url: spec_url.as_deref(),
            board: None,
        };
        components::file(ctx, &at, &answer, &mut progress, |p| &mut p.components).await?;
        components::close_dropped(ctx, &at, &rec.components, &answer, req.pull_number).await?;
        progress.reconciled = true;
        ctx.save("revise:components", &progress).await?;
    }
    finish(ctx, &desk, &answer, &progress, rec).await?;
    if let Some(key) = acted {
        ActedRecord::remember(&*ctx.app.store, &key, ctx.job.id, ctx.app.now()).await?;
    }
    Ok(())
}

/// The reply, and the spec's record: revised, with the new design and component issues.
async fn finish(
    ctx: &mut JobCtx,
    desk: &Desk<'_>,
    answer: &SpecAnswer,
    progress: &ReviseProgress,
    before: SpecRecord,
) -> StepResult {
    let req = desk.req;
    let head = progress.head.clone().unwrap_or_default();
    let body = messages::revised(
        desk.marker,
        &head,
        answer.changes.as_deref(),
        progress.spend.tokens,
        progress.spend.cost_usd,
    );
    desk.repo
        .comment_once(req.pull_number, desk.marker, &body)
        .await?;
    let key = issue_key(req.repo.repo_id, req.issue_number);
    let store = &*ctx.app.store;
    let mut rec: SpecRecord = records::load(store, &key).await?.unwrap_or(before);
    // A merge or close recorded while this revision ran is the later truth.
    if !rec.state.is_finished() {
        rec.state = SpecState::Revised;
    }
    rec.designed = answer.components.clone();
    if progress.reconciled {
        rec.components = components::numbers(&progress.components);
    }
    records::save(store, &key, &rec, ctx.app.now()).await?;
    coverage::show_spec_status(desk.repo, req.pull_number, rec.state).await?;
    let questions = answer.filed_open_questions();
    coverage::record_questions(
        ctx,
        desk.repo,
        &req.repo,
        req.issue_number,
        questions,
        desk.spec_path,
    )
    .await?;
    coverage::queue(ctx, &req.repo, req.issue_number, req.pull_number, &head).await?;
    ctx.save("revise:done", progress).await
}

/// The revised spec from the model (one repair round), or `None` when the feedback holds
/// nothing to act on (the reviewer is told so).
async fn draft(
    ctx: &mut JobCtx,
    desk: &Desk<'_>,
    rec: &SpecRecord,
    spend: &mut Spend,
) -> StepResult<Option<SpecAnswer>> {
    let (repo, req, config) = (desk.repo, desk.req, desk.config);
    let branch = BotBranch::Spec(req.issue_number).to_string();
    let head = repo
        .branch_head(&branch)
        .await?
        .ok_or_else(|| StepError::permanent(format!("the spec branch `{branch}` is gone")))?;
    let current = repo.file(desk.spec_path, &head).await?.ok_or_else(|| {
        StepError::permanent(format!(
            "`{}` is not on the branch any more",
            desk.spec_path
        ))
    })?;
    let feedback = feedback(repo, req).await?;
    if feedback.is_empty() {
        let body = messages::no_feedback(desk.marker);
        repo.comment_once(req.pull_number, desk.marker, &body)
            .await?;
        return Ok(None);
    }
    let input = ReviseInput {
        issue_number: req.issue_number,
        spec_path: desk.spec_path.to_string(),
        current_spec: crate::spec::strip_spec_header(&current),
        current_components: rec.designed.clone(),
        feedback,
        context_blocks: Vec::new(),
        artifacts: context::artifact_kinds(&config.artifacts),
    };
    let custom = match &config.architect_prompt {
        Some(path) => repo.file(path, &desk.info.default_branch).await?,
        None => None,
    };
    let prompt = crate::prompt::templates::render_revise(&input, custom.as_deref())
        .map_err(|e| StepError::permanent(format!("the revise prompt: {e}")))?;
    let model = ctx.model(config.model.as_deref())?;
    let mut session = ArchitectSession::new(&prompt, &config.artifacts).revising(&current);
    loop {
        let response =
            spend::call(ctx, &*model, session.request(), config.max_cost_usd, spend).await?;
        match session.answer(&response) {
            Draft::Ready(answer) => return Ok(Some(*answer)),
            Draft::Repair(problems) => {
                tracing::info!(%problems, "revision did not validate; repairing")
            }
            Draft::Unusable(problems) => {
                return Err(StepError::permanent(format!(
                    "the revised spec was not usable, even after one repair round: {problems}"
                )));
            }
        }
    }
}

/// Push the revision onto the spec branch; `None` when the PR was merged or closed meanwhile
/// (the reviewer is told, nothing is pushed).
async fn commit(desk: &Desk<'_>, answer: &SpecAnswer) -> StepResult<Option<String>> {
    let (repo, req) = (desk.repo, desk.req);
    // The model took a while: the PR may have been merged or closed meanwhile, and a
    // revision pushed now would land on a finished branch.
    let pull = repo.pull(req.pull_number).await?;
    if pull.state != "open" {
        let what = if pull.merged_at.is_some() {
            SpecState::Merged
        } else {
            SpecState::Closed
        };
        let body = messages::revision_abandoned(desk.marker, what.words(), req.issue_number);
        repo.comment_once(req.pull_number, desk.marker, &body)
            .await?;
        return Ok(None);
    }
    let issue = repo.issue(req.issue_number).await?;
    // The file being replaced is the record of the requirement IDs issued so far.
    let branch = BotBranch::Spec(req.issue_number).to_string();
    let previous = repo.file(desk.spec_path, &branch).await?;
    let meta = crate::spec::SpecFileMeta {
        issue_number: req.issue_number,
        issue_title: issue.title.clone(),
        base_commit: None,
        date: Some(crate::spec::utc_date(desk.now)),
        model: desk.model.clone(),
        requested_by: Some(req.requested_by.clone()),
        previous,
    };
    let files = crate::spec::files_for(answer, desk.spec_path, &meta);
    let message = messages::revision_commit(req.issue_number, answer.changes.as_deref());
    let pushed = repo
        .commit_files(
            &BotBranch::Spec(req.issue_number).to_string(),
            &desk.info.default_branch,
            &message,
            &components::changes(files),
        )
        .await?;
    Ok(Some(pushed.head))
}

/// The feedback in the reviewer's words: the review body and its inline comments.
async fn feedback(repo: &Repo, req: &ReviseRequest) -> StepResult<Vec<Feedback>> {
    match &req.source {
        FeedbackSource::Command { feedback, .. } => Ok(vec![Feedback {
            author: req.requested_by.clone(),
            body: feedback.clone(),
            path: None,
            line: None,
        }]),
        FeedbackSource::Review { review_id } => {
            let review = repo.review(req.pull_number, *review_id).await?;
            let mut out = Vec::new();
            if let Some(body) = review.body.filter(|b| !b.trim().is_empty()) {
                out.push(Feedback {
                    author: req.requested_by.clone(),
                    body,
                    path: None,
                    line: None,
                });
            }
            for c in repo.review_comments(req.pull_number, *review_id).await? {
                out.push(Feedback {
                    author: c.user.login,
                    body: c.body,
                    path: Some(c.path),
                    line: c.line.or(c.original_line),
                });
            }
            Ok(out)
        }
    }
}
