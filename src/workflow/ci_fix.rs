//! The CI-fix job: a check suite or run failed on an implementation PR's head → read the
//! failing checks (output and annotations) → one bounded fix round by the engineer on the PR's
//! branch → push → say so on the PR; when the repository's `implement.ci_fix_attempts` are
//! used up, one comment saying what still fails, and nothing more.
//!
//! It never loops on its own pushes: every head commit is handled at most once (recorded
//! before the model runs), the rounds per implementation are capped, and a head that is no
//! longer the branch's head (someone pushed since) is left alone.
//!
//! Steps (checkpoints `ci_fix:<step>`): `claim` (the head is taken and the attempt counted) → `fix` (the engineer's changes
//! kept in the checkpoint) → `commit` → `done` (the reply on the PR).

use serde::{Deserialize, Serialize};

use crate::agent::SecretScanner;
use crate::app::App;
use crate::config::repo::RepoConfig;
use crate::github::actions::{self, LogGap};
use crate::github::{GitHubError, Repo};
use crate::jobs::Job;
use crate::messages::{self, LogGapKind};
use crate::prompt::templates::{CiFailure, CiFixInput};
use crate::workflow::engineer::{self, Assignment, Engineered};
use crate::workflow::job::CiFixRequest;
use crate::workflow::quota::{Admission, admit};
use crate::workflow::records::{self, ImplementationRecord, issue_key};
use crate::workflow::spend::Spend;
use crate::workflow::step::load_config;
use crate::workflow::step::{JobCtx, StepError, StepResult, repo_client};
use crate::workflow::{Ending, Workflow};

/// Characters of a job log's failing step given to the model.
const MAX_JOB_LOG_CHARS: usize = 12_000;
/// Most failing checks read (and annotations per check).
const MAX_CHECKS: usize = 10;
const MAX_ANNOTATIONS: usize = 50;
/// Heads remembered per implementation.
const MAX_HANDLED: usize = 50;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CiFixProgress {
    /// The attempt this job counts as (set at `claim`).
    pub attempt: Option<u32>,
    pub failing: Vec<String>,
    pub result: Option<Engineered>,
    #[serde(flatten)]
    pub spend: Spend,
    pub head: Option<String>,
    /// Checks whose GitHub Actions job log could not be read, and why.
    pub log_gaps: Vec<(String, LogGapKind)>,
}

impl Workflow for CiFixRequest {
    const KIND: &'static str = "ci_fix";

    /// One fix round at a time per PR; the job itself skips heads already handled.
    fn dedupe_key(&self) -> String {
        format!("ci_fix:{}#{}", self.repo.repo_id, self.issue_number)
    }

    async fn run(self, ctx: &mut JobCtx) -> StepResult {
        run(ctx, self).await
    }

    /// The fix round failed for good: say so on the PR, once per head.
    async fn report(&self, app: &App, _: &Job, end: Ending<'_>) -> Result<(), GitHubError> {
        match end {
            Ending::Failed(error) => report_failure(app, self, error).await,
            Ending::Cancelled => Ok(()),
        }
    }
}

async fn run(ctx: &mut JobCtx, req: CiFixRequest) -> StepResult {
    let repo = ctx.repo(&req.repo)?;
    let key = issue_key(req.repo.repo_id, req.issue_number);
    let Some(mut record) = records::load::<ImplementationRecord>(&*ctx.app.store, &key).await?
    else {
        tracing::info!(branch = %req.branch, "CI failed on a branch specbot has no implementation record for");
        return Ok(());
    };
    let Some(pull_number) = record.pull else {
        return Ok(());
    };
    let mut progress: CiFixProgress = ctx.progress()?;
    let info = repo.info().await?;
    let (config, _) = load_config(&repo, &info.default_branch).await?;
    let max = config.implement.ci_fix_attempts;

    // claim
    let mut failing: Option<Vec<CiFailure>> = None;
    if progress.attempt.is_none() {
        if max == 0 || record.handled_heads.iter().any(|h| h == &req.head_sha) {
            tracing::info!(head = %req.head_sha, max, "CI fixing is off, or this head was handled");
            return Ok(());
        }
        if repo.branch_head(&req.branch).await?.as_deref() != Some(req.head_sha.as_str()) {
            tracing::info!(head = %req.head_sha, "not the branch's head any more; leaving it");
            return Ok(());
        }
        if repo.pull(pull_number).await?.state != "open" {
            tracing::info!(pull = pull_number, "the implementation PR is not open");
            return Ok(());
        }
        if admit(ctx, &req.repo, None).await? == Admission::Drop {
            return Ok(());
        }
        let (failures, gaps) = failing_checks(&repo, &req.head_sha).await?;
        if failures.is_empty() {
            tracing::info!(head = %req.head_sha, "no failing check on this head (re-run green?)");
            return Ok(());
        }
        let names: Vec<String> = failures.iter().map(|f| f.name.clone()).collect();
        remember(&mut record, &req.head_sha);
        if record.fix_attempts >= max {
            records::save(&*ctx.app.store, &key, &record, ctx.app.now()).await?;
            repo.comment_once(
                pull_number,
                &messages::ci_marker(&req.head_sha),
                &messages::ci_gave_up(&req.head_sha, max, &names),
            )
            .await?;
            return Ok(());
        }
        record.fix_attempts += 1;
        records::save(&*ctx.app.store, &key, &record, ctx.app.now()).await?;
        progress.attempt = Some(record.fix_attempts);
        progress.failing = names;
        progress.log_gaps = gaps;
        ctx.save("ci_fix:claim", &progress).await?;
        failing = Some(failures);
    }
    // A resumed job reads the failures again (they are not kept in the checkpoint).
    let failing = match failing {
        Some(f) => f,
        None if progress.result.is_none() => {
            let (failures, gaps) = failing_checks(&repo, &req.head_sha).await?;
            progress.log_gaps = gaps;
            failures
        }
        None => Vec::new(),
    };
    let at = Target {
        repo: &repo,
        req: &req,
        record: &record,
        pull_number,
        config: &config,
        default_branch: &info.default_branch,
    };
    fix(ctx, &at, failing, progress).await
}

/// Where a fix round works.
#[derive(Clone, Copy)]
struct Target<'a> {
    repo: &'a Repo,
    req: &'a CiFixRequest,
    record: &'a ImplementationRecord,
    pull_number: u64,
    config: &'a RepoConfig,
    default_branch: &'a str,
}

async fn fix(
    ctx: &mut JobCtx,
    at: &Target<'_>,
    failing: Vec<CiFailure>,
    mut progress: CiFixProgress,
) -> StepResult {
    let Target {
        repo,
        req,
        record,
        pull_number,
        config,
        default_branch,
    } = *at;
    let max = config.implement.ci_fix_attempts;
    let attempt = progress.attempt.unwrap_or(1);

    // fix
    if progress.result.is_none() {
        let spec = repo.file(&record.spec_path, &record.spec_ref).await?;
        let mut workspace = engineer::snapshot(repo, &req.head_sha).await?;
        let prompt = crate::prompt::templates::render_ci_fix(&CiFixInput {
            pull_number,
            branch: req.branch.clone(),
            spec_path: record.spec_path.clone(),
            spec,
            failures: failing,
            attempt,
            tools: crate::agent::tool_notes(),
        })
        .map_err(|e| StepError::permanent(e.to_string()))?;
        let work = Assignment {
            prompt: &prompt,
            config,
            target: &req.repo,
            issue_number: req.issue_number,
            board: None,
        };
        let result = engineer::engineer(ctx, &work, &mut workspace, &mut progress.spend).await?;
        // The snapshot's directory is removed before the checkpoint (and its crash point).
        drop(workspace);
        progress.result = Some(result);
        ctx.save("ci_fix:fix", &progress).await?;
    }
    let result = progress.result.clone().unwrap_or_default();
    if result.changes.is_empty() {
        repo.comment_once(
            pull_number,
            &messages::ci_marker(&req.head_sha),
            &(messages::ci_fix_nothing(&req.head_sha, attempt, max, &progress.failing)
                + &messages::ci_log_gaps(&progress.log_gaps)),
        )
        .await?;
        return Ok(());
    }

    // commit
    if progress.head.is_none() {
        engineer::check_clean(&SecretScanner::new(ctx.app.settings.own_secrets()), &result)?;
        let message = messages::commit_message(
            &messages::ci_fix_subject(req.issue_number, attempt),
            &result.summary,
            record.spec_issue,
            &result.model,
            config.implement.attribution,
        );
        let pushed = repo
            .commit_files(
                &req.branch,
                default_branch,
                &message,
                &engineer::to_github(&result.changes),
            )
            .await?;
        progress.head = Some(pushed.head);
        ctx.save("ci_fix:commit", &progress).await?;
    }

    // done
    let head = progress.head.clone().unwrap_or_default();
    repo.comment_once(
        pull_number,
        &messages::ci_marker(&req.head_sha),
        &(messages::ci_fix_pushed(
            &req.head_sha,
            &head,
            attempt,
            max,
            &progress.failing,
            &result.summary,
        ) + &messages::ci_log_gaps(&progress.log_gaps)),
    )
    .await?;
    ctx.save("ci_fix:done", &progress).await?;
    Ok(())
}

fn remember(record: &mut ImplementationRecord, head: &str) {
    record.handled_heads.push(head.to_string());
    let extra = record.handled_heads.len().saturating_sub(MAX_HANDLED);
    record.handled_heads.drain(..extra);
}

/// The failing checks on a commit: each one's output, annotations and (for a GitHub Actions
/// job) its log's failing step, as the fixer reads them; and the checks whose job log could not
/// be read.
async fn failing_checks(
    repo: &Repo,
    sha: &str,
) -> StepResult<(Vec<CiFailure>, Vec<(String, LogGapKind)>)> {
    let runs = repo.check_runs(sha).await?;
    let mut out = Vec::new();
    let mut gaps = Vec::new();
    for run in runs.iter().filter(|r| r.failed()).take(MAX_CHECKS) {
        let mut log = String::new();
        let conclusion = run.conclusion.as_deref().unwrap_or("failure");
        log.push_str(&format!("conclusion: {conclusion}\n"));
        if let Some(output) = &run.output {
            for part in [&output.title, &output.summary, &output.text]
                .into_iter()
                .flatten()
            {
                log.push_str(part);
                log.push('\n');
            }
            if output.annotations_count > 0 {
                for a in repo
                    .check_run_annotations(run.id)
                    .await?
                    .iter()
                    .take(MAX_ANNOTATIONS)
                {
                    let line = a.start_line.map(|l| format!(":{l}")).unwrap_or_default();
                    let level = a.annotation_level.as_deref().unwrap_or("failure");
                    let title = a
                        .title
                        .as_deref()
                        .map(|t| format!("{t}: "))
                        .unwrap_or_default();
                    log.push_str(&format!(
                        "{}{line}: {level}: {title}{}\n",
                        a.path, a.message
                    ));
                }
            }
        }
        let mut job_log = None;
        if let Some(job) = actions::actions_job_id(run) {
            match actions::job_log(repo, job).await {
                Ok(text) => job_log = Some(actions::failing_step_tail(&text, MAX_JOB_LOG_CHARS)),
                Err(gap) => {
                    tracing::warn!(check = %run.name, job, ?gap, "the job log could not be read; going on with the annotations");
                    let kind = match gap {
                        LogGap::NoPermission => LogGapKind::Permission,
                        LogGap::Gone => LogGapKind::Gone,
                        LogGap::Failed(_) => LogGapKind::Failed,
                    };
                    gaps.push((run.name.clone(), kind));
                }
            }
        }
        out.push(CiFailure {
            name: run.name.clone(),
            log,
            job_log,
        });
    }
    Ok((out, gaps))
}

async fn report_failure(app: &App, req: &CiFixRequest, message: &str) -> Result<(), GitHubError> {
    let Some(repo) = repo_client(app, &req.repo)? else {
        return Ok(());
    };
    let key = issue_key(req.repo.repo_id, req.issue_number);
    let record = records::load::<ImplementationRecord>(&*app.store, &key)
        .await
        .ok()
        .flatten();
    let Some(pull) = record.and_then(|r| r.pull) else {
        return Ok(());
    };
    repo.comment_once(
        pull,
        &messages::ci_marker(&req.head_sha),
        &messages::ci_fix_failed(&req.head_sha, message),
    )
    .await
    .map(|_| ())
}
