//! A component of a spec: one follow-up issue each.
//!
//! Owns: [`Component`], its stable [`slugify`]d identity, which components can be built side by
//! side ([`parallel_components`]) and the permalink its issue links the spec by
//! ([`spec_permalink`]). The issue itself is written by `messages::component_issue_body`.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// One component of the design.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    pub title: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub acceptance_criteria: Vec<String>,
    /// Titles of the components this one depends on.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Why it needs each of them first, by the title as written in `depends_on` (where the
    /// model said; older answers name titles only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dependency_reasons: BTreeMap<String, String>,
    /// The acceptance criterion IDs (`AC-1.2`) this component satisfies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub covers: Vec<String>,
    /// Files or modules it touches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub touches: Vec<String>,
    /// Tests it adds, each citing the criteria it checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<String>,
}

/// Longest slug, in bytes (before the hash suffix of a non-ASCII title).
const MAX_SLUG: usize = 60;

/// A stable, marker-safe identifier from a title: lowercase ASCII letters and digits, runs of
/// anything else as one `-`, at most 60 characters, trimmed of `-`. A title with no ASCII letter
/// or digit (`"日本語"`) becomes `c-` and 16 hex digits of its FNV-1a hash; a title with some
/// non-ASCII letters gets 8 hex digits of that hash appended (`"Çafé"` ≠ `"Cafe"`), so slugs stay
/// stable and distinct. Titles that differ only in case or punctuation share a slug.
pub fn slugify(title: &str) -> String {
    let mut slug = String::new();
    let mut dash = false;
    for c in title.trim().chars() {
        if c.is_ascii_alphanumeric() {
            if dash && !slug.is_empty() {
                slug.push('-');
            }
            dash = false;
            slug.push(c.to_ascii_lowercase());
            if slug.len() >= MAX_SLUG {
                break;
            }
        } else {
            dash = true;
        }
    }
    let non_ascii = title.chars().any(|c| c.is_alphanumeric() && !c.is_ascii());
    if slug.is_empty() || non_ascii {
        let hash = fnv1a(title.trim().to_lowercase().as_bytes());
        if slug.is_empty() {
            return format!("c-{hash:016x}");
        }
        return format!("{slug}-{:08x}", hash >> 32);
    }
    slug
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The address of the spec file at a commit: `{html_url}/blob/{commit}/{path}`, with the
/// repository's own web address (`html_url` as GitHub gives it, so GitHub Enterprise Server
/// links to itself). A permalink: the file is on the spec branch long before it reaches the
/// default branch, and links into it keep pointing at the text they quoted.
pub fn spec_permalink(html_url: &str, commit: &str, spec_path: &str) -> String {
    let path: Vec<String> = spec_path
        .split('/')
        .map(|seg| {
            url::form_urlencoded::byte_serialize(seg.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        })
        .collect();
    format!(
        "{}/blob/{commit}/{}",
        html_url.trim_end_matches('/'),
        path.join("/")
    )
}

/// For each component, the indices of the others it can be built alongside: no chain of
/// `depends_on` leads from either to the other. Dependencies are matched by slug, as
/// [`super::dependency_order`] matches them; unknown ones are ignored.
pub fn parallel_components(components: &[Component]) -> Vec<Vec<usize>> {
    let n = components.len();
    let mut by_slug: HashMap<String, usize> = HashMap::new();
    for (i, c) in components.iter().enumerate() {
        by_slug.entry(c.slug()).or_insert(i);
    }
    // needs[i][j]: i depends on j, directly or through others.
    let mut needs = vec![vec![false; n]; n];
    for (i, c) in components.iter().enumerate() {
        for d in &c.depends_on {
            if let Some(&j) = by_slug.get(&slugify(d)) {
                needs[i][j] = true;
            }
        }
    }
    for k in 0..n {
        let via = needs[k].clone();
        for row in needs.iter_mut().filter(|row| row[k]) {
            for (need, more) in row.iter_mut().zip(&via) {
                *need |= *more;
            }
        }
    }
    (0..n)
        .map(|i| {
            (0..n)
                .filter(|&j| j != i && !needs[i][j] && !needs[j][i])
                .collect()
        })
        .collect()
}

impl Component {
    /// See [`slugify`].
    pub fn slug(&self) -> String {
        slugify(&self.title)
    }

    /// Why this component needs `dependency` first, if the model said.
    pub fn reason_for(&self, dependency: &str) -> Option<&str> {
        let reason = self.dependency_reasons.get(dependency).or_else(|| {
            let slug = slugify(dependency);
            self.dependency_reasons
                .iter()
                .find(|(title, _)| slugify(title) == slug)
                .map(|(_, reason)| reason)
        })?;
        Some(reason.as_str()).filter(|r| !r.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_table() {
        let cases = [
            ("Auth Service", "auth-service"),
            ("  auth   service!! ", "auth-service"),
            ("Auth-Service", "auth-service"),
            ("API v2: /users endpoint", "api-v2-users-endpoint"),
        ];
        for (title, want) in cases {
            assert_eq!(slugify(title), want, "{title}");
        }
        let accented = slugify("Ünïcode Çafé");
        assert!(
            accented.starts_with("n-code-af-") && accented.len() == 18,
            "{accented}"
        );
        assert_ne!(slugify("Çafé"), slugify("Cafe"));
        let cjk = slugify("日本語");
        assert!(cjk.starts_with("c-") && cjk.len() == 18, "{cjk}");
        assert_ne!(cjk, slugify("中文"));
        assert!(slugify(&"x".repeat(500)).len() <= MAX_SLUG);
        assert!(slugify("").starts_with("c-"));
    }

    #[test]
    fn components_with_no_dependency_path_either_way_run_in_parallel() {
        let comp = |title: &str, deps: &[&str]| Component {
            title: title.into(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            ..Component::default()
        };
        // tokens ← toggle → profile; docs alone; audit → toggle (so → tokens, → profile too).
        let components = [
            comp("Tokens", &[]),
            comp("Profile", &[]),
            comp("Toggle", &["tokens", "Profile"]),
            comp("Docs", &[]),
            comp("Audit", &["Toggle", "Unknown"]),
        ];
        let parallel = parallel_components(&components);
        assert_eq!(parallel[0], [1, 3]);
        assert_eq!(parallel[1], [0, 3]);
        assert_eq!(parallel[2], [3]);
        assert_eq!(parallel[3], [0, 1, 2, 4]);
        assert_eq!(parallel[4], [3]);
    }
}
