//! Reviewing the bot's spec PRs: revisions from "Request changes" and `/revise`, the spec's
//! state, `/implement` before approval, and no loops or spam.

mod support;

use serde_json::json;
use support::answers::good_answer;
use support::tester::{REPO, Tester};

/// The revised design: component 1 edited, component 2 removed, component 3 new.
fn revised_answer() -> serde_json::Value {
    let mut a = good_answer(1);
    a["specification"] = json!(a["specification"].as_str().unwrap().replace(
        "Add a dark theme.",
        "Add a dark theme with a high-contrast variant."
    ));
    a["components"][0]["summary"] = json!("Does part 1, now with high contrast.");
    a["components"]
        .as_array_mut()
        .unwrap()
        .push(json!({"title": "Component 3", "summary": "High contrast.", "acceptance_criteria": ["Contrast 7:1"], "depends_on": ["Component 1"], "covers": ["AC-1.1"], "tests": ["AC-1.1: contrast is 7:1"]}));
    a["changes"] = json!("Added a high-contrast variant; dropped component 2.");
    a
}

#[tokio::test]
async fn request_changes_gives_one_commit_one_reply_and_reconciled_issues() {
    let mut t = Tester::start().await;
    let (issue, pr) = t.spec_pr(2).await;
    let commits_before = t.world.commits_on(REPO, "specbot/spec-1").len();
    let subs_before = t.world.sub_issues(REPO, issue);
    t.llm.push_tool_call("submit_spec", revised_answer());

    t.review(
        pr,
        "bob",
        "REQUEST_CHANGES",
        "Please add a high-contrast variant.",
        &[(
            "specs/IMPLEMENT-1.md",
            3,
            "Drop component 2, it is covered elsewhere.",
        )],
    )
    .await;
    t.run_jobs().await;

    assert_eq!(
        t.world.commits_on(REPO, "specbot/spec-1").len(),
        commits_before + 1
    );
    let spec = t.spec_on_branch(1);
    assert!(spec.contains("high-contrast"), "{spec}");
    let reply = t.expect_one_comment(pr);
    assert!(
        reply.contains("I revised the spec") && reply.contains("high-contrast"),
        "{reply}"
    );
    // The model saw the review body and the inline comment, and the current spec.
    let sent = t.llm.requests()[1].body.to_string();
    assert!(
        sent.contains("Please add a high-contrast variant.") && sent.contains("Drop component 2")
    );
    // Issues: 1 edited, 2 closed with a note (not deleted), 3 filed as a sub-issue.
    let one = t.world.issue(REPO, subs_before[0]).unwrap();
    assert!(one.body.unwrap_or_default().contains("high contrast"));
    let two = t.world.issue(REPO, subs_before[1]).unwrap();
    assert_eq!(two.state, "closed");
    assert!(
        t.expect_one_comment(subs_before[1])
            .contains("no longer part of the spec")
    );
    let subs = t.world.sub_issues(REPO, issue);
    assert_eq!(
        subs.len(),
        3,
        "the closed one stays linked, the new one is added"
    );
    let three = t.world.issue(REPO, subs[2]).unwrap();
    assert_eq!(three.title, "Component 3");
    t.finish();
}

#[tokio::test]
async fn a_component_a_later_revision_brings_back_reopens_its_own_issue() {
    let mut t = Tester::start().await;
    let (issue, pr) = t.spec_pr(2).await;
    let two = t.world.sub_issues(REPO, issue)[1];
    t.revise(pr, "/revise drop component 2", revised_answer())
        .await;
    assert_eq!(t.world.issue(REPO, two).unwrap().state, "closed");
    t.bot_comments(pr);

    // The next revision brings component 2 back (and drops component 3).
    let mut back = good_answer(2);
    back["changes"] = json!("Brought component 2 back.");
    t.revise(pr, "/revise we do need component 2", back).await;
    let reopened = t.world.issue(REPO, two).unwrap();
    assert_eq!(reopened.state, "open", "its own issue, reopened");
    assert_eq!(reopened.state_reason.as_deref(), Some("reopened"));
    let titled_two = t
        .world
        .issues(REPO)
        .into_iter()
        .filter(|i| i.title == "Component 2")
        .count();
    assert_eq!(titled_two, 1, "no second issue for it");
    let said = t.bot_comments(two);
    assert_eq!(said.len(), 2, "{said:#?}");
    assert!(said[0].contains("no longer part of the spec"));
    assert!(said[1].contains("part of the spec again"), "{}", said[1]);
    let three = t.world.sub_issues(REPO, issue)[2];
    assert_eq!(t.world.issue(REPO, three).unwrap().state, "closed");
    t.expect_dropped_or_silent(three);

    // Someone closes component 1's issue: a revision that keeps the component leaves it so.
    let one = t.world.sub_issues(REPO, issue)[0];
    t.world.close_issue(REPO, one, "alice");
    let mut again = good_answer(2);
    again["changes"] = json!("Reworded.");
    t.revise(pr, "/revise reword it", again).await;
    assert_eq!(
        t.world.issue(REPO, one).unwrap().state,
        "closed",
        "a person's decision stands"
    );
    t.bot_comments(pr);
    t.finish();
}

#[tokio::test]
async fn an_approval_posts_nothing_and_updates_only_the_live_status() {
    let mut t = Tester::start().await;
    let (_, pr) = t.spec_pr(2).await;
    let before = t.world.requests().len();
    t.review(pr, "bob", "APPROVE", "LGTM", &[]).await;
    t.run_jobs().await;
    let writes: Vec<String> = t.world.requests()[before..]
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.route.as_deref().unwrap_or(&r.path)))
        .collect();
    // The spec's status in the PR body and in its coverage check: no comment, no commit.
    assert_eq!(
        writes,
        [
            "PATCH /repos/{owner}/{repo}/pulls/{pull_number}",
            "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}",
        ],
        "only the live status is written on approval"
    );
    t.expect_no_comment(pr);
    assert_eq!(t.llm.requests().len(), 1);
    t.finish();
}

#[tokio::test]
async fn a_human_commit_on_the_spec_branch_is_kept_by_the_next_revision() {
    let mut t = Tester::start().await;
    let (_, pr) = t.spec_pr(2).await;
    t.world
        .put_file(REPO, "specbot/spec-1", "specs/NOTES.md", "human notes\n");
    let human_head = t.world.ref_sha(REPO, "specbot/spec-1").unwrap();
    t.revise(pr, "/revise add a high-contrast variant", revised_answer())
        .await;
    let commits = t.world.commits_on(REPO, "specbot/spec-1");
    assert_eq!(
        commits[0].parents,
        vec![human_head],
        "built on the human's commit"
    );
    assert_eq!(
        t.world
            .file(REPO, "specbot/spec-1", "specs/NOTES.md")
            .as_deref(),
        Some("human notes\n")
    );
    let reply = t.expect_one_comment(pr);
    assert!(reply.contains("I revised the spec"), "{reply}");
    let sent = t.llm.requests()[1].body.to_string();
    assert!(sent.contains("add a high-contrast variant"));
    for n in t.world.sub_issues(REPO, 1) {
        t.expect_dropped_or_silent(n);
    }
    t.finish();
}

#[tokio::test]
async fn two_revisions_asked_at_once_run_in_turn_and_both_land() {
    let mut t = Tester::start().await;
    let (issue, pr) = t.spec_pr(2).await;
    let commits_before = t.world.commits_on(REPO, "specbot/spec-1").len();
    t.llm.push_tool_call("submit_spec", revised_answer());
    let mut sepia = revised_answer();
    sepia["specification"] = json!(sepia["specification"].as_str().unwrap().replace(
        "high-contrast variant.",
        "high-contrast variant and a sepia mode."
    ));
    sepia["changes"] = json!("Added a sepia mode.");
    t.llm.push_tool_call("submit_spec", sepia);

    // Both are asked for while the model is still thinking about the first: with two workers,
    // the second would start at once, from the same spec, if nothing made it wait its turn.
    t.llm.hold_answers();
    t.comment_as(pr, "bob", "/revise add a high-contrast variant")
        .await;
    t.comment_as(pr, "alice", "/revise add a sepia mode").await;
    t.llm.wait_for_request(2).await;
    t.llm.release_answers();
    t.run_jobs().await;

    let requests = t.llm.requests();
    assert_eq!(requests.len(), 3, "the spec, then one request per revision");
    let second = requests[2].body.to_string();
    assert!(
        second.contains("add a sepia mode") && second.contains("high-contrast"),
        "the second revision starts from the spec the first one left: {second}"
    );
    assert_eq!(
        t.world.commits_on(REPO, "specbot/spec-1").len(),
        commits_before + 2
    );
    let spec = t.spec_on_branch(1);
    assert!(spec.contains("a sepia mode"), "{spec}");
    assert_eq!(t.bot_comments(pr).len(), 2, "one reply per revision");
    for n in t.world.sub_issues(REPO, issue) {
        t.expect_dropped_or_silent(n);
    }
    t.finish();
}

#[tokio::test]
async fn revise_from_a_read_only_user_is_refused_and_a_bots_is_ignored() {
    let mut t = Tester::start().await;
    let (_, pr) = t.spec_pr(2).await;
    t.comment_as(pr, "rita", "/revise make it blue").await;
    t.comment_as(pr, "renovate[bot]", "/revise make it green")
        .await;
    t.run_jobs().await;
    let reply = t.expect_one_comment(pr);
    assert!(reply.contains("only people with write access"), "{reply}");
    assert_eq!(t.llm.requests().len(), 1, "no revision ran");
    t.finish();
}

#[tokio::test]
async fn implement_before_approval_is_explained_and_force_is_accepted() {
    let mut t = Tester::start().await;
    let (issue, pr) = t.spec_pr(2).await;
    let first = t.comment(issue, "/implement").await;
    t.run_jobs().await;
    let replies = t.bot_comments(issue);
    let reply = replies
        .iter()
        .find(|c| c.contains(&format!("comment={first}")))
        .expect("a reply");
    assert!(
        reply.contains("not approved yet") && reply.contains(&format!("#{pr}")),
        "{reply}"
    );
    assert!(reply.contains("/implement --force"), "{reply}");
    // --force goes past the check: the engineer runs (here it gives up at once).
    t.llm.push_tool_call(
        "finish",
        json!({"summary": "Nothing to do.", "criteria": []}),
    );
    let forced = t.comment(issue, "/implement --force").await;
    t.run_jobs().await;
    let replies = t.bot_comments(issue);
    assert!(
        !replies
            .iter()
            .any(|c| c.contains(&format!("comment={forced}"))),
        "no refusal: {replies:#?}"
    );
    assert!(
        replies
            .iter()
            .any(|c| c.contains("specbot:implement-status") && c.contains("on `specbot/spec-1`")),
        "{replies:#?}"
    );
    t.finish();
}

#[tokio::test]
async fn a_merged_spec_marks_its_component_issues_accepted() {
    let mut t = Tester::start().await;
    let (issue, pr) = t.spec_pr(2).await;
    t.merge_pull(pr, "alice").await;
    t.run_jobs().await;
    for n in t.world.sub_issues(REPO, issue) {
        assert!(
            t.world
                .labels_of(REPO, n)
                .contains(&"spec accepted".to_string()),
            "#{n}"
        );
    }
    assert_eq!(
        t.world.issue(REPO, issue).unwrap().state,
        "open",
        "Refs, not Closes"
    );
    // Once merged, /implement no longer needs --force, and reads the spec from main.
    t.llm.push_tool_call(
        "finish",
        json!({"summary": "Nothing to do.", "criteria": []}),
    );
    let c = t.comment(issue, "/implement").await;
    t.run_jobs().await;
    let replies = t.bot_comments(issue);
    assert!(!replies.iter().any(|r| r.contains(&format!("comment={c}"))));
    assert!(
        replies
            .iter()
            .any(|r| r.contains("specbot:implement-status") && r.contains("on `main`")),
        "{replies:#?}"
    );
    t.finish();
}

#[tokio::test]
async fn an_edit_that_adds_help_runs_only_help() {
    let mut t = Tester::start().await;
    let issue = t.open_issue("Add dark mode", "Night theme please.");
    let id = t.comment(issue, "thanks, looks good").await;
    t.run_jobs().await;
    t.expect_no_comment(issue);
    t.edit_comment_as(issue, id, "alice", "thanks, looks good\n/help")
        .await;
    t.run_jobs().await;
    let reply = t.expect_one_comment(issue);
    assert!(
        reply.contains("/spec") && reply.contains("/implement"),
        "{reply}"
    );
    assert!(t.world.pulls(REPO).is_empty());
    t.finish();
}

/// The headings of the requirements in a committed spec, in order: `REQ-4: a high-contrast
/// variant`, …
fn requirement_headings(spec: &str) -> Vec<String> {
    spec.lines()
        .filter_map(|l| l.strip_prefix("### <a id=\""))
        .filter_map(|l| l.split_once("</a>").map(|(_, h)| h.to_string()))
        .collect()
}

/// The criterion IDs of a committed spec, in order.
fn criterion_ids(spec: &str) -> Vec<String> {
    spec.lines()
        .filter_map(|l| l.strip_prefix("- <a id=\""))
        .filter_map(|l| l.split_once("**").and_then(|(_, r)| r.split_once("**")))
        .map(|(id, _)| id.to_string())
        .collect()
}

/// Requirement IDs survive revisions: a revision that reorders the requirements, keeps two,
/// drops one (and a criterion of a kept one) and adds a new one keeps the kept IDs; the new
/// requirement and criterion take fresh numbers, never a dropped one, and so does the next
/// revision's new requirement although the file it revises no longer mentions the dropped ID.
/// The component issues, updated in place, cite the new IDs at the newest spec commit.
#[tokio::test]
async fn a_revision_keeps_the_ids_it_keeps_and_never_reuses_a_dropped_one() {
    use support::answers::{
        REMEMBERED, Req, answer_with, requirements, theme_and_toggle, three_requirements,
    };
    let mut t = Tester::start().await;
    let (issue, pr) = t.spec_pr_from(three_requirements()).await;
    let subs = t.world.sub_issues(REPO, issue);
    assert_eq!(
        criterion_ids(&t.spec_on_branch(1)),
        ["AC-1.1", "AC-1.2", "AC-2.1", "AC-3.1"]
    );

    // New first (labelled as the model likes), REQ-3 kept, REQ-1 kept without AC-1.1 and with
    // a new criterion; REQ-2 dropped.
    let contrast: Req = (
        "REQ-9",
        "a high-contrast variant",
        &[("AC-9.1", "high contrast is on")],
    );
    let dark: Req = (
        "REQ-1",
        "a dark theme",
        &[
            ("AC-1.2", "the OS prefers dark"),
            ("AC-1.9", "the OS prefers more contrast"),
        ],
    );
    let toggle: (&[&str], &[&str]) = (&["AC-3.1"], &["AC-3.1: a reload keeps it"]);
    let mut revised = answer_with(
        requirements(&[contrast, REMEMBERED, dark]),
        theme_and_toggle(
            (
                &["AC-1.2", "AC-1.9", "AC-9.1"],
                &[
                    "AC-1.2, AC-1.9: the OS preferences show",
                    "AC-9.1: contrast is 7:1",
                ],
            ),
            toggle,
        ),
    );
    revised["changes"] = json!("Added high contrast; dropped the three-state toggle.");
    t.llm.push_tool_call("submit_spec", revised);
    t.comment_as(
        pr,
        "bob",
        "/revise add high contrast, drop the three-state toggle",
    )
    .await;
    t.run_jobs().await;
    let reply = t.expect_one_comment(pr);
    assert!(reply.contains("I revised the spec"), "{reply}");

    let first = t.spec_on_branch(1);
    assert_eq!(
        requirement_headings(&first),
        [
            "REQ-4: a high-contrast variant",
            "REQ-3: a remembered choice",
            "REQ-1: a dark theme"
        ],
        "{first}"
    );
    assert_eq!(
        criterion_ids(&first),
        ["AC-4.1", "AC-3.1", "AC-1.2", "AC-1.3"],
        "{first}"
    );
    assert!(
        !first.contains("REQ-2") && !first.contains("AC-1.1") && !first.contains("AC-2.1"),
        "{first}"
    );
    assert!(
        first.starts_with("<!-- specbot:spec issue=1 req=4 nfr=0 ac=1.3,2.1,3.1,4.1 -->\n"),
        "the record keeps what was issued: {first}"
    );
    // The same issues, updated in place, cite the new IDs at the newest spec commit.
    assert_eq!(t.world.sub_issues(REPO, issue), subs);
    let head = t.world.ref_sha(REPO, "specbot/spec-1").unwrap();
    let theme = t.issue_body(subs[0]);
    let at = format!("https://github.com/acme/widgets/blob/{head}/specs/IMPLEMENT-1.md");
    assert!(
        theme.contains(&format!(
            "**Covers** [AC-1.2]({at}#ac-1-2), [AC-1.3]({at}#ac-1-3), [AC-4.1]({at}#ac-4-1)\n"
        )),
        "{theme}"
    );
    assert!(
        theme.contains(&format!("- [ ] [AC-4.1]({at}#ac-4-1): contrast is 7:1")),
        "{theme}"
    );

    // The next revision adds a requirement: REQ-5, although REQ-2 is no longer written in the
    // file it revises.
    // The model echoes the IDs it was shown.
    let contrast: Req = (
        "REQ-4",
        "a high-contrast variant",
        &[("AC-4.1", "high contrast is on")],
    );
    let dark: Req = (
        "REQ-1",
        "a dark theme",
        &[
            ("AC-1.2", "the OS prefers dark"),
            ("AC-1.3", "the OS prefers more contrast"),
        ],
    );
    let sepia: Req = ("new", "a sepia mode", &[("new-1", "sepia is on")]);
    let mut again = answer_with(
        requirements(&[contrast, REMEMBERED, dark, sepia]),
        theme_and_toggle(
            (
                &["AC-1.2", "AC-1.3", "AC-4.1", "new-1"],
                &[
                    "AC-1.2, AC-1.3: the OS preferences show",
                    "AC-4.1: contrast is 7:1",
                ],
            ),
            toggle,
        ),
    );
    again["changes"] = json!("Added a sepia mode.");
    t.llm.push_tool_call("submit_spec", again);
    t.review(pr, "bob", "REQUEST_CHANGES", "Add a sepia mode.", &[])
        .await;
    t.run_jobs().await;
    assert_eq!(t.bot_comments(pr).len(), 2, "one reply per revision");
    let second = t.spec_on_branch(1);
    assert_eq!(
        requirement_headings(&second),
        [
            "REQ-4: a high-contrast variant",
            "REQ-3: a remembered choice",
            "REQ-1: a dark theme",
            "REQ-5: a sepia mode"
        ],
        "{second}"
    );
    assert_eq!(
        criterion_ids(&second),
        ["AC-4.1", "AC-3.1", "AC-1.2", "AC-1.3", "AC-5.1"]
    );
    assert!(!second.contains("REQ-2"), "{second}");
    for n in subs {
        t.expect_no_comment(n);
    }
    t.finish();
}
