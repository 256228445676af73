//! `/implement` end to end: a scripted engineer edits a snapshot of the repository through its
//! tools, and the result is one branch, one commit and one PR — plus the guardrails, the
//! per-component scope, CI fix rounds with their cap, crashes and `/cancel`.

mod support;

use serde_json::{Value, json};
use support::answers;
use support::llm_fake::{Fault, Reply};
use support::tester::{REPO, Tester};

const LIB: &str = "pub fn theme() -> &'static str {\n    \"light\"\n}\n";

/// A repository with code and conventions, and a spec PR for issue #1 with `k` components.
/// Returns (issue, spec PR).
async fn spec_pr(t: &mut Tester, k: usize) -> (u64, u64) {
    t.world.put_file(REPO, "main", "src/lib.rs", LIB);
    t.world.put_file(
        REPO,
        "main",
        "AGENTS.md",
        "Run `cargo test`. Keep functions small. CONVENTION-MARKER-42\n",
    );
    t.spec_pr(k).await
}

/// A merged spec: the spec PR merged and its event handled.
async fn merged_spec(t: &mut Tester, k: usize) -> u64 {
    let (issue, pr) = spec_pr(t, k).await;
    t.merge_pull(pr, "alice").await;
    t.run_jobs().await;
    issue
}

fn calls(list: Vec<(&str, Value)>) -> Reply {
    Reply {
        tool_calls: list.into_iter().map(|(n, v)| (n.to_string(), v)).collect(),
        ..Reply::default()
    }
}

fn finish(summary: &str) -> (&'static str, Value) {
    (
        "finish",
        json!({
            "summary": summary,
            "criteria": [
                {"criterion": "The toggle persists.", "how_met": "`theme()` reads the saved choice; `tests/theme.rs` checks it."}
            ]
        }),
    )
}

/// The engineer reads the code, adds a module and a test, edits `src/lib.rs`, and finishes.
fn script_good_session(t: &Tester) {
    t.llm
        .push_tool_call("read_file", json!({"path": "src/lib.rs"}));
    script_dark_files(t);
    t.llm.push_tool_call(
        "edit_file",
        json!({"path": "src/lib.rs", "old": "\"light\"", "new": "dark::DARK"}),
    );
    t.llm
        .push_reply(calls(vec![finish("Adds the dark theme and its test.")]));
}

/// The engineer writes `src/dark.rs` and `tests/theme.rs` in one answer.
fn script_dark_files(t: &Tester) {
    t.llm.push_reply(calls(vec![
        (
            "write_file",
            json!({"path": "src/dark.rs", "content": "pub const DARK: &str = \"dark\";\n"}),
        ),
        (
            "write_file",
            json!({"path": "tests/theme.rs", "content": "#[test]\nfn dark() { assert_eq!(widgets::theme(), \"dark\"); }\n"}),
        ),
    ]));
}

#[tokio::test]
async fn implement_on_a_merged_spec_opens_one_pr_that_closes_the_issue() {
    let mut t = Tester::start().await;
    let issue = merged_spec(&mut t, 1).await;
    t.expect_comments(issue, &["specbot:status"]);
    script_good_session(&t);
    t.comment(issue, "/implement").await;
    t.run_jobs().await;

    // One branch, one commit on top of main, holding exactly the engineer's changes.
    let branch = format!("specbot/implement-{issue}");
    assert!(t.world.branches(REPO).contains(&branch));
    assert_eq!(
        t.world.file(REPO, &branch, "src/dark.rs").as_deref(),
        Some("pub const DARK: &str = \"dark\";\n")
    );
    assert!(
        t.world
            .file(REPO, &branch, "src/lib.rs")
            .unwrap()
            .contains("dark::DARK")
    );
    assert!(t.world.file(REPO, &branch, "tests/theme.rs").is_some());
    let commits = t.world.commits_on(REPO, &branch);
    let main_head = t.world.ref_sha(REPO, "main").unwrap();
    assert_eq!(commits[0].parents, vec![main_head]);
    assert!(
        commits[0]
            .message
            .starts_with("Implement #1: Add dark mode"),
        "{}",
        commits[0].message
    );
    assert!(
        commits[0]
            .message
            .contains("Assisted-by: test-model via specbot"),
        "{}",
        commits[0].message
    );

    // One PR that closes the issue, with criteria, files and cost.
    let pulls: Vec<_> = t
        .world
        .pulls(REPO)
        .into_iter()
        .filter(|p| p.head == branch)
        .collect();
    assert_eq!(pulls.len(), 1);
    let body = pulls[0].body.clone().unwrap_or_default();
    for needle in [
        "Closes #1",
        "specs/IMPLEMENT-1.md",
        "The toggle persists.",
        "`src/dark.rs`",
        "`tests/theme.rs`",
        "tokens",
        "$",
    ] {
        assert!(body.contains(needle), "{needle} in {body}");
    }

    // The model saw the spec, the conventions and the tools; the status comment links the PR.
    let first = t.llm.requests()[1].body.to_string();
    assert!(first.contains("Add a dark theme."), "spec in the prompt");
    assert!(
        first.contains("CONVENTION-MARKER-42"),
        "AGENTS.md in the prompt"
    );
    assert!(first.contains("write_file") && first.contains("edit_file"));
    let comments = t.bot_comments(issue);
    let status = comments
        .iter()
        .find(|c| c.contains("specbot:implement-status"))
        .expect("a status comment");
    assert!(status.contains("✅ Implemented the spec"), "{status}");
    assert!(
        status.contains(&format!("#{}", pulls[0].number)),
        "{status}"
    );
    assert!(status.contains("on `main`"), "{status}");

    // The transcript is kept for debugging.
    let transcripts = t
        .app()
        .store
        .list_records("transcript", "")
        .await
        .expect("store answers");
    assert_eq!(transcripts.len(), 1);
    t.finish();
}

#[tokio::test]
async fn implement_works_with_an_openai_compatible_model_too() {
    let mut t = Tester::builder()
        .provider(support::tester::Provider::OpenAi)
        .start()
        .await;
    let issue = merged_spec(&mut t, 1).await;
    t.expect_comments(issue, &["specbot:status"]);
    script_good_session(&t);
    t.comment(issue, "/implement").await;
    t.run_jobs().await;
    let branch = format!("specbot/implement-{issue}");
    assert!(
        t.world
            .file(REPO, &branch, "src/lib.rs")
            .unwrap()
            .contains("dark::DARK")
    );
    assert!(t.llm.requests()[1].path.ends_with("/chat/completions"));
    assert_eq!(
        t.world
            .pulls(REPO)
            .iter()
            .filter(|p| p.head == branch)
            .count(),
        1
    );
    t.expect_comments(issue, &["specbot:status", "specbot:implement-status"]);
    t.finish();
}

#[tokio::test]
async fn implement_again_updates_the_same_branch_and_pr() {
    let mut t = Tester::start().await;
    let issue = merged_spec(&mut t, 1).await;
    t.expect_comments(issue, &["specbot:status"]);
    script_good_session(&t);
    t.comment(issue, "/implement").await;
    t.run_jobs().await;
    // A second run continues on the branch: it sees its earlier work.
    t.llm.push_tool_call(
        "write_file",
        json!({"path": "src/dark.rs", "content": "pub const DARK: &str = \"night\";\n"}),
    );
    t.llm.push_reply(calls(vec![finish("Renames the theme.")]));
    t.comment(issue, "/implement").await;
    t.run_jobs().await;
    let branch = format!("specbot/implement-{issue}");
    assert_eq!(
        t.world
            .pulls(REPO)
            .iter()
            .filter(|p| p.head == branch)
            .count(),
        1,
        "never a second PR"
    );
    assert_eq!(t.world.commits_on(REPO, &branch).len() - 1, {
        // main's commits + 2 of ours
        t.world.commits_on(REPO, "main").len() + 1
    });
    assert!(
        t.world
            .file(REPO, &branch, "src/lib.rs")
            .unwrap()
            .contains("dark::DARK"),
        "the first run's edit is kept"
    );
    assert_eq!(
        t.world.file(REPO, &branch, "src/dark.rs").as_deref(),
        Some("pub const DARK: &str = \"night\";\n")
    );
    let comments = t.bot_comments(issue);
    assert_eq!(
        comments
            .iter()
            .filter(|c| c.contains("specbot:implement-status"))
            .count(),
        1,
        "one status comment, edited"
    );
    t.finish();
}

#[tokio::test]
async fn implement_on_a_component_issue_implements_that_component_from_the_spec_branch() {
    let mut t = Tester::start().await;
    let (issue, _pr) = spec_pr(&mut t, 2).await;
    let components = t.world.sub_issues(REPO, issue);
    let second = components[1];
    t.llm.push_reply(calls(vec![
        (
            "write_file",
            json!({"path": "src/part2.rs", "content": "pub fn part2() {}\n"}),
        ),
        finish("Part 2."),
    ]));
    t.comment(second, "/implement --force").await;
    t.run_jobs().await;

    let branch = format!("specbot/implement-{second}");
    let pull = t
        .world
        .pulls(REPO)
        .into_iter()
        .find(|p| p.head == branch)
        .expect("a PR for the component");
    let body = pull.body.unwrap_or_default();
    assert!(body.contains(&format!("Closes #{second}")), "{body}");
    assert!(body.contains("**Component 2**"), "{body}");
    assert!(
        body.contains("on `specbot/spec-1`"),
        "read from the spec branch: {body}"
    );
    // Only the component's file changed (against main).
    let main_paths = t.world.tree_paths(REPO, "main");
    let new: Vec<String> = t
        .world
        .tree_paths(REPO, &branch)
        .into_iter()
        .filter(|p| !main_paths.contains(p))
        .collect();
    assert_eq!(new, vec!["src/part2.rs"]);
    // The prompt named the component and its criteria.
    let prompt = t.llm.requests()[1].body.to_string();
    assert!(prompt.contains("Component 2") && prompt.contains("Part 2 works"));
    assert!(
        t.world
            .file(REPO, &branch, "specs/IMPLEMENT-1.md")
            .is_none()
    );
    let status = t.expect_one_comment(second);
    assert!(status.contains("Component 2"), "{status}");
    t.expect_comments(issue, &["specbot:status"]);
    t.finish();
}

/// The table row of one criterion (`| **AC-1.1** …`).
fn row<'a>(body: &'a str, id: &str) -> &'a str {
    body.lines()
        .find(|l| l.starts_with(&format!("| **{id}**")))
        .unwrap_or_else(|| panic!("no row for {id} in {body}"))
}

#[tokio::test]
async fn the_pr_holds_the_engineer_to_the_specs_criterion_ids() {
    let mut t = Tester::start().await;
    let issue = merged_spec(&mut t, 2).await;
    t.expect_comments(issue, &["specbot:status"]);
    script_dark_files(&t);
    // AC-1.1 done (one file it never touched), AC-1.2 left out, AC-9.9 not in the spec.
    t.llm.push_tool_call(
        "finish",
        answers::finish_by_id(
            "Adds the dark theme.",
            &[
                (
                    "AC-1.1",
                    "done",
                    &["src/dark.rs", "src/ghost.rs"],
                    &["tests/theme.rs"],
                ),
                ("AC-9.9", "done", &["src/dark.rs"], &[]),
            ],
        ),
    );
    t.comment(issue, "/implement").await;
    t.run_jobs().await;

    // The engineer was given each criterion with its ID and text.
    let prompt = t.llm.requests()[1].body.to_string();
    for id in ["AC-1.1", "AC-1.2"] {
        assert!(
            prompt.contains(&format!(
                "- {id}: WHEN the user picks a theme THE SYSTEM SHALL"
            )),
            "{id} in the prompt: {prompt}"
        );
    }
    let body = t.implementation_pull(issue).body.unwrap_or_default();
    assert!(body.contains("**1 of 2 criteria done**"), "{body}");
    let done = row(&body, "AC-1.1");
    assert!(done.contains("✅ done"), "{done}");
    assert!(done.contains("`src/dark.rs`<br>"), "{done}");
    assert!(
        done.contains("`src/ghost.rs` ⚠️ not among the files changed"),
        "a file the change did not touch is marked: {done}"
    );
    assert!(done.contains("tests/theme.rs"), "{done}");
    assert!(done.contains("AC-1.1: how the change meets it"), "{done}");
    let left_out = row(&body, "AC-1.2");
    assert!(
        left_out.contains("❌ **not done**: the engineer did not report it"),
        "{left_out}"
    );
    assert!(
        body.contains("- `AC-9.9`, not a criterion of this scope"),
        "flagged: {body}"
    );
    assert!(!body.contains("| **AC-9.9**"), "never a row: {body}");
    let status = t.expect_comments(issue, &["specbot:status", "specbot:implement-status"]);
    assert!(
        status[1].contains("✅ Implemented the spec: 1 of 2 criteria done; not done: AC-1.2."),
        "{}",
        status[1]
    );
    t.finish();
}

#[tokio::test]
async fn a_component_answers_only_for_the_criteria_it_covers() {
    let mut t = Tester::start().await;
    let (issue, _pr) = spec_pr(&mut t, 2).await;
    let second = t.world.sub_issues(REPO, issue)[1];
    t.llm.push_reply(calls(vec![
        (
            "write_file",
            json!({"path": "src/part2.rs", "content": "pub fn part2() {}\n"}),
        ),
        (
            "finish",
            answers::finish_by_id(
                "Part 2.",
                &[
                    (
                        "AC-1.2",
                        "done",
                        &["src/part2.rs"],
                        &["part2 keeps the theme"],
                    ),
                    ("AC-1.1", "done", &["src/part2.rs"], &[]),
                ],
            ),
        ),
    ]));
    t.comment(second, "/implement --force").await;
    t.run_jobs().await;

    let prompt = t.llm.requests()[1].body.to_string();
    assert!(prompt.contains("- AC-1.2: WHEN"), "{prompt}");
    assert!(
        !prompt.contains("- AC-1.1: WHEN"),
        "only what the component covers: {prompt}"
    );
    let body = t.implementation_pull(second).body.unwrap_or_default();
    assert!(body.contains("**1 of 1 criterion done**"), "{body}");
    let covered = row(&body, "AC-1.2");
    assert!(
        covered.contains("✅ done") && covered.contains("`src/part2.rs`"),
        "{covered}"
    );
    assert!(
        !body.contains("| **AC-1.1**"),
        "not this component's: {body}"
    );
    assert!(
        body.contains("- `AC-1.1`, not a criterion of this scope"),
        "another component's criterion is flagged: {body}"
    );
    let status = t.expect_one_comment(second);
    assert!(status.contains("1 of 1 criterion done."), "{status}");
    t.expect_comments(issue, &["specbot:status"]);
    t.finish();
}

#[tokio::test]
async fn a_spec_without_ids_keeps_its_free_text_criteria() {
    let mut t = Tester::start().await;
    t.world.put_file(REPO, "main", "src/lib.rs", LIB);
    t.world.put_file(
        REPO,
        "main",
        "specs/IMPLEMENT-1.md",
        answers::SPEC_WITHOUT_IDS,
    );
    let issue = t.open_issue("Add dark mode", "Night theme please.");
    script_good_session(&t);
    t.comment(issue, "/implement --force").await;
    t.run_jobs().await;

    let prompt = t.llm.requests()[0].body.to_string();
    assert!(prompt.contains("The toggle persists."), "{prompt}");
    assert!(!prompt.contains("report each one by its ID"), "{prompt}");
    let body = t.implementation_pull(issue).body.unwrap_or_default();
    assert!(
        body.contains(
            "## Acceptance criteria\n\n| Criterion | How it is met |\n| --- | --- |\n| The toggle persists. | `theme()` reads the saved choice; `tests/theme.rs` checks it. |\n"
        ),
        "today's table: {body}"
    );
    let status = t.expect_one_comment(issue);
    assert!(status.contains("✅ Implemented the spec.\n"), "{status}");
    assert!(!status.contains("criteria done"), "{status}");
    t.finish();
}

#[tokio::test]
async fn guardrails_refuse_with_a_reason_and_the_pr_lists_them() {
    let mut t = Tester::start().await;
    let issue = merged_spec(&mut t, 1).await;
    t.expect_comments(issue, &["specbot:status"]);
    let huge = "x".repeat(300 * 1024);
    t.llm.push_reply(calls(vec![
        (
            "write_file",
            json!({"path": "../../etc/passwd", "content": "root::0:0::/:/bin/sh\n"}),
        ),
        (
            "write_file",
            json!({"path": ".github/workflows/ci.yml", "content": "on: push\n"}),
        ),
        ("write_file", json!({"path": "big.txt", "content": huge})),
        (
            "write_file",
            json!({"path": "src/key.rs", "content": "const K: &str = \"sk-test-llm-key-never-logged\";\n"}),
        ),
        (
            "write_file",
            json!({"path": "src/dark.rs", "content": "pub const DARK: &str = \"dark\";\n"}),
        ),
    ]));
    t.llm.push_reply(calls(vec![finish(
        "Dark theme; CI needs a new job (not done).",
    )]));
    t.comment(issue, "/implement").await;
    t.run_jobs().await;

    // Each refusal went back to the model with a reason it can act on, never quoting the secret.
    let request = &t.llm.requests()[2].body;
    let messages = request["messages"].as_array().unwrap();
    let results = messages.last().unwrap().to_string();
    for needle in [
        "`../../etc/passwd` leaves the repository",
        "GitHub Actions workflow",
        "the limit is 262144 bytes per file",
        "looks like a secret",
        "created `src/dark.rs`",
    ] {
        assert!(
            results.contains(needle),
            "{needle} missing from the tool results"
        );
    }
    assert!(
        !results.contains("sk-test-llm-key-never-logged"),
        "never echoed"
    );

    let branch = format!("specbot/implement-{issue}");
    let paths = t.world.tree_paths(REPO, &branch);
    assert!(paths.contains(&"src/dark.rs".to_string()));
    for refused in [".github/workflows/ci.yml", "big.txt", "src/key.rs"] {
        assert!(!paths.contains(&refused.to_string()), "{refused} pushed");
    }
    let pull = t
        .world
        .pulls(REPO)
        .into_iter()
        .find(|p| p.head == branch)
        .unwrap();
    let body = pull.body.unwrap_or_default();
    assert!(body.contains("Refused by the guardrails"), "{body}");
    assert!(body.contains(".github/workflows/ci.yml"), "{body}");
    assert!(!body.contains("sk-test-llm-key-never-logged"));
    t.expect_comments(issue, &["specbot:status", "specbot:implement-status"]);
    t.finish();
}

#[tokio::test]
async fn a_run_whose_every_write_is_refused_pushes_nothing_and_says_why() {
    let mut t = Tester::start().await;
    let issue = merged_spec(&mut t, 1).await;
    t.expect_comments(issue, &["specbot:status"]);
    t.llm.push_reply(calls(vec![
        (
            "write_file",
            json!({"path": "/etc/cron.d/x", "content": "* * * * * root sh\n"}),
        ),
        (
            "write_file",
            json!({"path": "config.env", "content": "TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789\n"}),
        ),
    ]));
    t.llm.push_reply(calls(vec![finish("Could not do it.")]));
    t.comment(issue, "/implement").await;
    t.run_jobs().await;
    let branch = format!("specbot/implement-{issue}");
    assert!(!t.world.branches(REPO).contains(&branch));
    assert!(t.world.pulls(REPO).iter().all(|p| p.head != branch));
    let comments = t.bot_comments(issue);
    let status = comments
        .iter()
        .find(|c| c.contains("specbot:implement-status"))
        .unwrap();
    assert!(status.contains("❌ I could not implement"), "{status}");
    assert!(status.contains("without changing any file"), "{status}");
    assert!(status.contains("Nothing was pushed"), "{status}");
    t.finish();
}

#[tokio::test]
async fn implement_before_the_spec_exists_is_explained() {
    let mut t = Tester::start().await;
    let issue = t.open_issue("Add dark mode", "Night theme please.");
    t.comment(issue, "/implement --force").await;
    t.run_jobs().await;
    let status = t.expect_one_comment(issue);
    assert!(
        status.contains("there is no spec at `specs/IMPLEMENT-1.md`"),
        "{status}"
    );
    assert!(t.llm.requests().is_empty());
    t.finish();
}

/// Implement #1 and return (branch, PR number).
async fn implemented(t: &mut Tester) -> (String, u64) {
    let issue = merged_spec(t, 1).await;
    script_good_session(t);
    t.comment(issue, "/implement").await;
    t.run_jobs().await;
    t.expect_comments(issue, &["specbot:status", "specbot:implement-status"]);
    let branch = format!("specbot/implement-{issue}");
    let pr = t
        .world
        .pulls(REPO)
        .into_iter()
        .find(|p| p.head == branch)
        .unwrap()
        .number;
    (branch, pr)
}

fn script_fix(t: &Tester, n: u32) {
    t.llm.push_reply(calls(vec![
        (
            "write_file",
            json!({"path": "src/fix.rs", "content": format!("// fix {n}\n")}),
        ),
        finish(&format!(
            "Fix {n}: the theme test expected the wrong value."
        )),
    ]));
}

#[tokio::test]
async fn a_ci_failure_gets_exactly_one_fix_round_per_head_and_the_cap_is_honoured() {
    let mut t = Tester::start().await;
    let (branch, pr) = implemented(&mut t).await;
    let calls_before = t.llm.requests().len();

    // Round 1: the suite and one of its runs both report the failure, and the suite's
    // delivery comes twice; one fix round runs.
    script_fix(&t, 1);
    let (head1, run1) = t
        .fail_ci(
            &branch,
            "test",
            "error[E0308]: mismatched types at src/lib.rs:3",
        )
        .await;
    t.send_check_run(run1, &branch).await;
    t.send_check_suite(run1, &branch).await;
    t.run_jobs().await;
    assert_eq!(t.llm.requests().len(), calls_before + 1, "one fix round");
    let fix_prompt = t.llm.requests()[calls_before].body.to_string();
    assert!(
        fix_prompt.contains("mismatched types"),
        "the check's output"
    );
    assert!(fix_prompt.contains("dark != light"), "the annotation");
    let head2 = t.world.ref_sha(REPO, &branch).unwrap();
    assert_ne!(head1, head2);
    assert_eq!(t.world.commits_on(REPO, &branch)[0].parents, vec![head1]);
    let reply = t.expect_one_comment(pr);
    assert!(
        reply.contains("attempt 1 of 2") && reply.contains("`test`"),
        "{reply}"
    );

    // Round 2 on the new head.
    script_fix(&t, 2);
    t.fail_ci(&branch, "test", "still failing").await;
    t.run_jobs().await;
    assert_eq!(t.llm.requests().len(), calls_before + 2);
    let replies = t.bot_comments(pr);
    assert!(replies[1].contains("attempt 2 of 2"), "{replies:#?}");

    // The cap: a third failure gets one comment and no model call.
    let head3 = t.world.ref_sha(REPO, &branch).unwrap();
    let (_, run3) = t.fail_ci(&branch, "test", "still failing").await;
    t.send_check_run(run3, &branch).await;
    t.run_jobs().await;
    assert_eq!(t.llm.requests().len(), calls_before + 2, "no third round");
    assert_eq!(
        t.world.ref_sha(REPO, &branch).unwrap(),
        head3,
        "nothing pushed"
    );
    let replies = t.bot_comments(pr);
    assert_eq!(replies.len(), 3, "{replies:#?}");
    assert!(
        replies[2].contains("after 2 fix attempts") && replies[2].contains("`test`"),
        "{}",
        replies[2]
    );
    t.finish();
}

#[tokio::test]
async fn ci_failures_elsewhere_or_with_fixing_off_do_nothing() {
    let mut t = Tester::start().await;
    t.world.put_file(
        REPO,
        "main",
        ".github/specbot.yml",
        "implement:\n  ci_fix_attempts: 0\n",
    );
    let (branch, pr) = implemented(&mut t).await;
    let calls = t.llm.requests().len();
    t.fail_ci(&branch, "test", "boom").await;
    // A human's branch: never touched.
    t.world.create_branch(REPO, "feature/x", "main");
    t.fail_ci("feature/x", "test", "boom").await;
    t.run_jobs().await;
    assert_eq!(t.llm.requests().len(), calls);
    t.expect_no_comment(pr);
    t.finish();
}

#[tokio::test]
async fn a_crash_at_each_step_resumes_without_duplicates() {
    for step in ["ack", "spec", "engineer", "commit", "pull", "done"] {
        let mut t =
            Tester::with_settings(move |s| s.crash_at = Some(format!("implement:{step}"))).await;
        let issue = merged_spec(&mut t, 1).await;
        t.expect_comments(issue, &["specbot:status"]);
        let calls_before = t.llm.requests().len();
        script_good_session(&t);
        t.comment(issue, "/implement").await;
        t.run_jobs_until_crash().await;
        t.crash_and_restart(|s| s.crash_at = None).await;
        t.run_jobs().await;
        let branch = format!("specbot/implement-{issue}");
        assert_eq!(
            t.world
                .pulls(REPO)
                .iter()
                .filter(|p| p.head == branch)
                .count(),
            1,
            "one PR, step {step}"
        );
        assert_eq!(
            t.world.commits_on(REPO, &branch).len(),
            t.world.commits_on(REPO, "main").len() + 1,
            "one commit, step {step}"
        );
        let status: Vec<String> = t
            .bot_comments(issue)
            .into_iter()
            .filter(|c| c.contains("specbot:implement-status"))
            .collect();
        assert_eq!(status.len(), 1, "one status comment, step {step}");
        assert!(status[0].contains("✅"), "step {step}: {}", status[0]);
        // The engineer's four model calls are paid once: after its checkpoint, never again.
        assert_eq!(t.llm.requests().len() - calls_before, 4, "step {step}");
        t.finish();
    }
}

#[tokio::test]
async fn cancel_stops_the_engineer_and_pushes_nothing() {
    let mut t = Tester::start().await;
    let issue = merged_spec(&mut t, 1).await;
    t.expect_comments(issue, &["specbot:status"]);
    t.llm.push_fault(Fault::Hang);
    t.comment(issue, "/implement").await;
    let calls = t.llm.requests().len();
    t.llm.wait_for_request(calls + 1).await;
    t.comment(issue, "/cancel").await;
    t.run_jobs().await;
    let comments = t.bot_comments(issue);
    assert!(
        comments
            .iter()
            .any(|c| c.contains("specbot:implement-status") && c.contains("Cancelled")),
        "{comments:#?}"
    );
    assert!(
        comments
            .iter()
            .any(|c| c.contains("Stopping the running job"))
    );
    assert!(
        !t.world
            .branches(REPO)
            .contains(&format!("specbot/implement-{issue}"))
    );
    t.finish();
}

/// A failing Actions check whose only annotation is the runner's "exit code 1" line, and whose
/// job log holds the compiler's error. Returns the check run's id.
async fn fail_ci_with_job_log(t: &mut Tester, branch: &str) -> u64 {
    let sha = t.world.ref_sha(REPO, branch).unwrap();
    let run = t.world.add_check_run(
        REPO,
        &sha,
        "test",
        Some("failure"),
        "",
        vec![support::github_world::Annotation {
            path: ".github".into(),
            start_line: 1,
            end_line: 1,
            level: "failure".into(),
            title: None,
            message: "Process completed with exit code 1.".into(),
        }],
    );
    t.world.set_job_log(
        REPO,
        run,
        Some(
            "##[group]Run actions/checkout@v4\n##[endgroup]\n##[group]Run cargo test\ncargo test\n##[endgroup]\n   Compiling widgets v0.1.0\nerror[E0308]: mismatched types\n --> src/lib.rs:2:5\n  |\n2 |     dark::DARK\n  |     ^^^^^^^^^^ expected `&str`, found `u8`\n##[error]Process completed with exit code 1.\nPost job cleanup.\n",
        ),
    );
    t.send_check_suite(run, branch).await;
    run
}

#[tokio::test]
async fn a_ci_fix_round_gives_the_model_the_compiler_error_from_the_job_log() {
    let mut t = Tester::start().await;
    let (branch, pr) = implemented(&mut t).await;
    let before = t.llm.requests().len();
    script_fix(&t, 1);
    fail_ci_with_job_log(&mut t, &branch).await;
    t.run_jobs().await;
    assert_eq!(t.llm.requests().len(), before + 1, "one fix round");
    let prompt = t.llm.requests()[before].body.to_string();
    assert!(
        prompt.contains("error[E0308]: mismatched types"),
        "{prompt}"
    );
    assert!(prompt.contains("expected `&str`, found `u8`"), "{prompt}");
    assert!(
        prompt.contains("Process completed with exit code 1."),
        "the annotation too"
    );
    assert!(
        !prompt.contains("actions/checkout"),
        "only the failing step is kept"
    );
    // The log came through the signed URL, fetched without the installation token.
    let fetched: Vec<_> = t
        .world
        .requests()
        .into_iter()
        .filter(|r| r.route.as_deref() == Some("/_joblogs"))
        .collect();
    assert_eq!(fetched.len(), 1, "{fetched:?}");
    assert_eq!(fetched[0].status, 200);
    let reply = t.expect_one_comment(pr);
    assert!(reply.contains("I pushed a fix"), "{reply}");
    assert!(!reply.contains("job log"), "{reply}");
    t.finish();
}

#[tokio::test]
async fn without_actions_read_the_fix_round_goes_on_with_the_annotations_and_says_so() {
    let mut t = Tester::start().await;
    let (branch, pr) = implemented(&mut t).await;
    t.world.revoke_app_permission("actions");
    let before = t.llm.requests().len();
    script_fix(&t, 1);
    fail_ci_with_job_log(&mut t, &branch).await;
    t.run_jobs().await;
    assert_eq!(t.llm.requests().len(), before + 1, "the round still ran");
    let prompt = t.llm.requests()[before].body.to_string();
    assert!(
        prompt.contains("Process completed with exit code 1."),
        "{prompt}"
    );
    assert!(
        !prompt.contains("mismatched types"),
        "the log was not readable"
    );
    let reply = t.expect_one_comment(pr);
    assert!(reply.contains("I pushed a fix"), "{reply}");
    assert!(
        reply.contains("could not read the GitHub Actions job log of `test`")
            && reply.contains("`actions: read`"),
        "{reply}"
    );
    t.finish();
}

#[tokio::test]
async fn the_status_comment_shows_the_engineers_step_and_action_as_it_works_then_the_result() {
    let mut t = Tester::builder()
        // Every progress event edits the comment: no wall-time throttle in the test.
        .settings(|s| s.github.status_edit_gap = Some(std::time::Duration::ZERO))
        .start()
        .await;
    let issue = merged_spec(&mut t, 1).await;
    script_good_session(&t);
    t.comment(issue, "/implement").await;
    t.run_jobs().await;
    let statuses: Vec<_> = t
        .world
        .comments(REPO, issue)
        .into_iter()
        .filter(|c| c.body.contains("specbot:implement-status"))
        .collect();
    assert_eq!(statuses.len(), 1, "one status comment, edited in place");
    let bodies = t.world.comment_bodies(REPO, statuses[0].id);
    let seen = |step: &str, doing: &str| {
        bodies
            .iter()
            .any(|b| b.contains(&format!("**Progress:** step {step} · {doing}")))
    };
    assert!(seen("1 / 60", "reading `src/lib.rs`"), "{bodies:#?}");
    assert!(seen("2 / 60", "editing `tests/theme.rs`"), "{bodies:#?}");
    assert!(seen("3 / 60", "editing `src/lib.rs`"), "{bodies:#?}");
    assert!(seen("4 / 60", "finishing up"), "{bodies:#?}");
    assert!(
        bodies
            .iter()
            .any(|b| b.contains(" tokens") && b.contains("so far</sub>")),
        "spend and time: {bodies:#?}"
    );
    let last = bodies.last().unwrap();
    assert!(last.contains("✅ Implemented"), "{last}");
    assert!(
        !last.contains("**Progress:**"),
        "the finished status replaces the progress: {last}"
    );
    t.expect_comments(issue, &["specbot:status", "specbot:implement-status"]);
    t.finish();
}
