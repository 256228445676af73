//! `/implement` verifies its work: the engineer runs the repository's commands in the sandbox
//! (`run_command`), the bot runs the tests itself after `finish` and sends a failure back, a
//! PR whose tests still fail is a draft, and the PR's "Verification" section is written from
//! the bot's own records. Also: with `SANDBOX=off` nothing runs and the PR says so; `/cancel`
//! kills a running command; what a command leaves behind (a symlink to outside, a workflow
//! file, ignored build output) is not read or pushed. Without a working bubblewrap the sandbox
//! tests are skipped with a printed reason, unless `SPECBOT_REQUIRE_SANDBOX=1`.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::llm_fake::Reply;
use support::tester::{REPO, Tester};

const LIB: &str = "pub fn theme() -> &'static str {\n    \"light\"\n}\n";
/// The repository's "test suite": fails until `src/lib.rs` says dark.
const TEST_SH: &str = "if grep -q dark src/lib.rs; then echo 'all 1 tests passed'; else echo 'FAIL: theme() is not dark yet'; exit 1; fi\n";

/// A tester whose app runs commands under bubblewrap; `None` (skip) where it cannot.
async fn sandboxed() -> Option<Tester> {
    sandboxed_with(|_| {}).await
}

async fn sandboxed_with(
    more: impl FnOnce(&mut specbot::config::Settings) + 'static,
) -> Option<Tester> {
    let settings = specbot::sandbox::SandboxSettings {
        mode: Some(specbot::sandbox::SandboxMode::Bubblewrap),
        timeout: Duration::from_secs(120),
        ..Default::default()
    };
    if let Err(e) = specbot::sandbox::probe(&settings) {
        if std::env::var("SPECBOT_REQUIRE_SANDBOX").as_deref() == Ok("1") {
            panic!("SPECBOT_REQUIRE_SANDBOX=1 but the sandbox does not work here: {e}");
        }
        eprintln!("skipping: the sandbox does not work here: {e}");
        return None;
    }
    Some(
        Tester::builder()
            .settings(move |s| {
                s.sandbox = settings;
                more(s);
            })
            .start()
            .await,
    )
}

/// A merged spec for issue #1 over a repository with `src/lib.rs`, `test.sh` and `config`.
async fn merged_spec(t: &mut Tester, config: &str) -> u64 {
    t.world.put_file(REPO, "main", "src/lib.rs", LIB);
    t.world.put_file(REPO, "main", "test.sh", TEST_SH);
    t.world.put_file(REPO, "main", ".gitignore", "target/\n");
    if !config.is_empty() {
        t.world
            .put_file(REPO, "main", ".github/specbot.yml", config);
    }
    let (issue, pr) = t.spec_pr(1).await;
    t.merge_pull(pr, "alice").await;
    t.run_jobs().await;
    t.expect_comments(issue, &["specbot:status"]);
    issue
}

fn calls(list: Vec<(&str, Value)>) -> Reply {
    Reply {
        tool_calls: list.into_iter().map(|(n, v)| (n.to_string(), v)).collect(),
        ..Reply::default()
    }
}

fn finish() -> (&'static str, Value) {
    (
        "finish",
        json!({
            "summary": "Makes the theme dark. I added and ran all the tests.",
            "criteria": [{"criterion": "The toggle persists.", "how_met": "`theme()` returns dark."}]
        }),
    )
}

fn make_dark(t: &Tester) {
    t.llm.push_tool_call(
        "edit_file",
        json!({"path": "src/lib.rs", "old": "\"light\"", "new": "\"dark\""}),
    );
}

fn status(t: &mut Tester, issue: u64) -> String {
    t.bot_comments(issue)
        .into_iter()
        .find(|c| c.contains("specbot:implement-status"))
        .expect("a status comment")
}

#[tokio::test]
async fn the_engineer_sees_the_failing_test_fixes_it_and_the_pr_shows_both_runs() {
    let Some(mut t) = sandboxed().await else {
        return;
    };
    let issue = merged_spec(&mut t, "implement:\n  test: sh test.sh\n").await;
    t.llm
        .push_tool_call("run_command", json!({"command": "sh test.sh"}));
    make_dark(&t);
    t.llm.push_reply(calls(vec![finish()]));
    t.comment(issue, "/implement").await;
    t.run_jobs().await;

    // The model was offered the tool, and its next request held the failing output.
    let requests: Vec<String> = t
        .llm
        .requests()
        .iter()
        .map(|r| r.body.to_string())
        .collect();
    let first = requests
        .iter()
        .position(|r| r.contains("run_command"))
        .expect("the engineer's first request offers run_command");
    assert!(!requests[first].contains("FAIL: theme()"));
    assert!(
        requests[first + 1].contains("FAIL: theme() is not dark yet")
            && requests[first + 1].contains("exit code 1"),
        "{}",
        requests[first + 1]
    );

    let pull = t.implementation_pull(issue);
    assert!(!pull.draft, "green tests: a normal PR");
    let body = pull.body.clone().unwrap_or_default();
    let section = &body[body
        .find("## Verification")
        .expect("a Verification section")..];
    let red = section
        .find("| 1 | engineer | `sh test.sh` | exit code 1 |")
        .expect("the engineer's red run");
    let green = section
        .find("| 2 | specbot's test run | `sh test.sh` | exit code 0 |")
        .expect("the bot's green run");
    assert!(red < green, "{section}");
    assert!(section.contains("Tests pass"), "{section}");
    assert!(section.contains("all 1 tests passed"), "{section}");
    assert!(section.contains("<details>"), "{section}");
    let status = status(&mut t, issue);
    assert!(status.contains("they pass"), "{status}");
    t.finish();
}

#[tokio::test]
async fn tests_that_stay_failing_give_a_draft_pr_and_a_status_that_says_so() {
    let Some(mut t) = sandboxed_with(|s| {
        // Every progress event edits the status comment: no wall-time throttle in the test.
        s.github.status_edit_gap = Some(Duration::ZERO);
    })
    .await
    else {
        return;
    };
    let issue = merged_spec(&mut t, "implement:\n  test: sh test.sh\n  test_rounds: 1\n").await;
    t.llm.push_tool_call(
        "write_file",
        json!({"path": "src/other.rs", "content": "pub fn other() {}\n"}),
    );
    t.llm.push_reply(calls(vec![finish()]));
    // The failure went back to the model once; it finishes again without fixing it.
    t.llm.push_reply(calls(vec![finish()]));
    t.comment(issue, "/implement").await;
    t.run_jobs().await;

    let sent_back = t.llm.requests().iter().any(|r| {
        r.body
            .to_string()
            .contains("not finished yet: the repository's tests fail")
    });
    assert!(sent_back, "the failing run went back to the model");
    let pull = t.implementation_pull(issue);
    assert!(pull.draft, "failing tests: a draft PR");
    let body = pull.body.clone().unwrap_or_default();
    assert!(body.contains("Tests fail"), "{body}");
    assert!(body.contains("FAIL: theme() is not dark yet"), "{body}");
    let branch = format!("specbot/implement-{issue}");
    assert!(
        t.world.file(REPO, &branch, "src/other.rs").is_some(),
        "the work is pushed all the same"
    );
    let status = status(&mut t, issue);
    assert!(status.contains("they fail"), "{status}");
    // While it worked, the status comment showed specbot's own test run.
    let comment = t
        .world
        .comments(REPO, issue)
        .into_iter()
        .find(|c| c.body.contains("specbot:implement-status"))
        .expect("the status comment");
    let bodies = t.world.comment_bodies(REPO, comment.id);
    assert!(
        bodies
            .iter()
            .any(|b| b
                .contains("**Last test run** (by specbot): `sh test.sh` → ❌ fail (exit code 1")),
        "{bodies:#?}"
    );
    t.finish();
}

#[tokio::test]
async fn with_the_sandbox_off_there_is_no_run_tool_and_the_pr_says_nothing_ran() {
    // The tests' default settings: SANDBOX=off.
    let mut t = Tester::start().await;
    let issue = merged_spec(&mut t, "implement:\n  test: sh test.sh\n").await;
    make_dark(&t);
    t.llm.push_reply(calls(vec![finish()]));
    t.comment(issue, "/implement").await;
    t.run_jobs().await;
    assert!(
        t.llm
            .requests()
            .iter()
            .all(|r| !r.body.to_string().contains("run_command")),
        "no run tool offered"
    );
    let body = t.implementation_pull(issue).body.unwrap_or_default();
    assert!(body.contains("**Nothing was run.**"), "{body}");
    assert!(body.contains("SANDBOX=off"), "{body}");
    let status = status(&mut t, issue);
    assert!(status.contains("did not run"), "{status}");
    t.finish();
}

#[tokio::test]
async fn setup_runs_first_and_config_mistakes_are_explained() {
    let Some(mut t) = sandboxed().await else {
        return;
    };
    let issue = merged_spec(
        &mut t,
        "implement:\n  setup: ['echo prepared > setup.txt']\n  tests: sh test.sh\n",
    )
    .await;
    make_dark(&t);
    t.llm.push_reply(calls(vec![finish()]));
    t.comment(issue, "/implement").await;
    t.run_jobs().await;
    let body = t.implementation_pull(issue).body.unwrap_or_default();
    assert!(
        body.contains("| 1 | setup | `echo prepared > setup.txt` | exit code 0 |"),
        "{body}"
    );
    let status = status(&mut t, issue);
    assert!(
        status.contains("`implement.tests` is not a setting"),
        "{status}"
    );
    t.finish();
}

/// Processes of this machine whose command line holds `token`.
fn processes_with(token: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(token) && !c.contains("cargo") && !c.contains("nextest"))
        .collect()
}

#[tokio::test]
async fn cancel_while_a_command_runs_leaves_no_process_of_it() {
    let Some(mut t) = sandboxed().await else {
        return;
    };
    let token = format!("hang-{}", std::process::id());
    let issue = merged_spec(&mut t, "").await;
    t.world.put_file(
        REPO,
        "main",
        &format!("{token}.sh"),
        // Its processes carry the token in their command lines, even the `setsid` one.
        &format!("cp /bin/sleep ./{token}\n./{token} 3600 &\nsetsid ./{token} 3600 &\nwait\n"),
    );
    t.llm
        .push_tool_call("run_command", json!({"command": format!("sh {token}.sh")}));
    t.comment(issue, "/implement").await;
    // Wait (bounded) until the command's processes exist: the run is under way.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while processes_with(&token).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the command never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.comment(issue, "/cancel").await;
    t.run_jobs().await;
    assert!(
        processes_with(&token).is_empty(),
        "left alive: {:?}",
        processes_with(&token)
    );
    let status = status(&mut t, issue);
    assert!(status.contains("Cancelled"), "{status}");
    assert!(
        !t.world
            .branches(REPO)
            .contains(&format!("specbot/implement-{issue}"))
    );
    t.finish();
}

#[tokio::test]
async fn what_a_command_leaves_behind_is_neither_read_through_nor_pushed_unchecked() {
    let Some(mut t) = sandboxed().await else {
        return;
    };
    let issue = merged_spec(&mut t, "").await;
    t.llm.push_tool_call(
        "run_command",
        json!({"command": "ln -s /etc/passwd leak && ln -s /etc etc && mkdir -p .github/workflows target && echo 'on: push' > .github/workflows/evil.yml && echo built > target/out.txt && echo 'pub fn made() {}' > src/made.rs && printf 'echo hi\\n' > run.sh && chmod +x run.sh"}),
    );
    t.llm.push_reply(calls(vec![
        ("read_file", json!({"path": "leak"})),
        ("read_file", json!({"path": "etc/passwd"})),
    ]));
    make_dark(&t);
    t.llm.push_reply(calls(vec![finish()]));
    t.comment(issue, "/implement").await;
    t.run_jobs().await;

    let all: String = t
        .llm
        .requests()
        .iter()
        .map(|r| r.body.to_string())
        .collect();
    assert!(!all.contains("root:x:0:0"), "a tool read through a link");
    let branch = format!("specbot/implement-{issue}");
    for (path, pushed) in [
        ("src/made.rs", true),
        ("src/lib.rs", true),
        ("leak", false),
        ("etc/passwd", false),
        (".github/workflows/evil.yml", false),
        ("target/out.txt", false),
    ] {
        assert_eq!(
            t.world.file(REPO, &branch, path).is_some(),
            pushed,
            "{path} pushed?"
        );
    }
    assert!(
        !t.world
            .file(REPO, &branch, "src/lib.rs")
            .unwrap_or_default()
            .contains("root:")
    );
    // A script a command made executable is pushed executable; other new files are not.
    assert_eq!(
        t.world.file_mode(REPO, &branch, "run.sh").as_deref(),
        Some("100755")
    );
    assert_eq!(
        t.world.file_mode(REPO, &branch, "src/made.rs").as_deref(),
        Some("100644")
    );
    let body = t.implementation_pull(issue).body.unwrap_or_default();
    assert!(body.contains("`.github/workflows/evil.yml`"), "{body}");
    assert!(body.contains("`leak`"), "{body}");
    assert!(!body.contains("`target/out.txt`"), "{body}");
    let status = status(&mut t, issue);
    assert!(status.contains("✅ Implemented"), "{status}");
    t.finish();
}

/// A CI fix round runs the repository's tests in the sandbox before it pushes: a fix that
/// breaks them goes back to the model, and only the mended work is pushed.
#[tokio::test]
async fn a_ci_fix_round_runs_the_tests_before_it_pushes() {
    let Some(mut t) = sandboxed().await else {
        return;
    };
    let issue = merged_spec(&mut t, "implement:\n  test: sh test.sh\n").await;
    make_dark(&t);
    t.llm.push_reply(calls(vec![finish()]));
    t.comment(issue, "/implement").await;
    t.run_jobs().await;
    let pull = t.implementation_pull(issue);
    let branch = pull.head.clone();
    let before = t.llm.requests().len();

    // CI fails on the PR. The fix round's first try breaks the tests, its second mends them.
    let sha = t.world.ref_sha(REPO, &branch).expect("the branch");
    let run = t.world.add_check_run(
        REPO,
        &sha,
        "lint",
        Some("failure"),
        "",
        vec![support::github_world::Annotation {
            path: "src/lib.rs".into(),
            start_line: 1,
            end_line: 1,
            level: "failure".into(),
            title: None,
            message: "style: a trailing comment is missing".into(),
        }],
    );
    t.llm.push_tool_call(
        "edit_file",
        json!({"path": "src/lib.rs", "old": "\"dark\"", "new": "\"light\""}),
    );
    t.llm.push_reply(calls(vec![finish()]));
    t.llm.push_tool_call(
        "edit_file",
        json!({"path": "src/lib.rs", "old": "\"light\"", "new": "\"dark\" // the theme"}),
    );
    t.llm.push_reply(calls(vec![finish()]));
    t.send_check_suite(run, &branch).await;
    t.run_jobs().await;

    let after: Vec<String> = t.llm.requests()[before..]
        .iter()
        .map(|r| r.body.to_string())
        .collect();
    assert!(
        after.iter().any(
            |r| r.contains("not finished yet: the repository's tests fail")
                && r.contains("FAIL: theme() is not dark yet")
        ),
        "the broken fix went back to the model: {after:#?}"
    );
    let lib = t
        .world
        .file(REPO, &branch, "src/lib.rs")
        .unwrap_or_default();
    assert!(
        lib.contains("\"dark\""),
        "only mended work is pushed: {lib}"
    );
    let reply = t.expect_one_comment(pull.number);
    assert!(reply.contains("I pushed a fix"), "{reply}");
    let status = status(&mut t, issue);
    assert!(status.contains("✅ Implemented"), "{status}");
    t.finish();
}
