//! Reviews of a spec PR: the `revise` job (a "Request changes" review or `/revise <feedback>`
//! becomes a new commit on the same branch, a reply, and reconciled component issues) and the
//! `spec_event` job (approved / merged / closed / reopened moves the spec's state).
//!
//! A revision builds on whatever the branch holds — a human's commits included — and never
//! force-pushes. Component issues are matched by their slug: new ones are filed, changed ones
//! edited, removed ones closed with a note (never deleted).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::context::{ArchitectSession, Draft};
use super::spec::{SpecProgress, SpecRecord, load_config, record_key};
use super::{
    FeedbackSource, JobCtx, JobError, ReviseRequest, SpecEvent, SpecRequest, SpecTrigger,
    StepError, StepResult,
};
use crate::app::App;
use crate::github::Repo;
use crate::github::model::Permission;
use crate::github::repo::FileChange;
use crate::messages;
use crate::prompt::templates::{Feedback, ReviseInput};
use crate::spec::SpecAnswer;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct ReviseProgress {
    answer: Option<SpecAnswer>,
    head: Option<String>,
    reconciled: bool,
    tokens: u64,
    cost_usd: f64,
}

fn reply_marker(source: &FeedbackSource) -> String {
    match source {
        FeedbackSource::Review { review_id } => {
            format!("<!-- specbot:reply review={review_id} -->")
        }
        FeedbackSource::Command { comment_id, .. } => messages::reply_marker(*comment_id),
    }
}

async fn record(ctx: &JobCtx, repo_id: u64, issue: u64) -> StepResult<Option<SpecRecord>> {
    Ok(ctx
        .app
        .store
        .get_record("spec", &record_key(repo_id, issue))
        .await?
        .and_then(|v| serde_json::from_value(v).ok()))
}

async fn save_record(ctx: &JobCtx, repo_id: u64, issue: u64, rec: &SpecRecord) -> StepResult {
    let now = ctx.app.now();
    let value = serde_json::to_value(rec).unwrap_or_default();
    ctx.app
        .store
        .put_record("spec", &record_key(repo_id, issue), &value, now)
        .await?;
    Ok(())
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

pub async fn run(ctx: &mut JobCtx, req: ReviseRequest) -> StepResult {
    let repo = ctx.repo(&req.repo)?;
    let marker = reply_marker(&req.source);
    let permission = ctx.app.permission(&repo, &req.requested_by).await?;
    if permission < Permission::Write {
        let body = messages::not_allowed(&marker, &req.requested_by);
        repo.comment_once(req.pull_number, &marker, &body).await?;
        return Ok(());
    }
    let info = repo.info().await?;
    let (config, _) = load_config(&repo, &info.default_branch).await?;
    let branch = super::spec::branch_name(req.issue_number);
    let rec = record(ctx, req.repo.repo_id, req.issue_number)
        .await?
        .unwrap_or_default();
    if matches!(rec.state.as_str(), "closed" | "merged") {
        let body = format!(
            "{marker}\nThis spec PR is {}, so I won't revise it. Comment `/spec` on #{} to start a new spec.",
            rec.state, req.issue_number
        );
        repo.comment_once(req.pull_number, &marker, &body).await?;
        return Ok(());
    }
    let spec_path = if rec.path.is_empty() {
        config.spec_path_for(req.issue_number)
    } else {
        rec.path.clone()
    };
    if super::admit(ctx, &req.repo, Some(&req.requested_by)).await? == super::Admission::Drop {
        return Ok(());
    }
    let mut progress: ReviseProgress = ctx.progress();

    if progress.answer.is_none() {
        let head = repo
            .branch_head(&branch)
            .await?
            .ok_or_else(|| JobError::permanent(format!("the spec branch `{branch}` is gone")))?;
        let current = repo.file(&spec_path, &head).await?.ok_or_else(|| {
            JobError::permanent(format!("`{spec_path}` is not on the branch any more"))
        })?;
        let feedback = feedback(&repo, &req).await?;
        if feedback.is_empty() {
            let body = format!(
                "{marker}\nThe review has no comments I could act on, so I left the spec as it is."
            );
            repo.comment_once(req.pull_number, &marker, &body).await?;
            return Ok(());
        }
        let input = ReviseInput {
            issue_number: req.issue_number,
            spec_path: spec_path.clone(),
            current_spec: crate::spec::strip_spec_header(&current).to_string(),
            current_components: rec.designed.clone(),
            feedback,
            context_blocks: Vec::new(),
            artifacts: super::context::artifact_kinds(&config.artifacts),
        };
        let custom = match &config.architect_prompt {
            Some(path) => repo.file(path, &info.default_branch).await?,
            None => None,
        };
        let prompt = crate::prompt::templates::render_revise(&input, custom.as_deref())
            .map_err(|e| JobError::permanent(format!("the revise prompt: {e}")))?;
        let model = ctx.app.model_for(config.model.as_deref())?;
        let mut session = ArchitectSession::new(&prompt, &config.artifacts);
        let mut spend = SpecProgress::default();
        let answer = loop {
            let response = super::context::call(
                ctx,
                &*model,
                session.request(),
                config.max_cost_usd,
                &mut spend,
            )
            .await?;
            match session.answer(&response) {
                Draft::Ready(answer) => break answer,
                Draft::Repair(problems) => {
                    tracing::info!(%problems, "revision did not validate; repairing")
                }
                Draft::Unusable(problems) => {
                    return Err(StepError::Failed(JobError::permanent(format!(
                        "the revised spec was not usable, even after one repair round: {problems}"
                    ))));
                }
            }
        };
        progress.tokens = spend.tokens;
        progress.cost_usd = spend.cost_usd;
        progress.answer = Some(answer);
        ctx.save("revise:draft", &progress).await?;
    }
    let answer = progress
        .answer
        .clone()
        .ok_or_else(|| JobError::permanent("no revision"))?;

    if progress.head.is_none() {
        // The model took a while: the PR may have been merged or closed meanwhile, and a
        // revision pushed now would land on a finished branch.
        let pull = repo.pull(req.pull_number).await?;
        if pull.state != "open" {
            let what = if pull.merged_at.is_some() {
                "merged"
            } else {
                "closed"
            };
            let body = messages::revision_abandoned(&marker, what, req.issue_number);
            repo.comment_once(req.pull_number, &marker, &body).await?;
            return Ok(());
        }
        let issue = repo.issue(req.issue_number).await?;
        let files: Vec<FileChange> =
            crate::spec::files_for(&answer, &spec_path, req.issue_number, &issue.title)
                .into_iter()
                .map(|(path, content)| FileChange {
                    path,
                    content: Some(content),
                })
                .collect();
        let summary = answer
            .changes
            .as_deref()
            .and_then(|c| c.lines().next())
            .unwrap_or("address review feedback");
        let pushed = repo
            .commit_files(
                &branch,
                &info.default_branch,
                &format!(
                    "Revise spec for #{}: {}",
                    req.issue_number,
                    summary.chars().take(60).collect::<String>()
                ),
                &files,
            )
            .await?;
        progress.head = Some(pushed.head);
        ctx.save("revise:commit", &progress).await?;
    }

    if !progress.reconciled && config.follow_up_issues {
        reconcile(ctx, &repo, &req, &config, &spec_path, &answer, &rec).await?;
        progress.reconciled = true;
        ctx.save("revise:components", &progress).await?;
    }

    let head = progress.head.clone().unwrap_or_default();
    let body = messages::revised(
        &marker,
        &head,
        answer.changes.as_deref(),
        progress.tokens,
        progress.cost_usd,
    );
    repo.comment_once(req.pull_number, &marker, &body).await?;
    let mut rec = record(ctx, req.repo.repo_id, req.issue_number)
        .await?
        .unwrap_or(rec);
    // A merge or close recorded while this revision ran is the later truth.
    if !matches!(rec.state.as_str(), "closed" | "merged") {
        rec.state = "revised".into();
    }
    rec.designed = answer.components.clone();
    save_record(ctx, req.repo.repo_id, req.issue_number, &rec).await?;
    ctx.save("revise:done", &progress).await?;
    Ok(())
}

/// Make the component issues match the revised design.
async fn reconcile(
    ctx: &mut JobCtx,
    repo: &Repo,
    req: &ReviseRequest,
    config: &crate::config::repo::RepoConfig,
    spec_path: &str,
    answer: &SpecAnswer,
    before: &SpecRecord,
) -> StepResult {
    let as_spec = SpecRequest {
        repo: req.repo.clone(),
        issue_number: req.issue_number,
        requested_by: req.requested_by.clone(),
        trigger: SpecTrigger::Command { comment_id: 0 },
        delivery_id: req.delivery_id.clone(),
    };
    let mut progress = SpecProgress::default();
    super::spec::file_components(
        ctx,
        repo,
        &as_spec,
        config,
        spec_path,
        answer,
        &mut progress,
    )
    .await?;
    let kept: Vec<String> = answer.components.iter().map(|c| c.slug()).collect();
    let mut rec = before.clone();
    for (slug, number) in &before.components {
        if kept.contains(slug) {
            continue;
        }
        let marker = format!("<!-- specbot:removed spec-pr={} -->", req.pull_number);
        let note = format!(
            "{marker}\nThis component is no longer part of the spec after the revision in #{}. Closing it; reopen it if that was a mistake.",
            req.pull_number
        );
        repo.comment_once(*number, &marker, &note).await?;
        repo.update_issue(
            *number,
            &serde_json::json!({"state": "closed", "state_reason": "not_planned"}),
        )
        .await?;
    }
    rec.components = progress
        .components
        .iter()
        .map(|(k, v)| (k.clone(), v.0))
        .collect::<BTreeMap<_, _>>();
    save_record(ctx, req.repo.repo_id, req.issue_number, &rec).await
}

/// Approved / merged / closed / reopened: the spec's state, and on merge the component issues
/// are marked "spec accepted".
pub async fn on_spec_event(ctx: &mut JobCtx, event: SpecEvent) -> StepResult {
    let mut rec = record(ctx, event.repo.repo_id, event.issue_number)
        .await?
        .unwrap_or_default();
    rec.pull.get_or_insert(event.pull_number);
    rec.state = match event.what.as_str() {
        "approved" if rec.state != "merged" => "approved".into(),
        "merged" => "merged".into(),
        "closed" => "closed".into(),
        "reopened" => "in_review".into(),
        _ => rec.state.clone(),
    };
    if event.what == "merged" && !rec.components.is_empty() {
        let repo = ctx.repo(&event.repo)?;
        for number in rec.components.values() {
            repo.add_labels(*number, &["spec accepted".to_string()])
                .await?;
        }
    }
    save_record(ctx, event.repo.repo_id, event.issue_number, &rec).await
}

/// A revision failed for good: one reply saying so.
pub async fn report_failure(
    app: &App,
    req: &ReviseRequest,
    message: &str,
) -> Result<(), crate::github::GitHubError> {
    let Some(github) = &app.github else {
        return Ok(());
    };
    let repo = github
        .installation(req.repo.installation_id)?
        .repo(&req.repo.owner, &req.repo.name);
    let marker = reply_marker(&req.source);
    let body = format!(
        "{marker}\n❌ I could not revise the spec: {message}\n\nNothing was pushed. Ask again with `/revise <what to change>`."
    );
    repo.comment_once(req.pull_number, &marker, &body)
        .await
        .map(|_| ())
}
