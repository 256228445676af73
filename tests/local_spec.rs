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
    assert!(
        stdout.contains("## Component 1") && stdout.contains("## Component 2"),
        "{stdout}"
    );
    assert!(stdout.contains("depends on: Component 1"), "{stdout}");
    // The repository's research notes were given to the architect.
    let sent = fake.requests()[0].body.to_string();
    assert!(
        sent.contains("Users read at night."),
        "research/ is context"
    );
    assert!(sent.contains("Users want a dark theme."));
    assert_eq!(fake.remaining(), 0);
}

/// Regenerates `docs/examples/` from the example answer:
/// `SPECBOT_WRITE_EXAMPLE=1 cargo test --test local_spec`.
#[tokio::test]
async fn the_documented_example_is_what_the_pipeline_writes() {
    let fake = LlmFake::start().await;
    fake.push_tool_call("submit_spec", support::answers::example_answer());
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("README.md"), "# Widgets\n").unwrap();
    let issue = repo.path().join("issue-7.md");
    std::fs::write(
        &issue,
        "# Add dark mode\nCustomers browse at night and find the white pages glaring.\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let output = run_local_spec(&fake, repo.path(), &issue, out.path()).await;
    assert!(output.status.success());
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/dark-mode");
    let files = [
        ("specs/IMPLEMENT-7.md", "IMPLEMENT-7.md"),
        ("specs/IMPLEMENT-7.diagram.mmd", "IMPLEMENT-7.diagram.mmd"),
    ];
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let printed: String = stdout
        .lines()
        .skip_while(|l| !l.starts_with("component issues"))
        .collect::<Vec<_>>()
        .join("\n");
    if std::env::var_os("SPECBOT_WRITE_EXAMPLE").is_some() {
        std::fs::create_dir_all(&examples).unwrap();
        for (from, to) in files {
            std::fs::copy(out.path().join(from), examples.join(to)).unwrap();
        }
        std::fs::write(
            examples.join("component-issues.txt"),
            format!("{printed}\n"),
        )
        .unwrap();
    }
    for (from, to) in files {
        let written = std::fs::read_to_string(out.path().join(from)).unwrap();
        let documented = std::fs::read_to_string(examples.join(to)).unwrap_or_default();
        assert_eq!(
            written, documented,
            "docs/examples/dark-mode/{to} is stale: regenerate it"
        );
    }
}
