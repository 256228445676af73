//! The ground floor under every flow, through the real router and the simulators: token
//! caching, durable queues across restarts, and the GitHub request policy under faults.

mod support;

use support::github_world::{Fault, FaultRule};
use support::tester::{REPO, Tester};

use support::answers as spec_answers;

#[tokio::test]
async fn one_installation_token_serves_many_jobs() {
    let mut t = Tester::start().await;
    for i in 0..8 {
        let issue = t.open_issue(&format!("Feature {i}"), "Please.");
        t.llm
            .push_tool_call("submit_spec", spec_answers::good_answer(1));
        t.label_issue(issue, "needs-spec").await;
        t.run_jobs().await;
        t.expect_comments(issue, &["ready for review"]);
    }
    assert_eq!(t.world.pulls(REPO).len(), 8);
    assert_eq!(
        t.world.token_mints(t.world.installation_id()),
        1,
        "token cached for its hour"
    );
    t.finish();
}

#[tokio::test]
async fn an_expired_token_is_replaced_mid_flight() {
    let mut t = Tester::start().await;
    let first = t.open_issue("First", "Please.");
    t.llm
        .push_tool_call("submit_spec", spec_answers::good_answer(1));
    t.label_issue(first, "needs-spec").await;
    t.run_jobs().await;
    t.world.expire_tokens();
    let second = t.open_issue("Second", "Please.");
    t.llm
        .push_tool_call("submit_spec", spec_answers::good_answer(1));
    t.label_issue(second, "needs-spec").await;
    t.run_jobs().await;
    assert_eq!(t.world.pulls(REPO).len(), 2);
    assert_eq!(t.world.token_mints(t.world.installation_id()), 2);
    t.expect_comments(first, &["ready for review"]);
    t.expect_comments(second, &["ready for review"]);
    t.finish();
}

#[tokio::test]
async fn queued_jobs_run_after_a_restart() {
    let mut t = Tester::with_settings(|s| s.jobs.workers = 0).await;
    let issue = t.open_issue("Add dark mode", "Please.");
    t.llm
        .push_tool_call("submit_spec", spec_answers::good_answer(1));
    t.label_issue(issue, "needs-spec").await;
    // Nobody works here: the job waits in the store.
    assert_eq!(t.app().store.pending_jobs(t.app().now()).await.unwrap(), 1);
    t.crash_and_restart(|s| s.jobs.workers = 2).await;
    t.run_jobs().await;
    assert_eq!(t.world.pulls(REPO).len(), 1);
    let _ = t.expect_one_comment(issue);
    t.finish();
}

#[tokio::test]
async fn server_errors_on_reads_are_retried_and_writes_never_duplicate() {
    let mut t = Tester::start().await;
    let issue = t.open_issue("Add dark mode", "Please.");
    t.llm
        .push_tool_call("submit_spec", spec_answers::good_answer(2));
    // Reads: retried within the request.
    t.world.inject(FaultRule::new(
        "GET",
        "/repos/{owner}/{repo}",
        2,
        Fault::Status(502),
    ));
    // Creates: never resent blindly — the comment, the PR and an issue each fail once.
    t.world.inject(FaultRule::new(
        "POST",
        "/repos/{owner}/{repo}/issues/{issue_number}/comments",
        1,
        Fault::Status(502),
    ));
    t.world.inject(FaultRule::new(
        "POST",
        "/repos/{owner}/{repo}/pulls",
        1,
        Fault::Status(503),
    ));
    t.world.inject(FaultRule::new(
        "POST",
        "/repos/{owner}/{repo}/issues",
        1,
        Fault::Status(500),
    ));
    t.label_issue(issue, "needs-spec").await;
    t.run_jobs().await;
    assert_eq!(t.world.pulls(REPO).len(), 1);
    assert_eq!(t.world.sub_issues(REPO, issue).len(), 2);
    assert_eq!(t.world.issues(REPO).len(), 3);
    let status = t.expect_one_comment(issue);
    assert!(status.contains("ready for review"), "{status}");
    assert_eq!(
        t.llm.requests().len(),
        1,
        "the draft was not paid for twice"
    );
    t.finish();
}

#[tokio::test]
async fn secondary_rate_limits_are_waited_out() {
    let mut t = Tester::start().await;
    let issue = t.open_issue("Add dark mode", "Please.");
    t.llm
        .push_tool_call("submit_spec", spec_answers::good_answer(1));
    t.world.inject(FaultRule::new(
        "POST",
        "/repos/{owner}/{repo}/issues/{issue_number}/reactions",
        1,
        Fault::SecondaryRateLimit {
            retry_after: Some(0),
            reset: None,
        },
    ));
    t.world.inject(FaultRule::new(
        "POST",
        "/repos/{owner}/{repo}/git/trees",
        1,
        Fault::SecondaryRateLimit {
            retry_after: None,
            reset: None,
        },
    ));
    t.label_issue(issue, "needs-spec").await;
    t.run_jobs().await;
    assert_eq!(t.world.pulls(REPO).len(), 1);
    assert_eq!(
        t.world.request_count(
            "POST",
            "/repos/{owner}/{repo}/issues/{issue_number}/reactions"
        ),
        2,
        "one refused, one accepted"
    );
    let _ = t.expect_one_comment(issue);
    t.finish();
}

#[tokio::test]
async fn github_requests_per_spec_run() {
    // Printed for BENCHMARKS.md; asserted so a change that adds requests is noticed.
    for k in [1usize, 3, 5] {
        let mut t = Tester::start().await;
        let issue = t.open_issue("Add dark mode", "Please.");
        t.llm
            .push_tool_call("submit_spec", spec_answers::good_answer(k));
        t.world.clear_requests();
        t.label_issue(issue, "needs-spec").await;
        t.run_jobs().await;
        let requests = t.world.requests();
        let total = requests
            .iter()
            .filter(|r| !r.path.starts_with("/app/"))
            .count();
        println!("spec run with {k} components: {total} GitHub requests");
        for (route, n) in t.world.request_counts() {
            println!("  {n:3}  {route}");
        }
        t.expect_comments(issue, &["ready for review"]);
        // 21 fixed (one reads the base tree, to keep file modes), 3 for the coverage check (the
        // file at the head, the check runs on it, the new run) + 3 per component (create,
        // link, dependency) at most.
        assert!(total <= 24 + 3 * k, "{total} requests for {k} components");
        t.finish();
    }
}

#[tokio::test]
async fn metrics_cover_github_requests_llm_usage_jobs_and_the_queue() {
    let mut t = Tester::start().await;
    let issue = t.open_issue("Add dark mode", "Please.");
    t.llm
        .push_tool_call("submit_spec", spec_answers::good_answer(1));
    t.label_issue(issue, "needs-spec").await;
    t.run_jobs().await;
    let _ = t.expect_one_comment(issue);
    let text = reqwest::get(format!("{}/metrics", t.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "specbot_deliveries_total{",
        "specbot_github_requests_total{route=\"POST /repos/{owner}/{repo}/pulls\",status=\"201\"}",
        "specbot_github_rate_limit_remaining{",
        "specbot_llm_tokens_total{",
        "specbot_llm_cost_microdollars_total{",
        "specbot_job_duration_seconds_bucket{kind=\"spec\"",
        "specbot_jobs{kind=\"spec\",state=\"succeeded\"}",
        "specbot_intake_batch_size_count",
        "specbot_intake_commit_seconds_bucket{le=\"0.0005\"}",
        "# HELP specbot_llm_cost_microdollars_total",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from /metrics:\n{text}"
        );
    }
    t.finish();
}
