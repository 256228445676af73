//! The context gatherer: which repository files the architect wants, and how the issue, its
//! comments and those files become sanitised, fenced prompt blocks within a token budget.
//!
//! Owns: [`wanted_paths`], [`gather`], [`estimate_tokens`] and their input/output types. Pure:
//! the caller lists the tree, fetches the files and the issue, and passes them in.
//!
//! **Priority order** (highest first; lower-priority items are truncated or omitted first):
//!
//! 1. the issue title and body,
//! 2. the human comments on the issue (oldest first),
//! 3. agent instructions (`AGENTS.md`, `CLAUDE.md`, `.github/copilot-instructions.md`),
//! 4. the README,
//! 5. the contributing guide,
//! 6. files named by the repository config's `context` globs,
//! 7. existing specifications (`specs/**`),
//! 8. research notes (`research/**`),
//! 9. documentation (`docs/**`),
//! 10. a compact file tree (a share of the budget is reserved for it).
//!
//! Each block is capped so one large file cannot crowd out the rest (the issue body at half the
//! budget, any other file at a quarter). A cut is always said out loud in the prompt:
//! `[truncated: 12,345 more characters of docs/x.md]`, `[omitted: 7 more documents: …]`.

use serde::{Deserialize, Serialize};

use super::glob::Glob;
use super::sanitize::{fence, label_text, one_line, sanitize, truncate_chars};

/// At most this many paths are returned by [`wanted_paths`].
pub const MAX_WANTED: usize = 60;

/// Extensions of the text files taken from `specs/`, `research/` and `docs/`.
pub const TEXT_EXTENSIONS: &[&str] = &["md", "txt", "rst", "adoc", "yaml", "yml", "json", "mmd"];

/// Extensions never fetched, even when a configured glob matches them.
const BINARY_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "webp", "bmp", "ico", "svg", "pdf", "zip", "gz", "tgz", "bz2",
    "xz", "7z", "tar", "jar", "war", "class", "so", "dll", "dylib", "exe", "bin", "wasm", "o", "a",
    "woff", "woff2", "ttf", "otf", "eot", "mp3", "mp4", "mov", "avi", "webm", "wav", "ogg",
    "sqlite", "db", "psd", "lock",
];

/// Smallest piece of a file worth including, in characters; less is omitted instead.
const MIN_PIECE_CHARS: usize = 400;
/// Characters reserved for the truncation/omission notes.
const NOTES_RESERVE_CHARS: usize = 600;

/// What a repository document is, which decides its priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    /// `README*` at the root.
    Readme,
    /// `CONTRIBUTING*` at the root, in `.github/` or in `docs/`.
    Contributing,
    /// `AGENTS.md`, `CLAUDE.md` (root) and `.github/copilot-instructions.md`.
    AgentInstructions,
    /// `specs/**`.
    Spec,
    /// `research/**`.
    Research,
    /// `docs/**`.
    Docs,
    /// Anything else named by the repository config's `context` globs.
    ConfigContext,
}

impl DocKind {
    /// Classify a repository path (what [`wanted_paths`] would call it).
    pub fn for_path(path: &str) -> DocKind {
        let lower = path.to_ascii_lowercase();
        let name = lower.rsplit('/').next().unwrap_or(&lower);
        let dir = &lower[..lower.len() - name.len()];
        if matches!(
            lower.as_str(),
            "agents.md" | "claude.md" | ".github/copilot-instructions.md"
        ) {
            DocKind::AgentInstructions
        } else if dir.is_empty() && name.starts_with("readme") {
            DocKind::Readme
        } else if matches!(dir, "" | ".github/" | "docs/") && name.starts_with("contributing") {
            DocKind::Contributing
        } else if lower.starts_with("specs/") {
            DocKind::Spec
        } else if lower.starts_with("research/") {
            DocKind::Research
        } else if lower.starts_with("docs/") {
            DocKind::Docs
        } else {
            DocKind::ConfigContext
        }
    }

    /// Position in the priority order (lower comes first).
    pub fn rank(self) -> u8 {
        match self {
            DocKind::AgentInstructions => 0,
            DocKind::Readme => 1,
            DocKind::Contributing => 2,
            DocKind::ConfigContext => 3,
            DocKind::Spec => 4,
            DocKind::Research => 5,
            DocKind::Docs => 6,
        }
    }

    /// How the block is headed in the prompt.
    pub fn heading(self) -> &'static str {
        match self {
            DocKind::AgentInstructions => "Agent instructions",
            DocKind::Readme => "README",
            DocKind::Contributing => "Contributing guide",
            DocKind::ConfigContext => "Context file",
            DocKind::Spec => "Existing specification",
            DocKind::Research => "Research notes",
            DocKind::Docs => "Documentation",
        }
    }
}

/// One fetched repository document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoDoc {
    pub path: String,
    pub kind: DocKind,
    pub text: String,
}

/// Everything the gatherer works from, already fetched by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextInput {
    pub issue_number: u64,
    pub title: String,
    pub body: String,
    /// The issue author's login.
    pub author: String,
    /// Human comments, oldest first: (author login, body).
    pub comments: Vec<(String, String)>,
    pub docs: Vec<RepoDoc>,
    /// Paths of the default branch's files.
    pub tree: Vec<String>,
}

/// One block of prompt context: a trusted heading and a body holding fenced data (plus, where
/// something was cut, a trusted truncation note after the fence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextBlock {
    pub heading: String,
    pub body: String,
}

impl ContextBlock {
    /// `### heading`, a blank line, the body.
    pub fn render(&self) -> String {
        format!("### {}\n\n{}\n", self.heading, self.body)
    }
}

/// All blocks, rendered and separated by blank lines.
pub fn render_blocks(blocks: &[ContextBlock]) -> String {
    blocks
        .iter()
        .map(ContextBlock::render)
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_string()
}

/// Estimated tokens of a text: characters / 4, rounded up.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// `12345` → `12,345`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn extension(path: &str) -> Option<String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty()).then(|| ext.to_ascii_lowercase())
}

fn is_text(path: &str) -> bool {
    extension(path).is_some_and(|e| TEXT_EXTENSIONS.contains(&e.as_str()))
}

fn is_binary(path: &str) -> bool {
    extension(path).is_some_and(|e| BINARY_EXTENSIONS.contains(&e.as_str()))
}

/// Which paths of the default-branch tree the gatherer wants fetched, most important first,
/// at most [`MAX_WANTED`]: `README*` (root), `CONTRIBUTING*` (root, `.github/`, `docs/`),
/// `AGENTS.md`, `CLAUDE.md`, `.github/copilot-instructions.md`, the text files
/// ([`TEXT_EXTENSIONS`]) under `specs/`, `research/` and `docs/`, and whatever the configured
/// globs match (binary files excepted). Invalid globs are ignored (the repo config reports them).
pub fn wanted_paths(tree: &[String], config_globs: &[String]) -> Vec<String> {
    let globs: Vec<Glob> = config_globs.iter().filter_map(|g| Glob::new(g)).collect();
    let mut wanted: Vec<(u8, &String)> = Vec::new();
    for path in tree {
        if path.is_empty() || is_binary(path) {
            continue;
        }
        let kind = DocKind::for_path(path);
        let by_default = match kind {
            DocKind::AgentInstructions | DocKind::Readme | DocKind::Contributing => true,
            DocKind::Spec | DocKind::Research | DocKind::Docs => is_text(path),
            DocKind::ConfigContext => false,
        };
        let configured = globs.iter().any(|g| g.is_match(path));
        if by_default || configured {
            wanted.push((kind.rank(), path));
        }
    }
    wanted.sort_by_key(|(rank, _)| *rank);
    let mut out: Vec<String> = Vec::new();
    for (_, path) in wanted {
        if out.len() >= MAX_WANTED {
            break;
        }
        if !out.contains(path) {
            out.push(path.clone());
        }
    }
    out
}

/// The budget, in characters, as it is spent.
struct Budget {
    left: usize,
}

impl Budget {
    fn take(&mut self, chars: usize) {
        self.left = self.left.saturating_sub(chars);
    }
}

/// Fence `text` under `label`, cut to at most `limit` characters of fenced output. Returns the
/// body (fence plus any note) and whether anything was included at all.
fn fenced_piece(label: &str, path_for_note: &str, text: &str, limit: usize) -> Option<String> {
    let overhead = fence(label, "").chars().count() + 80;
    let total = text.chars().count();
    if total + overhead <= limit {
        return Some(fence(label, text));
    }
    let room = limit.saturating_sub(overhead);
    if room < MIN_PIECE_CHARS.min(total) {
        return None;
    }
    let kept = truncate_chars(text, room);
    let more = total - kept.chars().count();
    Some(format!(
        "{}\n[truncated: {} more characters of {}]",
        fence(label, kept),
        thousands(more),
        label_text(path_for_note, 200)
    ))
}

/// Build the context blocks for the architect within `budget_tokens` (see the module docs for
/// the order and the caps). Everything from the input is sanitised and fenced.
pub fn gather(input: &ContextInput, budget_tokens: usize) -> Vec<ContextBlock> {
    let total = budget_tokens.saturating_mul(4);
    let tree: Vec<String> = input
        .tree
        .iter()
        .map(|p| one_line(p, 300))
        .filter(|p| !p.is_empty())
        .collect();
    let tree_chars: usize = tree.iter().map(|p| p.chars().count() + 1).sum::<usize>() + 120;
    let tree_reserve = tree_chars.min(total / 10);
    let mut budget = Budget {
        left: total.saturating_sub(tree_reserve + NOTES_RESERVE_CHARS),
    };
    let doc_cap = budget.left / 4;
    let mut blocks = vec![issue_block(input, &mut budget)];
    blocks.extend(comments_block(input, &mut budget, doc_cap));
    doc_blocks(input, &mut budget, doc_cap, &mut blocks);
    blocks.extend(tree_block(&tree, budget.left + tree_reserve));
    blocks
}

/// 1. The issue: its title and as much of its body as half the budget holds.
fn issue_block(input: &ContextInput, budget: &mut Budget) -> ContextBlock {
    let title = one_line(&input.title, 500);
    let body = sanitize(&input.body);
    let author = one_line(&input.author, 100);
    let mut issue = fence("issue-title", &title);
    budget.take(issue.chars().count() + 40);
    issue.push_str("\n\n");
    if body.trim().is_empty() {
        issue.push_str("(The issue has no description.)");
    } else {
        let label = format!("issue-body by @{author}");
        let cap = (budget.left / 2).max(MIN_PIECE_CHARS * 2);
        match fenced_piece(&label, "the issue body", &body, cap.min(budget.left)) {
            Some(piece) => {
                budget.take(piece.chars().count());
                issue.push_str(&piece);
            }
            None => issue.push_str(&format!(
                "[omitted: the issue body, {} characters, did not fit the context budget]",
                thousands(body.chars().count())
            )),
        }
    }
    ContextBlock {
        heading: format!("Issue #{}", input.issue_number),
        body: issue,
    }
}

/// 2. The comments, oldest first, until one does not fit; the rest are counted.
fn comments_block(
    input: &ContextInput,
    budget: &mut Budget,
    doc_cap: usize,
) -> Option<ContextBlock> {
    let mut pieces = Vec::new();
    let mut skipped = 0usize;
    for (who, text) in &input.comments {
        let text = sanitize(text);
        if text.trim().is_empty() {
            continue;
        }
        if skipped > 0 {
            skipped += 1;
            continue;
        }
        let label = format!("comment by @{}", one_line(who, 100));
        match fenced_piece(&label, "this comment", &text, doc_cap.min(budget.left)) {
            Some(piece) => {
                budget.take(piece.chars().count() + 2);
                pieces.push(piece);
            }
            None => skipped += 1,
        }
    }
    if skipped > 0 {
        pieces.push(format!("[omitted: {skipped} more comments]"));
    }
    (!pieces.is_empty()).then(|| ContextBlock {
        heading: "Comments on the issue (oldest first)".into(),
        body: pieces.join("\n\n"),
    })
}

/// 3.–9. The repository documents, by priority, until one does not fit; the rest are named.
fn doc_blocks(
    input: &ContextInput,
    budget: &mut Budget,
    doc_cap: usize,
    blocks: &mut Vec<ContextBlock>,
) {
    let mut docs: Vec<&RepoDoc> = input.docs.iter().collect();
    docs.sort_by_key(|d| d.kind.rank());
    let mut omitted: Vec<String> = Vec::new();
    for doc in docs {
        let path = label_text(&doc.path, 300);
        let text = sanitize(&doc.text);
        if text.trim().is_empty() {
            continue;
        }
        let piece = if omitted.is_empty() {
            fenced_piece(&path, &path, &text, doc_cap.min(budget.left))
        } else {
            None
        };
        match piece {
            Some(body) => {
                budget.take(body.chars().count() + path.chars().count() + 30);
                blocks.push(ContextBlock {
                    heading: format!("{}: {}", doc.kind.heading(), path),
                    body,
                });
            }
            None => omitted.push(path),
        }
    }
    if !omitted.is_empty() {
        let shown: Vec<&str> = omitted.iter().take(10).map(String::as_str).collect();
        let mut note = format!(
            "[omitted: {} more documents: {}",
            omitted.len(),
            shown.join(", ")
        );
        if omitted.len() > shown.len() {
            note.push_str(", …");
        }
        note.push(']');
        blocks.push(ContextBlock {
            heading: "Documents left out".into(),
            body: note,
        });
    }
}

/// 10. The file tree, in the `room` left (whatever the rest left plus the tree's reserve).
fn tree_block(tree: &[String], room: usize) -> Option<ContextBlock> {
    if tree.is_empty() {
        return None;
    }
    let room = room.saturating_sub(120);
    let mut listed = String::new();
    let mut count = 0usize;
    for path in tree {
        if listed.len() + path.len() + 1 > room {
            break;
        }
        listed.push_str(path);
        listed.push('\n');
        count += 1;
    }
    let mut body = fence("file-tree", &listed);
    if count < tree.len() {
        body.push_str(&format!(
            "\n[omitted: {} more paths]",
            thousands(tree.len() - count)
        ));
    }
    Some(ContextBlock {
        heading: format!("Repository files ({})", thousands(tree.len())),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn kinds_table() {
        let cases = [
            ("README.md", DocKind::Readme),
            ("readme", DocKind::Readme),
            ("sub/README.md", DocKind::ConfigContext),
            ("CONTRIBUTING.md", DocKind::Contributing),
            (".github/CONTRIBUTING.md", DocKind::Contributing),
            ("docs/CONTRIBUTING.rst", DocKind::Contributing),
            ("AGENTS.md", DocKind::AgentInstructions),
            ("CLAUDE.md", DocKind::AgentInstructions),
            (
                ".github/copilot-instructions.md",
                DocKind::AgentInstructions,
            ),
            ("specs/IMPLEMENT-1.md", DocKind::Spec),
            ("research/a/b.md", DocKind::Research),
            ("docs/guide.md", DocKind::Docs),
            ("src/main.rs", DocKind::ConfigContext),
        ];
        for (path, kind) in cases {
            assert_eq!(DocKind::for_path(path), kind, "{path}");
        }
    }

    #[test]
    fn wanted_paths_in_priority_order() {
        let tree = s(&[
            "docs/guide.md",
            "docs/logo.png",
            "docs/data.bin",
            "src/main.rs",
            "src/api/routes.rs",
            "src/api/logo.png",
            "research/notes.md",
            "specs/IMPLEMENT-1.md",
            "specs/IMPLEMENT-1.diagram.mmd",
            "README.md",
            "CONTRIBUTING.md",
            "AGENTS.md",
            "sub/AGENTS.md",
            "Cargo.lock",
        ]);
        let got = wanted_paths(&tree, &s(&["src/api/**", "../etc/passwd", "Cargo.lock"]));
        assert_eq!(
            got,
            s(&[
                "AGENTS.md",
                "README.md",
                "CONTRIBUTING.md",
                "src/api/routes.rs",
                "specs/IMPLEMENT-1.md",
                "specs/IMPLEMENT-1.diagram.mmd",
                "research/notes.md",
                "docs/guide.md",
            ])
        );
    }

    #[test]
    fn wanted_paths_is_capped() {
        let tree: Vec<String> = (0..500).map(|i| format!("docs/{i}.md")).collect();
        assert_eq!(wanted_paths(&tree, &[]).len(), MAX_WANTED);
    }

    #[test]
    fn estimate_and_thousands() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(12345), "12,345");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    fn sample() -> ContextInput {
        ContextInput {
            issue_number: 7,
            title: "Add rate limiting".into(),
            body: "Limit requests per user.".into(),
            author: "alice".into(),
            comments: vec![("bob".into(), "Per IP too?".into())],
            docs: vec![
                RepoDoc {
                    path: "docs/big.md".into(),
                    kind: DocKind::Docs,
                    text: "d".repeat(100_000),
                },
                RepoDoc {
                    path: "AGENTS.md".into(),
                    kind: DocKind::AgentInstructions,
                    text: "Use tokio.".into(),
                },
                RepoDoc {
                    path: "README.md".into(),
                    kind: DocKind::Readme,
                    text: "The app.".into(),
                },
            ],
            tree: s(&["README.md", "AGENTS.md", "docs/big.md", "src/main.rs"]),
        }
    }

    #[test]
    fn gather_orders_by_priority() {
        let blocks = gather(&sample(), 100_000);
        let headings: Vec<&str> = blocks.iter().map(|b| b.heading.as_str()).collect();
        assert_eq!(
            headings,
            [
                "Issue #7",
                "Comments on the issue (oldest first)",
                "Agent instructions: AGENTS.md",
                "README: README.md",
                "Documentation: docs/big.md",
                "Repository files (4)",
            ]
        );
        assert!(blocks[4].body.contains(&"d".repeat(90_000)));
    }

    #[test]
    fn gather_truncates_lower_priority_first() {
        let text = rendered_within(&sample(), 4_000);
        assert!(text.contains("Use tokio."));
        assert!(text.contains("Per IP too?"));
        assert!(text.contains("[truncated: "), "{text}");
        assert!(text.contains("more characters of docs/big.md]"));
    }

    /// The gathered blocks rendered, checked to stay near the budget.
    fn rendered_within(input: &ContextInput, budget: usize) -> String {
        let text = render_blocks(&gather(input, budget));
        let tokens = estimate_tokens(&text);
        assert!(tokens <= budget + 200, "{tokens}");
        text
    }

    #[test]
    fn gather_omits_and_says_so() {
        let mut input = sample();
        for i in 0..7 {
            input.docs.push(RepoDoc {
                path: format!("research/{i}.md"),
                kind: DocKind::Research,
                text: "r".repeat(20_000),
            });
        }
        let text = rendered_within(&input, 3_000);
        assert!(text.contains("[omitted: "), "{text}");
        assert!(text.contains("more documents: "));
    }

    #[test]
    fn gather_with_tiny_budget_does_not_panic() {
        for budget in [0, 1, 10, 100] {
            let blocks = gather(&sample(), budget);
            assert_eq!(blocks[0].heading, "Issue #7");
        }
    }

    #[test]
    fn hostile_inputs_stay_within_budget() {
        let huge = [
            "<".repeat(1 << 20),
            "<!--".repeat(1 << 18),
            "<!-".repeat(1 << 18) + "-->",
            "\u{200B}".repeat(1 << 18),
            "</untrusted-data>".repeat(1 << 14),
            "\r".repeat(1 << 20),
        ];
        for text in &huge {
            let input = ContextInput {
                issue_number: 1,
                title: text.clone(),
                body: text.clone(),
                author: text.chars().take(50).collect(),
                comments: vec![(String::new(), text.clone()); 3],
                docs: vec![RepoDoc {
                    path: text.chars().take(400).collect(),
                    kind: DocKind::Docs,
                    text: text.clone(),
                }],
                tree: vec![text.chars().take(1_000).collect(); 100],
            };
            let rendered = render_blocks(&gather(&input, 10_000));
            assert!(
                estimate_tokens(&rendered) <= 10_000 + 500,
                "{}",
                estimate_tokens(&rendered)
            );
            assert_eq!(
                rendered.matches("<untrusted-data ").count(),
                rendered.matches("</untrusted-data>").count()
            );
        }
    }

    #[test]
    fn tree_is_listed_with_omission_note() {
        let mut input = sample();
        input.docs.clear();
        input.tree = (0..10_000)
            .map(|i| format!("src/module_{i}/file.rs"))
            .collect();
        let blocks = gather(&input, 2_000);
        let last = blocks.last().map(|b| b.body.clone()).unwrap_or_default();
        assert!(last.contains("[omitted: "), "{last}");
        assert!(last.contains("more paths]"));
    }
}
