//! Reading a workspace after commands ran in it, for the push: a command may have left symlinks
//! pointing at `/etc/passwd` or the bot's database, FIFOs that block a reader, or device nodes.
//! [`collect_files`] walks the tree without following any symlink, lists regular files (with
//! their executable bit) and symlinks whose target stays inside the workspace (to be recreated as
//! links, never read through), and refuses everything else with a reason.
//! [`read_workspace_file`] reads one listed file refusing symlinks on the way. Call both only
//! while no command runs in the workspace (runs of a job are sequential).

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One thing the push may take from the workspace. Paths are relative, `/`-separated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkspaceEntry {
    File {
        path: String,
        executable: bool,
        size: u64,
    },
    /// A symlink whose target resolves inside the workspace; push it as a link.
    Symlink { path: String, target: String },
}

/// What [`collect_files`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceListing {
    pub entries: Vec<WorkspaceEntry>,
    /// `(path, reason)` for what must not be pushed or read.
    pub refused: Vec<(String, String)>,
}

/// Lists the workspace's files and safe symlinks, sorted by path; see the module documentation.
pub fn collect_files(workspace: &Path) -> io::Result<WorkspaceListing> {
    let mut listing = WorkspaceListing::default();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        for entry in fs::read_dir(workspace.join(&relative))? {
            let entry = entry?;
            let path = relative.join(entry.file_name());
            let Some(name) = path.to_str().map(str::to_owned) else {
                listing
                    .refused
                    .push((path.display().to_string(), "the name is not UTF-8".into()));
                continue;
            };
            let meta = fs::symlink_metadata(entry.path())?;
            let kind = meta.file_type();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                listing.entries.push(WorkspaceEntry::File {
                    path: name,
                    executable: meta.permissions().mode() & 0o111 != 0,
                    size: meta.len(),
                });
            } else if kind.is_symlink() {
                let target = fs::read_link(entry.path())?;
                match check_symlink(&path, &target) {
                    Ok(()) => listing.entries.push(WorkspaceEntry::Symlink {
                        path: name,
                        target: target.to_string_lossy().into_owned(),
                    }),
                    Err(reason) => listing.refused.push((name, reason)),
                }
            } else {
                listing
                    .refused
                    .push((name, "not a regular file, directory or symlink".into()));
            }
        }
    }
    listing
        .entries
        .sort_by(|a, b| entry_path(a).cmp(entry_path(b)));
    listing.refused.sort();
    Ok(listing)
}

fn entry_path(entry: &WorkspaceEntry) -> &str {
    match entry {
        WorkspaceEntry::File { path, .. } | WorkspaceEntry::Symlink { path, .. } => path,
    }
}

/// `Ok` when a link at `link` (relative to the workspace) pointing at `target` stays inside.
pub fn check_symlink(link: &Path, target: &Path) -> Result<(), String> {
    if target.is_absolute() {
        return Err(format!(
            "symlink to {} points outside the workspace",
            target.display()
        ));
    }
    let mut depth: usize = link.parent().map_or(0, |p| p.components().count());
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    format!(
                        "symlink to {} points outside the workspace",
                        target.display()
                    )
                })?;
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err("symlink with an absolute target".to_owned());
            }
        }
    }
    Ok(())
}

/// Reads a file of the workspace (`relative`, `/`-separated) without following any symlink, and
/// only if it is a regular file.
pub fn read_workspace_file(workspace: &Path, relative: &str) -> io::Result<Vec<u8>> {
    let refused = |why: &str| io::Error::new(io::ErrorKind::PermissionDenied, why.to_owned());
    let mut path = workspace.to_path_buf();
    for component in Path::new(relative).components() {
        let Component::Normal(part) = component else {
            return Err(refused("only plain relative paths are read"));
        };
        if fs::symlink_metadata(&path)?.file_type().is_symlink() {
            return Err(refused("a directory on the path is a symlink"));
        }
        path.push(part);
    }
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)?;
    if !file.metadata()?.is_file() {
        return Err(refused("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_must_stay_inside() {
        let ok = |link: &str, target: &str| check_symlink(Path::new(link), Path::new(target));
        assert!(ok("a/b/link", "../c").is_ok());
        assert!(ok("link", "./x/y").is_ok());
        assert!(ok("a/link", "../../etc/passwd").is_err());
        assert!(ok("link", "/etc/passwd").is_err());
        assert!(ok("link", "..").is_err());
    }
}
