//! A small path glob matcher for the repository config's `context` globs and protected paths.
//!
//! Owns: [`Glob`], a thin rule over [`globset`]: `**` any number of whole path segments
//! (`research/**`, `**/design.md`), `*` any characters within one segment, `?` one character
//! within a segment, `[abc]` and `{a,b}` as in globset. A pattern without wildcards also matches
//! everything under it as a directory (`docs` and `docs/` mean `docs/**`), and `dir/**` matches
//! `dir` itself. globset compiles to regular expressions, so matching runs in linear time
//! whatever the pattern.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// A compiled glob.
#[derive(Debug, Clone)]
pub struct Glob {
    pattern: String,
    set: GlobSet,
}

/// Longest pattern accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 500;

impl Glob {
    /// Compile a pattern; `None` when it is empty, too long, absolute/escaping (`/x`, `../x`),
    /// or not a valid glob (`a[`).
    pub fn new(pattern: &str) -> Option<Glob> {
        let trimmed = pattern.trim().trim_start_matches("./");
        if trimmed.is_empty()
            || trimmed.len() > MAX_PATTERN_LEN
            || trimmed.starts_with('/')
            || trimmed.split('/').any(|s| s == "..")
        {
            return None;
        }
        let has_wildcard = trimmed.contains(['*', '?', '[', '{']);
        let body = trimmed.trim_end_matches('/');
        let mut forms = vec![body.to_string()];
        if !has_wildcard || trimmed.ends_with('/') {
            // A directory: everything below it too.
            forms.push(format!("{body}/**"));
        } else if let Some(dir) = body.strip_suffix("/**") {
            // `dir/**` names the directory as well as what is in it.
            forms.push(dir.to_string());
        }
        let mut set = GlobSetBuilder::new();
        for form in forms {
            let glob = GlobBuilder::new(&form)
                .literal_separator(true)
                .backslash_escape(false)
                .build()
                .ok()?;
            set.add(glob);
        }
        Some(Glob {
            pattern: trimmed.to_string(),
            set: set.build().ok()?,
        })
    }

    /// Whether `path` (repository-relative, `/`-separated) matches.
    pub fn is_match(&self, path: &str) -> bool {
        self.set.is_match(path)
    }

    /// The pattern as given (trimmed).
    pub fn pattern(&self) -> &str {
        &self.pattern
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("research/**", "research/a.md", true),
            ("research/**", "research/x/y/z.md", true),
            ("research/**", "research", true),
            ("research/**", "researchers/a.md", false),
            ("**/*.md", "a.md", true),
            ("**/*.md", "x/y/a.md", true),
            ("**/*.md", "x/y/a.rs", false),
            ("docs/*.md", "docs/a.md", true),
            ("docs/*.md", "docs/x/a.md", false),
            ("docs/?.md", "docs/a.md", true),
            ("docs/?.md", "docs/ab.md", false),
            ("docs", "docs/a.md", true),
            ("docs/", "docs/x/a.md", true),
            ("docs", "docsx/a.md", false),
            ("src/api/mod.rs", "src/api/mod.rs", true),
            ("src/api/mod.rs", "src/api/mod.rsx", false),
            ("a.b", "axb", false),
            ("**", "anything/at/all", true),
            ("src/**/mod.rs", "src/mod.rs", true),
            ("src/**/mod.rs", "src/a/b/mod.rs", true),
            ("*.md", "README.md", true),
            ("*.md", "docs/README.md", false),
            ("**/*.{pem,key}", "certs/site.key", true),
            ("**/*.{pem,key}", "certs/site.crt", false),
            ("secret[0-9].txt", "secret7.txt", true),
        ];
        for (pattern, path, want) in cases {
            let glob = Glob::new(pattern).expect("valid pattern");
            assert_eq!(glob.is_match(path), *want, "{pattern} vs {path}");
        }
    }

    #[test]
    fn rejected_patterns() {
        for p in [
            "",
            "  ",
            "/etc/passwd",
            "../x",
            "a/../../b",
            "a[",
            &"a".repeat(600),
        ] {
            assert!(Glob::new(p).is_none(), "{p:?}");
        }
    }
}
