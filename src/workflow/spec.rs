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

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{JobCtx, JobError, SpecRequest, SpecTrigger, StepResult};
use crate::app::App;
use crate::config::repo::RepoConfig;
use crate::github::Repo;
use crate::github::model::{Comment as CommentInfo, Issue as IssueInfo, Permission};
use crate::github::repo::FileChange;
use crate::jobs::Job;
use crate::messages::{self, SpecStage, SpecStatus};
use crate::spec::{Component, SpecAnswer};

/// What the job has done so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SpecProgress {
    pub status_comment: Option<u64>,
    pub config_problems: Vec<String>,
    pub answer: Option<SpecAnswer>,
    pub tokens: u64,
    pub cost_usd: f64,
    pub head: Option<String>,
    pub pull: Option<(u64, String)>,
    /// Component slug → (issue number, issue id).
    pub components: BTreeMap<String, (u64, u64)>,
}

/// A spec's state across jobs (records namespace `spec`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SpecRecord {
    /// drafted → in_review → revised → approved → merged / closed
    pub state: String,
    pub branch: String,
    pub path: String,
    pub pull: Option<u64>,
    /// slug → issue number
    pub components: BTreeMap<String, u64>,
    /// The components as the current spec defines them.
    pub designed: Vec<Component>,
    /// Who last asked for the spec (for `/implement` explanations).
    pub pull_url: Option<String>,
}

pub fn branch_name(issue: u64) -> String {
    format!("specbot/spec-{issue}")
}

/// The store key of a spec's record.
pub fn record_key(repo_id: u64, issue_number: u64) -> String {
    format!("{repo_id}#{issue_number}")
}

/// The repository's config from its default branch (defaults and problems when absent/bad).
pub async fn load_config(
    repo: &Repo,
    default_branch: &str,
) -> StepResult<(RepoConfig, Vec<String>)> {
    let text = repo
        .file(crate::config::repo::PATH, default_branch)
        .await?
        .unwrap_or_default();
    let (cfg, problems) = RepoConfig::parse(&text);
    Ok((cfg, problems.into_iter().map(|p| p.0).collect()))
}

pub async fn run(ctx: &mut JobCtx, req: SpecRequest) -> StepResult {
    let repo = ctx.repo(&req.repo)?;
    let info = repo.info().await?;
    let (config, problems) = load_config(&repo, &info.default_branch).await?;

    // 1. gate
    if let SpecTrigger::Label { name } = &req.trigger
        && !name.eq_ignore_ascii_case(&config.trigger_label)
    {
        tracing::debug!(label = %name, "not the trigger label");
        return Ok(());
    }
    let permission = ctx.app.permission(&repo, &req.requested_by).await?;
    if permission < Permission::Write {
        let marker = match &req.trigger {
            SpecTrigger::Command { comment_id } => messages::reply_marker(*comment_id),
            SpecTrigger::Label { .. } => {
                format!("<!-- specbot:reply delivery={} -->", req.delivery_id)
            }
        };
        let body = messages::not_allowed(&marker, &req.requested_by);
        repo.comment_once(req.issue_number, &marker, &body).await?;
        return Ok(());
    }

    if super::admit(ctx, &req.repo, Some(&req.requested_by)).await? == super::Admission::Drop {
        return Ok(());
    }
    let mut progress: SpecProgress = ctx.progress();
    progress.config_problems = problems;
    let issue = repo.issue(req.issue_number).await?;
    let comments = repo.comments(req.issue_number, 100).await?;

    // 2. ack
    if progress.status_comment.is_none() {
        repo.react_to_issue(req.issue_number, "eyes").await?;
        let status = status(&req, &progress, SpecStage::Drafting, None);
        let comment = repo
            .comment_once_among(
                req.issue_number,
                &messages::status_marker(req.issue_number),
                &messages::spec_status(&status),
                &comments,
            )
            .await?;
        progress.status_comment = Some(comment.id);
        ctx.save("ack", &progress).await?;
    }

    // 3. draft
    if progress.answer.is_none() {
        let drafted = draft(
            ctx,
            &repo,
            &issue,
            &comments,
            &config,
            &info.default_branch,
            &mut progress,
        )
        .await?;
        progress.answer = Some(drafted);
        ctx.save("draft", &progress).await?;
    }
    let answer = progress
        .answer
        .clone()
        .ok_or_else(|| JobError::permanent("no draft"))?;

    // 4. commit
    let branch = branch_name(req.issue_number);
    let spec_path = config.spec_path_for(req.issue_number);
    if progress.head.is_none() {
        let files: Vec<FileChange> =
            crate::spec::files_for(&answer, &spec_path, req.issue_number, &issue.title)
                .into_iter()
                .map(|(path, content)| FileChange {
                    path,
                    content: Some(content),
                })
                .collect();
        let pushed = repo
            .commit_files(
                &branch,
                &info.default_branch,
                &format!("Spec for #{}: {}", req.issue_number, issue.title),
                &files,
            )
            .await?;
        progress.head = Some(pushed.head);
        ctx.save("commit", &progress).await?;
    }

    // 5. pull
    if progress.pull.is_none() {
        let title = format!("Spec: {} (#{})", issue.title, req.issue_number);
        let body = messages::spec_pull_body(req.issue_number, &spec_path, &answer.components);
        let (pull, _) = repo
            .open_pull(&branch, &info.default_branch, &title, &body)
            .await?;
        progress.pull = Some((pull.number, pull.html_url.clone()));
        update_status(&repo, &req, &progress, SpecStage::FilingIssues, None).await?;
        ctx.save("pull", &progress).await?;
    }

    // 6. components
    if config.follow_up_issues {
        file_components(
            ctx,
            &repo,
            &req,
            &config,
            &spec_path,
            &answer,
            &mut progress,
        )
        .await?;
    }

    // 7. done
    let record = SpecRecord {
        state: "in_review".into(),
        branch,
        path: spec_path,
        pull: progress.pull.as_ref().map(|p| p.0),
        components: progress
            .components
            .iter()
            .map(|(k, v)| (k.clone(), v.0))
            .collect(),
        designed: answer.components.clone(),
        pull_url: progress.pull.as_ref().map(|p| p.1.clone()),
    };
    let now = ctx.app.now();
    ctx.app
        .store
        .put_record(
            "spec",
            &record_key(req.repo.repo_id, req.issue_number),
            &serde_json::to_value(&record).unwrap_or_default(),
            now,
        )
        .await?;
    update_status(&repo, &req, &progress, SpecStage::Done, None).await?;
    ctx.save("done", &progress).await?;
    Ok(())
}

fn status(
    req: &SpecRequest,
    p: &SpecProgress,
    stage: SpecStage,
    error: Option<String>,
) -> SpecStatus {
    let mut components: Vec<(u64, String)> = Vec::new();
    if let Some(answer) = &p.answer {
        for c in &answer.components {
            if let Some((number, _)) = p.components.get(&c.slug()) {
                components.push((*number, c.title.clone()));
            }
        }
    }
    SpecStatus {
        issue: req.issue_number,
        stage,
        pr: p.pull.clone(),
        components,
        tokens: p.tokens,
        cost_usd: p.cost_usd,
        config_problems: p.config_problems.clone(),
        error,
    }
}

async fn update_status(
    repo: &Repo,
    req: &SpecRequest,
    p: &SpecProgress,
    stage: SpecStage,
    error: Option<String>,
) -> StepResult {
    let body = messages::spec_status(&status(req, p, stage, error));
    match p.status_comment {
        Some(id) => {
            repo.update_comment(id, &body).await?;
        }
        None => {
            repo.comment_once(
                req.issue_number,
                &messages::status_marker(req.issue_number),
                &body,
            )
            .await?;
        }
    }
    Ok(())
}

async fn draft(
    ctx: &mut JobCtx,
    repo: &Repo,
    issue: &IssueInfo,
    comments: &[CommentInfo],
    config: &RepoConfig,
    default_branch: &str,
    progress: &mut SpecProgress,
) -> StepResult<SpecAnswer> {
    let input =
        crate::workflow::context::gather_for_spec(repo, issue, comments, config, default_branch)
            .await?;
    let prompt =
        crate::workflow::context::architect_prompt(repo, config, default_branch, &input).await?;
    let model = ctx.app.model_for(config.model.as_deref())?;
    let outcome = crate::workflow::context::ask_architect(
        ctx,
        &*model,
        &prompt,
        &config.artifacts,
        config.max_cost_usd,
        progress,
    )
    .await?;
    Ok(outcome)
}

pub(crate) async fn file_components(
    ctx: &mut JobCtx,
    repo: &Repo,
    req: &SpecRequest,
    config: &RepoConfig,
    spec_path: &str,
    answer: &SpecAnswer,
    progress: &mut SpecProgress,
) -> StepResult {
    let order = crate::spec::dependency_order(&answer.components)
        .map_err(|e| JobError::permanent(e.to_string()))?;
    // Labels need no separate request: GitHub creates missing ones with the issue. Issues an
    // earlier, interrupted attempt may have filed are listed once, only if needed.
    let mut labelled: Option<Vec<IssueInfo>> = None;
    let mut linked_any_fallback = false;
    for index in order {
        let component: &Component = &answer.components[index];
        let slug = component.slug();
        if progress.components.contains_key(&slug) {
            continue;
        }
        let record_key = format!("{}#{}/{}", req.repo.repo_id, req.issue_number, slug);
        let deps: Vec<(String, Option<u64>)> = component
            .depends_on
            .iter()
            .map(|title| {
                let dep_slug = crate::spec::slugify(title);
                (
                    title.clone(),
                    progress.components.get(&dep_slug).map(|d| d.0),
                )
            })
            .collect();
        let body = component.render_issue_body(req.issue_number, spec_path, &deps);
        let marker = crate::spec::component_marker(req.issue_number, &slug);
        // Found before? (store first, then the marker on GitHub)
        let existing = match ctx.app.store.get_record("component", &record_key).await? {
            Some(v) => v.get("number").and_then(|n| n.as_u64()),
            None => None,
        };
        let issue = match existing {
            Some(number) => {
                repo.update_issue(
                    number,
                    &serde_json::json!({"title": component.title, "body": body}),
                )
                .await?
            }
            None => {
                // Only an earlier attempt of this job can have filed it without recording it.
                if labelled.is_none()
                    && ctx.job.attempts > 1
                    && let Some(label) = config.component_labels.first()
                {
                    labelled = Some(repo.issues_with_label(label).await?);
                }
                let found = labelled
                    .iter()
                    .flatten()
                    .find(|i| i.body.as_deref().unwrap_or("").contains(&marker))
                    .cloned();
                match found {
                    Some(issue) => issue,
                    None => {
                        repo.create_issue(
                            &component.title,
                            &body,
                            &config.component_labels,
                            &marker,
                        )
                        .await?
                    }
                }
            }
        };
        let now = ctx.app.now();
        ctx.app
            .store
            .put_record(
                "component",
                &record_key,
                &serde_json::json!({"number": issue.number, "id": issue.id}),
                now,
            )
            .await?;
        if !repo.link_sub_issue(req.issue_number, issue.id).await? {
            linked_any_fallback = true;
        }
        for (_, dep) in &deps {
            if let Some(dep_number) = dep
                && let Some((_, dep_id)) =
                    progress.components.values().find(|(n, _)| n == dep_number)
            {
                repo.add_blocked_by(issue.number, *dep_id).await?;
            }
        }
        progress
            .components
            .insert(slug.clone(), (issue.number, issue.id));
        ctx.save(&format!("component:{slug}"), progress).await?;
    }
    if linked_any_fallback {
        // No sub-issues API here (older GitHub Enterprise Server): a task list in the parent.
        let issue = repo.issue(req.issue_number).await?;
        let body =
            messages::with_task_list(issue.body.as_deref().unwrap_or(""), &progress.components);
        repo.update_issue(req.issue_number, &serde_json::json!({"body": body}))
            .await?;
    }
    Ok(())
}

/// The job was cancelled: say so in the status comment.
pub async fn report_cancelled(
    app: &App,
    job: &Job,
    req: &SpecRequest,
) -> Result<(), crate::github::GitHubError> {
    report(app, job, req, SpecStage::Cancelled, None).await
}

/// The job failed for good: say so in the status comment, in plain words.
pub async fn report_failure(
    app: &App,
    job: &Job,
    req: &SpecRequest,
    message: &str,
) -> Result<(), crate::github::GitHubError> {
    report(app, job, req, SpecStage::Failed, Some(message.to_string())).await
}

async fn report(
    app: &App,
    job: &Job,
    req: &SpecRequest,
    stage: SpecStage,
    message: Option<String>,
) -> Result<(), crate::github::GitHubError> {
    let Some(github) = &app.github else {
        return Ok(());
    };
    let repo = github
        .installation(req.repo.installation_id)?
        .repo(&req.repo.owner, &req.repo.name);
    // The latest checkpoint (the claimed copy predates this attempt's progress).
    let checkpoint = match app.store.job(job.id).await {
        Ok(Some(fresh)) => fresh.checkpoint,
        _ => job.checkpoint.clone(),
    };
    let progress: SpecProgress = serde_json::from_value(checkpoint).unwrap_or_default();
    let body = messages::spec_status(&status(req, &progress, stage, message));
    match progress.status_comment {
        Some(id) => repo.update_comment(id, &body).await.map(|_| ()),
        None => repo
            .comment_once(
                req.issue_number,
                &messages::status_marker(req.issue_number),
                &body,
            )
            .await
            .map(|_| ()),
    }
}
