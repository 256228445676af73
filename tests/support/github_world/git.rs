//! Git object store of the GitHub simulator: blobs, trees and commits hashed with SHA-1 over git's
//! own object encoding (so SHAs match what `git hash-object` would say), tree flattening and
//! rebuilding for `base_tree` edits, and the simulator's deterministic clock and date formatting.

use std::collections::{BTreeMap, HashMap};

use sha1::{Digest, Sha1};

/// A git object as stored by the simulator.
#[derive(Clone, Debug)]
pub enum Object {
    Blob(Vec<u8>),
    Tree(Vec<TreeEntry>),
    Commit(Commit),
}

/// One entry of a tree. `mode` is GitHub's spelling: `100644`, `100755`, `040000`, `120000`, `160000`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeEntry {
    pub mode: String,
    pub name: String,
    pub sha: String,
}

impl TreeEntry {
    pub fn kind(&self) -> &'static str {
        match self.mode.as_str() {
            "040000" => "tree",
            "160000" => "commit",
            _ => "blob",
        }
    }
}

/// An author or committer line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub email: String,
    /// Seconds since the Unix epoch, UTC.
    pub date: i64,
}

#[derive(Clone, Debug)]
pub struct Commit {
    pub tree: String,
    pub parents: Vec<String>,
    pub author: Signature,
    pub committer: Signature,
    pub message: String,
}

/// A flattened tree: path → (mode, sha) of every non-tree entry.
pub type Flat = BTreeMap<String, (String, String)>;

/// Content-addressed store of one repository's objects.
#[derive(Default, Debug)]
pub struct ObjectStore {
    objects: HashMap<String, Object>,
}

fn hash(kind: &str, data: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("{kind} {}\0", data.len()).as_bytes());
    h.update(data);
    hex::encode(h.finalize())
}

fn sort_key(e: &TreeEntry) -> Vec<u8> {
    let mut k = e.name.as_bytes().to_vec();
    if e.mode == "040000" {
        k.push(b'/');
    }
    k
}

fn encode_tree(entries: &[TreeEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mode = if e.mode == "040000" {
            "40000"
        } else {
            e.mode.as_str()
        };
        out.extend_from_slice(format!("{mode} {}\0", e.name).as_bytes());
        out.extend_from_slice(&hex::decode(&e.sha).expect("tree entry sha is hex"));
    }
    out
}

fn encode_sig(s: &Signature) -> String {
    format!("{} <{}> {} +0000", s.name, s.email, s.date)
}

fn encode_commit(c: &Commit) -> Vec<u8> {
    let mut s = format!("tree {}\n", c.tree);
    for p in &c.parents {
        s.push_str(&format!("parent {p}\n"));
    }
    s.push_str(&format!("author {}\n", encode_sig(&c.author)));
    s.push_str(&format!("committer {}\n", encode_sig(&c.committer)));
    s.push('\n');
    s.push_str(&c.message);
    s.into_bytes()
}

impl ObjectStore {
    pub fn get(&self, sha: &str) -> Option<&Object> {
        self.objects.get(sha)
    }

    pub fn contains(&self, sha: &str) -> bool {
        self.objects.contains_key(sha)
    }

    /// Finds an object by a unique hex prefix of at least 4 characters.
    pub fn expand(&self, prefix: &str) -> Option<String> {
        if prefix.len() == 40 {
            return self.contains(prefix).then(|| prefix.to_string());
        }
        if prefix.len() < 4 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let mut hits = self.objects.keys().filter(|k| k.starts_with(prefix));
        let first = hits.next()?.clone();
        hits.next().is_none().then_some(first)
    }

    pub fn put_blob(&mut self, data: &[u8]) -> String {
        let sha = hash("blob", data);
        self.objects
            .entry(sha.clone())
            .or_insert_with(|| Object::Blob(data.to_vec()));
        sha
    }

    pub fn put_tree(&mut self, mut entries: Vec<TreeEntry>) -> String {
        entries.sort_by_key(sort_key);
        let sha = hash("tree", &encode_tree(&entries));
        self.objects
            .entry(sha.clone())
            .or_insert(Object::Tree(entries));
        sha
    }

    pub fn put_commit(&mut self, c: Commit) -> String {
        let sha = hash("commit", &encode_commit(&c));
        self.objects.entry(sha.clone()).or_insert(Object::Commit(c));
        sha
    }

    pub fn blob(&self, sha: &str) -> Option<&[u8]> {
        match self.objects.get(sha) {
            Some(Object::Blob(b)) => Some(b),
            _ => None,
        }
    }

    pub fn tree(&self, sha: &str) -> Option<&[TreeEntry]> {
        match self.objects.get(sha) {
            Some(Object::Tree(t)) => Some(t),
            _ => None,
        }
    }

    pub fn commit(&self, sha: &str) -> Option<&Commit> {
        match self.objects.get(sha) {
            Some(Object::Commit(c)) => Some(c),
            _ => None,
        }
    }

    /// Every non-tree entry under `tree`, keyed by its full path.
    pub fn flatten(&self, tree: &str) -> Flat {
        let mut out = Flat::new();
        self.flatten_into(tree, "", &mut out);
        out
    }

    fn flatten_into(&self, tree: &str, prefix: &str, out: &mut Flat) {
        for e in self.tree(tree).unwrap_or(&[]) {
            let path = format!("{prefix}{}", e.name);
            if e.mode == "040000" {
                self.flatten_into(&e.sha, &format!("{path}/"), out);
            } else {
                out.insert(path, (e.mode.clone(), e.sha.clone()));
            }
        }
    }

    /// Builds (and stores) the trees for a flattened listing; returns the root tree's sha.
    pub fn build(&mut self, flat: &Flat) -> String {
        let mut files: Vec<TreeEntry> = Vec::new();
        let mut dirs: BTreeMap<String, Flat> = BTreeMap::new();
        for (path, (mode, sha)) in flat {
            match path.split_once('/') {
                Some((dir, rest)) => {
                    dirs.entry(dir.to_string())
                        .or_default()
                        .insert(rest.to_string(), (mode.clone(), sha.clone()));
                }
                None => files.push(TreeEntry {
                    mode: mode.clone(),
                    name: path.clone(),
                    sha: sha.clone(),
                }),
            }
        }
        for (name, sub) in dirs {
            let sha = self.build(&sub);
            files.push(TreeEntry {
                mode: "040000".into(),
                name,
                sha,
            });
        }
        self.put_tree(files)
    }

    /// The entry at `path` (no leading slash) under `tree`; `""` is the tree itself.
    pub fn lookup(&self, tree: &str, path: &str) -> Option<TreeEntry> {
        let path = path.trim_matches('/');
        if path.is_empty() {
            return Some(TreeEntry {
                mode: "040000".into(),
                name: String::new(),
                sha: tree.to_string(),
            });
        }
        let mut current = tree.to_string();
        let mut parts = path.split('/').peekable();
        while let Some(part) = parts.next() {
            let entry = self
                .tree(&current)?
                .iter()
                .find(|e| e.name == part)?
                .clone();
            if parts.peek().is_none() {
                return Some(entry);
            }
            if entry.mode != "040000" {
                return None;
            }
            current = entry.sha;
        }
        None
    }

    /// First-parent history from `sha`, newest first.
    pub fn history(&self, sha: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = Some(sha.to_string());
        while let Some(s) = cur {
            let Some(c) = self.commit(&s) else { break };
            cur = c.parents.first().cloned();
            out.push(s);
        }
        out
    }

    /// True when `ancestor` is reachable from `descendant` (any parent).
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> bool {
        let mut todo = vec![descendant.to_string()];
        let mut seen = std::collections::HashSet::new();
        while let Some(s) = todo.pop() {
            if s == ancestor {
                return true;
            }
            if !seen.insert(s.clone()) {
                continue;
            }
            if let Some(c) = self.commit(&s) {
                todo.extend(c.parents.iter().cloned());
            }
        }
        false
    }
}

/// `2026-01-01T00:00:00Z` for a Unix time.
pub fn iso(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS` with `Z` or a `±HH:MM` offset.
pub fn parse_iso(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "" | "Z" => 0,
        _ => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Real wall-clock seconds (used only for tokens and JWTs, which clients compare to their clock).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
