//! Proposing a repository's test command when its config names none (`implement.test`), from its
//! file list and a few files' contents, with the reason in words for the status comment.

use serde::{Deserialize, Serialize};

/// A proposed test command and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestProposal {
    pub command: String,
    pub reason: String,
}

/// The files this module may want to read, for callers that fetch contents lazily.
pub const FILES_READ: &[&str] = &["package.json", "Makefile", "makefile", "GNUmakefile"];

/// The test command for a repository whose top-level files are `files` (paths relative to its
/// root); `contents` answers a file's text for the names in [`FILES_READ`] (`None`: unknown).
/// Checked in this order: Cargo, npm, pytest, Go, make.
pub fn propose_test_command<'a>(
    files: &[&str],
    contents: impl Fn(&str) -> Option<&'a str>,
) -> Option<TestProposal> {
    let has = |name: &str| files.contains(&name);
    let proposal = |command: &str, reason: &str| {
        Some(TestProposal {
            command: command.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if has("Cargo.toml") {
        return proposal(
            "cargo test",
            "the repository has a Cargo.toml (a Rust crate)",
        );
    }
    if has("package.json") && contents("package.json").is_some_and(has_npm_test_script) {
        return proposal(
            "npm test",
            "package.json defines a `test` script (a Node.js package)",
        );
    }
    if has("pytest.ini") {
        return proposal("pytest", "the repository has a pytest.ini");
    }
    if has("pyproject.toml") {
        return proposal(
            "pytest",
            "the repository has a pyproject.toml (a Python project)",
        );
    }
    if has("go.mod") {
        return proposal("go test ./...", "the repository has a go.mod (a Go module)");
    }
    for makefile in ["GNUmakefile", "makefile", "Makefile"] {
        if has(makefile) && contents(makefile).is_some_and(has_make_test_target) {
            return Some(TestProposal {
                command: "make test".to_owned(),
                reason: format!("the {makefile} has a `test` target"),
            });
        }
    }
    None
}

fn has_npm_test_script(package_json: &str) -> bool {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(package_json) else {
        return false;
    };
    let script = value.pointer("/scripts/test").and_then(|s| s.as_str());
    // npm init's placeholder fails on purpose; it is not a test suite.
    script.is_some_and(|s| !s.trim().is_empty() && !s.contains("no test specified"))
}

fn has_make_test_target(makefile: &str) -> bool {
    makefile.lines().any(|line| {
        let Some((targets, rest)) = line.split_once(':') else {
            return false;
        };
        // `test:` (or `check test:`), not `X := test` or a recipe line.
        !line.starts_with(['\t', ' ', '#'])
            && !rest.starts_with('=')
            && targets.split_whitespace().any(|t| t == "test")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn propose(files: &[&str], texts: &[(&str, &'static str)]) -> Option<String> {
        let texts = texts.to_vec();
        propose_test_command(files, |name| {
            texts.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
        })
        .map(|p| p.command)
    }

    #[test]
    fn each_ecosystem_gets_its_command() {
        assert_eq!(
            propose(&["Cargo.toml", "Makefile"], &[]).as_deref(),
            Some("cargo test")
        );
        assert_eq!(
            propose(
                &["package.json"],
                &[("package.json", r#"{"scripts":{"test":"jest"}}"#)]
            )
            .as_deref(),
            Some("npm test")
        );
        assert_eq!(propose(&["pyproject.toml"], &[]).as_deref(), Some("pytest"));
        assert_eq!(propose(&["pytest.ini"], &[]).as_deref(), Some("pytest"));
        assert_eq!(propose(&["go.mod"], &[]).as_deref(), Some("go test ./..."));
        assert_eq!(
            propose(
                &["Makefile"],
                &[("Makefile", "CC := gcc\nall: build\n\ntest: all\n\t./run\n")]
            )
            .as_deref(),
            Some("make test")
        );
    }

    #[test]
    fn nothing_without_a_real_test_entry_point() {
        assert_eq!(propose(&["README.md"], &[]), None);
        let placeholder = r#"{"scripts":{"test":"echo \"Error: no test specified\" && exit 1"}}"#;
        assert_eq!(
            propose(&["package.json"], &[("package.json", placeholder)]),
            None
        );
        assert_eq!(
            propose(&["package.json"], &[("package.json", "not json")]),
            None
        );
        assert_eq!(
            propose(
                &["Makefile"],
                &[("Makefile", "T := test\nbuild:\n\techo test:\n")]
            ),
            None
        );
    }

    #[test]
    fn the_reason_says_why() {
        let proposal = propose_test_command(&["go.mod"], |_| None).unwrap();
        assert_eq!(proposal.reason, "the repository has a go.mod (a Go module)");
    }
}
