//! The fault suite, through the real router and the simulators: GitHub failing on every write
//! route, rate limits that do not clear, an installation or repository that goes away mid-job, a
//! token that expires while the model thinks, a spec PR merged under a running revision, and
//! the model failing in every way its wire format allows. Each ends in a completed job or one clear
//! failure comment, with no duplicates.

mod support;

use std::time::Duration;

use support::answers::good_answer;
use support::github_world::{Fault, FaultRule};
use support::llm_fake::Fault as LlmFault;
use support::tester::{REPO, Tester};

/// Every route the spec flow writes to.
const WRITE_ROUTES: [(&str, &str); 10] = [
    (
        "POST",
        "/repos/{owner}/{repo}/issues/{issue_number}/reactions",
    ),
    (
        "POST",
        "/repos/{owner}/{repo}/issues/{issue_number}/comments",
    ),
    (
        "PATCH",
        "/repos/{owner}/{repo}/issues/comments/{comment_id}",
    ),
    ("POST", "/repos/{owner}/{repo}/git/trees"),
    ("POST", "/repos/{owner}/{repo}/git/commits"),
    ("POST", "/repos/{owner}/{repo}/git/refs"),
    ("POST", "/repos/{owner}/{repo}/pulls"),
    ("POST", "/repos/{owner}/{repo}/issues"),
    (
        "POST",
        "/repos/{owner}/{repo}/issues/{issue_number}/sub_issues",
    ),
    (
        "POST",
        "/repos/{owner}/{repo}/issues/{issue_number}/dependencies/blocked_by",
    ),
];

/// One spec run (two components) with `fault` injected once on `method route`, writes spaced
/// `write_gap` apart: it ends in one of everything, and the model is paid once.
async fn one_of_everything_despite(method: &str, route: &str, fault: Fault, write_gap: Duration) {
    let mut t = Tester::with_settings(move |s| s.github.write_gap = write_gap).await;
    let issue = t.open_issue("Add dark mode", "Please.");
    t.llm.push_tool_call("submit_spec", good_answer(2));
    let what = format!("{fault:?} on {method} {route}");
    t.world.inject(FaultRule::new(method, route, 1, fault));
    t.label_issue(issue, "needs-spec").await;
    t.run_jobs().await;
    assert!(t.world.request_count(method, route) >= 1, "{what}: fired");
    assert_eq!(t.world.pulls(REPO).len(), 1, "{what}");
    assert_eq!(t.world.sub_issues(REPO, issue).len(), 2, "{what}");
    assert_eq!(t.world.issues(REPO).len(), 3, "{what}");
    assert_eq!(t.llm.requests().len(), 1, "{what}: paid once");
    let status_comment = t.expect_one_comment(issue);
    assert!(
        status_comment.contains("ready for review"),
        "{what}: {status_comment}"
    );
    t.finish();
}

#[tokio::test]
async fn a_5xx_on_each_write_route_ends_in_one_of_everything() {
    for (method, route) in WRITE_ROUTES {
        for status in [500, 502] {
            one_of_everything_despite(method, route, Fault::Status(status), Duration::ZERO).await;
        }
    }
}

/// Every route where the spec flow creates something that must exist once.
const CREATE_ROUTES: [(&str, &str); 6] = [
    (
        "POST",
        "/repos/{owner}/{repo}/issues/{issue_number}/comments",
    ),
    ("POST", "/repos/{owner}/{repo}/git/refs"),
    ("POST", "/repos/{owner}/{repo}/pulls"),
    ("POST", "/repos/{owner}/{repo}/issues"),
    (
        "POST",
        "/repos/{owner}/{repo}/issues/{issue_number}/sub_issues",
    ),
    (
        "POST",
        "/repos/{owner}/{repo}/issues/{issue_number}/dependencies/blocked_by",
    ),
];

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_found_not_made_twice() {
    for (method, route) in CREATE_ROUTES {
        // Writes spaced as in production (shorter), so the spacing code runs here too.
        let gap = Duration::from_millis(2);
        one_of_everything_despite(method, route, Fault::LoseAnswer, gap).await;
    }
}

#[tokio::test]
async fn an_exhausted_primary_rate_limit_is_waited_out() {
    let mut t = Tester::with_settings(|s| s.github.max_wait = Duration::from_secs(5)).await;
    let issue = t.open_issue("Add dark mode", "Please.");
    t.llm.push_tool_call("submit_spec", good_answer(1));
    t.world.set_rate_limit(15, 2);
    t.label_issue(issue, "needs-spec").await;
    t.run_jobs().await;
    let refused = t
        .world
        .requests()
        .iter()
        .filter(|r| r.status == 403)
        .count();
    assert!(refused >= 1, "the limit was reached");
    assert_eq!(t.world.pulls(REPO).len(), 1);
    let status = t.expect_one_comment(issue);
    assert!(status.contains("ready for review"), "{status}");
    t.finish();
}

#[tokio::test]
async fn a_rate_limit_that_does_not_clear_ends_in_one_failure_comment() {
    for fault in [
        Fault::SecondaryRateLimit {
            retry_after: Some(0),
            reset: None,
        },
        Fault::SecondaryRateLimit {
            retry_after: None,
            reset: None,
        },
    ] {
        let mut t = Tester::builder()
            .settings(|s| {
                s.github.max_retries = 3;
                s.github.secondary_limit_wait = Duration::from_millis(1);
                s.jobs.max_attempts = 2;
            })
            .start()
            .await;
        let issue = t.open_issue("Add dark mode", "Please.");
        t.llm.push_tool_call("submit_spec", good_answer(1));
        t.world.inject(FaultRule::new(
            "POST",
            "/repos/{owner}/{repo}/pulls",
            usize::MAX,
            fault.clone(),
        ));
        t.label_issue(issue, "needs-spec").await;
        t.run_jobs().await;
        assert!(t.world.pulls(REPO).is_empty());
        let status = t.expect_one_comment(issue);
        assert!(status.contains("❌"), "{fault:?}: {status}");
        assert!(
            status.to_ascii_lowercase().contains("rate limit"),
            "{fault:?}: {status}"
        );
        // Bounded: a few tries per attempt, not a storm.
        let tries = t.world.request_count("POST", "/repos/{owner}/{repo}/pulls");
        assert!(tries <= 2 * 4, "{fault:?}: {tries} tries");
        assert_eq!(t.llm.requests().len(), 1, "the draft is not paid again");
        t.finish();
    }
}

#[tokio::test]
async fn a_rate_limit_reset_far_away_is_waited_for_by_the_queue_not_a_worker() {
    let mut t = Tester::with_settings(|s| s.github.max_wait = Duration::from_secs(30)).await;
    let issue = t.open_issue("Add dark mode", "Please.");
    t.llm.push_tool_call("submit_spec", good_answer(1));
    let in_an_hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    t.world.inject(FaultRule::new(
        "POST",
        "/repos/{owner}/{repo}/git/trees",
        usize::MAX,
        Fault::SecondaryRateLimit {
            retry_after: None,
            reset: Some(in_an_hour),
        },
    ));
    t.label_issue(issue, "needs-spec").await;
    t.run_jobs().await;
    assert_eq!(
        t.world
            .request_count("POST", "/repos/{owner}/{repo}/git/trees"),
        1,
        "no retry storm, no worker asleep for an hour"
    );
    // The job waits in the queue (its draft checkpointed), to be retried later.
    let jobs = t.app().store.recent_jobs(10).await.unwrap();
    let spec = jobs.iter().find(|j| j.kind == "spec").unwrap();
    assert_eq!(spec.state, specbot::jobs::JobState::Queued, "{spec:#?}");
    assert!(spec.run_at > t.app().now(), "{spec:#?}");
    assert!(
        spec.last_error
            .as_deref()
            .unwrap_or("")
            .contains("rate limit"),
        "{spec:#?}"
    );
    let status = t.expect_one_comment(issue);
    assert!(status.contains("Drafting"), "{status}");
    assert_eq!(t.llm.requests().len(), 1);
    t.finish();
}

#[tokio::test]
async fn a_removed_installation_stops_the_job_without_a_retry_storm() {
    let mut t = Tester::start().await;
    let issue = t.open_issue("Add dark mode", "Please.");
    // The App was uninstalled (or suspended): no more tokens.
    t.world.expire_tokens();
    t.world.inject(FaultRule::new(
        "POST",
        "/app/installations/{installation_id}/access_tokens",
        usize::MAX,
        Fault::Status(404),
    ));
    t.label_issue(issue, "needs-spec").await;
    t.run_jobs().await;
    let mints = t
        .world
        .request_count("POST", "/app/installations/{installation_id}/access_tokens");
    assert!(mints <= 3, "{mints} token requests");
    assert!(t.llm.requests().is_empty());
    assert!(t.world.pulls(REPO).is_empty());
    // Nothing can be said on GitHub without a token; the failure is in the job and the log.
    t.expect_no_comment(issue);
    let jobs = t.app().store.recent_jobs(10).await.unwrap();
    assert!(
        jobs.iter()
            .any(|j| j.kind == "spec" && j.state == specbot::jobs::JobState::Failed),
        "{jobs:#?}"
    );
    t.finish();
}

#[tokio::test]
async fn model_failures_are_retried_then_the_spec_is_drafted_once() {
    let mut t = Tester::start().await;
    let issue = t.open_issue("Add dark mode", "Please.");
    for fault in [
        LlmFault::Status {
            status: 429,
            retry_after: Some(Duration::ZERO),
        },
        LlmFault::Status {
            status: 529,
            retry_after: None,
        },
        LlmFault::TruncatedStream,
        LlmFault::Malformed,
        LlmFault::StreamError,
    ] {
        t.llm.push_fault(fault);
    }
    t.llm.push_tool_call("submit_spec", good_answer(1));
    t.label_issue(issue, "needs-spec").await;
    t.run_jobs().await;
    assert_eq!(t.world.pulls(REPO).len(), 1);
    let status = t.expect_one_comment(issue);
    assert!(status.contains("ready for review"), "{status}");
    t.finish();
}

#[tokio::test]
async fn a_model_that_refuses_the_request_fails_once_with_a_clear_comment() {
    let mut t = Tester::start().await;
    let issue = t.open_issue("Add dark mode", "Please.");
    t.llm.push_fault(LlmFault::Status {
        status: 400,
        retry_after: None,
    });
    t.label_issue(issue, "needs-spec").await;
    t.run_jobs().await;
    assert_eq!(t.llm.requests().len(), 1, "a 400 is not retried");
    assert!(t.world.pulls(REPO).is_empty());
    let status = t.expect_one_comment(issue);
    assert!(
        status.contains("❌") && status.contains("language model"),
        "{status}"
    );
    t.finish();
}

#[tokio::test]
async fn an_unusable_answer_gets_one_repair_round_then_a_clear_failure() {
    let mut t = Tester::start().await;
    let issue = t.open_issue("Add dark mode", "Please.");
    t.llm.push_text("I think dark mode is a great idea!");
    t.llm.push_text("Sorry, here it is: dark mode.");
    t.label_issue(issue, "needs-spec").await;
    t.run_jobs().await;
    assert_eq!(t.llm.requests().len(), 2);
    assert!(t.world.pulls(REPO).is_empty());
    let status = t.expect_one_comment(issue);
    assert!(status.contains("not a usable specification"), "{status}");
    t.finish();
}

#[tokio::test]
async fn a_spec_pr_merged_while_a_revision_waits_is_not_revised() {
    let mut t = Tester::start().await;
    let (issue, pr) = t.spec_pr(1).await;
    t.merge_pull(pr, "alice").await;
    t.run_jobs().await;
    t.comment(pr, "/revise add a high-contrast variant").await;
    t.run_jobs().await;
    assert_eq!(t.llm.requests().len(), 1, "no revision after the merge");
    let reply = t
        .bot_comments(pr)
        .into_iter()
        .find(|c| c.contains("won't revise"))
        .expect("a reply");
    assert!(reply.contains("merged"), "{reply}");
    t.expect_comments(issue, &["specbot:status"]);
    t.finish();
}

#[tokio::test]
async fn a_spec_branch_deleted_by_a_human_comes_back_in_a_new_pr_naming_the_old_one() {
    let mut t = Tester::start().await;
    let (issue, pr) = t.spec_pr(1).await;
    t.world.delete_branch(REPO, "specbot/spec-1");
    assert_eq!(t.world.pull(REPO, pr).unwrap().state, "closed");
    // Asked again: the branch comes back; github.com will not reopen a PR whose branch was
    // recreated, so a new PR is opened that names the old one.
    t.llm.push_tool_call("submit_spec", good_answer(1));
    t.comment(issue, "/spec").await;
    t.run_jobs().await;
    assert!(
        t.world
            .branches(REPO)
            .contains(&"specbot/spec-1".to_string())
    );
    let pulls = t.world.pulls(REPO);
    assert_eq!(pulls.len(), 2, "{pulls:#?}");
    let new = pulls.iter().find(|p| p.number != pr).expect("a new PR");
    assert_eq!(new.state, "open");
    assert!(
        new.body
            .as_deref()
            .unwrap_or("")
            .contains(&format!("#{pr}")),
        "{:?}",
        new.body
    );
    assert_eq!(t.world.pull(REPO, pr).unwrap().state, "closed");
    assert_eq!(
        t.world.sub_issues(REPO, issue).len(),
        1,
        "the component issue is reused"
    );
    let status = t.expect_one_comment(issue);
    assert!(status.contains("ready for review"), "{status}");
    t.finish();
}

#[tokio::test]
async fn a_token_that_expires_while_the_model_thinks_is_renewed_and_the_spec_lands_once() {
    let mut t = Tester::start().await;
    let issue = t.open_issue("Add dark mode", "Please.");
    t.llm.push_tool_call("submit_spec", good_answer(1));
    t.llm.hold_answers();
    t.label_issue(issue, "needs-spec").await;
    let mints_before = t.world.token_mints(t.world.installation_id());
    tokio::join!(t.run_jobs(), async {
        t.llm.wait_for_request(1).await;
        // GitHub now answers 401 to the token the job holds.
        t.world.expire_tokens();
        t.llm.release_answers();
    });
    assert!(t.world.token_mints(t.world.installation_id()) > mints_before);
    assert_eq!(t.world.pulls(REPO).len(), 1);
    let status = t.expect_one_comment(issue);
    assert!(status.contains("ready for review"), "{status}");
    t.finish();
}

#[tokio::test]
async fn a_repository_removed_mid_job_stops_it_without_a_retry_storm() {
    let mut t = Tester::start().await;
    let issue = t.open_issue("Add dark mode", "Please.");
    t.llm.push_tool_call("submit_spec", good_answer(1));
    t.llm.hold_answers();
    t.label_issue(issue, "needs-spec").await;
    tokio::join!(t.run_jobs(), async {
        t.llm.wait_for_request(1).await;
        // Deleted, or taken out of the installation, while the model writes: GitHub answers
        // 404 to everything under the repository from now on.
        t.world.clear_requests();
        t.world.inject(FaultRule::new(
            "*",
            &format!("/repos/{REPO}*"),
            usize::MAX,
            Fault::Status(404),
        ));
        t.llm.release_answers();
    });
    let after = t.world.requests().len();
    assert!(
        after <= 3,
        "{after} requests after the repository went: {:#?}",
        t.world.request_counts()
    );
    assert_eq!(t.llm.requests().len(), 1, "the model is not asked again");
    assert!(t.world.pulls(REPO).is_empty());
    let jobs = t.app().store.recent_jobs(10).await.unwrap();
    let spec = jobs.iter().find(|j| j.kind == "spec").expect("a spec job");
    assert_eq!(spec.state, specbot::jobs::JobState::Failed, "{spec:#?}");
    assert_eq!(spec.attempts, 1, "a missing repository is not retried");
    // Only the status posted before the repository went; nothing can be said there now.
    assert_eq!(t.bot_comments(issue).len(), 1);
    t.finish();
}

#[tokio::test]
async fn a_spec_pr_merged_while_its_revision_is_written_gets_no_push() {
    let mut t = Tester::start().await;
    let (issue, pr) = t.spec_pr(1).await;
    let head = t.world.ref_sha(REPO, "specbot/spec-1");

    t.llm.push_tool_call("submit_spec", good_answer(2));
    t.llm.hold_answers();
    t.comment(pr, "/revise add a high-contrast variant").await;
    tokio::join!(t.run_jobs(), async {
        t.llm.wait_for_request(2).await;
        t.world.merge_pull(REPO, pr);
        t.llm.release_answers();
    });
    // The merge's own webhook arrives after the revision gave up.
    let mut merged = t.envelope("closed", "alice");
    merged["pull_request"] = t.world.pull_json(REPO, pr);
    assert!(t.send("pull_request", merged).await.is_success());
    t.run_jobs().await;

    assert_eq!(
        t.world.ref_sha(REPO, "specbot/spec-1"),
        head,
        "nothing pushed"
    );
    let replies: Vec<String> = t
        .bot_comments(pr)
        .into_iter()
        .filter(|c| c.contains("revis"))
        .collect();
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert!(
        replies[0].contains("merged while I was revising"),
        "{}",
        replies[0]
    );
    assert_eq!(
        t.world.sub_issues(REPO, issue).len(),
        1,
        "components untouched"
    );
    t.expect_comments(issue, &["specbot:status"]);
    t.finish();
}

#[tokio::test]
async fn an_unusable_diagram_after_the_repair_round_is_dropped_not_the_spec() {
    let mut t = Tester::start().await;
    let issue = t.open_issue("Add dark mode", "Please.");
    let mut answer = good_answer(2);
    answer["artifacts"]["diagram"] = serde_json::json!("A box that points at another box.");
    t.llm.push_tool_call("submit_spec", answer.clone());
    t.llm.push_tool_call("submit_spec", answer);
    t.label_issue(issue, "needs-spec").await;
    t.run_jobs().await;
    assert_eq!(t.llm.requests().len(), 2, "one repair round");
    let pulls = t.world.pulls(REPO);
    assert_eq!(pulls.len(), 1, "the spec still lands");
    let body = pulls[0].body.clone().unwrap_or_default();
    assert!(
        body.contains("Mermaid diagram") && body.contains("left out"),
        "the PR says what was dropped and why: {body}"
    );
    assert!(
        t.world
            .file(REPO, "specbot/spec-1", "specs/IMPLEMENT-1.diagram.mmd")
            .is_none()
    );
    assert!(
        t.world
            .file(REPO, "specbot/spec-1", "specs/IMPLEMENT-1.md")
            .is_some()
    );
    assert_eq!(t.world.sub_issues(REPO, issue).len(), 2);
    let _ = t.bot_comments(issue);
    t.finish();
}

#[tokio::test]
async fn a_spec_without_a_components_section_gets_one_rendered_from_its_components() {
    let mut t = Tester::start().await;
    let issue = t.open_issue("Add dark mode", "Please.");
    let mut answer = good_answer(2);
    let spec = answer["specification"].as_str().unwrap_or_default();
    let spec = spec
        .replace("## Components\nSee the list.\n\n", "")
        .replace("\n## Acceptance criteria\n- The toggle persists.\n", "");
    answer["specification"] = serde_json::json!(spec);
    t.llm.push_tool_call("submit_spec", answer);
    t.label_issue(issue, "needs-spec").await;
    t.run_jobs().await;
    assert_eq!(t.llm.requests().len(), 1, "no repair round needed");
    assert_eq!(t.world.pulls(REPO).len(), 1);
    let file = t
        .world
        .file(REPO, "specbot/spec-1", "specs/IMPLEMENT-1.md")
        .unwrap_or_default();
    assert!(
        file.contains("## Components")
            && file.contains("Component 1")
            && file.contains("Part 2 is tested"),
        "{file}"
    );
    let _ = t.bot_comments(issue);
    t.finish();
}
