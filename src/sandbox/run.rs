//! One run: prepare the directories, start bubblewrap held at its `--block-fd` until the
//! sandbox's init process is known (and its network connected), then read the output while
//! waiting for the end, the timeout or cancellation. Stopping a run kills the sandbox's PID 1
//! through a pidfd: the kernel then kills every process of the PID namespace, `setsid` and
//! double-forked ones included, before bubblewrap sees its child exit.

use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::cgroup::Cgroup;
use super::confine::{Confinement, SANDBOX_ID};
use super::layout::{Layout, bwrap_args};
use super::output::HeadTail;
use super::{AppliedLimits, Command, Outcome, Output, RunDirs, RunRecord, Sandbox, network};

/// How long bubblewrap may take to set up, and the run's processes to go once killed.
const GRACE: Duration = Duration::from_secs(10);

pub(crate) async fn run(
    sandbox: &Sandbox,
    dirs: &RunDirs,
    command: &Command,
    cancel: &CancellationToken,
) -> RunRecord {
    let settings = &sandbox.settings;
    let started = Instant::now();
    let timeout_secs = command
        .timeout_secs
        .unwrap_or(u64::MAX)
        .min(settings.timeout.as_secs());
    let cgroup = Cgroup::create(settings.memory_mb, settings.max_processes);
    let limits = AppliedLimits {
        timeout_secs,
        memory_mb: settings
            .memory_mb
            .filter(|_| cgroup.as_ref().is_some_and(|c| c.memory_limited)),
        max_processes: settings.max_processes,
        cgroup: cgroup.is_some(),
    };
    let (outcome, output) = match launch(sandbox, dirs, command, cgroup.as_ref(), timeout_secs) {
        Ok((running, output)) => {
            let reader = tokio::spawn(read_output(output, settings.output_limit));
            running
                .finish(reader, settings, command, timeout_secs, cancel)
                .await
        }
        Err(reason) => (Outcome::NotStarted { reason }, Output::default()),
    };
    if let Some(cgroup) = cgroup {
        remove_cgroup(cgroup).await;
    }
    RunRecord {
        command: command.display(),
        network: command.network,
        outcome,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        output,
        limits,
    }
}

/// A started bubblewrap, held before the command runs.
struct Running {
    child: tokio::process::Child,
    info: tokio::net::unix::pipe::Receiver,
    release: std::io::PipeWriter,
}

fn launch(
    sandbox: &Sandbox,
    dirs: &RunDirs,
    command: &Command,
    cgroup: Option<&Cgroup>,
    timeout_secs: u64,
) -> Result<(Running, tokio::net::unix::pipe::Receiver), String> {
    let settings = &sandbox.settings;
    if command.network {
        network::available(settings, sandbox.drop_root)?;
    }
    check_dirs(dirs, sandbox.drop_root)?;
    let bwrap = network::find_program(&settings.bwrap).ok_or("bubblewrap is not installed")?;
    let argv = command.argv_inside();
    if argv.is_empty() || argv[0].is_empty() {
        return Err("empty command".to_owned());
    }
    let args = bwrap_args(&Layout {
        settings,
        etc_dir: sandbox.etc.path(),
        workspace: &dirs.workspace,
        home: dirs.home.as_deref(),
        env: &command.env,
        argv: &argv,
    });
    let io_err = |e: std::io::Error| e.to_string();
    let (output, output_writer) = std::io::pipe().map_err(io_err)?;
    let (info, info_writer) = std::io::pipe().map_err(io_err)?;
    let (hold, release) = std::io::pipe().map_err(io_err)?;
    let confinement = Confinement {
        pass: vec![info_writer.as_raw_fd(), hold.as_raw_fd()],
        rlimits: vec![
            (libc::RLIMIT_CPU, timeout_secs),
            (libc::RLIMIT_FSIZE, settings.max_file_bytes),
            (libc::RLIMIT_NPROC, settings.max_processes),
            (libc::RLIMIT_CORE, 0),
        ],
        cgroup_procs: cgroup.map(|c| c.procs.clone()).unwrap_or_default(),
        drop_root: sandbox.drop_root,
    };
    let mut std_command = std::process::Command::new(bwrap);
    std_command
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(output_writer.try_clone().map_err(io_err)?)
        .stderr(output_writer)
        .process_group(0);
    // SAFETY: `apply` only makes async-signal-safe calls and does not allocate.
    unsafe {
        std_command.pre_exec(move || confinement.apply());
    }
    let mut tokio_command = tokio::process::Command::from(std_command);
    tokio_command.kill_on_drop(true);
    let child = tokio_command
        .spawn()
        .map_err(|e| format!("bubblewrap did not start: {e}"))?;
    // The parent's copies of the child's ends close here, so end of file means the run is over.
    drop((tokio_command, info_writer, hold));
    let receiver = |reader: std::io::PipeReader| {
        tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader)).map_err(io_err)
    };
    let running = Running {
        child,
        info: receiver(info)?,
        release,
    };
    Ok((running, receiver(output)?))
}

/// The workspace and home must exist, be apart, and be reachable by the sandbox user; when the
/// bot is root, they are handed to that user.
fn check_dirs(dirs: &RunDirs, drop_root: bool) -> Result<(), String> {
    let mut all = vec![dirs.workspace.as_path()];
    all.extend(dirs.home.as_deref());
    for dir in &all {
        if !dir.is_absolute() || !dir.is_dir() {
            return Err(format!("{} is not a directory", dir.display()));
        }
    }
    if let Some(home) = &dirs.home
        && (home.starts_with(&dirs.workspace) || dirs.workspace.starts_with(home))
    {
        return Err("HOME must be outside the workspace".to_owned());
    }
    if !drop_root {
        return Ok(());
    }
    for dir in all {
        for ancestor in dir.ancestors().skip(1) {
            let searchable = fs::metadata(ancestor).is_ok_and(|m| m.mode() & 0o001 != 0);
            if !searchable {
                return Err(format!(
                    "{} is not searchable by the sandbox user (uid {SANDBOX_ID}): give it mode \
                     0711 or keep workspaces elsewhere",
                    ancestor.display()
                ));
            }
        }
        hand_over(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
}

/// Gives a tree to the sandbox user, never following a symlink.
fn hand_over(root: &Path) -> std::io::Result<()> {
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = fs::symlink_metadata(&path)?;
        if meta.uid() != SANDBOX_ID || meta.gid() != SANDBOX_ID {
            std::os::unix::fs::lchown(&path, Some(SANDBOX_ID), Some(SANDBOX_ID))?;
        }
        if meta.is_dir() {
            for entry in fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
    }
    Ok(())
}

impl Running {
    async fn finish(
        mut self,
        reader: tokio::task::JoinHandle<Output>,
        settings: &super::SandboxSettings,
        command: &Command,
        timeout_secs: u64,
        cancel: &CancellationToken,
    ) -> (Outcome, Output) {
        let started = self.start(settings, command).await;
        let (init, _network) = match started {
            Ok(started) => started,
            Err(reason) => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                let output = collect(reader).await;
                let reason = format!("{reason}{}", on_new_line(&output.text()));
                return (Outcome::NotStarted { reason }, Output::default());
            }
        };
        let deadline = Duration::from_secs(timeout_secs);
        let stopped = tokio::select! {
            status = self.child.wait() => Err(status),
            () = tokio::time::sleep(deadline) => Ok(Outcome::TimedOut { after_secs: timeout_secs }),
            () = cancel.cancelled() => Ok(Outcome::Cancelled),
        };
        let outcome = match stopped {
            Err(status) => match status {
                Ok(status) => match (
                    status.code(),
                    std::os::unix::process::ExitStatusExt::signal(&status),
                ) {
                    (Some(code), _) => Outcome::Exited { code },
                    (None, Some(signal)) => Outcome::Signalled { signal },
                    (None, None) => Outcome::Exited { code: -1 },
                },
                Err(e) => Outcome::NotStarted {
                    reason: format!("waiting for bubblewrap: {e}"),
                },
            },
            Ok(stopped) => {
                kill(&init);
                // bubblewrap exits once its child (the namespace's init) is gone, which the kernel
                // allows only after every process of the namespace has died.
                if tokio::time::timeout(GRACE, self.child.wait())
                    .await
                    .is_err()
                {
                    let _ = self.child.start_kill();
                    let _ = self.child.wait().await;
                }
                stopped
            }
        };
        (outcome, collect(reader).await)
    }

    /// Learns the sandbox's init process, connects the network when asked, lets the command run.
    async fn start(
        &mut self,
        settings: &super::SandboxSettings,
        command: &Command,
    ) -> Result<(Init, Option<tokio::process::Child>), String> {
        let mut info = Vec::new();
        let read = tokio::time::timeout(GRACE, read_info(&mut self.info, &mut info)).await;
        let pid = match read {
            Ok(Some(pid)) => pid,
            _ => return Err("bubblewrap could not set up the sandbox".to_owned()),
        };
        let init = Init::open(pid).map_err(|e| format!("sandbox init {pid}: {e}"))?;
        let network = if command.network {
            match network::connect(settings, pid).await {
                Ok(child) => Some(child),
                Err(reason) => {
                    kill(&init);
                    return Err(reason);
                }
            }
        } else {
            None
        };
        self.release
            .write_all(b"1")
            .map_err(|e| format!("releasing the sandbox: {e}"))?;
        Ok((init, network))
    }
}

/// Reads bubblewrap's `--info-fd` JSON until it parses; its `child-pid`.
async fn read_info(info: &mut tokio::net::unix::pipe::Receiver, buf: &mut Vec<u8>) -> Option<u32> {
    let mut chunk = [0u8; 512];
    loop {
        let n = info.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(buf) {
            return value.get("child-pid")?.as_u64()?.try_into().ok();
        }
    }
}

async fn read_output(mut pipe: tokio::net::unix::pipe::Receiver, limit: usize) -> Output {
    let mut kept = HeadTail::new(limit);
    let mut chunk = vec![0u8; 64 * 1024];
    while let Ok(n) = pipe.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        kept.push(&chunk[..n]);
    }
    kept.finish()
}

/// The output once every writer is gone; if something still holds the pipe, what came so far
/// is lost rather than waited for.
async fn collect(reader: tokio::task::JoinHandle<Output>) -> Output {
    let abort = reader.abort_handle();
    match tokio::time::timeout(GRACE, reader).await {
        Ok(Ok(output)) => output,
        _ => {
            abort.abort();
            Output {
                head: "[output unavailable: the pipe stayed open after the run]".to_owned(),
                ..Output::default()
            }
        }
    }
}

fn on_new_line(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// The sandbox's PID 1, by pidfd (no PID reuse race); killed when dropped.
struct Init(OwnedFd);

impl Init {
    fn open(pid: u32) -> std::io::Result<Init> {
        // SAFETY: pidfd_open takes a pid and flags; the result is a new descriptor we own.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor returned by the kernel.
        Ok(Init(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        kill(self);
    }
}

fn kill(init: &Init) {
    // SAFETY: a signal sent through a pidfd we own; fails harmlessly once the process is gone.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            init.0.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        );
    }
}

async fn remove_cgroup(mut cgroup: Cgroup) {
    for _ in 0..50 {
        if cgroup.remove() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `true` in a minimal sandbox, as a run would (same user namespace setup and user).
pub(crate) fn probe(bwrap: &Path, drop_root: bool) -> Result<(), super::SandboxUnavailable> {
    let confinement = Confinement {
        pass: Vec::new(),
        rlimits: Vec::new(),
        cgroup_procs: Vec::new(),
        drop_root,
    };
    let mut command = std::process::Command::new(bwrap);
    command
        .args(["--unshare-all", "--unshare-user", "--disable-userns"])
        .args(["--uid", "65534", "--gid", "65534", "--die-with-parent"])
        .args([
            "--ro-bind",
            "/usr",
            "/usr",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
        ])
        .args(super::layout::host_root_dirs())
        .args(["--", "/usr/bin/true"])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: `apply` only makes async-signal-safe calls and does not allocate.
    unsafe {
        command.pre_exec(move || confinement.apply());
    }
    let output = command
        .output()
        .map_err(|e| super::SandboxUnavailable::NotPermitted(e.to_string()))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        Err(super::SandboxUnavailable::NotPermitted(
            if stderr.is_empty() {
                format!("bwrap exited with {}", output.status)
            } else {
                stderr
            },
        ))
    }
}
