//! Network for setup commands that ask for it: slirp4netns gives the sandbox's own network
//! namespace a user-mode TCP/IP stack (the host sees ordinary connections from the bot's
//! process), with `--disable-host-loopback` so the host's 127.0.0.1 (the bot's port, a local
//! PostgreSQL) is unreachable, and "prohibit" routes inside the namespace for link-local (the
//! cloud metadata address 169.254.169.254) and private ranges. slirp4netns must enter the
//! sandbox's network namespace, which bubblewrap creates inside a user namespace: that works when
//! the bot runs as root; otherwise network is refused with a message saying so.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::settings::SandboxSettings;

/// Where programs are looked for (the bot's own `PATH` is not consulted).
const SEARCH: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// Ranges a setup command may not reach: link-local (cloud metadata), private networks, CGNAT.
/// slirp4netns's own 10.0.2.0/24 stays reachable through its more specific route.
const PROHIBITED: &[&str] = &[
    "169.254.0.0/16",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
];

/// `program` itself when it names a path, else the first match in the usual directories.
pub(crate) fn find_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    SEARCH
        .iter()
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())
}

/// Whether network can be given to a command here, and why not.
pub(crate) fn available(settings: &SandboxSettings, root: bool) -> Result<(), String> {
    if find_program(&settings.slirp4netns).is_none() {
        return Err(format!(
            "setup_network needs slirp4netns (`{}`), which is not installed here; install the \
             `slirp4netns` package",
            settings.slirp4netns.display()
        ));
    }
    if !root {
        return Err(
            "setup_network needs the bot to run as root here: slirp4netns must enter the \
             sandbox's network namespace"
                .to_owned(),
        );
    }
    for tool in ["ip", "nsenter"] {
        if find_program(Path::new(tool)).is_none() {
            return Err(format!(
                "setup_network needs `{tool}` (iproute2, util-linux) to fence off private addresses"
            ));
        }
    }
    Ok(())
}

/// Connects the network namespace of `pid` to user-mode networking; the returned process must
/// live as long as the run (it is killed when dropped).
pub(crate) async fn connect(
    settings: &SandboxSettings,
    pid: u32,
) -> Result<tokio::process::Child, String> {
    let slirp = find_program(&settings.slirp4netns).ok_or("slirp4netns is not installed")?;
    let (mut ready, ready_writer) = std::io::pipe().map_err(|e| e.to_string())?;
    let ready_fd = std::os::fd::AsRawFd::as_raw_fd(&ready_writer);
    let mut command = tokio::process::Command::new(slirp);
    command
        .args(["--configure", "--mtu=65520", "--disable-host-loopback"])
        .arg(format!("--ready-fd={ready_fd}"))
        // Root enters the namespace directly, without joining the sandbox's user namespace.
        .arg("--userns-path=/proc/self/ns/user")
        .arg(pid.to_string())
        .arg("tap0")
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: the hook only clears close-on-exec on one descriptor, an async-signal-safe call.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(ready_fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| format!("slirp4netns: {e}"))?;
    drop(ready_writer);
    let waited = tokio::task::spawn_blocking(move || {
        let mut byte = [0u8; 1];
        ready.read(&mut byte).map(|n| n == 1)
    });
    let became_ready = tokio::time::timeout(Duration::from_secs(10), waited).await;
    if !matches!(became_ready, Ok(Ok(Ok(true)))) {
        let _ = child.start_kill();
        return Err("slirp4netns did not set up the sandbox's network".to_owned());
    }
    fence(pid).await?;
    Ok(child)
}

/// Adds the "prohibit" routes inside the sandbox's network namespace.
async fn fence(pid: u32) -> Result<(), String> {
    let netns = format!("--net=/proc/{pid}/ns/net");
    for range in PROHIBITED {
        let status = tokio::process::Command::new("nsenter")
            .args([netns.as_str(), "ip", "route", "add", "prohibit", range])
            .env_clear()
            .env("PATH", SEARCH.join(":"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .map_err(|e| format!("nsenter: {e}"))?;
        if !status.success() {
            return Err(format!(
                "could not fence off {range} in the sandbox's network"
            ));
        }
    }
    Ok(())
}
