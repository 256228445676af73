//! State of the GitHub simulator: repositories with their git objects and refs, issues and pull
//! requests (one number sequence per repo, global ids), comments, reactions, labels, reviews,
//! sub-issues, dependencies, permissions, checks, installation tokens, and the logs (requests,
//! violations). Also the shared operations that both the HTTP routes and the Rust API use.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::faults::FaultRule;
use super::git::{Commit, Flat, ObjectStore, Signature};
use super::openapi::Violation;

/// One request as the simulator saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    /// Path with its query string.
    pub path: String,
    /// The OpenAPI route template it matched, if any.
    pub route: Option<String>,
    /// Status answered; 0 for a request that was left hanging.
    pub status: u16,
}

#[derive(Clone, Debug)]
pub struct Token {
    pub installation_id: u64,
    pub expires_at: i64,
}

#[derive(Clone, Debug)]
pub struct Reaction {
    pub id: u64,
    pub user: String,
    pub content: String,
    pub created_at: i64,
}

#[derive(Clone, Debug)]
pub struct Label {
    pub id: u64,
    pub name: String,
    pub color: String,
    pub description: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Pull {
    pub head_ref: String,
    /// Last known head sha (kept when the branch is deleted).
    pub head_sha: String,
    pub base_ref: String,
    pub base_sha: String,
    pub merged: bool,
    pub merged_at: Option<i64>,
    pub merged_by: Option<String>,
    pub merge_commit_sha: Option<String>,
    pub draft: bool,
    pub maintainer_can_modify: bool,
}

#[derive(Clone, Debug)]
pub struct Issue {
    pub id: u64,
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    pub user: String,
    pub state: String,
    pub state_reason: Option<String>,
    pub labels: Vec<String>,
    pub assignees: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
    pub closed_by: Option<String>,
    pub reactions: Vec<Reaction>,
    pub parent: Option<u64>,
    pub sub_issues: Vec<u64>,
    pub blocked_by: Vec<u64>,
    pub pull: Option<Pull>,
    /// A locked conversation: the App may not comment or react on it.
    pub locked: bool,
}

#[derive(Clone, Debug)]
pub struct Comment {
    pub id: u64,
    pub issue: u64,
    pub user: String,
    pub body: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub reactions: Vec<Reaction>,
    /// Earlier bodies, oldest first (one per edit).
    pub history: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Review {
    pub id: u64,
    pub pull: u64,
    pub user: String,
    /// `APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`, `DISMISSED`, `PENDING`.
    pub state: String,
    pub body: String,
    pub commit_id: String,
    pub submitted_at: i64,
}

#[derive(Clone, Debug)]
pub struct ReviewComment {
    pub id: u64,
    pub pull: u64,
    pub review_id: Option<u64>,
    pub in_reply_to: Option<u64>,
    pub user: String,
    pub body: String,
    pub path: String,
    pub line: Option<u64>,
    pub commit_id: String,
    pub created_at: i64,
}

#[derive(Clone, Debug)]
pub struct CheckSuite {
    pub id: u64,
    pub head_sha: String,
    pub head_branch: Option<String>,
    /// The suite belongs to the App under test (GitHub keeps one suite per App and commit);
    /// otherwise to the CI system (GitHub Actions).
    pub by_app: bool,
}

/// An annotation of a check run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    pub path: String,
    pub start_line: u64,
    pub end_line: u64,
    /// `notice`, `warning` or `failure`.
    pub level: String,
    pub title: Option<String>,
    pub message: String,
}

#[derive(Clone, Debug)]
pub struct CheckRun {
    pub id: u64,
    pub suite: u64,
    pub head_sha: String,
    pub name: String,
    pub conclusion: Option<String>,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub text: Option<String>,
    pub annotations: Vec<Annotation>,
    pub started_at: i64,
    /// The GitHub Actions job log (timestamped lines); `None` once it expired (`410`).
    pub log: Option<String>,
    /// Made by the App under test through the checks API (only it may update the run); else a
    /// GitHub Actions job a test added.
    pub by_app: bool,
    /// `queued`, `in_progress` or `completed` (completed whenever there is a conclusion).
    pub status: String,
    pub external_id: String,
    pub completed_at: Option<i64>,
}

#[derive(Debug)]
pub struct Repo {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub default_branch: String,
    pub private: bool,
    pub created_at: i64,
    pub objects: ObjectStore,
    /// Full ref name (`refs/heads/main`) → commit sha.
    pub refs: BTreeMap<String, String>,
    pub next_number: u64,
    pub issues: BTreeMap<u64, Issue>,
    pub comments: BTreeMap<u64, Comment>,
    pub labels: BTreeMap<String, Label>,
    pub permissions: BTreeMap<String, String>,
    pub reviews: BTreeMap<u64, Review>,
    pub review_comments: BTreeMap<u64, ReviewComment>,
    pub check_suites: BTreeMap<u64, CheckSuite>,
    pub check_runs: BTreeMap<u64, CheckRun>,
}

impl Repo {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    pub fn branch_sha(&self, branch: &str) -> Option<String> {
        self.refs.get(&format!("refs/heads/{branch}")).cloned()
    }

    /// Resolves a branch, tag, `heads/x`, `refs/heads/x` or (abbreviated) commit sha to a commit.
    pub fn resolve(&self, r: &str) -> Option<String> {
        let r = r.trim_start_matches("refs/");
        for candidate in [
            format!("refs/{r}"),
            format!("refs/heads/{r}"),
            format!("refs/tags/{r}"),
        ] {
            if let Some(s) = self.refs.get(&candidate) {
                return Some(s.clone());
            }
        }
        let sha = self.objects.expand(r)?;
        self.objects.commit(&sha).map(|_| sha)
    }

    /// The root tree of a commit.
    pub fn tree_of(&self, commit: &str) -> Option<String> {
        self.objects.commit(commit).map(|c| c.tree.clone())
    }

    pub fn file_at(&self, r: &str, path: &str) -> Option<Vec<u8>> {
        let commit = self.resolve(r)?;
        let tree = self.tree_of(&commit)?;
        let entry = self.objects.lookup(&tree, path)?;
        self.objects.blob(&entry.sha).map(<[u8]>::to_vec)
    }

    /// The pull request whose head is `branch` and that is open.
    pub fn open_pull_for_head(&self, branch: &str) -> Option<u64> {
        self.issues
            .values()
            .find(|i| i.state == "open" && i.pull.as_ref().is_some_and(|p| p.head_ref == branch))
            .map(|i| i.number)
    }

    /// Live head sha of a pull (the branch when it still exists).
    pub fn pull_head_sha(&self, p: &Pull) -> String {
        self.branch_sha(&p.head_ref)
            .unwrap_or_else(|| p.head_sha.clone())
    }
}

/// The whole simulated GitHub.
#[derive(Debug)]
pub struct State {
    pub app_id: u64,
    pub app_slug: String,
    pub app_owner: String,
    pub installation_id: u64,
    pub installation_account: String,
    /// The world's clock (Unix seconds): the real time at the world's start, then one second
    /// a step, so that the order of everything it stamps is deterministic.
    pub clock: i64,
    next_id: u64,
    pub repos: BTreeMap<String, Repo>,
    pub tokens: HashMap<String, Token>,
    pub mints: BTreeMap<u64, usize>,
    pub manifest_codes: BTreeSet<String>,
    pub registered_manifests: Vec<super::routes_web::RegisteredManifest>,
    pub violations: Vec<Violation>,
    pub response_problems: Vec<Violation>,
    pub requests: Vec<RequestRecord>,
    pub faults: Vec<FaultRule>,
    pub rate_reset: i64,
    /// The primary rate limit: requests per window, the window's length (seconds) and the
    /// requests made in the current window. Over the limit every request answers 403.
    pub rate_limit: u64,
    pub rate_window: i64,
    pub rate_used: u64,
    /// A recursive tree with more entries than this comes back `truncated` (GitHub's limit is
    /// 100,000 entries or 7 MB).
    pub tree_entry_limit: usize,
    /// The permissions the installation granted the App, as its manifest asks (tests take
    /// `actions: read` away or lower `checks` to `read`, as for an installation that has not
    /// accepted a new permission yet).
    pub app_permissions: BTreeMap<String, String>,
}

impl State {
    pub fn new() -> Self {
        State {
            app_id: 424_242,
            app_slug: "specbot".into(),
            app_owner: "acme".into(),
            installation_id: 4_242_001,
            installation_account: "acme".into(),
            // The world starts at the real time, as github.com's timestamps do: the bot reads
            // its own clock beside them (a comment older than the deliveries it keeps is a
            // replay). From there the clock moves one second a step, whatever the wall does.
            clock: super::git::now(),
            next_id: 1_000,
            repos: BTreeMap::new(),
            tokens: HashMap::new(),
            mints: BTreeMap::new(),
            manifest_codes: BTreeSet::new(),
            registered_manifests: Vec::new(),
            violations: Vec::new(),
            response_problems: Vec::new(),
            requests: Vec::new(),
            faults: Vec::new(),
            rate_reset: super::git::now() + 3600,
            rate_limit: 5000,
            rate_window: 3600,
            rate_used: 0,
            tree_entry_limit: 100_000,
            app_permissions: [
                ("actions", "read"),
                ("checks", "write"),
                ("contents", "write"),
                ("issues", "write"),
                ("metadata", "read"),
                ("pull_requests", "write"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        }
    }

    /// Advances the simulated clock by one second and returns it.
    pub fn tick(&mut self) -> i64 {
        self.clock += 1;
        self.clock
    }

    /// A fresh global id (issues, comments, reviews, reactions, labels, checks… share it).
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn bot_login(&self) -> String {
        format!("{}[bot]", self.app_slug)
    }

    /// A stable id for a login (derived from the login itself).
    pub fn user_id(&self, login: &str) -> u64 {
        super::json::user_id(login)
    }

    pub fn repo(&self, full: &str) -> Option<&Repo> {
        self.repos.get(&full.to_ascii_lowercase())
    }

    pub fn repo_mut(&mut self, full: &str) -> Option<&mut Repo> {
        self.repos.get_mut(&full.to_ascii_lowercase())
    }

    pub fn add_repo(&mut self, full: &str) -> &mut Repo {
        let (owner, name) = full.split_once('/').expect("repo as owner/name");
        let id = self.next_id();
        let t = self.tick();
        let mut repo = Repo {
            id,
            owner: owner.into(),
            name: name.into(),
            default_branch: "main".into(),
            private: false,
            created_at: t,
            objects: ObjectStore::default(),
            refs: BTreeMap::new(),
            next_number: 1,
            issues: BTreeMap::new(),
            comments: BTreeMap::new(),
            labels: BTreeMap::new(),
            permissions: BTreeMap::new(),
            reviews: BTreeMap::new(),
            review_comments: BTreeMap::new(),
            check_suites: BTreeMap::new(),
            check_runs: BTreeMap::new(),
        };
        repo.permissions
            .insert(owner.to_ascii_lowercase(), "admin".into());
        let mut flat = Flat::new();
        let readme = format!("# {name}\n");
        let blob = repo.objects.put_blob(readme.as_bytes());
        flat.insert("README.md".into(), ("100644".into(), blob));
        let tree = repo.objects.build(&flat);
        let sig = Signature {
            name: owner.into(),
            email: format!("{owner}@users.noreply.github.com"),
            date: t,
        };
        let sha = repo.objects.put_commit(Commit {
            tree,
            parents: vec![],
            author: sig.clone(),
            committer: sig,
            message: "Initial commit".into(),
        });
        repo.refs.insert("refs/heads/main".into(), sha);
        self.repos.insert(full.to_ascii_lowercase(), repo);
        self.repo_mut(full).expect("just added")
    }

    /// Commits `changes` (path → Some(content) or None to delete) on top of `branch` as `author`
    /// and moves the branch (creating it from the default branch if missing). Returns the sha.
    pub fn commit_files(
        &mut self,
        full: &str,
        branch: &str,
        changes: &[(&str, Option<&[u8]>)],
        message: &str,
        author: &str,
    ) -> String {
        let t = self.tick();
        let repo = self.repo_mut(full).expect("unknown repo");
        let parent = repo
            .branch_sha(branch)
            .or_else(|| repo.branch_sha(&repo.default_branch.clone()))
            .expect("default branch exists");
        let base_tree = repo.tree_of(&parent).expect("commit has a tree");
        let mut flat = repo.objects.flatten(&base_tree);
        for (path, content) in changes {
            match content {
                Some(c) => {
                    let sha = repo.objects.put_blob(c);
                    flat.insert((*path).to_string(), ("100644".into(), sha));
                }
                None => {
                    flat.remove(*path);
                }
            }
        }
        let tree = repo.objects.build(&flat);
        let sig = Signature {
            name: author.into(),
            email: format!("{author}@users.noreply.github.com"),
            date: t,
        };
        let sha = repo.objects.put_commit(Commit {
            tree,
            parents: vec![parent],
            author: sig.clone(),
            committer: sig,
            message: message.into(),
        });
        repo.refs
            .insert(format!("refs/heads/{branch}"), sha.clone());
        sha
    }

    /// Creates an issue (or, with `pull`, a pull request) and returns its number.
    pub fn new_issue(
        &mut self,
        full: &str,
        title: &str,
        body: Option<&str>,
        author: &str,
        pull: Option<Pull>,
    ) -> u64 {
        let id = self.next_id();
        let t = self.tick();
        let repo = self.repo_mut(full).expect("unknown repo");
        let number = repo.next_number;
        repo.next_number += 1;
        repo.issues.insert(
            number,
            Issue {
                id,
                number,
                title: title.into(),
                body: body.map(String::from),
                user: author.into(),
                state: "open".into(),
                state_reason: None,
                labels: vec![],
                assignees: vec![],
                created_at: t,
                updated_at: t,
                closed_at: None,
                closed_by: None,
                reactions: vec![],
                parent: None,
                sub_issues: vec![],
                blocked_by: vec![],
                pull,
                locked: false,
            },
        );
        number
    }

    pub fn new_comment(
        &mut self,
        full: &str,
        number: u64,
        author: &str,
        body: &str,
    ) -> Option<u64> {
        let id = self.next_id();
        let t = self.tick();
        let repo = self.repo_mut(full)?;
        let issue = repo.issues.get_mut(&number)?;
        issue.updated_at = t;
        repo.comments.insert(
            id,
            Comment {
                id,
                issue: number,
                user: author.into(),
                body: body.into(),
                created_at: t,
                updated_at: t,
                reactions: vec![],
                history: vec![],
            },
        );
        Some(id)
    }

    /// Makes sure a label exists in the repo; returns its canonical name.
    pub fn ensure_label(&mut self, full: &str, name: &str) -> String {
        let id = self.next_id();
        let repo = self.repo_mut(full).expect("unknown repo");
        repo.labels
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| Label {
                id,
                name: name.into(),
                color: "ededed".into(),
                description: None,
            })
            .name
            .clone()
    }

    /// Adds a reaction (idempotent per user + content). Returns (id, created).
    pub fn react(
        &mut self,
        full: &str,
        target: ReactionTarget,
        user: &str,
        content: &str,
    ) -> Option<(u64, bool)> {
        let id = self.next_id();
        let t = self.tick();
        let repo = self.repo_mut(full)?;
        let list = match target {
            ReactionTarget::Issue(n) => &mut repo.issues.get_mut(&n)?.reactions,
            ReactionTarget::Comment(c) => &mut repo.comments.get_mut(&c)?.reactions,
        };
        if let Some(r) = list.iter().find(|r| r.user == user && r.content == content) {
            return Some((r.id, false));
        }
        list.push(Reaction {
            id,
            user: user.into(),
            content: content.into(),
            created_at: t,
        });
        Some((id, true))
    }

    /// Effective permission (`admin|write|read|none`) and role name of a login on a repo.
    pub fn permission(&self, full: &str, login: &str) -> (String, String) {
        let role = self
            .repo(full)
            .and_then(|r| r.permissions.get(&login.to_ascii_lowercase()).cloned())
            .unwrap_or_else(|| "none".into());
        let permission = match role.as_str() {
            "admin" => "admin",
            "maintain" | "write" => "write",
            "triage" | "read" => "read",
            _ => "none",
        };
        (permission.into(), role)
    }
}

#[derive(Clone, Copy, Debug)]
pub enum ReactionTarget {
    Issue(u64),
    Comment(u64),
}
