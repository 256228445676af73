//! GitHub Actions job logs for CI fix rounds: which failing check run is an Actions job, the
//! download of that job's log (`GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs` answers
//! `302` to a short-lived signed URL on another host, fetched without the installation token),
//! and the failing step's tail cut out of it for the model.
//!
//! A missing `actions: read` permission (`403`), an expired log (`410`/`404`) or a failed
//! download is a [`LogGap`], never an error: the fix round goes on with the annotations.

use std::time::Duration;

use super::model::CheckRun;
use super::repo::Repo;
use super::request::GitHubError;

/// Raw log bytes kept while downloading (the end of the log, where the failure is).
const KEEP_BYTES: usize = 2 * 1024 * 1024;
/// Bytes read at most; a longer log is cut off there.
const MAX_DOWNLOAD_BYTES: u64 = 64 * 1024 * 1024;
/// Redirect hops followed from the signed URL.
const MAX_HOPS: usize = 3;
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a job's log could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogGap {
    /// `403`: the installation has not accepted the `actions: read` permission.
    NoPermission,
    /// `404`/`410`: the log expired or was deleted.
    Gone,
    /// Anything else (GitHub trouble, a refused redirect, a broken download).
    Failed(String),
}

/// The Actions job behind a check run: the `job/<id>` of its details URL
/// (`…/actions/runs/<run>/job/<job_id>`), or for the `github-actions` App's check runs their
/// own id (an Actions job and its check run share one id).
pub fn actions_job_id(run: &CheckRun) -> Option<u64> {
    for url in [&run.details_url, &run.html_url].into_iter().flatten() {
        if let Some(id) = job_in_url(url) {
            return Some(id);
        }
    }
    let by_actions = run
        .app
        .as_ref()
        .and_then(|a| a.slug.as_deref())
        .is_some_and(|s| s == "github-actions");
    by_actions.then_some(run.id)
}

fn job_in_url(url: &str) -> Option<u64> {
    let path = url::Url::parse(url).ok()?.path().to_string();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [.., "actions", "runs", run, "job", job] if run.parse::<u64>().is_ok() => job.parse().ok(),
        _ => None,
    }
}

/// Download job `job_id`'s log: GitHub's redirect, then the signed URL without credentials.
pub async fn job_log(repo: &Repo, job_id: u64) -> Result<String, LogGap> {
    let url = match repo.job_log_url(job_id).await {
        Ok(url) => url,
        Err(e) => return Err(gap_of(&e)),
    };
    let bytes = fetch_signed(&url).await.map_err(LogGap::Failed)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn gap_of(error: &GitHubError) -> LogGap {
    match error.status() {
        Some(403) => LogGap::NoPermission,
        Some(404 | 410) => LogGap::Gone,
        _ => LogGap::Failed(error.to_string()),
    }
}

/// Where a signed download may go: `https`, or plain `http` to a loopback host (tests).
pub fn allowed_download(url: &url::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        },
        _ => false,
    }
}

/// GET a pre-signed URL with no credentials, following at most [`MAX_HOPS`] redirects to
/// allowed URLs only; keeps the last [`KEEP_BYTES`] of the body.
async fn fetch_signed(url: &str) -> Result<Vec<u8>, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("the log's address: {e}"))?;
    if !allowed_download(&parsed) {
        return Err("the log's address is not https".into());
    }
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() > MAX_HOPS {
            attempt.error("too many redirects")
        } else if allowed_download(attempt.url()) {
            attempt.follow()
        } else {
            attempt.error("redirect to a non-https address")
        }
    });
    let http = reqwest::Client::builder()
        .redirect(policy)
        .timeout(DOWNLOAD_TIMEOUT)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let failed = |e: reqwest::Error| format!("downloading the log: {}", e.without_url());
    let mut response = http
        .get(parsed)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(failed)?;
    let mut kept: Vec<u8> = Vec::new();
    let mut read: u64 = 0;
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        read += chunk.len() as u64;
        kept.extend_from_slice(&chunk);
        if kept.len() > 2 * KEEP_BYTES {
            kept.drain(..kept.len() - KEEP_BYTES);
        }
        if read > MAX_DOWNLOAD_BYTES {
            break;
        }
    }
    if kept.len() > KEEP_BYTES {
        kept.drain(..kept.len() - KEEP_BYTES);
    }
    Ok(kept)
}

/// The failing step of a job log, timestamps removed, at most `max_chars` characters: the
/// step's `Run …` line, then the tail of its output up to and including its `##[error]` lines.
/// A log without `##[error]` gives its own tail.
pub fn failing_step_tail(log: &str, max_chars: usize) -> String {
    let lines: Vec<&str> = log
        .trim_start_matches('\u{feff}')
        .lines()
        .map(strip_timestamp)
        .collect();
    let error = lines.iter().position(|l| l.starts_with("##[error]"));
    let (header, body) = match error {
        Some(at) => {
            let mut end = at;
            while end + 1 < lines.len() && lines[end + 1].starts_with("##[error]") {
                end += 1;
            }
            let start = lines[..at]
                .iter()
                .rposition(|l| l.starts_with("##[group]Run "));
            match start {
                Some(s) => (Some(lines[s]), &lines[s + 1..=end]),
                None => (None, &lines[..=end]),
            }
        }
        None => (None, &lines[..]),
    };
    let mut budget = max_chars.saturating_sub(header.map_or(0, |h| h.len() + 1));
    let mut tail: Vec<&str> = Vec::new();
    for line in body.iter().rev() {
        let cost = line.chars().count() + 1;
        if cost > budget {
            break;
        }
        budget -= cost;
        tail.push(line);
    }
    tail.reverse();
    let left_out = body.len() - tail.len();
    let mut out = String::new();
    if let Some(h) = header {
        out.push_str(h);
        out.push('\n');
    }
    if left_out > 0 {
        out.push_str(&format!("… ({left_out} earlier lines left out)\n"));
    }
    for line in tail {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `2024-05-01T12:00:00.1234567Z text` → `text` (job log lines start with a timestamp).
fn strip_timestamp(line: &str) -> &str {
    match line.split_once(' ') {
        Some((stamp, rest))
            if stamp.len() >= 20
                && stamp.ends_with('Z')
                && stamp.as_bytes().get(10) == Some(&b'T')
                && stamp.as_bytes()[..4].iter().all(u8::is_ascii_digit) =>
        {
            rest
        }
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\u{feff}2026-12-06T10:00:00.0000000Z ##[group]Run actions/checkout@v4
2026-12-06T10:00:01.0000000Z with: fetch-depth 1
2026-12-06T10:00:02.0000000Z ##[endgroup]
2026-12-06T10:00:03.0000000Z ##[group]Run cargo test
2026-12-06T10:00:03.1000000Z cargo test
2026-12-06T10:00:03.2000000Z ##[endgroup]
2026-12-06T10:00:04.0000000Z    Compiling widgets v0.1.0
2026-12-06T10:00:05.0000000Z error[E0308]: mismatched types
2026-12-06T10:00:05.1000000Z  --> src/lib.rs:2:5
2026-12-06T10:00:06.0000000Z ##[error]Process completed with exit code 101.
2026-12-06T10:00:07.0000000Z Post job cleanup.
";

    #[test]
    fn the_failing_steps_output_is_kept_without_timestamps() {
        let tail = failing_step_tail(LOG, 10_000);
        assert!(tail.starts_with("##[group]Run cargo test\n"), "{tail}");
        assert!(tail.contains("error[E0308]: mismatched types\n"), "{tail}");
        assert!(tail.ends_with("##[error]Process completed with exit code 101.\n"));
        assert!(!tail.contains("checkout") && !tail.contains("cleanup") && !tail.contains("2026-"));
    }

    #[test]
    fn a_long_step_keeps_its_end_within_the_budget() {
        let mut log = String::from("##[group]Run make\n");
        for i in 0..10_000 {
            log.push_str(&format!("line {i}\n"));
        }
        log.push_str("##[error]boom\n");
        let tail = failing_step_tail(&log, 500);
        assert!(tail.chars().count() <= 500 + 40, "{}", tail.len());
        assert!(tail.starts_with("##[group]Run make\n… ("), "{tail}");
        assert!(tail.contains("line 9999\n##[error]boom\n"));
    }

    #[test]
    fn a_log_without_an_error_marker_gives_its_tail() {
        assert_eq!(
            failing_step_tail("a\nb\nc\n", 4),
            "… (1 earlier lines left out)\nb\nc\n"
        );
    }

    #[test]
    fn actions_jobs_are_found_by_details_url_or_by_app() {
        let mut run: CheckRun = serde_json::from_value(serde_json::json!({
            "id": 7, "name": "test", "head_sha": "abc",
            "details_url": "https://github.com/o/r/actions/runs/55/job/99"
        }))
        .expect("check run");
        assert_eq!(actions_job_id(&run), Some(99));
        run.details_url = Some("https://ci.example.com/build/3".into());
        assert_eq!(actions_job_id(&run), None);
        run.app =
            serde_json::from_value(serde_json::json!({"id": 15368, "slug": "github-actions"})).ok();
        assert_eq!(actions_job_id(&run), Some(7));
    }

    #[test]
    fn signed_downloads_go_only_to_https_or_loopback() {
        let ok = |u: &str| allowed_download(&url::Url::parse(u).expect("url"));
        assert!(ok("https://pipelines.actions.githubusercontent.com/x"));
        assert!(ok("http://127.0.0.1:8080/x") && ok("http://[::1]/x") && ok("http://localhost/x"));
        assert!(
            !ok("http://example.com/x")
                && !ok("http://169.254.169.254/")
                && !ok("file:///etc/passwd")
        );
    }
}
