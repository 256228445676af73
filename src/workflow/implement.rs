//! The implement job: `/implement` → engineer agent over a snapshot of the repository → one
//! commit on `specbot/implement-<n>` → a PR that closes the issue.
//!
//! Steps (checkpoint names `implement:<step>`), each checkpointed so a retried or resumed job
//! continues where it stopped:
//!
//! 1. `ack` — the one status comment on the issue ("Implementing…"), found again by marker.
//! 2. `spec` — the spec read (default branch, or the spec PR's branch) and named in the status.
//! 3. `engineer` — the component and the repository's conventions files; a snapshot of the
//!    base (the implementation branch when it exists, so a re-run continues the earlier work;
//!    else the default branch) from the tarball endpoint; the agent loop; the redacted transcript stored; the changes, summary and
//!    criteria kept in the checkpoint so a crash after this never pays the model twice.
//! 4. `commit` — a last secret scan over everything to be pushed, then every change in one
//!    commit (Git Data API) with the attribution trailer.
//! 5. `pull` — find or open the PR from that branch (`Closes #<n>`), body per criterion.
//! 6. `done` — the implementation's record (for CI fixes) and the final status.

use serde::{Deserialize, Serialize};

use super::spec::{SpecRecord, load_config, record_key};
use super::{ImplementRequest, JobCtx, JobError, RepoTarget, StepError, StepResult};
use crate::agent::{
    self, AgentConfig, AgentError, AgentLimits, CriterionMet, Policy, Refusal, SecretScanner,
    SkippedEntry, Workspace, WorkspaceLimits,
};
use crate::app::App;
use crate::config::repo::{Attribution, RepoConfig};
use crate::github::Repo;
use crate::github::repo::FileChange;
use crate::jobs::Job;
use crate::llm::ChatModel;
use crate::messages::{self, ImplementPull, ImplementStage, ImplementStatus};
use crate::prompt::context::{ContextInput, DocKind, RepoDoc};
use crate::prompt::templates::RenderedPrompt;
use crate::spec::Component;

/// Files the engineer is shown up front as the repository's conventions (it can read others).
const CONVENTIONS: [&str; 6] = [
    "AGENTS.md",
    "CLAUDE.md",
    ".github/copilot-instructions.md",
    "CONTRIBUTING.md",
    ".github/CONTRIBUTING.md",
    "docs/CONTRIBUTING.md",
];

/// Token budget of the conventions and issue context in the prompt.
const CONTEXT_TOKENS: usize = 12_000;

/// Largest tarball downloaded (compressed); the workspace caps the unpacked size too.
const MAX_TARBALL_BYTES: u64 = 256 * 1024 * 1024;

/// What the engineer produced (kept in the checkpoint).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Engineered {
    pub changes: Vec<crate::agent::FileChange>,
    pub summary: String,
    pub criteria: Vec<CriterionMet>,
    pub refusals: Vec<Refusal>,
    pub skipped: Vec<SkippedEntry>,
    pub steps: u32,
    pub model: String,
    pub cost_known: bool,
}

/// What the job has done so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImplementProgress {
    pub status_comment: Option<u64>,
    /// (spec path, ref it was read from)
    pub spec: Option<(String, String)>,
    pub result: Option<Engineered>,
    pub tokens: u64,
    pub cost_usd: f64,
    pub head: Option<String>,
    pub pull: Option<(u64, String)>,
}

/// An implementation's state across jobs (records namespace `implementation`), read by the
/// CI-fix job.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImplementationRecord {
    pub branch: String,
    pub pull: Option<u64>,
    pub spec_issue: u64,
    pub spec_path: String,
    /// Where the spec was read (the default branch, or the spec PR's branch).
    pub spec_ref: String,
    pub component: Option<String>,
    /// Fix rounds run so far.
    pub fix_attempts: u32,
    /// Head commits whose CI failure was already handled (newest last, bounded).
    pub handled_heads: Vec<String>,
}

pub fn branch_name(issue: u64) -> String {
    format!("specbot/implement-{issue}")
}

pub async fn run(ctx: &mut JobCtx, req: ImplementRequest) -> StepResult {
    let repo = ctx.repo(&req.repo)?;
    let info = repo.info().await?;
    let (config, _problems) = load_config(&repo, &info.default_branch).await?;
    if super::admit(ctx, &req.repo, Some(&req.requested_by)).await? == super::Admission::Drop {
        return Ok(());
    }
    let mut progress: ImplementProgress = ctx.progress();
    let spec_record: Option<SpecRecord> = ctx
        .app
        .store
        .get_record("spec", &record_key(req.repo.repo_id, req.spec_issue))
        .await?
        .and_then(|v| serde_json::from_value(v).ok());
    let component: Option<Component> = match &req.component {
        Some(slug) => Some(
            spec_record
                .iter()
                .flat_map(|r| r.designed.iter())
                .find(|c| &c.slug() == slug)
                .cloned()
                .ok_or_else(|| {
                    JobError::permanent(format!(
                        "the component `{slug}` is not in the current spec of #{} (was it removed by a revision?)",
                        req.spec_issue
                    ))
                })?,
        ),
        None => None,
    };

    // 1. ack
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
        progress.status_comment = Some(comment.id);
        ctx.save("implement:ack", &progress).await?;
    }

    // 2. engineer
    let branch = branch_name(req.issue_number);
    if progress.result.is_none() {
        let (spec_path, spec_ref) =
            spec_location(&req, spec_record.as_ref(), &config, &info.default_branch);
        let spec_text = repo.file(&spec_path, &spec_ref).await?.ok_or_else(|| {
            JobError::permanent(format!(
                "there is no spec at `{spec_path}` on `{spec_ref}`: label #{} `{}` or comment `/spec` there first",
                req.spec_issue, config.trigger_label
            ))
        })?;
        progress.spec = Some((spec_path.clone(), spec_ref.clone()));
        update_status(
            &repo,
            &req,
            &progress,
            component.as_ref(),
            ImplementStage::Working,
            None,
        )
        .await?;
        ctx.save("implement:spec", &progress).await?;
        let base = match repo.branch_head(&branch).await? {
            Some(sha) => sha,
            None => repo
                .branch_head(&info.default_branch)
                .await?
                .ok_or_else(|| {
                    JobError::permanent(format!(
                        "the default branch `{}` has no commits",
                        info.default_branch
                    ))
                })?,
        };
        let mut workspace = snapshot(&repo, &base).await?;
        let issue = repo.issue(req.issue_number).await?;
        let input = crate::prompt::templates::EngineerInput {
            issue_number: req.issue_number,
            spec_path: spec_path.clone(),
            spec: spec_text,
            component: component.clone(),
            context_blocks: conventions(
                &workspace,
                req.issue_number,
                &issue.title,
                issue.body.as_deref().unwrap_or(""),
                &issue.user.login,
            ),
            tools: agent::tool_notes(),
        };
        let custom = match &config.engineer_prompt {
            Some(path) => repo.file(path, &info.default_branch).await?,
            None => None,
        };
        let prompt = crate::prompt::templates::render_engineer(&input, custom.as_deref())
            .map_err(|e| JobError::permanent(e.to_string()))?;
        let model = ctx.app.model_for(config.model.as_deref())?;
        let result = engineer(
            ctx,
            &*model,
            &prompt,
            &mut workspace,
            &config,
            &req.repo,
            req.issue_number,
            &mut progress.tokens,
            &mut progress.cost_usd,
        )
        .await?;
        if result.changes.is_empty() {
            return Err(StepError::Failed(JobError::permanent(format!(
                "the engineer finished without changing any file. Its summary: {}",
                result.summary.chars().take(500).collect::<String>()
            ))));
        }
        // The snapshot's directory is removed before the checkpoint (and its crash point).
        drop(workspace);
        progress.result = Some(result);
        ctx.save("implement:engineer", &progress).await?;
    }
    let result = progress
        .result
        .clone()
        .ok_or_else(|| JobError::permanent("no engineer result"))?;
    let (spec_path, spec_ref) = progress.spec.clone().unwrap_or_default();

    // 3. commit
    if progress.head.is_none() {
        let scanner = SecretScanner::new(ctx.app.settings.own_secrets());
        check_clean(&scanner, &result)?;
        let issue_title = repo.issue(req.issue_number).await?.title;
        let message = commit_message(
            &format!(
                "Implement #{}: {}",
                req.issue_number,
                one_line(&issue_title)
            ),
            &result.summary,
            req.spec_issue,
            &result.model,
            config.implement.attribution,
        );
        let pushed = repo
            .commit_files(
                &branch,
                &info.default_branch,
                &message,
                &to_github(&result.changes),
            )
            .await?;
        progress.head = Some(pushed.head);
        ctx.save("implement:commit", &progress).await?;
    }

    // 4. pull
    if progress.pull.is_none() {
        let issue_title = repo.issue(req.issue_number).await?.title;
        let title = format!(
            "Implement #{}: {}",
            req.issue_number,
            one_line(&issue_title)
        );
        let body = messages::implement_pull_body(&ImplementPull {
            issue: req.issue_number,
            spec_issue: req.spec_issue,
            spec_path: spec_path.clone(),
            spec_ref: spec_ref.clone(),
            component: component.as_ref().map(|c| c.title.clone()),
            summary: result.summary.clone(),
            criteria: result.criteria.clone(),
            files: result
                .changes
                .iter()
                .map(|c| (c.path.clone(), c.content.is_none()))
                .collect(),
            refusals: result.refusals.clone(),
            skipped: result.skipped.clone(),
            model: result.model.clone(),
            steps: result.steps,
            tokens: progress.tokens,
            cost_usd: result.cost_known.then_some(progress.cost_usd),
        });
        let (pull, _) = repo
            .open_pull(&branch, &info.default_branch, &title, &body)
            .await?;
        progress.pull = Some((pull.number, pull.html_url.clone()));
        ctx.save("implement:pull", &progress).await?;
    }

    // 5. done
    let key = record_key(req.repo.repo_id, req.issue_number);
    let previous: ImplementationRecord = ctx
        .app
        .store
        .get_record("implementation", &key)
        .await?
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let record = ImplementationRecord {
        branch,
        pull: progress.pull.as_ref().map(|p| p.0),
        spec_issue: req.spec_issue,
        spec_path,
        spec_ref,
        component: req.component.clone(),
        // A new `/implement` starts a fresh budget of fix rounds.
        fix_attempts: 0,
        handled_heads: previous.handled_heads,
    };
    let now = ctx.app.now();
    ctx.app
        .store
        .put_record(
            "implementation",
            &key,
            &serde_json::to_value(&record).unwrap_or_default(),
            now,
        )
        .await?;
    update_status(
        &repo,
        &req,
        &progress,
        component.as_ref(),
        ImplementStage::Done,
        None,
    )
    .await?;
    ctx.save("implement:done", &progress).await?;
    Ok(())
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
        Some(r) if req.from_spec_branch && r.state != "merged" && !r.branch.is_empty() => {
            r.branch.clone()
        }
        _ => default_branch.to_string(),
    };
    (path, git_ref)
}

/// Download the snapshot of `sha` and unpack it into a private workspace.
pub(crate) async fn snapshot(repo: &Repo, sha: &str) -> StepResult<Workspace> {
    let url = repo.tarball_url(sha).await?;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .map_err(|e| JobError::transient(format!("HTTP client: {e}")))?;
    let download = |e: reqwest::Error| {
        JobError::transient(format!(
            "downloading the repository snapshot failed: {}",
            e.without_url()
        ))
    };
    let mut response = http
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(download)?;
    let mut bytes: Vec<u8> = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(download)? {
        if (bytes.len() + chunk.len()) as u64 > MAX_TARBALL_BYTES {
            return Err(StepError::Failed(JobError::permanent(format!(
                "the repository snapshot is larger than {} MiB",
                MAX_TARBALL_BYTES / (1024 * 1024)
            ))));
        }
        bytes.extend_from_slice(&chunk);
    }
    let workspace = tokio::task::spawn_blocking(move || {
        Workspace::from_tarball(bytes.as_slice(), &WorkspaceLimits::default())
    })
    .await
    .map_err(|e| JobError::transient(format!("unpacking the snapshot: {e}")))?
    .map_err(|e| JobError::permanent(e.to_string()))?;
    Ok(workspace)
}

/// The repository's conventions files (from the snapshot) and the issue, fenced and within
/// budget.
pub(crate) fn conventions(
    workspace: &Workspace,
    issue_number: u64,
    title: &str,
    body: &str,
    author: &str,
) -> Vec<crate::prompt::context::ContextBlock> {
    let docs: Vec<RepoDoc> = CONVENTIONS
        .iter()
        .filter_map(|path| {
            let repo_path = crate::agent::RepoPath::parse(path).ok()?;
            let bytes = workspace.read(&repo_path).ok()?;
            let text = String::from_utf8(bytes).ok()?;
            Some(RepoDoc {
                path: path.to_string(),
                kind: DocKind::for_path(path),
                text,
            })
        })
        .collect();
    crate::prompt::context::gather(
        &ContextInput {
            issue_number,
            title: title.to_string(),
            body: body.to_string(),
            author: author.to_string(),
            comments: Vec::new(),
            docs,
            tree: Vec::new(),
        },
        CONTEXT_TOKENS,
    )
}

/// Run the engineer loop with the job's budget and the repository's guardrails; account for
/// its usage and keep its transcript.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn engineer(
    ctx: &mut JobCtx,
    model: &dyn ChatModel,
    prompt: &RenderedPrompt,
    workspace: &mut Workspace,
    config: &RepoConfig,
    target: &RepoTarget,
    issue_number: u64,
    tokens: &mut u64,
    cost_usd: &mut f64,
) -> StepResult<Engineered> {
    let mut policy = Policy {
        secrets: SecretScanner::new(ctx.app.settings.own_secrets()),
        ..Policy::default()
    };
    for glob in &config.implement.protected_paths {
        // Checked when the config was read; a bad one is ignored there.
        let _ = policy.protect(glob);
    }
    // What this job already spent (an earlier attempt) counts against its budget.
    let spent = ctx.app.store.job_cost(ctx.job.id).await?;
    let price = ctx.app.prices.price(model.model());
    let agent_config = AgentConfig {
        limits: AgentLimits {
            max_cost_usd: Some((config.max_cost_usd - spent).max(0.0)),
            ..AgentLimits::default()
        },
        policy,
        price,
    };
    let mut usage = crate::llm::Usage::default();
    let outcome = agent::run_agent(
        model,
        prompt,
        workspace,
        &agent_config,
        &ctx.cancel,
        &mut |u| usage += *u,
    )
    .await;
    let cost = super::context::account(ctx, model, &usage).await?;
    *tokens += usage.input_tokens
        + usage.output_tokens
        + usage.cache_read_tokens
        + usage.cache_write_tokens;
    *cost_usd += cost;
    let transcript = match &outcome {
        Ok(o) => &o.transcript,
        Err(f) => &f.transcript,
    };
    let now = ctx.app.now();
    ctx.app
        .store
        .put_record(
            "transcript",
            &format!(
                "{}#{issue_number}/job-{}/attempt-{}",
                target.repo_id, ctx.job.id, ctx.job.attempts
            ),
            &serde_json::to_value(transcript).unwrap_or_default(),
            now,
        )
        .await?;
    match outcome {
        Ok(o) => Ok(Engineered {
            changes: o.changes,
            summary: o.summary,
            criteria: o.criteria,
            refusals: o.refusals,
            skipped: workspace.skipped().to_vec(),
            steps: o.steps,
            model: model.model().to_string(),
            cost_known: price.is_some(),
        }),
        Err(failure) => {
            tracing::info!(error = %failure, "the engineer stopped without a result");
            Err(match failure.error {
                AgentError::Cancelled => StepError::Stopped,
                AgentError::Llm(e) => StepError::Failed(JobError::from_llm(&e)),
                other => StepError::Failed(JobError::permanent(other.to_string())),
            })
        }
    }
}

/// The last check before anything is pushed: no secret in any file or in the texts.
pub(crate) fn check_clean(scanner: &SecretScanner, result: &Engineered) -> StepResult {
    let mut found: Vec<String> = Vec::new();
    for change in &result.changes {
        if let Some(content) = &change.content {
            for f in scanner.scan(content).into_iter().take(3) {
                found.push(format!("{} in `{}`", f.kind, change.path));
            }
        }
    }
    for (what, text) in std::iter::once(("the summary", result.summary.as_str())).chain(
        result.criteria.iter().flat_map(|c| {
            [
                ("a criterion", c.criterion.as_str()),
                ("a criterion", c.how_met.as_str()),
            ]
        }),
    ) {
        if !scanner.is_clean(text) {
            found.push(format!("a secret in {what}"));
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    found.dedup();
    Err(StepError::Failed(JobError::permanent(format!(
        "the change was not pushed because it contains what looks like a secret ({})",
        found.join("; ")
    ))))
}

pub(crate) fn to_github(changes: &[crate::agent::FileChange]) -> Vec<FileChange> {
    changes
        .iter()
        .map(|c| FileChange {
            path: c.path.clone(),
            content: c.content.clone(),
        })
        .collect()
}

/// Subject, the summary's first paragraph, the spec reference and the attribution trailer.
pub(crate) fn commit_message(
    subject: &str,
    summary: &str,
    spec_issue: u64,
    model: &str,
    attribution: Attribution,
) -> String {
    let subject: String = subject.chars().take(72).collect();
    let first: String = crate::prompt::sanitize::sanitize(summary)
        .split("\n\n")
        .next()
        .unwrap_or("")
        .chars()
        .take(1000)
        .collect();
    let mut out = format!("{subject}\n\n");
    if !first.trim().is_empty() {
        out.push_str(first.trim());
        out.push_str("\n\n");
    }
    out.push_str(&format!("Refs #{spec_issue}\n"));
    let model = one_line(model);
    match attribution {
        Attribution::AssistedBy => out.push_str(&format!("Assisted-by: {model} via specbot\n")),
        Attribution::CoAuthoredBy => out.push_str(&format!(
            "Co-authored-by: {model} via specbot <specbot@users.noreply.github.com>\n"
        )),
        Attribution::None => {}
    }
    out
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ").chars().take(200).collect()
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
        tokens: p.tokens,
        cost_usd: p.cost_usd,
        error,
    }
}

async fn update_status(
    repo: &Repo,
    req: &ImplementRequest,
    p: &ImplementProgress,
    component: Option<&Component>,
    stage: ImplementStage,
    error: Option<String>,
) -> Result<(), crate::github::GitHubError> {
    let body = messages::implement_status(&status(req, p, component, stage, error));
    match p.status_comment {
        Some(id) => repo.update_comment(id, &body).await.map(|_| ()),
        None => repo
            .comment_once(
                req.issue_number,
                &messages::implement_marker(req.issue_number),
                &body,
            )
            .await
            .map(|_| ()),
    }
}

pub async fn report_cancelled(
    app: &App,
    job: &Job,
    req: &ImplementRequest,
) -> Result<(), crate::github::GitHubError> {
    report(app, job, req, ImplementStage::Cancelled, None).await
}

pub async fn report_failure(
    app: &App,
    job: &Job,
    req: &ImplementRequest,
    message: &str,
) -> Result<(), crate::github::GitHubError> {
    report(
        app,
        job,
        req,
        ImplementStage::Failed,
        Some(message.to_string()),
    )
    .await
}

async fn report(
    app: &App,
    job: &Job,
    req: &ImplementRequest,
    stage: ImplementStage,
    message: Option<String>,
) -> Result<(), crate::github::GitHubError> {
    let Some(github) = &app.github else {
        return Ok(());
    };
    let repo = github
        .installation(req.repo.installation_id)?
        .repo(&req.repo.owner, &req.repo.name);
    let checkpoint = match app.store.job(job.id).await {
        Ok(Some(fresh)) => fresh.checkpoint,
        _ => job.checkpoint.clone(),
    };
    let progress: ImplementProgress = serde_json::from_value(checkpoint).unwrap_or_default();
    // The component's title is not needed to say what went wrong.
    update_status(&repo, req, &progress, None, stage, message).await
}
