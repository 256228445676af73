//! The guardrails: the policy every change must pass before it touches the workspace, and the
//! record of refusals.
//!
//! Owns: [`Policy`] (protected paths, change caps, the secret scanner), [`Refusal`] and the
//! checks the tools call. A check returns the refusal's reason, written for the model (it is
//! sent back as a tool error so the model can adapt) and safe for the PR body (it never
//! quotes a secret).

use serde::{Deserialize, Serialize};

use super::path::RepoPath;
use super::secrets::{OWN_SECRET, SecretFinding, SecretScanner};
use super::workspace::{Kind, Workspace};
use crate::prompt::glob::Glob;

/// The directory the App may never write: it has no `workflows` permission.
pub const WORKFLOWS_DIR: &str = ".github/workflows";

/// The directory of the repository's automation (workflows, actions, Dependabot, code owners,
/// issue forms): none of it is the engineer's to change.
pub const GITHUB_DIR: &str = ".github";

/// Files that steer git itself (submodule URLs, filters and diff drivers), in any directory.
pub const GIT_PLUMBING_FILES: [&str; 2] = [".gitmodules", ".gitattributes"];

/// A change the guardrails refused, for the PR body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The tool the model called.
    pub tool: String,
    /// The path as the model gave it (normalised when it could be).
    pub path: Option<String>,
    pub reason: String,
}

/// What changes are allowed.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Paths the agent may not change, besides `.github/**`, `.git`, `.gitmodules` and
    /// `.gitattributes`; compiled in lower case and matched against the lower-case path.
    pub protected: Vec<Glob>,
    /// Largest file the agent may write, in bytes.
    pub max_file_bytes: u64,
    /// Most files the whole change may touch (added, modified or deleted).
    pub max_changed_files: usize,
    /// Most bytes of new content in the whole change.
    pub max_diff_bytes: u64,
    /// Scans every file written and every text the bot will post.
    pub secrets: SecretScanner,
}

impl Default for Policy {
    /// Nothing extra protected; 256 KiB per file, 100 files, 2 MiB in all; no own secrets.
    fn default() -> Self {
        Self {
            protected: Vec::new(),
            max_file_bytes: 256 * 1024,
            max_changed_files: 100,
            max_diff_bytes: 2 * 1024 * 1024,
            secrets: SecretScanner::default(),
        }
    }
}

/// A protected-path pattern that is not a valid glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("protected path {0:?} is not a valid glob (relative, without `..`, at most 500 bytes)")]
pub struct InvalidGlob(pub String);

impl Policy {
    /// Add a protected glob (`secrets/**`, `**/*.pem`, `Cargo.lock`), matched ignoring case
    /// like the built-in ones (`Secrets/Prod.env` is as protected as `secrets/prod.env`).
    pub fn protect(&mut self, pattern: &str) -> Result<(), InvalidGlob> {
        let glob =
            Glob::new(&pattern.to_lowercase()).ok_or_else(|| InvalidGlob(pattern.to_owned()))?;
        self.protected.push(glob);
        Ok(())
    }

    /// Why `path` may not be changed, if it may not.
    pub(crate) fn protected_reason(&self, path: &RepoPath) -> Option<String> {
        let lower = path.as_str().to_ascii_lowercase();
        if lower == WORKFLOWS_DIR || lower.starts_with(&format!("{WORKFLOWS_DIR}/")) {
            return Some(format!(
                "`{path}` is a GitHub Actions workflow: specbot cannot change `{WORKFLOWS_DIR}/` \
                 (the App has no `workflows` permission). Leave it as it is and describe the \
                 change it needs in your summary"
            ));
        }
        if lower == GITHUB_DIR || lower.starts_with(&format!("{GITHUB_DIR}/")) {
            return Some(format!(
                "`{path}` is in `{GITHUB_DIR}/`, the repository's automation (actions, Dependabot, \
                 code owners, templates): specbot does not change it. Leave it as it is and \
                 describe the change it needs in your summary"
            ));
        }
        if path.segments().any(|s| s.eq_ignore_ascii_case(".git")) {
            return Some(format!(
                "`{path}` is inside a `.git` directory, which is not part of the repository's content"
            ));
        }
        if let Some(name) = GIT_PLUMBING_FILES
            .iter()
            .find(|f| lower == **f || lower.ends_with(&format!("/{f}")))
        {
            return Some(format!(
                "`{path}` is a `{name}` file, which steers git itself: specbot does not change \
                 it. Leave it as it is and describe the change it needs in your summary"
            ));
        }
        let lower = path.as_str().to_lowercase();
        self.protected.iter().find(|g| g.is_match(&lower)).map(|g| {
            format!(
                "`{path}` is protected by the repository's configuration (`{}`); leave it as \
                     it is and mention the change it needs in your summary",
                g.pattern()
            )
        })
    }

    /// Everything that can refuse a change to `path`, whatever the content: protection and
    /// links/skipped entries.
    pub(crate) fn check_target(&self, ws: &Workspace, path: &RepoPath) -> Result<(), String> {
        if let Some(reason) = self.protected_reason(path) {
            return Err(reason);
        }
        if let Some((at, why)) = ws.skipped_at(path) {
            return Err(format!(
                "`{at}` was not unpacked from the repository ({why}); specbot does not follow, \
                 change or replace links and special files, nor write below them"
            ));
        }
        Ok(())
    }

    /// Check writing `content` to `path` (after [`Policy::check_target`]).
    pub(crate) fn check_write(
        &self,
        ws: &Workspace,
        path: &RepoPath,
        content: &str,
    ) -> Result<(), String> {
        self.check_target(ws, path)?;
        if content.contains('\0') {
            return Err(format!(
                "the content for `{path}` contains NUL bytes: binary files cannot be written, \
                 only UTF-8 text"
            ));
        }
        let len = content.len() as u64;
        if len > self.max_file_bytes {
            return Err(format!(
                "the content for `{path}` is {len} bytes; the limit is {} bytes per file. \
                 Write a smaller file (split it, or leave generated data out)",
                self.max_file_bytes
            ));
        }
        // A secret already in the file (a fixture, say) is not a new leak; the bot's own
        // secrets always are.
        let before = match ws.kind(Some(path)) {
            Ok(Kind::File(_)) => ws
                .read(path)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default(),
            _ => String::new(),
        };
        let leaks: Vec<SecretFinding> = self
            .secrets
            .scan(content)
            .into_iter()
            .filter(|f| f.kind == OWN_SECRET || !before.contains(&content[f.start..f.end]))
            .collect();
        if !leaks.is_empty() {
            return Err(format!(
                "the content for `{path}` contains what looks like a secret ({}). Never commit \
                 credentials: use a placeholder or read it from the environment",
                list(&leaks)
            ));
        }
        let (files, bytes) = ws.change_stats_with(path, Some(content.as_bytes()));
        self.check_totals(files, bytes)
    }

    /// Check deleting `path` (after [`Policy::check_target`]).
    pub(crate) fn check_delete(&self, ws: &Workspace, path: &RepoPath) -> Result<(), String> {
        self.check_target(ws, path)?;
        let (files, bytes) = ws.change_stats_with(path, None);
        self.check_totals(files, bytes)
    }

    fn check_totals(&self, files: usize, bytes: u64) -> Result<(), String> {
        if files > self.max_changed_files {
            return Err(format!(
                "this would change {files} files; a change may touch at most {} files. Keep \
                 the change focused on the specification",
                self.max_changed_files
            ));
        }
        if bytes > self.max_diff_bytes {
            return Err(format!(
                "this would bring the new content to {bytes} bytes; a change may add at most \
                 {} bytes",
                self.max_diff_bytes
            ));
        }
        Ok(())
    }

    /// Check a text the bot will post (the summary, the criteria).
    pub fn check_message(&self, what: &str, text: &str) -> Result<(), String> {
        let found = self.secrets.scan(text);
        if found.is_empty() {
            return Ok(());
        }
        Err(format!(
            "the {what} contains what looks like a secret ({}); it would be posted on GitHub. \
             Remove it",
            list(&found)
        ))
    }
}

fn list(found: &[SecretFinding]) -> String {
    found
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_paths() {
        let mut p = Policy::default();
        p.protect("Secrets/**").expect("glob");
        assert!(p.protect("../x").is_err());
        let path = |s| RepoPath::parse(s).expect("path");
        for (s, refused) in [
            (".github/workflows/ci.yml", true),
            (".github/workflows", true),
            (".GitHub/Workflows/ci.yml", true),
            (".github/specbot.yml", true),
            (".GitHub/dependabot.yml", true),
            (".gitmodules", true),
            ("vendor/.GitAttributes", true),
            ("docs/gitmodules.md", false),
            ("a/.git/config", true),
            ("secrets/prod.env", true),
            ("Secrets/Prod.env", true),
            ("src/secrets.rs", false),
        ] {
            assert_eq!(p.protected_reason(&path(s)).is_some(), refused, "{s}");
        }
    }

    #[test]
    fn messages() {
        let p = Policy::default();
        assert!(p.check_message("summary", "All done.").is_ok());
        let err = p
            .check_message("summary", "use ghp_0123456789abcdefghijABCDEFGHIJ012345")
            .expect_err("secret");
        assert!(err.contains("GitHub token on line 1"), "{err}");
        assert!(!err.contains("ghp_0123"), "{err}");
    }
}
