//! Real `specbot` child processes for the operations suites: start `specbot serve` with a
//! clean environment on a loopback port, learn its address from its log, signal it, wait for
//! it; plus the small fakes those tests need (a "GitHub" that never answers) and bounded
//! wait-for-condition polling.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_specbot");

/// The longest any wait in these tests may take.
pub const WAIT_CAP: Duration = Duration::from_secs(60);

/// The test App key.
pub fn test_key_path() -> String {
    format!(
        "{}/tests/fixtures/test-app-key.pem",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A `specbot` command with an empty environment (no `.env`, no inherited secrets), run in
/// `cwd`, logging JSON to stderr.
pub fn command(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A running `specbot serve`.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
    pub http: reqwest::Client,
}

impl Server {
    /// Start `specbot serve` on 127.0.0.1 (a port of the kernel's choosing) with these extra
    /// variables, and wait until it says it is serving.
    pub async fn start(cwd: &Path, env: &[(&str, &str)]) -> Server {
        let mut all = vec![("HOST", "127.0.0.1"), ("PORT", "0"), ("LOG_FORMAT", "json")];
        all.extend_from_slice(env);
        Self::start_raw(command(cwd, &["serve"], &all)).await
    }

    /// Start a prepared command and wait for the "specbot is serving" log line.
    pub async fn start_raw(mut cmd: Command) -> Server {
        let mut child = cmd.spawn().expect("spawn specbot");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::oneshot::channel::<SocketAddr>();
        let stderr = child.stderr.take().expect("stderr piped");
        let lines = log.clone();
        tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Some(addr) = serving_addr(&line)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr);
                }
                lines.lock().expect("log lock").push(line);
            }
        });
        let addr = match tokio::time::timeout(WAIT_CAP, rx).await {
            Ok(Ok(addr)) => addr,
            _ => {
                let _ = child.start_kill();
                panic!(
                    "specbot serve did not start; its log:\n{}",
                    log.lock().expect("log lock").join("\n")
                );
            }
        };
        Server {
            child,
            addr,
            log,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("child still running")
    }

    /// Send SIGTERM (what Fly and Kubernetes send before stopping a machine).
    pub fn sigterm(&self) {
        signal(self.pid(), "-TERM");
    }

    /// SIGKILL, and wait until the process is gone.
    pub async fn kill9(&mut self) -> ExitStatus {
        self.child.start_kill().expect("kill -9");
        self.wait(WAIT_CAP).await.expect("killed process exits")
    }

    /// Wait for the process to exit, at most `cap`.
    pub async fn wait(&mut self, cap: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(cap, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }

    pub async fn status(&self, path: &str) -> Option<u16> {
        self.http
            .get(self.url(path))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }

    /// This process's `specbot_jobs_finished_total` for one job kind, summed over states.
    pub async fn finished(&self, kind: &str) -> u64 {
        let Ok(resp) = self.http.get(self.url("/metrics")).send().await else {
            return 0;
        };
        let text = resp.text().await.unwrap_or_default();
        let label = format!("kind=\"{kind}\"");
        text.lines()
            .filter(|l| l.starts_with("specbot_jobs_finished_total{") && l.contains(&label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    pub fn log_text(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }
}

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {pid} failed");
}

/// The address in a `{"fields":{"message":"specbot is serving","addr":…}}` log line.
fn serving_addr(line: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = v.get("fields")?;
    if fields.get("message")?.as_str()? != "specbot is serving" {
        return None;
    }
    fields.get("addr")?.as_str()?.parse().ok()
}

/// A "GitHub" on loopback that accepts connections and never answers: a job that calls it is
/// held (running, lease renewed) until the process stops or dies.
pub struct Silent {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Silent {
    pub async fn start() -> Silent {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                held.push(sock);
            }
        });
        Silent { url, task }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Poll `cond` every 50 ms until it returns true, at most [`WAIT_CAP`]; panics with `what`.
pub async fn wait_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < WAIT_CAP,
            "gave up after {WAIT_CAP:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
