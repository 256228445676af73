//! A small path glob matcher for the repository config's `context` globs.
//!
//! Owns: [`Glob`]. Syntax: `**` any number of whole path segments (`research/**`,
//! `**/design.md`), `*` any characters within one segment, `?` one character within a segment;
//! everything else is literal. A pattern without wildcards also matches everything under it as
//! a directory (`docs` and `docs/` mean `docs/**`). Matching is compiled to a [`regex::Regex`],
//! so it runs in linear time whatever the pattern.

use regex::Regex;

/// A compiled glob.
#[derive(Debug, Clone)]
pub struct Glob {
    pattern: String,
    regex: Regex,
}

/// Longest pattern accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 500;

impl Glob {
    /// Compile a pattern; `None` when it is empty, too long, or absolute/escaping (`/x`, `../x`).
    pub fn new(pattern: &str) -> Option<Glob> {
        let trimmed = pattern.trim().trim_start_matches("./");
        if trimmed.is_empty()
            || trimmed.len() > MAX_PATTERN_LEN
            || trimmed.starts_with('/')
            || trimmed.split('/').any(|s| s == "..")
        {
            return None;
        }
        let has_wildcard = trimmed.contains(['*', '?']);
        let body = trimmed.trim_end_matches('/');
        let mut re = String::from("^");
        let segments: Vec<&str> = body.split('/').collect();
        for (i, seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            if *seg == "**" {
                if last {
                    // `a/**` matches everything below `a`; a lone `**` matches everything.
                    if i == 0 {
                        re.push_str(".*");
                    } else {
                        // The separator was already written; allow the directory itself too.
                        re.truncate(re.len() - 1);
                        re.push_str("(?:/.*)?");
                    }
                } else {
                    re.push_str("(?:[^/]*/)*");
                }
                continue;
            }
            for c in seg.chars() {
                match c {
                    '*' => re.push_str("[^/]*"),
                    '?' => re.push_str("[^/]"),
                    c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
                }
            }
            if !last {
                re.push('/');
            }
        }
        if !has_wildcard || trimmed.ends_with('/') {
            re.push_str("(?:/.*)?");
        }
        re.push('$');
        let regex = regex::RegexBuilder::new(&re)
            .size_limit(1 << 20)
            .build()
            .ok()?;
        Some(Glob {
            pattern: trimmed.to_string(),
            regex,
        })
    }

    /// Whether `path` (repository-relative, `/`-separated) matches.
    pub fn is_match(&self, path: &str) -> bool {
        self.regex.is_match(path)
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
            &"a".repeat(600),
        ] {
            assert!(Glob::new(p).is_none(), "{p:?}");
        }
    }
}
