//! The engineer at work, shared by `/implement` and CI fix rounds: a snapshot of the repository
//! unpacked into a private workspace, the repository's conventions as context, the agent loop
//! with the job's budget and the repository's guardrails, the last secret scan before a push,
//! and the commit message with its attribution trailer.

use std::io::Seek;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::agent::{
    self, AgentConfig, AgentError, AgentLimits, AgentLog, CommandRun, CriterionMet, Policy, Runner,
    SecretScanner, SkippedEntry, TestChoice, Workspace, WorkspaceLimits,
};
use crate::config::repo::RepoConfig;
use crate::github::Repo;
use crate::github::model::Permission;
use crate::github::repo::FileChange;
use crate::prompt::context::{ContextInput, DocKind, RepoDoc};
use crate::prompt::templates::RenderedPrompt;
use crate::workflow::job::RepoTarget;
use crate::workflow::records::{self, TranscriptRecord};
use crate::workflow::spend::{self, Spend};
use crate::workflow::step::{JobCtx, JobError, StepError, StepResult};

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
    pub skipped: Vec<SkippedEntry>,
    pub model: String,
    pub cost_known: bool,
    /// Steps, refusals, every command that ran as the bot recorded it (the PR's "Verification"
    /// section) and whether the bot's last test run passed; the transcript is stored on its own.
    #[serde(flatten)]
    pub log: AgentLog,
    /// The test command and where it came from.
    pub test: Option<TestChoice>,
    /// Why no command could run (`None`: the sandbox was there).
    pub not_run: Option<String>,
}

/// The test command for this workspace: the config's, else a proposal from its top-level files.
pub fn test_choice(config: &RepoConfig, workspace: &Workspace) -> Option<TestChoice> {
    if let Some(command) = &config.implement.test {
        return Some(TestChoice {
            command: command.clone(),
            detected: None,
        });
    }
    let names = workspace.top_level_files();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let texts: Vec<(String, String)> = crate::sandbox::detect::FILES_READ
        .iter()
        .filter(|f| names.contains(f))
        .filter_map(|f| {
            let path = crate::agent::RepoPath::parse(f).ok()?;
            let text = String::from_utf8(workspace.read(&path).ok()?).ok()?;
            Some((f.to_string(), text))
        })
        .collect();
    crate::sandbox::propose_test_command(&names, |name| {
        texts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.as_str())
    })
    .map(|p| TestChoice {
        command: p.command,
        detected: Some(p.reason),
    })
}

/// Download the snapshot of `sha` and unpack it into a private workspace. The download is
/// streamed into an unnamed temporary file, then unpacked from it, so a job holds one chunk of
/// it in memory at a time, not the whole tarball.
pub async fn snapshot(repo: &Repo, sha: &str) -> StepResult<Workspace> {
    let url = repo.tarball_url(sha).await?;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .map_err(|e| JobError::transient(format!("HTTP client: {e}")))?;
    let download = |e: reqwest::Error| {
        tracing::warn!(error = %e.without_url(), "downloading the repository snapshot failed");
        JobError::transient("downloading the repository snapshot from GitHub failed")
    };
    let disk = |e: std::io::Error| {
        JobError::transient(format!(
            "writing the repository snapshot to disk failed: {e}"
        ))
    };
    let mut response = http
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(download)?;
    let mut file = tokio::fs::File::from_std(tempfile::tempfile().map_err(disk)?);
    let mut written: u64 = 0;
    while let Some(chunk) = response.chunk().await.map_err(download)? {
        written += chunk.len() as u64;
        if written > MAX_TARBALL_BYTES {
            return Err(StepError::Failed(JobError::permanent(format!(
                "the repository snapshot is larger than {} MiB",
                MAX_TARBALL_BYTES / (1024 * 1024)
            ))));
        }
        file.write_all(&chunk).await.map_err(disk)?;
    }
    file.flush().await.map_err(disk)?;
    let mut file = file.into_std().await;
    let workspace = tokio::task::spawn_blocking(move || {
        file.seek(std::io::SeekFrom::Start(0))?;
        Workspace::from_tarball(std::io::BufReader::new(file), &WorkspaceLimits::default())
    })
    .await
    .map_err(|e| JobError::transient(format!("unpacking the snapshot: {e}")))?
    .map_err(|e| JobError::permanent(e.to_string()))?;
    Ok(workspace)
}

/// What people with write access wrote on an issue: the engineer's only words from people.
pub struct IssueWords {
    pub issue_number: u64,
    /// The issue's title and description, when its author has write access.
    pub issue: Option<(String, String, String)>,
    /// (author, body) of comments by people with write access, oldest first.
    pub comments: Vec<(String, String)>,
    /// Texts by people without write access that were left out (the description counts).
    pub left_out: usize,
}

/// The issue's title, description and comments as far as people with write access wrote them.
/// Anyone can comment on a public issue, and the engineer writes code that CI runs with the
/// repository's secrets: it takes its orders only from the spec a maintainer approved and from
/// maintainers. Bots' comments (the status comments) are skipped without counting.
pub async fn maintainers_words(
    ctx: &JobCtx,
    repo: &Repo,
    issue_number: u64,
) -> StepResult<IssueWords> {
    let issue = repo.issue(issue_number).await?;
    let comments = repo.comments(issue_number, 100).await?;
    let may_steer = |login: String| async move {
        ctx.app
            .permission(repo, &login)
            .await
            .map(|p| p >= Permission::Write)
    };
    let mut words = IssueWords {
        issue_number,
        issue: None,
        comments: Vec::new(),
        left_out: 0,
    };
    if may_steer(issue.user.login.clone()).await? {
        let body = issue.body.clone().unwrap_or_default();
        words.issue = Some((issue.title.clone(), body, issue.user.login.clone()));
    } else if issue.body.as_deref().is_some_and(|b| !b.trim().is_empty()) {
        words.left_out += 1;
    }
    for c in comments.into_iter().filter(|c| !c.user.is_bot()) {
        if may_steer(c.user.login.clone()).await? {
            words
                .comments
                .push((c.user.login, c.body.unwrap_or_default()));
        } else {
            words.left_out += 1;
        }
    }
    if words.left_out > 0 {
        tracing::info!(
            issue_number,
            left_out = words.left_out,
            "texts by people without write access left out of the engineer's input"
        );
    }
    Ok(words)
}

/// The repository's conventions files (from the snapshot) and what maintainers wrote on the
/// issue, fenced and within budget.
pub fn conventions(
    workspace: &Workspace,
    words: IssueWords,
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
    let (title, body, author) = words.issue.unwrap_or_else(|| {
        (
            "(left out: written by someone without write access)".into(),
            String::new(),
            String::new(),
        )
    });
    crate::prompt::context::gather(
        &ContextInput {
            issue_number: words.issue_number,
            title,
            body,
            author,
            comments: words.comments,
            docs,
            tree: Vec::new(),
        },
        CONTEXT_TOKENS,
    )
}

/// What the engineer is asked and for whom: the prompt, the repository's settings (its model,
/// budget and protected paths), and the issue whose transcript this is.
pub struct Assignment<'a> {
    pub prompt: &'a RenderedPrompt,
    pub config: &'a RepoConfig,
    pub target: &'a RepoTarget,
    pub issue_number: u64,
    /// The status comment that shows the engineer's progress as it works, if any.
    pub board: Option<crate::workflow::watch::StatusBoard<'a>>,
}

/// Run the engineer loop with the job's budget and the repository's guardrails; account for
/// its usage in `spend` and keep its transcript.
pub async fn engineer(
    ctx: &mut JobCtx,
    work: &Assignment<'_>,
    workspace: &mut Workspace,
    spend: &mut Spend,
) -> StepResult<Engineered> {
    let model = ctx.model(work.config.model.as_deref())?;
    let model = &*model;
    let mut policy = Policy {
        secrets: SecretScanner::new(ctx.app.settings.own_secrets()),
        ..Policy::default()
    };
    for glob in &work.config.implement.protected_paths {
        // Checked when the config was read; a bad one is ignored there.
        let _ = policy.protect(glob);
    }
    // What this job already spent (an earlier attempt) counts against its budget.
    let spent = ctx.app.store.job_cost(ctx.job.id).await?;
    let price = ctx.app.model_price(model.model()).ok();
    let (progress, events) = tokio::sync::mpsc::unbounded_channel();
    let test = test_choice(work.config, workspace);
    let home = runner_home()?;
    let (runner, not_run) = runner(ctx, work.config, test.as_ref(), home.path())?;
    let agent_config = AgentConfig {
        limits: AgentLimits {
            max_cost_usd: Some((work.config.max_cost_usd - spent).max(0.0)),
            ..AgentLimits::default()
        },
        policy,
        price,
        progress: work.board.is_some().then_some(progress),
        runner,
    };
    let (cancel, ws) = (&ctx.cancel, &mut *workspace);
    // The loop owns the config, so its progress channel closes when the loop ends and the
    // watcher's last edit is done before anything else is shown.
    let agent = async move {
        let mut usage = crate::llm::Usage::default();
        let outcome = agent::run_agent(model, work.prompt, ws, &agent_config, cancel, &mut |u| {
            usage += *u
        })
        .await;
        (outcome, usage)
    };
    let watcher = crate::workflow::watch::watch(&ctx.app, work.board.as_ref(), price, events);
    let ((outcome, usage), ()) = tokio::join!(agent, watcher);
    spend::account(ctx, model, &usage, spend).await?;
    let transcript = match &outcome {
        Ok(o) => &o.log.transcript,
        Err(f) => &f.log.transcript,
    };
    let key = format!(
        "{}#{}/job-{}/attempt-{}",
        work.target.repo_id, work.issue_number, ctx.job.id, ctx.job.attempts
    );
    let transcript = TranscriptRecord(serde_json::to_value(transcript).unwrap_or_default());
    records::save(&*ctx.app.store, &key, &transcript, ctx.app.now()).await?;
    match outcome {
        Ok(o) => Ok(Engineered {
            changes: o.changes,
            summary: o.summary,
            criteria: o.criteria,
            skipped: workspace.skipped().to_vec(),
            model: model.model().to_string(),
            cost_known: price.is_some(),
            log: AgentLog {
                transcript: Vec::new(),
                ..o.log
            },
            test,
            not_run,
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

/// `HOME` for the job's commands: kept between its runs, outside the workspace, removed after.
fn runner_home() -> StepResult<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("specbot-home-")
        .tempdir()
        .map_err(|e| StepError::Failed(JobError::transient(format!("creating HOME: {e}"))))
}

/// How the repository's commands run for this job, or why none runs. A repository that asks
/// for network during setup on a host that cannot give it is refused, with the reason.
fn runner(
    ctx: &JobCtx,
    config: &RepoConfig,
    test: Option<&TestChoice>,
    home: &std::path::Path,
) -> StepResult<(Option<Runner>, Option<String>)> {
    let sandbox = match &ctx.app.sandbox {
        Ok(sandbox) => sandbox.clone(),
        Err(why) => return Ok((None, Some(why.to_string()))),
    };
    let implement = &config.implement;
    if implement.setup_network
        && !implement.setup.is_empty()
        && let Err(why) = sandbox.network_available()
    {
        return Err(StepError::permanent(
            crate::messages::setup_network_unavailable(&why),
        ));
    }
    let runner = Runner {
        sandbox,
        home: home.to_path_buf(),
        setup: implement.setup.clone(),
        setup_network: implement.setup_network,
        test: test.map(|t| t.command.clone()),
        test_rounds: implement.test_rounds,
    };
    Ok((Some(runner), None))
}

/// Run the verification test once in `workspace` (a CI fix round's check before its push, or
/// any caller outside the engineer loop). `None`: no test command, or commands do not run here.
pub async fn verify_workspace(
    ctx: &JobCtx,
    config: &RepoConfig,
    workspace: &Workspace,
) -> StepResult<Option<CommandRun>> {
    let test = test_choice(config, workspace);
    let home = runner_home()?;
    let (Some(runner), _) = runner(ctx, config, test.as_ref(), home.path())? else {
        return Ok(None);
    };
    let policy = Policy {
        secrets: SecretScanner::new(ctx.app.settings.own_secrets()),
        ..Policy::default()
    };
    Ok(runner.test(workspace, &policy, &ctx.cancel).await)
}

/// The last check before anything is pushed: no secret in any file or in the texts.
pub fn check_clean(scanner: &SecretScanner, result: &Engineered) -> StepResult {
    let mut found: Vec<String> = Vec::new();
    for change in &result.changes {
        if let Some(content) = &change.content {
            for f in scanner.scan(content).into_iter().take(3) {
                found.push(format!("{} in `{}`", f.kind, change.path));
            }
        }
    }
    for (what, text) in std::iter::once(("the summary", result.summary.as_str())).chain(
        result
            .criteria
            .iter()
            .flat_map(|c| c.texts().map(|t| ("a criterion", t))),
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

pub fn to_github(changes: &[crate::agent::FileChange]) -> Vec<FileChange> {
    changes
        .iter()
        .map(|c| FileChange {
            path: c.path.clone(),
            content: c.content.clone(),
            executable: c.executable,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpoint written before the run's log was one type still reads, and reads the same.
    #[test]
    fn an_engineered_result_keeps_its_checkpoint_shape() {
        let stored = serde_json::json!({
            "changes": [], "summary": "Done.", "criteria": [], "refusals": [], "skipped": [],
            "steps": 4, "model": "m", "cost_known": true, "runs": [], "tests_pass": true,
            "test": null, "not_run": null
        });
        let read: Engineered = serde_json::from_value(stored.clone()).expect("reads");
        assert_eq!((read.log.steps, read.log.tests_pass), (4, Some(true)));
        assert_eq!(serde_json::to_value(&read).expect("writes"), stored);
    }
}
