//! The engineer's commands: the repository's setup, the `run_command` tool and the bot's own test
//! run after `finish`, all in the sandbox ([`crate::sandbox`]), and the records the PR's
//! "Verification" section is written from. Also what the push takes after commands ran: the
//! workspace's files as they are on disk ([`disk_changes`]), with what a command wrote under a
//! protected path refused like a tool write, files the repository's `.gitignore` ignores left
//! out, and symlinks that leave the workspace, FIFOs and devices never read.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::guard::{Policy, Refusal};
use super::path::RepoPath;
use super::workspace::{FileChange, Workspace};
use crate::llm::Tool;
use crate::sandbox::{
    self, Command, Outcome as RunOutcome, RunDirs, RunRecord, Sandbox, WorkspaceEntry,
};

pub const RUN_COMMAND: &str = "run_command";

/// How a run ended and how long it took: `exit code 1 after 0.2 s`.
pub fn outcome_line(record: &RunRecord) -> String {
    let seconds = record.duration_ms as f64 / 1000.0;
    format!("{} after {seconds:.1} s", outcome_words(&record.outcome))
}

/// How the engineer's commands run for one job.
#[derive(Debug, Clone)]
pub struct Runner {
    pub sandbox: Arc<Sandbox>,
    /// `HOME` for every run of the job (setup's downloads stay for the tests); outside the
    /// workspace.
    pub home: PathBuf,
    /// Shell lines run once before the loop.
    pub setup: Vec<String>,
    /// Whether the setup lines get user-mode network.
    pub setup_network: bool,
    /// The line the bot runs after `finish`; `None`: nothing to verify with.
    pub test: Option<String>,
    /// How often a failing test run goes back to the model.
    pub test_rounds: u32,
}

/// The command that verifies the work: `implement.test`, or one proposed from the repository.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestChoice {
    pub command: String,
    /// Why it was proposed; `None`: the repository's config names it.
    pub detected: Option<String>,
}

/// Who asked for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// `implement.setup`, before the engineer started.
    Setup,
    /// The engineer's `run_command`.
    Engineer,
    /// The bot's own run of the test command after `finish`.
    Test,
}

/// One command that ran (or could not start), as the bot recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRun {
    pub kind: RunKind,
    pub record: RunRecord,
}

/// The `run_command` tool, its timeout capped by the operator's limit.
pub fn run_command_tool(max_timeout: Duration) -> Tool {
    let max = max_timeout.as_secs();
    Tool {
        name: RUN_COMMAND.into(),
        description: format!(
            "Run a shell command in the repository's root (`/bin/sh -c`), in a sandbox without \
             network, e.g. the tests or a build. Returns the exit code, the duration and the \
             output's beginning and end. At most {max} seconds per command. Files it changes are \
             part of your change (build outputs the repository's .gitignore ignores are not \
             pushed)."
        ),
        input_schema: json!({
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "A shell command line, e.g. `cargo test`."},
                "timeout_secs": {"type": "integer", "minimum": 1, "maximum": max},
            },
            "required": ["command"],
        }),
    }
}

#[derive(Deserialize)]
struct RunArgs {
    command: String,
    timeout_secs: Option<u64>,
}

/// Longest command line the tool accepts.
const MAX_COMMAND_CHARS: usize = 4_000;

impl Runner {
    fn dirs(&self, workspace: &Workspace) -> RunDirs {
        RunDirs::new(workspace.root()).with_home(&self.home)
    }

    async fn run(
        &self,
        workspace: &Workspace,
        command: Command,
        kind: RunKind,
        policy: &Policy,
        cancel: &CancellationToken,
    ) -> CommandRun {
        let mut record = self
            .sandbox
            .run(&self.dirs(workspace), &command, cancel)
            .await;
        // The sandbox holds no secret, but what a repository prints reaches the PR.
        record.command = policy.secrets.redact(&record.command);
        record.output.head = policy.secrets.redact(&record.output.head);
        record.output.tail = policy.secrets.redact(&record.output.tail);
        CommandRun { kind, record }
    }

    /// The setup lines, in order; a failing one does not stop the others.
    pub(crate) async fn setup(
        &self,
        workspace: &Workspace,
        policy: &Policy,
        cancel: &CancellationToken,
    ) -> Vec<CommandRun> {
        let mut runs = Vec::new();
        for line in &self.setup {
            if cancel.is_cancelled() {
                break;
            }
            let mut command = Command::shell(line.clone());
            command.network = self.setup_network;
            runs.push(
                self.run(workspace, command, RunKind::Setup, policy, cancel)
                    .await,
            );
        }
        runs
    }

    /// The engineer's `run_command`: the record, and the answer for the model.
    pub(crate) async fn run_command(
        &self,
        workspace: &Workspace,
        input: &Value,
        policy: &Policy,
        cancel: &CancellationToken,
    ) -> Result<(CommandRun, String), String> {
        let args: RunArgs =
            serde_json::from_value(input.clone()).map_err(|e| format!("invalid arguments: {e}"))?;
        let line = args.command.trim();
        if line.is_empty() {
            return Err("`command` is empty".into());
        }
        if line.chars().count() > MAX_COMMAND_CHARS {
            return Err(format!(
                "`command` is longer than {MAX_COMMAND_CHARS} characters"
            ));
        }
        let mut command = Command::shell(line);
        command.timeout_secs = args.timeout_secs.map(|t| t.max(1));
        let run = self
            .run(workspace, command, RunKind::Engineer, policy, cancel)
            .await;
        let answer = describe(&run.record);
        Ok((run, answer))
    }

    /// The bot's own test run.
    pub async fn test(
        &self,
        workspace: &Workspace,
        policy: &Policy,
        cancel: &CancellationToken,
    ) -> Option<CommandRun> {
        let line = self.test.as_ref()?;
        Some(
            self.run(
                workspace,
                Command::shell(line.clone()),
                RunKind::Test,
                policy,
                cancel,
            )
            .await,
        )
    }
}

/// How a run ended, in a few words ("exit code 1", "timed out after 600 s").
pub fn outcome_words(outcome: &RunOutcome) -> String {
    match outcome {
        RunOutcome::Exited { code } => format!("exit code {code}"),
        RunOutcome::Signalled { signal } => format!("killed by signal {signal}"),
        RunOutcome::TimedOut { after_secs } => format!("timed out after {after_secs} s"),
        RunOutcome::Cancelled => "cancelled".into(),
        RunOutcome::NotStarted { reason } => format!("not started: {reason}"),
    }
}

/// A run as the model reads it: how it ended, how long it took, and its output.
pub fn describe(record: &RunRecord) -> String {
    let mut out = format!("`{}`: {}\n", record.command, outcome_line(record));
    let text = record.output.text();
    if text.trim().is_empty() {
        out.push_str("(no output)\n");
    } else {
        out.push_str("output:\n");
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// What the workspace holds now compared with the snapshot, for the push after commands ran.
/// Refused (and listed as refusals of `run_command`): files under protected paths, binary or
/// oversized files, symlinks that leave the workspace, special files, new symlinks. Left out
/// without a word: new files the repository's `.gitignore` files ignore.
pub(crate) fn disk_changes(
    workspace: &Workspace,
    policy: &Policy,
    refusals: &mut Vec<Refusal>,
) -> std::io::Result<Vec<FileChange>> {
    let root = workspace.root();
    let listing = sandbox::collect_files(root)?;
    let ignore = GitIgnore::read(workspace, &listing.entries);
    let mut refuse = |path: &str, reason: String| {
        refusals.push(Refusal {
            tool: RUN_COMMAND.into(),
            path: Some(path.to_owned()),
            reason,
        });
    };
    for (path, reason) in &listing.refused {
        if !ignore.ignored(path) {
            refuse(path, format!("not pushed: {reason}"));
        }
    }
    let mut changes = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for entry in &listing.entries {
        let (path, executable) = match entry {
            WorkspaceEntry::File {
                path, executable, ..
            } => (path, *executable),
            WorkspaceEntry::Symlink { path, .. } => {
                let skipped = RepoPath::parse(path)
                    .ok()
                    .is_some_and(|p| workspace.skipped_at(&p).is_some());
                if !skipped && !ignore.ignored(path) {
                    refuse(
                        path,
                        "not pushed: specbot does not push new symlinks".into(),
                    );
                }
                continue;
            }
        };
        let Ok(repo_path) = RepoPath::parse(path) else {
            refuse(path, "not pushed: not a path specbot can push".into());
            continue;
        };
        seen.insert(repo_path.clone());
        let original = workspace.original_hash(&repo_path);
        if original.is_none() && ignore.ignored(path) {
            continue;
        }
        let Ok(bytes) = sandbox::files::read_workspace_file(root, path) else {
            refuse(path, "not pushed: it could not be read".into());
            continue;
        };
        if original == Some(super::workspace::sha256(&bytes)) {
            continue;
        }
        if let Some(reason) = policy.protected_reason(&repo_path) {
            refuse(path, format!("a command changed it; not pushed: {reason}"));
            continue;
        }
        if bytes.len() as u64 > policy.max_file_bytes || bytes.contains(&0) {
            refuse(
                path,
                format!(
                    "not pushed: binary or larger than {} bytes",
                    policy.max_file_bytes
                ),
            );
            continue;
        }
        let Ok(text) = String::from_utf8(bytes) else {
            refuse(path, "not pushed: not UTF-8 text".into());
            continue;
        };
        changes.push(FileChange {
            path: repo_path.to_string(),
            content: Some(text),
            executable,
        });
    }
    for path in workspace.original_paths() {
        if seen.contains(path) {
            continue;
        }
        if let Some(reason) = policy.protected_reason(path) {
            refuse(
                path.as_str(),
                format!("a command deleted it; not pushed: {reason}"),
            );
            continue;
        }
        changes.push(FileChange {
            path: path.to_string(),
            content: None,
            executable: false,
        });
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    if changes.len() > policy.max_changed_files {
        for dropped in changes.split_off(policy.max_changed_files) {
            refuse(
                &dropped.path,
                format!(
                    "not pushed: a change may touch at most {} files",
                    policy.max_changed_files
                ),
            );
        }
    }
    Ok(changes)
}

/// The repository's `.gitignore` files, read with git's own rules (the `ignore` crate, as
/// ripgrep uses it). Each file applies below its own directory; a deeper file overrides a
/// shallower one.
struct GitIgnore {
    /// `(directory, its rules)`, shallowest first; the directory is `""` or ends in `/`.
    files: Vec<(String, Gitignore)>,
}

impl GitIgnore {
    fn read(workspace: &Workspace, entries: &[WorkspaceEntry]) -> GitIgnore {
        let mut files = Vec::new();
        for entry in entries {
            let WorkspaceEntry::File { path, .. } = entry else {
                continue;
            };
            let Some(dir) = path
                .strip_suffix(".gitignore")
                .filter(|d| d.is_empty() || d.ends_with('/'))
            else {
                continue;
            };
            let Ok(bytes) = sandbox::files::read_workspace_file(workspace.root(), path) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            files.push((dir.to_string(), rules(text.lines().take(1_000))));
        }
        files.sort_by_key(|(dir, _)| dir.matches('/').count());
        GitIgnore { files }
    }

    fn ignored(&self, path: &str) -> bool {
        let mut ignored = false;
        for (dir, rules) in &self.files {
            let Some(below) = path.strip_prefix(dir.as_str()) else {
                continue;
            };
            match rules.matched_path_or_any_parents(below, false) {
                Match::Ignore(_) => ignored = true,
                Match::Whitelist(_) => ignored = false,
                Match::None => {}
            }
        }
        ignored
    }
}

/// One `.gitignore` file's lines; a line git would not read is passed over.
fn rules<'a>(lines: impl Iterator<Item = &'a str>) -> Gitignore {
    let mut builder = GitignoreBuilder::new("");
    for line in lines {
        let _ = builder.add_line(None, line);
    }
    builder.build().unwrap_or_else(|_| Gitignore::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignores(lines: &[&str], path: &str) -> bool {
        let files = vec![(String::new(), rules(lines.iter().copied()))];
        GitIgnore { files }.ignored(path)
    }

    #[test]
    fn gitignore_rules() {
        assert!(ignores(&["target/"], "target/debug/x"));
        assert!(ignores(&["target"], "sub/target/x"));
        assert!(ignores(&["*.log"], "a/b.log"));
        assert!(ignores(&["/build"], "build/out.o"));
        assert!(!ignores(&["/build"], "src/build/out.o"));
        assert!(!ignores(&["*.log", "!keep.log"], "keep.log"));
        assert!(!ignores(&["# target"], "target/x"));
        assert!(!ignores(&["target/"], "src/main.rs"));
    }
}
