//! The sandbox for repository code: runs a command in the engineer's workspace under bubblewrap,
//! so that what a repository's build or tests do cannot reach the bot's secrets, database,
//! network neighbours or other jobs. See docs/implement.md ("Sandbox") for what it isolates
//! and what it does not protect against.
//!
//! The API:
//! - [`SandboxSettings::from_lookup`] reads `SANDBOX`, `SANDBOX_RO_PATHS`,
//!   `SANDBOX_TIMEOUT_SECS`, `SANDBOX_MEMORY_MB` (module [`settings`]).
//! - [`probe`]`(&settings) -> Result<(), SandboxUnavailable>`: whether bubblewrap works on this
//!   host, and why not (for `check-config` and the start-up log).
//! - [`Sandbox::new`]`(settings) -> Result<Sandbox, SandboxUnavailable>`: `Err` when
//!   `SANDBOX=off` or when the probe fails (with `SANDBOX` unset, the caller treats that `Err` as
//!   "off"; with `SANDBOX=bubblewrap` as a configuration error).
//! - [`Sandbox::run`]`(&RunDirs, &Command, &CancellationToken) -> RunRecord`: runs one command
//!   to its end, its timeout or the token's cancellation; never fails, a command that could not
//!   start is a [`Outcome::NotStarted`] record. Every process of the run is gone when it returns
//!   (and shortly after its future is dropped). Await it on the runtime's worker threads, not
//!   inside `spawn_blocking`: bubblewrap's `--die-with-parent` follows the thread that started it.
//! - [`RunRecord`] (serde) is what the job checkpoints and the PR body shows.
//! - [`Sandbox::network_available`]: whether [`Command::network`] can be honoured here.
//! - [`collect_files`] (module [`files`]) lists the workspace after a run for the push, refusing
//!   symlinks that leave it, FIFOs and devices; [`files::read_workspace_file`] reads one file
//!   without following links; [`files::check_symlink`] judges one link target.
//! - [`propose_test_command`] (module [`detect`]) proposes the test command, with its reason.

mod cgroup;
mod confine;
pub mod detect;
pub mod files;
mod layout;
mod network;
mod output;
mod run;
pub mod settings;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub use detect::{TestProposal, propose_test_command};
pub use files::{WorkspaceEntry, WorkspaceListing, collect_files};
pub use settings::{SandboxMode, SandboxSettings, SettingsError};

/// Where the workspace is mounted inside the sandbox (the commands' working directory).
pub const WORKSPACE: &str = "/workspace";
/// `HOME` inside the sandbox: outside the repository tree, so caches are never pushed.
pub const HOME: &str = "/home/sandbox";

/// Why commands cannot run in a sandbox here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxUnavailable {
    #[error("SANDBOX=off: repository commands are not run")]
    Disabled,
    #[error(
        "bubblewrap (`{0}`) is not installed; install the `bubblewrap` package, or set SANDBOX=off"
    )]
    NotInstalled(String),
    #[error(
        "bubblewrap cannot create its namespaces here: {0}. It needs unprivileged user \
         namespaces (sysctl kernel.unprivileged_userns_clone=1 and user.max_user_namespaces > 0; \
         in Docker, a seccomp profile that allows them); see deploy/README.md"
    )]
    NotPermitted(String),
    #[error("the sandbox's files could not be prepared: {0}")]
    Setup(String),
}

/// What to run: a shell line (run by `/bin/sh -c`) or an argument vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Program {
    Shell(String),
    Argv(Vec<String>),
}

/// One command to run in the workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub program: Program,
    /// Wall time; capped by the operator's `SANDBOX_TIMEOUT_SECS` (also the default).
    pub timeout_secs: Option<u64>,
    /// User-mode network (setup commands that asked for it); the host stays unreachable.
    pub network: bool,
    /// Variables from the repository's config, beside `PATH`, `HOME` and `LANG`.
    pub env: BTreeMap<String, String>,
}

impl Command {
    /// A shell line, no network, the operator's timeout.
    pub fn shell(line: impl Into<String>) -> Self {
        Command {
            program: Program::Shell(line.into()),
            timeout_secs: None,
            network: false,
            env: BTreeMap::new(),
        }
    }

    /// An argument vector, no network, the operator's timeout.
    pub fn argv<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Self {
        Command {
            program: Program::Argv(argv.into_iter().map(Into::into).collect()),
            ..Command::shell("")
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout_secs = Some(timeout.as_secs().max(1));
        self
    }

    pub fn with_network(mut self) -> Self {
        self.network = true;
        self
    }

    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// The command as a person reads it.
    pub fn display(&self) -> String {
        match &self.program {
            Program::Shell(line) => line.clone(),
            Program::Argv(argv) => argv.join(" "),
        }
    }

    fn argv_inside(&self) -> Vec<String> {
        match &self.program {
            Program::Shell(line) => vec!["/bin/sh".into(), "-c".into(), line.clone()],
            Program::Argv(argv) => argv.clone(),
        }
    }
}

/// The directories a run uses on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDirs {
    /// The repository checkout, mounted read-write at [`WORKSPACE`].
    pub workspace: PathBuf,
    /// A directory kept between a job's runs (so setup's downloads stay for the tests), mounted
    /// at [`HOME`]; `None`: an empty `HOME` per run. Must not be inside the workspace.
    pub home: Option<PathBuf>,
}

impl RunDirs {
    pub fn new(workspace: impl Into<PathBuf>) -> Self {
        RunDirs {
            workspace: workspace.into(),
            home: None,
        }
    }

    pub fn with_home(mut self, home: impl Into<PathBuf>) -> Self {
        self.home = Some(home.into());
        self
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// The command exited; a command killed by signal N reports 128 + N, as a shell does.
    Exited { code: i32 },
    /// bubblewrap itself was killed by a signal.
    Signalled { signal: i32 },
    /// The wall-time limit passed; every process of the run was killed.
    TimedOut { after_secs: u64 },
    /// The run was cancelled (`/cancel`, shutdown); every process of the run was killed.
    Cancelled,
    /// Nothing ran.
    NotStarted { reason: String },
}

/// A command's output (stdout and stderr interleaved), kept as its head and its tail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    pub head: String,
    pub tail: String,
    /// Whether bytes between head and tail were dropped.
    pub truncated: bool,
    pub total_bytes: u64,
}

impl Output {
    /// Head and tail as one text, with a line saying how much was left out between them.
    pub fn text(&self) -> String {
        if self.truncated {
            let kept = (self.head.len() + self.tail.len()) as u64;
            let omitted = self.total_bytes.saturating_sub(kept);
            format!(
                "{}\n[… {omitted} bytes omitted …]\n{}",
                self.head, self.tail
            )
        } else {
            format!("{}{}", self.head, self.tail)
        }
    }
}

/// The limits a run had, as enforced (not as asked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedLimits {
    pub timeout_secs: u64,
    /// `None`: no memory limit (no cgroup available, or none set).
    pub memory_mb: Option<u64>,
    pub max_processes: u64,
    /// Whether a cgroup (rather than only `RLIMIT_NPROC`) bounded the processes.
    pub cgroup: bool,
}

/// What a run did: the record a job keeps and a PR shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub command: String,
    pub network: bool,
    pub outcome: Outcome,
    pub duration_ms: u64,
    pub output: Output,
    pub limits: AppliedLimits,
}

impl RunRecord {
    /// Exit code 0.
    pub fn succeeded(&self) -> bool {
        self.outcome == Outcome::Exited { code: 0 }
    }
}

/// A working sandbox; cheap to share (`Arc`) between jobs.
#[derive(Debug)]
pub struct Sandbox {
    settings: SandboxSettings,
    /// Generated `/etc/passwd`, `group`, `hosts`, `resolv.conf`.
    etc: tempfile::TempDir,
    /// The bot runs as root: commands run as uid/gid 65534 on the host, not only inside.
    drop_root: bool,
}

impl Sandbox {
    /// A sandbox with these settings, after checking that bubblewrap works here.
    pub fn new(settings: SandboxSettings) -> Result<Sandbox, SandboxUnavailable> {
        if settings.mode == Some(SandboxMode::Off) {
            return Err(SandboxUnavailable::Disabled);
        }
        probe(&settings)?;
        let etc = tempfile::Builder::new()
            .prefix("specbot-sandbox-etc-")
            .tempdir()
            .map_err(|e| SandboxUnavailable::Setup(e.to_string()))?;
        layout::write_etc(etc.path()).map_err(|e| SandboxUnavailable::Setup(e.to_string()))?;
        Ok(Sandbox {
            settings,
            etc,
            drop_root: is_root(),
        })
    }

    pub fn settings(&self) -> &SandboxSettings {
        &self.settings
    }

    /// Whether commands asking for network can get it here, and why not.
    pub fn network_available(&self) -> Result<(), String> {
        network::available(&self.settings, self.drop_root)
    }

    /// Runs `command` in `dirs.workspace`; see the module documentation.
    pub async fn run(
        &self,
        dirs: &RunDirs,
        command: &Command,
        cancel: &CancellationToken,
    ) -> RunRecord {
        run::run(self, dirs, command, cancel).await
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether bubblewrap can build its sandbox on this host: runs `true` inside one.
pub fn probe(settings: &SandboxSettings) -> Result<(), SandboxUnavailable> {
    let Some(bwrap) = network::find_program(&settings.bwrap) else {
        return Err(SandboxUnavailable::NotInstalled(
            settings.bwrap.display().to_string(),
        ));
    };
    run::probe(&bwrap, is_root())
}
