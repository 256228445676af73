//! The GitHub client (`specbot::github`) against the simulator, where github.com is stricter
//! than a naive client expects: deleting a path that is not there, file modes, truncated trees,
//! an empty repository.

mod support;

use std::time::Duration;

use specbot::github::repo::FileChange;
use support::github_world::GitHubWorld;

const REPO: &str = "acme/widgets";

fn client(world: &GitHubWorld) -> specbot::github::Repo {
    let creds = specbot::config::AppCredentials {
        app_id: world.app_id(),
        private_key: world.private_key_pem().into(),
    };
    let mut policy = specbot::config::Settings::base().github;
    policy.write_gap = Duration::ZERO;
    policy.retry_base = Duration::from_millis(1);
    let app = specbot::github::GitHubApp::new(&creds, &world.base_url(), policy).expect("client");
    app.installation(world.installation_id())
        .expect("installation")
        .repo("acme", "widgets")
}

fn write(path: &str, content: &str) -> FileChange {
    FileChange {
        path: path.into(),
        content: Some(content.into()),
        executable: false,
    }
}

fn delete(path: &str) -> FileChange {
    FileChange {
        path: path.into(),
        content: None,
        executable: false,
    }
}

#[tokio::test]
async fn deleting_a_path_someone_already_deleted_is_dropped() {
    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    world.put_file(REPO, "main", "old.txt", "old\n");
    let repo = client(&world);
    repo.commit_files("feature", "main", "First", &[delete("old.txt")])
        .await
        .expect("first run");
    world.put_file(REPO, "feature", "note.txt", "a human's note\n");
    let again = repo
        .commit_files(
            "feature",
            "main",
            "Re-run",
            &[delete("old.txt"), write("new.txt", "new\n")],
        )
        .await
        .expect("a re-run deleting what is gone still commits");
    assert!(again.new_commit);
    assert_eq!(
        world.file(REPO, "feature", "new.txt").as_deref(),
        Some("new\n")
    );
    assert!(world.file(REPO, "feature", "old.txt").is_none());
    world.assert_no_violations();
}

#[tokio::test]
async fn an_executable_stays_executable_when_the_bot_edits_it() {
    for limit in [100_000, 1] {
        let world = GitHubWorld::start().await;
        world.add_repo(REPO);
        world.put_file(REPO, "main", "gradlew", "#!/bin/sh\n");
        world.put_file(REPO, "main", "scripts/build.sh", "#!/bin/sh\n");
        world.set_mode(REPO, "main", "gradlew", "100755");
        world.set_mode(REPO, "main", "scripts/build.sh", "100755");
        world.truncate_trees_over(limit);
        let repo = client(&world);
        repo.commit_files(
            "feature",
            "main",
            "Edit",
            &[
                write("gradlew", "#!/bin/sh\nexec java\n"),
                write("scripts/build.sh", "#!/bin/sh\nmake\n"),
                write("README.md", "hello\n"),
                write("src/new.rs", "fn main() {}\n"),
            ],
        )
        .await
        .expect("commit");
        let mode = |path| world.file_mode(REPO, "feature", path);
        let what = format!("tree entry limit {limit}");
        assert_eq!(mode("gradlew").as_deref(), Some("100755"), "{what}");
        assert_eq!(
            mode("scripts/build.sh").as_deref(),
            Some("100755"),
            "{what}"
        );
        assert_eq!(mode("README.md").as_deref(), Some("100644"), "{what}");
        assert_eq!(mode("src/new.rs").as_deref(), Some("100644"), "{what}");
        world.assert_no_violations();
    }
}

#[tokio::test]
async fn an_empty_repository_has_no_branch() {
    let world = GitHubWorld::start().await;
    world.add_empty_repo(REPO);
    let repo = client(&world);
    assert_eq!(repo.branch_head("main").await.expect("no error"), None);
    world.assert_no_violations();
}

#[tokio::test]
async fn dependency_and_sub_issue_refusals_are_told_apart() {
    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    let a = world.add_issue(REPO, "A", "a", "alice");
    let b = world.add_issue(REPO, "B", "b", "alice");
    let id = |n| world.issue(REPO, n).expect("issue").id;
    let repo = client(&world);
    assert!(repo.add_blocked_by(a, id(b)).await.expect("recorded"));
    assert!(
        repo.add_blocked_by(a, id(b)).await.expect("twice is fine"),
        "already recorded"
    );
    assert!(
        repo.add_blocked_by(a, id(a)).await.is_err(),
        "a 422 that is not \"already there\" is an error"
    );
    assert!(
        repo.link_sub_issue(999, id(b)).await.is_err(),
        "a missing parent is an error, not a missing API"
    );
    assert!(repo.link_sub_issue(a, id(b)).await.expect("linked"));
    world.assert_no_violations();
}

#[tokio::test]
async fn a_pr_github_will_not_reopen_and_a_merged_one_are_followed_by_new_prs() {
    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    let repo = client(&world);
    // Closed, then its branch deleted and recreated: github.com refuses to reopen it.
    world.put_file(REPO, "specbot/spec-1", "a.md", "1\n");
    let closed = world.add_pull(
        REPO,
        "specbot/spec-1",
        "main",
        "Spec",
        "Refs #9",
        "specbot[bot]",
    );
    world.close_pull(REPO, closed);
    world.delete_branch(REPO, "specbot/spec-1");
    repo.commit_files("specbot/spec-1", "main", "Again", &[write("a.md", "2\n")])
        .await
        .expect("branch recreated");
    let (pr, made) = repo
        .open_pull("specbot/spec-1", "main", "Spec", "Refs #9", false)
        .await
        .expect("a new PR");
    assert!(made && pr.number != closed && pr.state == "open", "{pr:?}");
    assert!(
        pr.body
            .as_deref()
            .unwrap_or("")
            .contains(&format!("#{closed}"))
    );
    // Merged: a new run gets a new PR too.
    world.merge_pull(REPO, pr.number);
    repo.commit_files("specbot/spec-1", "main", "Third", &[write("a.md", "3\n")])
        .await
        .expect("pushed");
    let (third, made) = repo
        .open_pull("specbot/spec-1", "main", "Spec", "Refs #9", false)
        .await
        .expect("a new PR");
    assert!(made && third.number != pr.number && third.state == "open");
    assert!(
        third
            .body
            .as_deref()
            .unwrap_or("")
            .contains(&format!("#{}", pr.number))
    );
    world.assert_no_violations();
}

#[tokio::test]
async fn a_title_or_body_longer_than_github_takes_is_cut_and_still_found_again() {
    let world = GitHubWorld::start().await;
    world.add_repo(REPO);
    let issue = world.add_issue(REPO, "Big", "b", "alice");
    let repo = client(&world);
    let marker = "<!-- specbot:test big -->";
    let line = "A line of the verification section, repeated.\n";
    let body = format!("{marker}\n{}", line.repeat(2_000));
    assert!(body.chars().count() > specbot::messages::BODY_MAX_CHARS);
    let first = repo
        .comment_once(issue, marker, &body)
        .await
        .expect("cut, not refused")
        .expect("posted");
    let again = repo
        .comment_once(issue, marker, &body)
        .await
        .expect("again")
        .expect("found");
    assert_eq!(first.id, again.id, "found again by the marker at its top");
    assert_eq!(
        world.request_count(
            "PATCH",
            "/repos/{owner}/{repo}/issues/comments/{comment_id}"
        ),
        0,
        "the same long body is not written again"
    );
    let stored = world.comments(REPO, issue);
    assert_eq!(stored.len(), 1);
    let text = &stored[0].body;
    assert!(text.chars().count() <= specbot::messages::BODY_MAX_CHARS);
    assert!(text.starts_with(marker));
    assert!(text.contains("cut here: GitHub takes at most 65,536 characters"));

    let made = repo
        .create_issue("Component", &body, &["specbot".to_string()], marker)
        .await
        .expect("an issue's body is cut too");
    let filed = world.issue(REPO, made.number).expect("filed");
    assert!(filed.body.unwrap_or_default().chars().count() <= specbot::messages::BODY_MAX_CHARS);
    let long_title = "A title ".repeat(40);
    let retitled = repo
        .update_issue(made.number, &serde_json::json!({ "title": long_title }))
        .await
        .expect("a title is cut too");
    assert_eq!(
        retitled.title.chars().count(),
        specbot::messages::TITLE_MAX_CHARS
    );
    assert!(retitled.title.ends_with('…'));
    world.assert_no_violations();
}
