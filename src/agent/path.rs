//! Repository-relative paths: [`RepoPath`], the only path type the workspace and the tools
//! accept, and the normalisation that makes one from untrusted text (a model's tool input or a
//! tarball entry name).
//!
//! A `RepoPath` is `/`-separated, relative, non-empty, has no `.`, `..` or empty segments, no
//! NUL, no backslash and no control characters, at most [`MAX_PATH_BYTES`] bytes and
//! [`MAX_DEPTH`] segments. It says nothing about what is on disk (symlinks are checked by the
//! workspace when the path is used).

use std::fmt;

/// Longest path accepted, in bytes (GitHub's own limit is 4096; real repositories stay far below).
pub const MAX_PATH_BYTES: usize = 1024;
/// Most segments in a path.
pub const MAX_DEPTH: usize = 64;

/// A normalised, confined, repository-relative path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoPath(String);

/// Why a path was refused. The messages are written for the model (and the PR body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path is empty; give a path relative to the repository root, like `src/main.rs`")]
    Empty,
    #[error(
        "`{0}` is an absolute path; paths are relative to the repository root (`src/main.rs`, not `/src/main.rs`)"
    )]
    Absolute(String),
    #[error("`{0}` leaves the repository (`..` is not allowed in paths)")]
    Escapes(String),
    #[error("the path contains a NUL byte or a control character")]
    Control,
    #[error("`{0}` contains a backslash; use `/` to separate directories")]
    Backslash(String),
    #[error("the path is longer than {MAX_PATH_BYTES} bytes")]
    TooLong,
    #[error("`{0}` is nested deeper than {MAX_DEPTH} directories")]
    TooDeep(String),
}

impl RepoPath {
    /// Normalise untrusted text: strips a leading `./`, drops `.` and empty segments (so
    /// `a//b/./c/` is `a/b/c`), and refuses everything [`PathError`] lists. `""` and `"."` are
    /// refused here; use [`RepoPath::parse_dir`] where the root is meaningful.
    pub fn parse(raw: &str) -> Result<RepoPath, PathError> {
        match Self::parse_dir(raw)? {
            Some(p) => Ok(p),
            None => Err(PathError::Empty),
        }
    }

    /// Like [`RepoPath::parse`], but the root (`""`, `"."`, `"./"`) is `Ok(None)`.
    pub fn parse_dir(raw: &str) -> Result<Option<RepoPath>, PathError> {
        if raw.chars().any(char::is_control) {
            return Err(PathError::Control);
        }
        if raw.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong);
        }
        let shown = raw.trim();
        if shown.starts_with('/') {
            return Err(PathError::Absolute(shown.to_owned()));
        }
        if shown.contains('\\') {
            return Err(PathError::Backslash(shown.to_owned()));
        }
        let mut segments = Vec::new();
        for seg in shown.split('/') {
            match seg {
                "" | "." => continue,
                ".." => return Err(PathError::Escapes(shown.to_owned())),
                s => segments.push(s),
            }
        }
        // Checked on the first segment kept, not on the raw text: `./C:/x` is `C:/x`.
        let Some(first) = segments.first() else {
            return Ok(None);
        };
        if first.starts_with('~') || has_drive_prefix(first) {
            return Err(PathError::Absolute(shown.to_owned()));
        }
        if segments.len() > MAX_DEPTH {
            return Err(PathError::TooDeep(shown.to_owned()));
        }
        Ok(Some(RepoPath(segments.join("/"))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments, outermost first.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// Whether `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &RepoPath) -> bool {
        self.0 == other.0
            || (self.0.starts_with(other.0.as_str())
                && self.0.as_bytes().get(other.0.len()) == Some(&b'/'))
    }

    /// `self/name` (`name` must be one valid segment; used when walking directories).
    pub(crate) fn join(&self, name: &str) -> Result<RepoPath, PathError> {
        RepoPath::parse(&format!("{}/{name}", self.0))
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `C:` or `c:/…`: absolute on Windows, and never meant as a repository path.
fn has_drive_prefix(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        for (raw, want) in [
            ("src/main.rs", "src/main.rs"),
            ("./src/main.rs", "src/main.rs"),
            ("src//lib/./x.rs", "src/lib/x.rs"),
            ("docs/", "docs"),
            (" a/b ", "a/b"),
            ("..foo/bar..", "..foo/bar.."),
        ] {
            assert_eq!(
                RepoPath::parse(raw).map(|p| p.0),
                Ok(want.to_owned()),
                "{raw}"
            );
        }
        assert_eq!(RepoPath::parse_dir("."), Ok(None));
        assert_eq!(RepoPath::parse_dir(""), Ok(None));
    }

    #[test]
    fn refuses() {
        for raw in [
            "",
            ".",
            "../x",
            "a/../../x",
            "a/..",
            "/etc/passwd",
            "~/x",
            "C:/x",
            "./C:/x",
            "./a:",
            ".//~/x",
            "a\\b",
            "a\0b",
            "a\nb",
        ] {
            assert!(RepoPath::parse(raw).is_err(), "{raw:?}");
        }
        assert_eq!(
            RepoPath::parse(&"a/".repeat(MAX_DEPTH + 1)).map(|_| ()),
            Err(PathError::TooDeep(
                "a/".repeat(MAX_DEPTH + 1).trim().to_owned()
            ))
        );
        assert_eq!(
            RepoPath::parse(&"a".repeat(MAX_PATH_BYTES + 1)),
            Err(PathError::TooLong)
        );
    }

    #[test]
    fn prefix() {
        let p = |s| RepoPath::parse(s).expect("path");
        assert!(p("a/b/c").starts_with(&p("a/b")));
        assert!(p("a/b").starts_with(&p("a/b")));
        assert!(!p("a/bc").starts_with(&p("a/b")));
    }
}
