//! Spec runs with a real small model: SmolLM2-135M served by llama-cpp-python's
//! OpenAI-compatible server (started by `bench/smollm2.sh`, which also downloads the model).
//!
//! The real `specbot serve` runs against the GitHub world (the test simulator, in this process)
//! and talks to the model server through a recording pass-through on loopback, so every model
//! exchange can be judged afterwards. `SMOLLM_RUNS` (default 5) issues are labelled `needs-spec`
//! one after the other; each run must end in a spec PR or a failure comment that names the
//! problems, with nothing half-written. Printed: runs, answers, decoded answers (an answer
//! decodes when it is the `submit_spec` input and was not cut off by `max_tokens`), validated
//! specs, PRs, failure comments, half-written states.
//!
//! ```sh
//! SMOLLM_BASE_URL=http://127.0.0.1:8765/v1 cargo bench --bench smollm2
//! ```
//! `SMOLLM_CONTEXT_TOKENS` (default 8192) is passed on as `LLM_CONTEXT_TOKENS`; it must match
//! the server's `--n_ctx`.

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "../tests/support/child.rs"]
mod child;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use specbot::jobs::JobState;
use specbot::server::webhook::sign;
use support::github_world::GitHubWorld;

const REPO: &str = "acme/widgets";
const SECRET: &str = "smollm2-bench-webhook-secret-0123456789";

/// The features asked for, one per run (cycled when there are more runs).
const FEATURES: &[(&str, &str)] = &[
    (
        "Add dark mode",
        "Users want a dark colour theme that follows the operating system setting, with a toggle in the settings page.",
    ),
    (
        "Export widgets as CSV",
        "Let users download the widget list as a CSV file from the list page, with the same filters applied.",
    ),
    (
        "Rate-limit the public API",
        "Limit each API key to 100 requests per minute and answer 429 with a Retry-After header beyond that.",
    ),
    (
        "Email a weekly summary",
        "Send each user a weekly email listing the widgets created and changed in their team that week.",
    ),
    (
        "Search widgets by name",
        "Add a search box to the widget list that filters by name as the user types.",
    ),
];

/// One request the bot sent to the model server and what came back.
#[derive(Clone)]
struct Exchange {
    request: Value,
    status: u16,
    response: Value,
}

#[derive(Clone)]
struct Relay {
    upstream: String,
    http: reqwest::Client,
    log: Arc<Mutex<Vec<Exchange>>>,
}

/// Pass a request on to the model server unchanged and record both sides.
async fn relay(State(r): State<Relay>, Path(path): Path<String>, body: Bytes) -> impl IntoResponse {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let sent = r
        .http
        .post(format!("{}/{path}", r.upstream))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    let (status, bytes) = match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.bytes().await.unwrap_or_default())
        }
        Err(e) => (502, Bytes::from(e.to_string())),
    };
    let response = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    r.log.lock().expect("log").push(Exchange {
        request,
        status,
        response,
    });
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
        [("content-type", "application/json")],
        bytes,
    )
}

async fn start_relay(upstream: String, log: Arc<Mutex<Vec<Exchange>>>) -> String {
    let state = Relay {
        upstream,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(3600))
            .build()
            .expect("client"),
        log,
    };
    let app = axum::Router::new()
        .route("/v1/{*path}", axum::routing::post(relay))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

/// How one answer of the model fared.
struct Judged {
    decoded: bool,
    validated: bool,
    finish: String,
    problems: Vec<String>,
}

/// Judge one successful completion the way the bot reads it: the `submit_spec` input (a tool
/// call's arguments or the structured-output text), not cut off by `max_tokens`.
fn judge(response: &Value) -> Judged {
    let choice = &response["choices"][0];
    let finish = choice["finish_reason"].as_str().unwrap_or("?").to_string();
    let message = &choice["message"];
    let text = match message["tool_calls"][0]["function"]["arguments"].as_str() {
        Some(args) => args.to_string(),
        None => message["content"].as_str().unwrap_or_default().to_string(),
    };
    let parsed = specbot::llm::lenient_json(text.trim())
        .map_err(|e| format!("not JSON: {e}"))
        .and_then(|v| specbot::spec::parse_tool_input(&v).map_err(|e| e.to_string()));
    let mut answer = match parsed {
        Ok(answer) if finish != "length" => answer,
        Ok(_) => {
            return Judged {
                decoded: false,
                validated: false,
                finish,
                problems: vec!["cut off by max_tokens".into()],
            };
        }
        Err(e) => {
            return Judged {
                decoded: false,
                validated: false,
                finish,
                problems: vec![e],
            };
        }
    };
    let kinds = specbot::workflow::context::artifact_kinds(
        &specbot::config::repo::RepoConfig::default().artifacts,
    );
    let problems = match specbot::spec::validate(
        specbot::spec::complete_components_section(&mut answer),
        &kinds,
    ) {
        Ok(()) => Vec::new(),
        Err(p) => p.iter().map(|p| p.to_string()).collect(),
    };
    Judged {
        decoded: true,
        validated: problems.is_empty(),
        finish,
        problems,
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let Ok(upstream) = std::env::var("SMOLLM_BASE_URL") else {
        eprintln!(
            "set SMOLLM_BASE_URL=http://127.0.0.1:PORT/v1 (a llama-cpp-python server; see bench/smollm2.sh)"
        );
        std::process::exit(2);
    };
    let runs: usize = env_or("SMOLLM_RUNS", "5").parse().unwrap_or(5);
    let window = env_or("SMOLLM_CONTEXT_TOKENS", "8192");
    let model = env_or("SMOLLM_MODEL", "smollm2-135m");

    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    world.set_permission(REPO, "alice", "admin");
    let log = Arc::new(Mutex::new(Vec::new()));
    let llm_url = start_relay(upstream.trim_end_matches('/').to_string(), log.clone()).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = format!("sqlite://{}/specbot.db", dir.path().display());
    let key = child::test_key_path();
    let app_id = world.app_id().to_string();
    let api = world.base_url();
    let env = [
        ("DATABASE_URL", db_url.as_str()),
        ("WEBHOOK_SECRET", SECRET),
        ("WORKERS", "1"),
        ("APP_ID", app_id.as_str()),
        ("PRIVATE_KEY_PATH", key.as_str()),
        ("GITHUB_API_URL", api.as_str()),
        ("GITHUB_WRITE_GAP_MS", "0"),
        ("LLM_PROVIDER", "openai"),
        ("LLM_BASE_URL", llm_url.as_str()),
        ("LLM_MODEL", model.as_str()),
        ("LLM_STREAM", "false"),
        ("LLM_CONTEXT_TOKENS", window.as_str()),
    ];
    let server = child::Server::start(dir.path(), &env).await;
    let store = specbot::jobs::open(&db_url).await.expect("open store");
    let http = reqwest::Client::new();

    println!("model server: {upstream} (model {model}, LLM_CONTEXT_TOKENS={window})");
    let started = Instant::now();
    let mut issues = Vec::new();
    for run in 0..runs {
        let (title, body) = FEATURES[run % FEATURES.len()];
        let issue = world.add_issue(REPO, title, body, "alice");
        world.add_label(REPO, issue, "needs-spec");
        let payload = json!({
            "action": "labeled",
            "repository": world.repo_json(REPO),
            "sender": world.user_json("alice"),
            "installation": {"id": world.installation_id()},
            "issue": world.issue_json(REPO, issue),
            "label": {"name": "needs-spec", "color": "ededed"},
        });
        let body = serde_json::to_vec(&payload).expect("payload");
        // One run at a time: each run's exchanges are its own.
        let before = log.lock().expect("log").len();
        let status = http
            .post(server.url("/api/github/webhooks"))
            .header("X-GitHub-Event", "issues")
            .header("X-GitHub-Delivery", format!("smollm2-{run}"))
            .header("X-Hub-Signature-256", sign(SECRET, &body))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("webhook")
            .status();
        assert!(
            status.is_success(),
            "the labelled delivery answered {status}"
        );
        wait_for_jobs(&store, run + 1).await;
        let exchanges = log.lock().expect("log")[before..].to_vec();
        issues.push((issue, exchanges));
        eprintln!(
            "run {}/{runs} done after {:.0} s",
            run + 1,
            started.elapsed().as_secs_f64()
        );
    }
    report(&world, &store, &issues, started.elapsed()).await;
    drop(server);
}

/// Wait until `n` jobs exist and none is queued or running.
async fn wait_for_jobs(store: &Arc<dyn specbot::jobs::Store>, n: usize) {
    loop {
        let list = store.recent_jobs(1000).await.expect("jobs");
        if list.len() >= n && list.iter().all(|j| !j.state.is_active()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How one run ended on GitHub.
struct Outcome {
    pr: bool,
    failure_comment: bool,
    half_written: Vec<String>,
    status: String,
}

/// Look at what run `issue` left on GitHub: a PR with its components filed and linked, or a
/// failure comment naming problems and nothing else (no branch, no PR, no component issue).
fn outcome(world: &GitHubWorld, issue: u64, last_problems: &[String]) -> Outcome {
    let bot = world.bot_login();
    let comments: Vec<String> = world
        .comments(REPO, issue)
        .into_iter()
        .filter(|c| c.user == bot)
        .map(|c| c.body)
        .collect();
    let status = comments.last().cloned().unwrap_or_default();
    let branch = format!("specbot/spec-{issue}");
    let pulls: Vec<_> = world
        .pulls(REPO)
        .into_iter()
        .filter(|p| p.head == branch)
        .collect();
    let has_branch = world.branches(REPO).contains(&branch);
    let subs = world.sub_issues(REPO, issue);
    let mut half = Vec::new();
    if comments.len() != 1 {
        half.push(format!("{} status comments", comments.len()));
    }
    let pr = status.contains("✅");
    let failure = status.contains("❌");
    if pr {
        if pulls.len() != 1 || pulls[0].state != "open" {
            half.push(format!("done, but {} open spec PRs", pulls.len()));
        }
        if subs.is_empty() {
            half.push("done, but no component issue".into());
        }
        for n in &subs {
            if !status.contains(&format!("#{n} ")) {
                half.push(format!("component issue #{n} not in the status comment"));
            }
        }
    } else if failure {
        if has_branch || !pulls.is_empty() || !subs.is_empty() {
            half.push(format!(
                "failed, yet branch: {has_branch}, PRs: {}, component issues: {}",
                pulls.len(),
                subs.len()
            ));
        }
        // The comment must name what was wrong, not just say that something was.
        let named = last_problems.is_empty()
            || last_problems
                .iter()
                .any(|p| status.contains(p.split(':').next().unwrap_or(p)));
        if !named {
            half.push("the failure comment does not name the problems".into());
        }
    } else {
        half.push("the run ended in neither a PR nor a failure comment".into());
    }
    Outcome {
        pr,
        failure_comment: failure,
        half_written: half,
        status,
    }
}

fn rate(n: usize, of: usize) -> String {
    if of == 0 {
        return "n/a".into();
    }
    format!("{:.0}%", 100.0 * n as f64 / of as f64)
}

async fn report(
    world: &GitHubWorld,
    store: &Arc<dyn specbot::jobs::Store>,
    runs: &[(u64, Vec<Exchange>)],
    elapsed: Duration,
) {
    let (mut answers, mut decoded, mut validated, mut refused) = (0, 0, 0, 0);
    let (mut prs, mut failures, mut half) = (0, 0, 0);
    println!();
    for (i, (issue, exchanges)) in runs.iter().enumerate() {
        println!("run {} (issue #{issue}):", i + 1);
        let mut last_problems = Vec::new();
        for x in exchanges {
            let format = x.request["response_format"]["type"]
                .as_str()
                .unwrap_or(if x.request.get("tools").is_some() {
                    "tools"
                } else {
                    "text"
                })
                .to_string();
            if x.status != 200 {
                refused += 1;
                println!(
                    "  request ({format}): HTTP {} {}",
                    x.status,
                    x.response.to_string().chars().take(160).collect::<String>()
                );
                continue;
            }
            answers += 1;
            let j = judge(&x.response);
            decoded += usize::from(j.decoded);
            validated += usize::from(j.validated);
            let tokens = &x.response["usage"];
            println!(
                "  answer ({format}, max_tokens {}, prompt {} + completion {} tokens, finish {}): decoded {}, valid {}{}",
                x.request["max_tokens"],
                tokens["prompt_tokens"],
                tokens["completion_tokens"],
                j.finish,
                j.decoded,
                j.validated,
                if j.problems.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", j.problems.join("; "))
                }
            );
            last_problems = j.problems;
        }
        let o = outcome(world, *issue, &last_problems);
        prs += usize::from(o.pr);
        failures += usize::from(o.failure_comment);
        half += o.half_written.len();
        for h in &o.half_written {
            println!("  HALF-WRITTEN: {h}");
        }
        let line = o
            .status
            .lines()
            .filter(|l| l.contains("✅") || l.contains("❌") || l.contains("What went wrong"))
            .collect::<Vec<_>>()
            .join(" ");
        println!("  status comment: {line}");
    }
    let jobs = store.recent_jobs(1000).await.expect("jobs");
    let succeeded = jobs
        .iter()
        .filter(|j| j.state == JobState::Succeeded)
        .count();
    println!();
    println!("| figure | value |");
    println!("| --- | --- |");
    println!("| spec runs | {} |", runs.len());
    println!("| model answers | {answers} |");
    println!(
        "| decoded into the answer type | {decoded} ({}) |",
        rate(decoded, answers)
    );
    println!(
        "| valid specs (before the bot's own fixes) | {validated} ({}) |",
        rate(validated, answers)
    );
    println!("| requests the server refused (feature probing) | {refused} |");
    println!("| spec PRs opened | {prs} |");
    println!("| failure comments | {failures} |");
    println!("| half-written states | {half} |");
    println!("| jobs succeeded / total | {succeeded} / {} |", jobs.len());
    println!("| wall time | {:.0} s |", elapsed.as_secs_f64());
}
