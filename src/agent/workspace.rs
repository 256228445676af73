//! The workspace: a private on-disk snapshot of the base ref, unpacked from GitHub's tarball,
//! and the record of what the agent changed in it.
//!
//! Owns: [`Workspace`], [`WorkspaceLimits`], [`WorkspaceError`], [`SkippedEntry`],
//! [`FileChange`], and the file primitives the tools use (crate-private, all taking a
//! [`RepoPath`]).
//!
//! Unpacking (no `git` binary): entries must all sit under one top folder (`owner-repo-sha/`),
//! which is stripped. An absolute path, a `..` segment or an entry below a skipped link refuses
//! the whole tarball; so do the caps on total bytes, entries and path depth. The decompressed
//! stream itself is bounded, so a gzip or tar bomb stops at the cap. Symlinks, hard links and
//! special files are never created: they are skipped and recorded ([`Workspace::skipped`]),
//! and the tools refuse paths at or below them. Files over the single-file cap are skipped and
//! recorded too (a large asset must not make the whole repository unusable). The directory is
//! created with mode 0700 and removed when the `Workspace` is dropped.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::path::{MAX_DEPTH, RepoPath};

/// Caps on the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceLimits {
    /// Sum of all entries' sizes.
    pub max_total_bytes: u64,
    /// Entries of any kind (files, directories, links).
    pub max_entries: usize,
    /// Larger files are skipped and recorded, not unpacked.
    pub max_file_bytes: u64,
    /// Most path segments below the top folder.
    pub max_depth: usize,
}

impl Default for WorkspaceLimits {
    /// 256 MiB, 50 000 entries, 10 MiB per file, 32 levels.
    fn default() -> Self {
        Self {
            max_total_bytes: 256 * 1024 * 1024,
            max_entries: 50_000,
            max_file_bytes: 10 * 1024 * 1024,
            max_depth: 32,
        }
    }
}

/// Why a tarball was refused.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("the repository snapshot is larger than {max} bytes")]
    TooLarge { max: u64 },
    #[error("the repository snapshot has more than {max} entries")]
    TooManyEntries { max: usize },
    #[error("the repository snapshot has a path nested deeper than {max} levels: {path}")]
    TooDeep { path: String, max: usize },
    #[error("the repository snapshot has an unsafe path: {path} ({reason})")]
    UnsafePath { path: String, reason: String },
    #[error("the repository snapshot is not a GitHub tarball: {0}")]
    Malformed(String),
    #[error("workspace I/O: {0}")]
    Io(#[from] io::Error),
}

/// An entry of the tarball that was not unpacked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedEntry {
    /// Repository-relative (lossy if the name was not UTF-8).
    pub path: String,
    /// Why, for the PR body: "symbolic link to ../x", "larger than 10485760 bytes", ….
    pub reason: String,
}

/// One changed file, relative to the snapshot: new content, or `None` for a deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    pub path: String,
    pub content: Option<String>,
    /// A new file a command made executable (pushed as mode `100755`); a changed file keeps
    /// the mode it had either way.
    #[serde(default)]
    pub executable: bool,
}

/// What the agent did to a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Written { len: u64, hash: [u8; 32] },
    Deleted,
}

/// What the tools see at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Missing,
    File(u64),
    Dir,
    /// Skipped when unpacking (link, special file, too large): never followed or replaced.
    Skipped(String),
    /// Unusable for another reason (a parent is a file): the message says why.
    Invalid(String),
}

/// How a workspace's directory name starts.
const WORKSPACE_PREFIX: &str = "specbot-agent-";

/// Delete the workspaces under `parent` left by a process that was killed while its engineer
/// ran (a workspace is removed when its job is done with it, so any still there long after it
/// was made belongs to no one). Returns how many were deleted. Only directories named like a
/// workspace and unchanged for `older_than` are touched; errors are skipped, not reported.
pub fn remove_abandoned(parent: &Path, older_than: std::time::Duration) -> usize {
    let Ok(entries) = fs::read_dir(parent) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|name| name.starts_with(WORKSPACE_PREFIX))
        })
        .filter(|entry| {
            // `symlink_metadata`: a link named like a workspace is not followed.
            entry.path().symlink_metadata().is_ok_and(|meta| {
                meta.is_dir()
                    && meta
                        .modified()
                        .ok()
                        .and_then(|at| at.elapsed().ok())
                        .is_some_and(|age| age >= older_than)
            })
        })
        .filter(|entry| fs::remove_dir_all(entry.path()).is_ok())
        .count()
}

/// A snapshot of a repository in a private temporary directory.
#[derive(Debug)]
pub struct Workspace {
    dir: tempfile::TempDir,
    /// sha-256 of every unpacked file.
    original: HashMap<RepoPath, [u8; 32]>,
    skipped: BTreeMap<RepoPath, String>,
    skipped_list: Vec<SkippedEntry>,
    state: BTreeMap<RepoPath, State>,
}

/// Counts the decompressed bytes so a bomb stops at the cap.
struct Capped<R> {
    inner: R,
    left: u64,
    hit: bool,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // Any byte beyond the cap means the snapshot is too large.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? > 0 {
                self.hit = true;
                return Err(io::Error::other("decompressed size cap reached"));
            }
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

impl Workspace {
    /// Unpack a GitHub tarball (`.tar.gz`, or a plain `.tar`) into a new private directory
    /// under the system's temporary directory.
    pub fn from_tarball(
        reader: impl Read,
        limits: &WorkspaceLimits,
    ) -> Result<Self, WorkspaceError> {
        Self::from_tarball_in(reader, limits, &std::env::temp_dir())
    }

    /// Like [`Workspace::from_tarball`], in a new directory under `parent`.
    pub fn from_tarball_in(
        reader: impl Read,
        limits: &WorkspaceLimits,
        parent: &Path,
    ) -> Result<Self, WorkspaceError> {
        let dir = tempfile::Builder::new()
            .prefix(WORKSPACE_PREFIX)
            .tempdir_in(parent)?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))?;
        let mut ws = Workspace {
            dir,
            original: HashMap::new(),
            skipped: BTreeMap::new(),
            skipped_list: Vec::new(),
            state: BTreeMap::new(),
        };

        let mut buffered = BufReader::new(reader);
        let gzip = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        let stream: Box<dyn Read> = if gzip {
            Box::new(flate2::read::GzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        // Tar overhead: a header (and maybe a long-name block and padding) per entry, the end.
        let overhead = (limits.max_entries as u64 + 16).saturating_mul(4 * 512);
        let mut capped = Capped {
            inner: stream,
            left: limits.max_total_bytes.saturating_add(overhead),
            hit: false,
        };
        let result = ws.unpack(&mut capped, limits);
        if capped.hit {
            return Err(WorkspaceError::TooLarge {
                max: limits.max_total_bytes,
            });
        }
        result?;
        Ok(ws)
    }

    fn unpack(
        &mut self,
        stream: &mut impl Read,
        limits: &WorkspaceLimits,
    ) -> Result<(), WorkspaceError> {
        let mut archive = tar::Archive::new(stream);
        let mut top: Option<String> = None;
        let mut entries = 0usize;
        let mut total = 0u64;
        let malformed = |e: io::Error| WorkspaceError::Malformed(e.to_string());
        for entry in archive.entries().map_err(malformed)? {
            let mut entry = entry.map_err(malformed)?;
            let kind = entry.header().entry_type();
            if kind.is_pax_global_extensions() {
                continue;
            }
            entries += 1;
            if entries > limits.max_entries {
                return Err(WorkspaceError::TooManyEntries {
                    max: limits.max_entries,
                });
            }
            let size = entry.size();
            total = total.saturating_add(size);
            if total > limits.max_total_bytes {
                return Err(WorkspaceError::TooLarge {
                    max: limits.max_total_bytes,
                });
            }

            let raw = entry.path_bytes().into_owned();
            let name = match String::from_utf8(raw) {
                Ok(n) => n,
                Err(e) => {
                    let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                    self.skipped_list.push(SkippedEntry {
                        path: lossy,
                        reason: "the file name is not UTF-8".into(),
                    });
                    continue;
                }
            };
            let Some(rel) = strip_top(&name, &mut top)? else {
                continue; // the top folder itself
            };
            let depth = rel.split('/').filter(|s| !s.is_empty()).count();
            if depth > limits.max_depth.min(MAX_DEPTH) {
                return Err(WorkspaceError::TooDeep {
                    path: rel,
                    max: limits.max_depth.min(MAX_DEPTH),
                });
            }
            let path = RepoPath::parse(&rel).map_err(|e| WorkspaceError::UnsafePath {
                path: rel.clone(),
                reason: e.to_string(),
            })?;
            if let Some((link, _)) = self.skipped.iter().find(|(s, _)| path.starts_with(s)) {
                return Err(WorkspaceError::UnsafePath {
                    path: rel,
                    reason: format!("it lies below `{link}`, which was not unpacked"),
                });
            }

            let skip = self.place(&mut entry, &path, &rel, limits)?;
            if let Some(reason) = skip {
                self.skipped.insert(path.clone(), reason.clone());
                self.skipped_list.push(SkippedEntry {
                    path: path.to_string(),
                    reason,
                });
            }
        }
        if top.is_none() {
            return Err(WorkspaceError::Malformed("the archive is empty".into()));
        }
        Ok(())
    }

    /// Put one archive entry in place: a directory, a file (its executable bit kept), or a
    /// symlink that stays inside. `Some(reason)` when the entry is left out.
    fn place<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &RepoPath,
        rel: &str,
        limits: &WorkspaceLimits,
    ) -> Result<Option<String>, WorkspaceError> {
        let malformed = |e: io::Error| WorkspaceError::Malformed(e.to_string());
        let kind = entry.header().entry_type();
        let size = entry.size();
        use tar::EntryType as T;
        Ok(match kind {
            T::Directory => {
                self.mkdirs(path)?;
                None
            }
            T::Regular | T::Continuous if size > limits.max_file_bytes => Some(format!(
                "larger than {} bytes ({size} bytes)",
                limits.max_file_bytes
            )),
            T::Regular | T::Continuous => {
                let mut content =
                    Vec::with_capacity(usize::try_from(size.min(1 << 20)).unwrap_or(0));
                (&mut *entry)
                    .take(limits.max_file_bytes + 1)
                    .read_to_end(&mut content)
                    .map_err(malformed)?;
                if content.len() as u64 != size {
                    return Err(WorkspaceError::Malformed(format!(
                        "{rel}: the entry's size does not match its header"
                    )));
                }
                self.put(path, &content)?;
                // Executable scripts stay executable, so a repository's commands run.
                if entry.header().mode().is_ok_and(|m| m & 0o111 != 0) {
                    fs::set_permissions(self.disk(path), fs::Permissions::from_mode(0o700))?;
                }
                self.original.insert(path.clone(), sha256(&content));
                None
            }
            T::Symlink | T::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                Some(if kind == T::Link {
                    format!("hard link to `{target}`")
                } else if link_leaves(path, &target) {
                    format!("symbolic link to `{target}`, outside the repository")
                } else {
                    // Recreated for the repository's commands; the tools never follow it.
                    self.link(path, &target)?;
                    format!("symbolic link to `{target}`")
                })
            }
            other => Some(format!("special file ({other:?})")),
        })
    }

    /// Recreate a symlink whose target stays inside the repository (checked by the caller).
    fn link(&self, path: &RepoPath, target: &str) -> io::Result<()> {
        let disk = self.resolve_with_parent(path)?;
        std::os::unix::fs::symlink(target, disk)
    }

    /// The names of the files at the repository's root, sorted.
    pub fn top_level_files(&self) -> Vec<String> {
        self.list(None)
            .map(|entries| {
                entries
                    .into_iter()
                    .filter(|(_, kind)| matches!(kind, Kind::File(_)))
                    .map(|(name, _)| name)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The snapshot's hash of a file it held.
    pub(crate) fn original_hash(&self, path: &RepoPath) -> Option<[u8; 32]> {
        self.original.get(path).copied()
    }

    /// Every file the snapshot held, sorted.
    pub(crate) fn original_paths(&self) -> Vec<&RepoPath> {
        let mut paths: Vec<&RepoPath> = self.original.keys().collect();
        paths.sort();
        paths
    }

    /// The workspace's directory (private; removed on drop).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Entries of the tarball that were not unpacked, in archive order.
    pub fn skipped(&self) -> &[SkippedEntry] {
        &self.skipped_list
    }

    /// How many files the snapshot had.
    pub fn snapshot_files(&self) -> usize {
        self.original.len()
    }

    /// What differs from the snapshot, sorted by path: new or changed files with their
    /// content, deleted files as `None`. A file written back to its original content is not a
    /// change.
    pub fn changes(&self) -> Result<Vec<FileChange>, WorkspaceError> {
        let mut out = Vec::new();
        for (path, state) in &self.state {
            if !self.differs(path, state) {
                continue;
            }
            let content = match state {
                State::Deleted => None,
                State::Written { .. } => {
                    let bytes = fs::read(self.disk(path))?;
                    Some(String::from_utf8(bytes).map_err(|_| {
                        WorkspaceError::Io(io::Error::other(format!("{path} is not UTF-8")))
                    })?)
                }
            };
            out.push(FileChange {
                path: path.to_string(),
                content,
                executable: false,
            });
        }
        Ok(out)
    }

    fn differs(&self, path: &RepoPath, state: &State) -> bool {
        match (state, self.original.get(path)) {
            (State::Deleted, original) => original.is_some(),
            (State::Written { hash, .. }, Some(orig)) => hash != orig,
            (State::Written { .. }, None) => true,
        }
    }

    /// `(changed files, bytes of new content)` if `path` were set to `next` (`None`: deleted).
    pub(crate) fn change_stats_with(&self, path: &RepoPath, next: Option<&[u8]>) -> (usize, u64) {
        let next_state = match next {
            Some(bytes) => State::Written {
                len: bytes.len() as u64,
                hash: sha256(bytes),
            },
            None => State::Deleted,
        };
        let mut files = 0;
        let mut bytes = 0;
        let others = self.state.iter().filter(|(p, _)| *p != path);
        for (p, s) in others.chain(std::iter::once((path, &next_state))) {
            if self.differs(p, s) {
                files += 1;
                if let State::Written { len, .. } = s {
                    bytes += len;
                }
            }
        }
        (files, bytes)
    }

    /// The skipped entry at or above `path`, with its reason.
    pub(crate) fn skipped_at(&self, path: &RepoPath) -> Option<(&RepoPath, &str)> {
        self.skipped
            .iter()
            .find(|(s, _)| path.starts_with(s))
            .map(|(s, r)| (s, r.as_str()))
    }

    fn disk(&self, path: &RepoPath) -> PathBuf {
        let mut p = self.dir.path().to_path_buf();
        p.extend(path.segments());
        p
    }

    /// The on-disk location of `path`, after checking that no existing component is a symlink
    /// (none is ever created, so this is defence in depth) and that every existing parent is a
    /// directory.
    fn resolve(&self, path: &RepoPath) -> io::Result<PathBuf> {
        let mut at = self.dir.path().to_path_buf();
        let segments: Vec<&str> = path.segments().collect();
        for (i, seg) in segments.iter().enumerate() {
            at.push(seg);
            match fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(io::Error::other(format!(
                        "`{}` is a symbolic link",
                        segments[..=i].join("/")
                    )));
                }
                Ok(m) if i + 1 < segments.len() && !m.is_dir() => {
                    return Err(io::Error::other(format!(
                        "`{}` is a file, not a directory",
                        segments[..=i].join("/")
                    )));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let mut rest = at;
                    rest.extend(&segments[i + 1..]);
                    return Ok(rest);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(at)
    }

    pub(crate) fn kind(&self, path: Option<&RepoPath>) -> io::Result<Kind> {
        let Some(path) = path else {
            return Ok(Kind::Dir);
        };
        if let Some((at, reason)) = self.skipped_at(path) {
            return Ok(Kind::Skipped(format!("`{at}`: {reason}")));
        }
        let disk = match self.resolve(path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::Other => return Ok(Kind::Invalid(e.to_string())),
            Err(e) => return Err(e),
        };
        match fs::symlink_metadata(disk) {
            Ok(m) if m.is_dir() => Ok(Kind::Dir),
            Ok(m) if m.is_file() => Ok(Kind::File(m.len())),
            Ok(_) => Ok(Kind::Skipped(format!("`{path}` is not a regular file"))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Kind::Missing),
            Err(e) => Err(e),
        }
    }

    /// The bytes of a file.
    pub(crate) fn read(&self, path: &RepoPath) -> io::Result<Vec<u8>> {
        fs::read(self.resolve(path)?)
    }

    /// The names under a directory (`None`: the root), sorted; directories end with `/`.
    pub(crate) fn list(&self, dir: Option<&RepoPath>) -> io::Result<Vec<(String, Kind)>> {
        let disk = match dir {
            Some(d) => self.resolve(d)?,
            None => self.dir.path().to_path_buf(),
        };
        let mut out = Vec::new();
        for entry in fs::read_dir(disk)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let kind = match entry.file_type()? {
                // Recreated links are listed from `skipped`, below.
                t if t.is_symlink() && dir.is_none_or(|d| self.skipped_at(d).is_none()) => {
                    if self
                        .skipped
                        .keys()
                        .any(|p| p.as_str() == join_name(dir, &name))
                    {
                        continue;
                    }
                    Kind::Skipped("a symbolic link".into())
                }
                t if t.is_dir() => Kind::Dir,
                t if t.is_file() => Kind::File(entry.metadata()?.len()),
                _ => Kind::Skipped("not a regular file".into()),
            };
            out.push((name, kind));
        }
        // Skipped entries do not exist on disk; show them where they would be.
        for (p, reason) in &self.skipped {
            let parent: Vec<&str> = p.segments().collect();
            let (name, above) = match parent.split_last() {
                Some((n, a)) => (*n, a.join("/")),
                None => continue,
            };
            if above == dir.map(RepoPath::as_str).unwrap_or("") {
                out.push((name.to_owned(), Kind::Skipped(reason.clone())));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Every regular file below `dir` (`None`: the whole tree), sorted.
    pub(crate) fn walk(&self, dir: Option<&RepoPath>) -> io::Result<Vec<RepoPath>> {
        let mut out = Vec::new();
        let mut stack: Vec<Option<RepoPath>> = vec![dir.cloned()];
        while let Some(d) = stack.pop() {
            for (name, kind) in self.list(d.as_ref())? {
                let child = match &d {
                    Some(d) => d.join(&name),
                    None => RepoPath::parse(&name),
                };
                let Ok(child) = child else { continue };
                match kind {
                    Kind::Dir => stack.push(Some(child)),
                    Kind::File(_) => out.push(child),
                    _ => {}
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Create or replace a file (parents created as needed) and record it.
    pub(crate) fn write(&mut self, path: &RepoPath, bytes: &[u8]) -> io::Result<()> {
        self.put(path, bytes)?;
        self.state.insert(
            path.clone(),
            State::Written {
                len: bytes.len() as u64,
                hash: sha256(bytes),
            },
        );
        Ok(())
    }

    /// Delete a file and record it.
    pub(crate) fn delete(&mut self, path: &RepoPath) -> io::Result<()> {
        let disk = self.resolve(path)?;
        fs::remove_file(disk)?;
        if self.original.contains_key(path) {
            self.state.insert(path.clone(), State::Deleted);
        } else {
            self.state.remove(path);
        }
        Ok(())
    }

    fn mkdirs(&self, path: &RepoPath) -> io::Result<PathBuf> {
        let disk = self.resolve(path)?;
        if let Ok(m) = fs::symlink_metadata(&disk)
            && !m.is_dir()
        {
            return Err(io::Error::other(format!(
                "`{path}` is a file, not a directory"
            )));
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&disk)?;
        Ok(disk)
    }

    /// Where `path` lives on disk, its parent directories made (private to the bot).
    fn resolve_with_parent(&self, path: &RepoPath) -> io::Result<PathBuf> {
        let disk = self.resolve(path)?;
        if let Some(parent) = disk.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)?;
        }
        Ok(disk)
    }

    fn put(&self, path: &RepoPath, bytes: &[u8]) -> io::Result<()> {
        let disk = self.resolve_with_parent(path)?;
        if fs::symlink_metadata(&disk).is_ok_and(|m| m.is_dir()) {
            return Err(io::Error::other(format!("`{path}` is a directory")));
        }
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(disk)?;
        f.write_all(bytes)
    }
}

fn join_name(dir: Option<&RepoPath>, name: &str) -> String {
    match dir {
        Some(d) => format!("{d}/{name}"),
        None => name.to_owned(),
    }
}

/// Strip the top folder; `Ok(None)` for the top folder itself. Every entry must share it.
fn strip_top(name: &str, top: &mut Option<String>) -> Result<Option<String>, WorkspaceError> {
    if name.starts_with('/') {
        return Err(WorkspaceError::UnsafePath {
            path: name.to_owned(),
            reason: "absolute path".into(),
        });
    }
    let name = name.trim_start_matches("./");
    let (first, rest) = name.split_once('/').unwrap_or((name, ""));
    if first.is_empty() || first == ".." || first == "." {
        return Err(WorkspaceError::UnsafePath {
            path: name.to_owned(),
            reason: "no top folder, or a `..` segment".into(),
        });
    }
    match top {
        Some(t) if t != first => {
            return Err(WorkspaceError::Malformed(format!(
                "entries under two top folders (`{t}` and `{first}`)"
            )));
        }
        Some(_) => {}
        None => *top = Some(first.to_owned()),
    }
    if rest.trim_matches('/').is_empty() {
        return Ok(None);
    }
    Ok(Some(rest.to_owned()))
}

/// Whether a link at `at` with `target` resolves outside the repository (lexically).
fn link_leaves(at: &RepoPath, target: &str) -> bool {
    if target.starts_with('/') {
        return true;
    }
    let mut depth: isize = at.segments().count() as isize - 1;
    for seg in target.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_targets() {
        let p = |s| RepoPath::parse(s).expect("path");
        assert!(link_leaves(&p("a"), "/etc"));
        assert!(link_leaves(&p("a"), "../x"));
        assert!(link_leaves(&p("a/b"), "../../x"));
        assert!(!link_leaves(&p("a/b"), "../x"));
        assert!(!link_leaves(&p("a/b"), "c/../d"));
    }

    #[test]
    fn abandoned_workspaces_are_removed_and_nothing_else() {
        let parent = tempfile::tempdir().expect("tempdir");
        let day = std::time::Duration::from_secs(24 * 3600);
        let two_days_ago = std::time::SystemTime::now() - 2 * day;
        let make = |name: &str, old: bool| {
            let dir = parent.path().join(name);
            fs::create_dir(&dir).expect("mkdir");
            fs::write(dir.join("file"), "x").expect("write");
            if old {
                fs::File::open(&dir)
                    .and_then(|d| d.set_modified(two_days_ago))
                    .expect("set mtime");
            }
            dir
        };
        let abandoned = make("specbot-agent-abc", true);
        let in_use = make("specbot-agent-def", false);
        let someone_elses = make("other-old", true);
        assert_eq!(remove_abandoned(parent.path(), day), 1);
        assert!(!abandoned.exists());
        assert!(in_use.exists() && someone_elses.exists());
        assert_eq!(remove_abandoned(&parent.path().join("missing"), day), 0);
    }

    #[test]
    fn top_folder() {
        let mut top = None;
        assert_eq!(strip_top("o-r-1/", &mut top).ok(), Some(None));
        assert_eq!(
            strip_top("o-r-1/src/a.rs", &mut top).ok(),
            Some(Some("src/a.rs".to_owned()))
        );
        assert!(strip_top("other/x", &mut top).is_err());
        assert!(strip_top("/etc/passwd", &mut top).is_err());
        assert!(strip_top("../x", &mut top).is_err());
    }
}
