//! Who may start model-calling work, and how often: per-person and per-repository quotas per
//! hour, and the installation's daily spend cap. Checked once, when such a job first starts.
//! Also how often someone without write access is told so ([`refuse`]).

use crate::github::Repo;
use crate::messages;
use crate::workflow::job::RepoTarget;
use crate::workflow::step::{JobCtx, StepError, StepResult};

/// Whether a job that calls the model may start.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    Go,
    /// Over a quota that was already explained once in this window: drop it quietly.
    Drop,
}

const HOUR_MS: i64 = 3_600_000;

/// Quotas and the global spend cap, checked once, when a model-calling job first starts (a
/// retried or resumed attempt is not counted again). `requester` is `None` for jobs nobody
/// asked for (CI fix rounds), which count against the repository only.
///
/// Over a quota, the first refused job in the hour fails with a message saying which quota and
/// when it frees up (the user sees it in the status comment or reply); later ones in the same
/// hour are dropped with a log line, so a flood of triggers cannot become a flood of comments.
/// Over the spend cap, every job fails with the message.
pub async fn admit(
    ctx: &JobCtx,
    target: &RepoTarget,
    requester: Option<&str>,
) -> StepResult<Admission> {
    if ctx.job.attempts > 1 {
        return Ok(Admission::Go);
    }
    let settings = &ctx.app.settings;
    let now = ctx.app.now();
    if let Some(budget) = settings.quotas.llm_daily_budget_usd {
        let spent = ctx.app.store.spent_since(now - 24 * HOUR_MS).await?;
        if spent >= budget {
            metrics::counter!("specbot_quota_refusals_total", "quota" => "spend").increment(1);
            return Err(StepError::permanent(format!(
                "this specbot installation has spent ${spent:.2} on the language model in the last 24 hours, \
                 its limit (LLM_DAILY_BUDGET_USD = ${budget:.2}); try again later or ask its operator to raise the limit"
            )));
        }
    }
    let hour = now / HOUR_MS;
    let next_hour = chrono_hour((hour + 1) * HOUR_MS);
    let mut checks: Vec<(String, u32, String)> = Vec::new();
    if let Some(login) = requester {
        checks.push((
            format!(
                "user:{}:{}:{hour}",
                target.installation_id,
                login.to_ascii_lowercase()
            ),
            settings.quotas.user_jobs_per_hour,
            format!("@{login} has started {{n}} jobs this hour, the most one person may (USER_JOBS_PER_HOUR = {{limit}})"),
        ));
    }
    checks.push((
        format!("repo:{}:{hour}", target.repo_id),
        settings.quotas.repo_jobs_per_hour,
        format!(
            "{} has started {{n}} jobs this hour, the most one repository may (REPO_JOBS_PER_HOUR = {{limit}})",
            target.full_name()
        ),
    ));
    for (key, limit, text) in checks {
        let n = ctx
            .app
            .store
            .bump_counter(&format!("quota:{key}"), now)
            .await?;
        if n <= i64::from(limit) {
            continue;
        }
        let quota = key.split(':').next().unwrap_or("quota").to_string();
        metrics::counter!("specbot_quota_refusals_total", "quota" => quota).increment(1);
        if n > i64::from(limit) + 1 {
            tracing::warn!(%key, n, limit, "over quota again this hour; dropped without a comment");
            return Ok(Admission::Drop);
        }
        let text = text
            .replace("{n}", &limit.to_string())
            .replace("{limit}", &limit.to_string());
        return Err(StepError::permanent(format!(
            "{text}. Try again after {next_hour} UTC."
        )));
    }
    Ok(Admission::Go)
}

/// Tell `login`, who has no write access, that they may not ask for this: at most once per
/// person per issue (or PR) per hour. Later refusals in the hour are dropped with a log line:
/// each reply takes a turn in the installation's write queue, so a flood of commands must not
/// become a flood of replies. A retried attempt replies (the reply is found again by `marker`).
pub async fn refuse(
    ctx: &JobCtx,
    repo: &Repo,
    number: u64,
    login: &str,
    marker: &str,
) -> StepResult {
    if ctx.job.attempts <= 1 {
        let now = ctx.app.now();
        let key = format!(
            "quota:not-allowed:{}:{number}:{}:{}",
            repo.full_name().to_ascii_lowercase(),
            login.to_ascii_lowercase(),
            now / HOUR_MS
        );
        let n = ctx.app.store.bump_counter(&key, now).await?;
        if n > 1 {
            tracing::info!(%login, number, n, "not allowed again this hour; dropped without a reply");
            return Ok(());
        }
    }
    let body = messages::not_allowed(marker, login);
    repo.comment_once(number, marker, &body).await?;
    Ok(())
}

/// `HH:00` of a time in milliseconds since the epoch (UTC).
fn chrono_hour(ms: i64) -> String {
    format!("{:02}:00", (ms / HOUR_MS).rem_euclid(24))
}
