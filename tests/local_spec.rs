//! `specbot spec`: the same pipeline against a local checkout, with the model faked.

mod support;

use support::answers::good_answer;
use support::llm_fake::LlmFake;

/// `specbot spec` with the model pointed at the fake and nothing else from the environment.
async fn run_local_spec(
    fake: &LlmFake,
    repo: &std::path::Path,
    issue: &std::path::Path,
    out: &std::path::Path,
) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_specbot"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LLM_PROVIDER", "anthropic")
        .env("LLM_BASE_URL", fake.anthropic_base_url())
        .env("LLM_API_KEY", "sk-local-test")
        .env("LLM_MODEL", "test-model")
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .current_dir(repo)
        .args(["spec", "--issue-file"])
        .arg(issue)
        .arg("--repo")
        .arg(repo)
        .arg("--out")
        .arg(out);
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn writes_the_spec_files_and_prints_the_component_issues() {
    let fake = LlmFake::start().await;
    fake.push_tool_call("submit_spec", good_answer(2));
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("README.md"), "# Widgets\nA widget shop.\n").unwrap();
    std::fs::create_dir_all(repo.path().join("research")).unwrap();
    std::fs::write(
        repo.path().join("research/themes.md"),
        "Users read at night.\n",
    )
    .unwrap();
    let issue = repo.path().join("feature-7.md");
    std::fs::write(&issue, "# Add dark mode\nUsers want a dark theme.\n").unwrap();
    let out = tempfile::tempdir().unwrap();

    let output = run_local_spec(&fake, repo.path(), &issue, out.path()).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let spec = std::fs::read_to_string(out.path().join("specs/IMPLEMENT-7.md")).unwrap();
    assert!(spec.contains("## Design"), "{spec}");
    assert!(out.path().join("specs/IMPLEMENT-7.diagram.mmd").exists());
    // Each component issue as it would be filed: the criteria it covers, quoted, its files,
    // its tests and its dependencies.
    assert!(
        stdout.contains("# Component 1\n") && stdout.contains("# Component 2\n"),
        "{stdout}"
    );
    assert!(stdout.contains("**Covers** AC-1.2\n"), "{stdout}");
    assert!(
        stdout.contains("- [ ] AC-1.2 WHEN the user picks a theme THE SYSTEM SHALL apply part 2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("## Files to touch\n\n- `src/part2.rs`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("## Depends on\n\n- Component 1\n"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("specbot:component"),
        "no hidden marker: {stdout}"
    );
    // The repository's research notes were given to the architect.
    let sent = fake.requests()[0].body.to_string();
    assert!(
        sent.contains("Users read at night."),
        "research/ is context"
    );
    assert!(sent.contains("Users want a dark theme."));
    assert_eq!(fake.remaining(), 0);
}
