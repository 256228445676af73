//! Escape attempts against the sandbox that runs repository code. Each attempt is also made
//! outside the sandbox (or with the limit lifted) as a positive control, so a test fails if the
//! attempt is impossible for some other reason. Without a working bubblewrap the tests are skipped
//! with a printed reason, unless `SPECBOT_REQUIRE_SANDBOX=1` (CI) makes that a failure.

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use specbot::sandbox::files::read_workspace_file;
use specbot::sandbox::{
    Command, Outcome, RunDirs, RunRecord, Sandbox, SandboxSettings, SandboxUnavailable,
    WorkspaceEntry, collect_files, probe,
};
use tokio_util::sync::CancellationToken;

fn settings() -> SandboxSettings {
    SandboxSettings {
        timeout: Duration::from_secs(60),
        ..SandboxSettings::default()
    }
}

fn sandbox_with(settings: SandboxSettings) -> Option<Sandbox> {
    match Sandbox::new(settings) {
        Ok(sandbox) => Some(sandbox),
        Err(e) if std::env::var("SPECBOT_REQUIRE_SANDBOX").as_deref() == Ok("1") => {
            panic!("SPECBOT_REQUIRE_SANDBOX=1 but the sandbox does not work here: {e}")
        }
        Err(e) => {
            eprintln!("skipping: the sandbox does not work here: {e}");
            None
        }
    }
}

fn sandbox() -> Option<Sandbox> {
    sandbox_with(settings())
}

/// A sandbox run in a fresh workspace.
async fn run_in(sandbox: &Sandbox, workspace: &Path, command: Command) -> RunRecord {
    sandbox
        .run(
            &RunDirs::new(workspace),
            &command,
            &CancellationToken::new(),
        )
        .await
}

/// The same shell line on the host, as the test's user: the positive control.
fn on_host(line: &str) -> std::process::Output {
    std::process::Command::new("/bin/bash")
        .args(["-c", line])
        .output()
        .expect("run bash on the host")
}

fn text(record: &RunRecord) -> String {
    record.output.text()
}

/// Pids of live processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != std::process::id())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .collect()
}

fn marker() -> String {
    format!("3600.{}", std::process::id() as u64 * 1000 + rand_suffix())
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[test]
fn a_missing_bubblewrap_is_explained() {
    let settings = SandboxSettings {
        bwrap: "/nonexistent/bwrap".into(),
        ..SandboxSettings::default()
    };
    let err = probe(&settings).unwrap_err();
    assert!(matches!(err, SandboxUnavailable::NotInstalled(_)));
    assert!(err.to_string().contains("install the `bubblewrap` package"));
    let off = SandboxSettings {
        mode: Some(specbot::sandbox::SandboxMode::Off),
        ..SandboxSettings::default()
    };
    assert_eq!(Sandbox::new(off).unwrap_err(), SandboxUnavailable::Disabled);
}

#[tokio::test]
async fn a_command_runs_in_the_workspace_and_reports_its_exit_code() {
    let Some(sandbox) = sandbox() else { return };
    let ws = tempfile::tempdir().unwrap();
    fs::write(ws.path().join("input.txt"), "from the repository\n").unwrap();
    let record = run_in(
        &sandbox,
        ws.path(),
        Command::shell("pwd; id -u; cat input.txt; echo made > out.txt; exit 3"),
    )
    .await;
    assert_eq!(record.outcome, Outcome::Exited { code: 3 }, "{record:?}");
    assert_eq!(
        text(&record),
        "/workspace\n65534\nfrom the repository\n",
        "{record:?}"
    );
    assert_eq!(
        fs::read_to_string(ws.path().join("out.txt")).unwrap(),
        "made\n"
    );
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(json["outcome"]["kind"], "exited");
    assert_eq!(
        serde_json::from_value::<RunRecord>(json).unwrap(),
        record,
        "the record round-trips for the job's checkpoint"
    );
}

#[tokio::test]
async fn a_listener_on_the_host_loopback_is_unreachable() {
    let Some(sandbox) = sandbox() else { return };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect = format!("echo hello > /dev/tcp/127.0.0.1/{port} && echo CONNECTED");
    assert!(
        String::from_utf8_lossy(&on_host(&connect).stdout).contains("CONNECTED"),
        "control: the host reaches its own listener"
    );
    let ws = tempfile::tempdir().unwrap();
    let record = run_in(&sandbox, ws.path(), Command::argv(["bash", "-c", &connect])).await;
    assert_ne!(record.outcome, Outcome::Exited { code: 0 }, "{record:?}");
    assert!(!text(&record).contains("CONNECTED"), "{record:?}");

    // With the setup network on: the host's loopback is 10.0.2.2 to slirp4netns, and refused.
    let via_gateway = format!(
        "cat /proc/net/dev; for a in 127.0.0.1 10.0.2.2 169.254.169.254; do \
         (echo hi > /dev/tcp/$a/{port}) 2>/dev/null && echo CONNECTED $a; done; true"
    );
    let command = Command::argv(["bash", "-c", &via_gateway]).with_network();
    let record = run_in(&sandbox, ws.path(), command).await;
    match sandbox.network_available() {
        Ok(()) => {
            assert_eq!(record.outcome, Outcome::Exited { code: 0 }, "{record:?}");
            assert!(text(&record).contains("tap0"), "network is up: {record:?}");
            assert!(!text(&record).contains("CONNECTED"), "{record:?}");
        }
        Err(reason) => match record.outcome {
            Outcome::NotStarted { reason: why } => assert_eq!(why, reason),
            other => panic!("network refused, yet the command ran: {other:?}"),
        },
    }
}

#[tokio::test]
async fn setup_network_is_refused_clearly_without_slirp4netns() {
    let Some(sandbox) = sandbox_with(SandboxSettings {
        slirp4netns: "/nonexistent/slirp4netns".into(),
        ..settings()
    }) else {
        return;
    };
    let ws = tempfile::tempdir().unwrap();
    let record = run_in(&sandbox, ws.path(), Command::shell("true").with_network()).await;
    let Outcome::NotStarted { reason } = record.outcome else {
        panic!("ran without its network: {record:?}")
    };
    assert!(reason.contains("slirp4netns"), "{reason}");
}

#[tokio::test]
async fn the_bots_files_and_environment_are_out_of_reach() {
    let Some(sandbox) = sandbox() else { return };
    let secret = "s3cr3t-value-that-must-not-leak";
    let bot_dir = tempfile::tempdir().unwrap();
    for name in ["specbot.db", ".env", "private-key.pem"] {
        fs::write(bot_dir.path().join(name), format!("{name} {secret}\n")).unwrap();
    }
    // A stand-in for the bot process, with secrets in its environment.
    let mut bot = std::process::Command::new("sleep")
        .arg("30")
        .env("WEBHOOK_SECRET", secret)
        .spawn()
        .unwrap();
    let read_all = format!(
        "cd {dir}; cat specbot.db .env private-key.pem /proc/{pid}/environ; \
         cat /proc/{own}/environ",
        dir = bot_dir.path().display(),
        pid = bot.id(),
        own = std::process::id(),
    );
    let host = String::from_utf8_lossy(&on_host(&read_all).stdout).into_owned();
    assert_eq!(
        host.matches(secret).count(),
        4,
        "control: the host reads all four"
    );

    let ws = tempfile::tempdir().unwrap();
    let record = run_in(
        &sandbox,
        ws.path(),
        Command::argv(["bash", "-c", &read_all]),
    )
    .await;
    bot.kill().unwrap();
    let _ = bot.wait();
    assert_ne!(record.outcome, Outcome::Exited { code: 0 });
    assert!(!text(&record).contains(secret), "{record:?}");
}

#[tokio::test]
async fn the_environment_holds_only_path_home_lang_and_the_configured_variables() {
    let Some(sandbox) = sandbox() else { return };
    let ws = tempfile::tempdir().unwrap();
    let command = Command::argv(["env"]).with_env("CI", "true");
    let record = run_in(&sandbox, ws.path(), command).await;
    let mut names: Vec<&str> = record
        .output
        .head
        .lines()
        .filter_map(|l| l.split_once('=').map(|(name, _)| name))
        .collect();
    names.sort_unstable();
    // PWD is bubblewrap's, from `--chdir`.
    assert_eq!(names, ["CI", "HOME", "LANG", "PATH", "PWD"], "{record:?}");
    assert!(text(&record).contains("HOME=/home/sandbox"));
    // Control: the test process's own environment (which the bot's would resemble) is larger.
    let host = String::from_utf8_lossy(&on_host("env").stdout).into_owned();
    assert!(host.lines().count() > names.len(), "{host}");
}

#[tokio::test]
async fn an_inherited_file_descriptor_is_not_reachable() {
    let Some(sandbox) = sandbox() else { return };
    let dir = tempfile::tempdir().unwrap();
    let secret_path = dir.path().join("secret.txt");
    fs::write(&secret_path, "inherited-secret\n").unwrap();
    let path = std::ffi::CString::new(secret_path.to_str().unwrap()).unwrap();
    // Opened without close-on-exec, as careless code (or a C library) might, at a known number.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
    assert!(fd >= 0);
    let high = unsafe { libc::dup2(fd, 200) };
    assert_eq!(high, 200);
    unsafe { libc::close(fd) };
    let attempt = "ls /proc/self/fd; cat /proc/self/fd/200 <&200";
    let host = String::from_utf8_lossy(&on_host(attempt).stdout).into_owned();
    let ws = tempfile::tempdir().unwrap();
    let record = run_in(&sandbox, ws.path(), Command::argv(["bash", "-c", attempt])).await;
    unsafe { libc::close(200) };
    assert!(
        host.contains("inherited-secret"),
        "control: a plain child inherits it: {host}"
    );
    assert!(!text(&record).contains("inherited-secret"), "{record:?}");
    let fds: Vec<&str> = record
        .output
        .head
        .lines()
        .take_while(|l| !l.contains(':'))
        .collect();
    assert!(
        fds.iter().all(|fd| ["0", "1", "2", "3"].contains(fd)),
        "{record:?}"
    );
}

#[tokio::test]
async fn writes_outside_the_workspace_fail_or_stay_inside() {
    let Some(sandbox) = sandbox() else { return };
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("planted");
    let tmp_marker = format!("/tmp/specbot-sandbox-planted-{}", marker());
    let attempt = format!(
        "echo x > {target}; echo x > /usr/planted; echo x > /etc/planted; echo x > {tmp_marker}; \
         echo x > inside; true",
        target = target.display()
    );
    let ws = tempfile::tempdir().unwrap();
    let record = run_in(&sandbox, ws.path(), Command::argv(["bash", "-c", &attempt])).await;
    assert_eq!(record.outcome, Outcome::Exited { code: 0 });
    assert!(
        ws.path().join("inside").exists(),
        "the workspace is writable"
    );
    assert!(!target.exists(), "{record:?}");
    assert!(!Path::new("/usr/planted").exists());
    assert!(!Path::new("/etc/planted").exists());
    assert!(!Path::new(&tmp_marker).exists(), "/tmp is private");
    // Control: the same writes succeed on the host.
    on_host(&format!(
        "echo x > {}; echo x > {tmp_marker}",
        target.display()
    ));
    assert!(target.exists() && Path::new(&tmp_marker).exists());
    let _ = fs::remove_file(&tmp_marker);
}

/// Runs `line` (with `$0` set to a fresh marker) and counts its marked processes after 1.5 s.
async fn count_marked(sandbox: &Sandbox, workspace: &Path, line: &str) -> (RunRecord, usize) {
    let mark = marker();
    let run = run_in(
        sandbox,
        workspace,
        Command::argv(["bash", "-c", line, &mark]),
    );
    let watch = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        processes_with(&mark).len()
    };
    let (record, seen) = tokio::join!(run, watch);
    assert_eq!(processes_with(&mark), Vec::<u32>::new(), "nothing is left");
    (record, seen)
}

#[tokio::test]
async fn a_fork_bomb_is_bounded() {
    let limits = |max_processes| SandboxSettings {
        max_processes,
        timeout: Duration::from_secs(4),
        ..settings()
    };
    let Some(sandbox) = sandbox_with(limits(64)) else {
        return;
    };
    let ws = tempfile::tempdir().unwrap();
    let spawn = "for i in $(seq 150); do sleep $0 & done 2>/dev/null; wait";
    let (record, seen) = count_marked(&sandbox, ws.path(), spawn).await;
    // bash gives up after its fork retries, or retries until the timeout: either way, bounded.
    assert!(seen <= 64, "{seen} processes: {record:?}");
    // Control: with the limit lifted the same loop makes them all.
    let roomy = sandbox_with(limits(4096)).unwrap();
    let (record, seen) = count_marked(&roomy, ws.path(), spawn).await;
    assert!(seen > 150, "{seen} processes: {record:?}");

    // A real one ends at the timeout and leaves nothing behind.
    let started = Instant::now();
    let (record, seen) = count_marked(&sandbox, ws.path(), "b(){ b | b & }; b; wait").await;
    assert!(seen <= 64, "{seen} processes: {record:?}");
    assert!(started.elapsed() < Duration::from_secs(30), "{record:?}");
}

fn vm_hwm_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_gigabyte_of_output_is_kept_as_head_and_tail() {
    let Some(sandbox) = sandbox() else { return };
    let ws = tempfile::tempdir().unwrap();
    let before = vm_hwm_kib();
    let flood = "echo START; head -c 1073741824 /dev/zero | tr '\\0' x; echo; echo END";
    let record = run_in(&sandbox, ws.path(), Command::argv(["bash", "-c", flood])).await;
    assert_eq!(
        record.outcome,
        Outcome::Exited { code: 0 },
        "{:?}",
        record.outcome
    );
    assert!(record.output.truncated);
    assert!(record.output.total_bytes > 1 << 30);
    assert!(record.output.head.starts_with("START\nxxx"));
    assert!(record.output.tail.ends_with("xxx\nEND\n"));
    assert!(record.output.head.len() + record.output.tail.len() <= 64 * 1024);
    let grown_mib = vm_hwm_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 256, "peak memory grew by {grown_mib} MiB");
}

#[tokio::test]
async fn a_sleep_past_the_timeout_is_killed_with_its_detached_children() {
    let Some(sandbox) = sandbox_with(SandboxSettings {
        timeout: Duration::from_secs(2),
        ..settings()
    }) else {
        return;
    };
    let mark = marker();
    let line = format!("setsid sleep {mark} & (sleep {mark} &); sleep {mark}");
    let ws = tempfile::tempdir().unwrap();
    let run = run_in(&sandbox, ws.path(), Command::argv(["bash", "-c", &line]));
    let watch = async {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        processes_with(&mark).len()
    };
    let started = Instant::now();
    let (record, seen_running) = tokio::join!(run, watch);
    assert!(
        seen_running >= 3,
        "control: the sleeps were visible while running"
    );
    assert_eq!(record.outcome, Outcome::TimedOut { after_secs: 2 });
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(processes_with(&mark), Vec::<u32>::new());
}

#[tokio::test]
async fn cancelling_or_dropping_a_run_leaves_no_process() {
    let Some(sandbox) = sandbox() else { return };
    let ws = tempfile::tempdir().unwrap();
    let mark = marker();
    let line = format!("setsid sleep {mark} & sleep {mark}");
    let cancel = CancellationToken::new();
    let dirs = RunDirs::new(ws.path());
    let command = Command::argv(["bash", "-c", &line]);
    let run = sandbox.run(&dirs, &command, &cancel);
    let stop = async {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let seen = processes_with(&mark).len();
        cancel.cancel();
        seen
    };
    let (record, seen) = tokio::join!(run, stop);
    assert!(seen >= 2, "control: the run's processes were visible");
    assert_eq!(record.outcome, Outcome::Cancelled);
    assert_eq!(processes_with(&mark), Vec::<u32>::new());

    // Dropping the run's future (shutdown, an aborted task) kills it too.
    let mark = marker();
    let line = format!("setsid sleep {mark} & sleep {mark}");
    let command = Command::argv(["bash", "-c", &line]);
    let never = CancellationToken::new();
    tokio::select! {
        _ = sandbox.run(&dirs, &command, &never) => panic!("the sleep ended"),
        () = tokio::time::sleep(Duration::from_millis(1200)) => {}
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_with(&mark).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(processes_with(&mark), Vec::<u32>::new());
}

#[tokio::test]
async fn symlinks_a_command_plants_are_not_followed_by_the_host() {
    let Some(sandbox) = sandbox() else { return };
    let bot_dir = tempfile::tempdir().unwrap();
    let db = bot_dir.path().join("specbot.db");
    fs::write(&db, "database-secret\n").unwrap();
    let plant = format!(
        "ln -s /etc/passwd passwd; ln -s {db} db; ln -s ../../x up; mkdir d; ln -s ../ok.txt d/back; \
         mkfifo fifo; echo ok > ok.txt; chmod +x ok.txt; ln -s /etc etc-dir",
        db = db.display()
    );
    let ws = tempfile::tempdir().unwrap();
    let record = run_in(&sandbox, ws.path(), Command::argv(["bash", "-c", &plant])).await;
    assert_eq!(record.outcome, Outcome::Exited { code: 0 }, "{record:?}");
    // Control: following the planted link on the host reaches the database.
    assert_eq!(
        fs::read_to_string(ws.path().join("db")).unwrap(),
        "database-secret\n"
    );
    let listing = collect_files(ws.path()).unwrap();
    let refused: Vec<&str> = listing.refused.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(refused, ["db", "etc-dir", "fifo", "passwd", "up"]);
    assert_eq!(
        listing.entries,
        [
            WorkspaceEntry::Symlink {
                path: "d/back".into(),
                target: "../ok.txt".into()
            },
            WorkspaceEntry::File {
                path: "ok.txt".into(),
                executable: true,
                size: 3
            },
        ]
    );
    for planted in ["db", "passwd", "etc-dir/passwd", "fifo"] {
        assert!(
            read_workspace_file(ws.path(), planted).is_err(),
            "{planted}"
        );
    }
    assert_eq!(read_workspace_file(ws.path(), "ok.txt").unwrap(), b"ok\n");
}

#[tokio::test]
async fn memory_is_bounded_where_a_cgroup_is_available() {
    let Some(sandbox) = sandbox_with(SandboxSettings {
        memory_mb: Some(64),
        ..settings()
    }) else {
        return;
    };
    let ws = tempfile::tempdir().unwrap();
    let hog = "x=$(head -c 150000000 /dev/zero | tr '\\0' a); echo ${#x}";
    let record = run_in(&sandbox, ws.path(), Command::argv(["bash", "-c", hog])).await;
    if record.limits.memory_mb.is_none() {
        eprintln!("skipping: no cgroup here, so no memory limit (the documented fallback)");
        return;
    }
    assert_eq!(record.outcome, Outcome::Exited { code: 137 }, "{record:?}");
    // Control: without the limit the same command completes.
    let unlimited = sandbox_with(settings()).unwrap();
    let record = run_in(&unlimited, ws.path(), Command::argv(["bash", "-c", hog])).await;
    assert_eq!(record.outcome, Outcome::Exited { code: 0 }, "{record:?}");
    assert_eq!(record.output.text(), "150000000\n");
}
