//! The secret scanner: finds credentials in text the bot is about to commit or post, and
//! redacts them from text it stores.
//!
//! Owns: [`SecretScanner`], [`SecretFinding`]. It knows the shapes of GitHub tokens
//! (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`), AWS access key ids and secret
//! keys, PEM private-key blocks, Slack tokens and webhooks, OpenAI (`sk-…`, `sk-proj-…`) and
//! Anthropic (`sk-ant-…`) keys, generic quoted high-entropy assignments
//! (`api_key = "…"`, `"client_secret": "…"`), and the bot's own configured secret values
//! (given to [`SecretScanner::new`]; values shorter than [`MIN_OWN_SECRET_LEN`] are ignored,
//! they would match ordinary text). Findings never carry the secret itself, only its kind and
//! line, so they can be shown to the model and in the PR body.
//!
//! It is a heuristic: it catches the leaks that matter (a token pasted from the environment or a
//! key generated in a fixture), not every possible credential.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// Own secret values shorter than this are not scanned for.
pub const MIN_OWN_SECRET_LEN: usize = 8;

/// One suspected secret in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFinding {
    /// What it looks like ("GitHub token", "the bot's own secret", …).
    pub kind: &'static str,
    /// 1-based line of its start.
    pub line: usize,
    /// Byte range in the scanned text.
    pub start: usize,
    pub end: usize,
}

impl fmt::Display for SecretFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on line {}", self.kind, self.line)
    }
}

/// The kind used for the bot's own secrets.
pub const OWN_SECRET: &str = "a secret of the bot itself";

/// How a pattern's match is checked further.
#[derive(Clone, Copy)]
enum Check {
    None,
    /// The capture group 1 must look random (mixed character classes).
    Mixed,
    /// The capture group 1 must look random and not like a placeholder.
    Entropy,
}

struct Pattern {
    kind: &'static str,
    regex: Regex,
    check: Check,
}

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let table: &[(&str, &str, Check)] = &[
        (
            "private key",
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?s:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)?",
            Check::None,
        ),
        (
            "GitHub token",
            r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}\b",
            Check::None,
        ),
        (
            "GitHub token",
            r"\bgithub_pat_[A-Za-z0-9_]{22,}\b",
            Check::None,
        ),
        (
            "AWS access key id",
            r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",
            Check::None,
        ),
        (
            "AWS secret access key",
            r#"(?i)aws_?secret_?access_?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})\b"#,
            Check::None,
        ),
        (
            "Slack token",
            r"\bxox[abposre]-[A-Za-z0-9-]{10,}\b",
            Check::None,
        ),
        (
            "Slack webhook",
            r"https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+",
            Check::None,
        ),
        (
            "Anthropic API key",
            r"\bsk-ant-([A-Za-z0-9_-]{20,})",
            Check::Mixed,
        ),
        (
            "OpenAI-style API key",
            r"\bsk-((?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,})",
            Check::Mixed,
        ),
        (
            "hard-coded credential",
            r#"(?i)[a-z0-9_.-]*(?:api[_-]?key|apikey|secret|token|passw(?:or)?d|access[_-]?key|private[_-]?key|credentials?|auth)[a-z0-9_.-]*["']?\s*(?::|=|:=|=>)\s*["']([^"'\s]{16,})["']"#,
            Check::Entropy,
        ),
    ];
    table
        .iter()
        .filter_map(|&(kind, re, check)| {
            // The patterns are constants; a typo would show in the tests, never at run time.
            Regex::new(re)
                .ok()
                .map(|regex| Pattern { kind, regex, check })
        })
        .collect()
});

/// Scans text for secrets. `Debug` shows how many own secrets it holds, never them.
#[derive(Clone, Default)]
pub struct SecretScanner {
    own: Vec<SecretString>,
}

impl fmt::Debug for SecretScanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretScanner")
            .field("own_secrets", &self.own.len())
            .finish()
    }
}

impl SecretScanner {
    /// A scanner for the known shapes plus `own` (the bot's configured secret values: its App
    /// private key, webhook secret, LLM key …). Empty and short values are dropped.
    pub fn new(own: impl IntoIterator<Item = SecretString>) -> Self {
        let mut own: Vec<SecretString> = own
            .into_iter()
            .filter(|s| s.expose_secret().trim().len() >= MIN_OWN_SECRET_LEN)
            .collect();
        // Multi-line secrets (a PEM key) are also matched line by line, so a partial paste is
        // caught too.
        let mut lines = Vec::new();
        for s in &own {
            let text = s.expose_secret();
            if text.contains('\n') {
                lines.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| l.len() >= 16 && !l.starts_with("-----"))
                        .map(|l| SecretString::from(l.to_owned())),
                );
            }
        }
        own.extend(lines);
        Self { own }
    }

    /// Every finding in `text`, ordered by position (overlaps removed).
    pub fn scan(&self, text: &str) -> Vec<SecretFinding> {
        let mut spans: Vec<(usize, usize, &'static str)> = Vec::new();
        for s in &self.own {
            let needle = s.expose_secret().trim();
            for (i, _) in text.match_indices(needle) {
                spans.push((i, i + needle.len(), OWN_SECRET));
            }
        }
        for p in PATTERNS.iter() {
            for caps in p.regex.captures_iter(text) {
                let Some(whole) = caps.get(0) else { continue };
                let ok = match p.check {
                    Check::None => true,
                    Check::Mixed => caps.get(1).is_some_and(|m| looks_random(m.as_str())),
                    Check::Entropy => caps
                        .get(1)
                        .is_some_and(|m| looks_random(m.as_str()) && !is_placeholder(m.as_str())),
                };
                if ok {
                    // A generic assignment redacts only the value, so the name stays readable.
                    let (start, end) = match (p.check, caps.get(1)) {
                        (Check::Entropy, Some(v)) => (v.start(), v.end()),
                        _ => (whole.start(), whole.end()),
                    };
                    spans.push((start, end, p.kind));
                }
            }
        }
        // Earlier first; at the same start the longer (and own secrets, pushed first) win.
        spans.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut out: Vec<SecretFinding> = Vec::new();
        for (start, end, kind) in spans {
            if out.last().is_some_and(|l| start < l.end) {
                continue;
            }
            out.push(SecretFinding {
                kind,
                line: text[..start].matches('\n').count() + 1,
                start,
                end,
            });
        }
        out
    }

    /// Whether `text` holds no secret.
    pub fn is_clean(&self, text: &str) -> bool {
        self.scan(text).is_empty()
    }

    /// `text` with every finding replaced by `[REDACTED: kind]`.
    pub fn redact(&self, text: &str) -> String {
        let findings = self.scan(text);
        if findings.is_empty() {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for f in findings {
            out.push_str(&text[at..f.start]);
            out.push_str("[REDACTED: ");
            out.push_str(f.kind);
            out.push(']');
            at = f.end;
        }
        out.push_str(&text[at..]);
        out
    }

    /// Every string in `value` (keys included) redacted.
    pub fn redact_json(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.redact(s)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.redact_json(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.redact(k), self.redact_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Letters and digits mixed, and enough Shannon entropy (≥ 3 bits per character) to be random
/// rather than a word or an identifier.
fn looks_random(s: &str) -> bool {
    let has_digit = s.chars().any(|c| c.is_ascii_digit());
    let has_alpha = s.chars().any(|c| c.is_ascii_alphabetic());
    has_digit && has_alpha && entropy(s) >= 3.0
}

/// Shannon entropy in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    let mut n = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n as f64;
            -p * p.log2()
        })
        .sum()
}

/// Obvious stand-ins: `${VAR}`, `{{ var }}`, `<your-key>`, `xxxx…`, `changeme`, `example`.
fn is_placeholder(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    lower.starts_with("${")
        || lower.starts_with("{{")
        || lower.starts_with('<')
        || lower.starts_with("env:")
        || [
            "xxxx",
            "****",
            "your",
            "example",
            "changeme",
            "placeholder",
            "dummy",
            "redacted",
        ]
        .iter()
        .any(|w| lower.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(scanner: &SecretScanner, text: &str) -> Vec<&'static str> {
        scanner.scan(text).into_iter().map(|f| f.kind).collect()
    }

    #[test]
    fn every_pattern_compiles() {
        assert_eq!(PATTERNS.len(), 10);
    }

    #[test]
    fn finds_known_shapes() {
        let s = SecretScanner::default();
        let cases: &[(&str, &str)] = &[
            (
                "token = ghp_0123456789abcdefghijABCDEFGHIJ012345",
                "GitHub token",
            ),
            ("ghs_16C7e42F292c6912E7710c838347Ae178B4a", "GitHub token"),
            (
                "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVW",
                "GitHub token",
            ),
            ("AKIAIOSFODNN7EXAMPLE", "AWS access key id"),
            (
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "AWS secret access key",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
                "private key",
            ),
            ("-----BEGIN OPENSSH PRIVATE KEY-----", "private key"),
            ("xoxb-123456789012-abcdefABCDEF", "Slack token"),
            (
                "sk-ant-api03-AbCdEf0123456789AbCdEf0123456789-xyz",
                "Anthropic API key",
            ),
            ("sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12", "OpenAI-style API key"),
            (
                "const API_KEY = \"a8f5f167f44f4964e6c998dee827110c\";",
                "hard-coded credential",
            ),
            (
                "\"client_secret\": \"9Xk2LmQ7pR4sT8vW1yZ3\"",
                "hard-coded credential",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(kinds(&s, text), vec![*want], "{text}");
        }
    }

    #[test]
    fn ignores_ordinary_text() {
        let s = SecretScanner::default();
        for text in [
            "let token = get_token();",
            "api_key = os.environ[\"API_KEY\"]",
            "password = \"${DB_PASSWORD_FROM_ENVIRONMENT}\"",
            "api_key = \"your-api-key-goes-here-1234\"",
            "secret = \"aaaaaaaaaaaaaaaaaaaaaaaa1\"",
            ".sk-spinner-double-bounce-container { }",
            "task-manager-background-worker",
            "ghp_short",
        ] {
            assert!(s.is_clean(text), "{text}");
        }
    }

    #[test]
    fn own_secrets_and_redaction() {
        let s = SecretScanner::new([
            SecretString::from("hunter2-but-longer"),
            SecretString::from("short"),
            SecretString::from(""),
        ]);
        let text = "line one\nthe value is hunter2-but-longer; short is fine";
        let found = s.scan(text);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, OWN_SECRET);
        assert_eq!(found[0].line, 2);
        assert_eq!(found[0].to_string(), "a secret of the bot itself on line 2");
        let red = s.redact(text);
        assert!(!red.contains("hunter2"), "{red}");
        assert!(red.contains("[REDACTED: a secret of the bot itself]"));
        assert!(!format!("{s:?}").contains("hunter2"));

        let json = serde_json::json!({"content": ["x ghp_0123456789abcdefghijABCDEFGHIJ012345"]});
        assert!(!s.redact_json(&json).to_string().contains("ghp_0123"));
    }

    #[test]
    fn multi_line_own_secret_matches_by_line() {
        let key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----";
        let s = SecretScanner::new([SecretString::from(key)]);
        assert!(!s.is_clean("pasted: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"));
    }
}
