//! A cgroup per run, where the host lets this process create one: memory (`SANDBOX_MEMORY_MB`)
//! and process count are then enforced by the kernel for the whole run. cgroup v2 needs a
//! delegated subtree with the `memory` and `pids` controllers enabled; cgroup v1 needs writable
//! `memory` and `pids` hierarchies (typically the bot running as root). Without either, the run
//! falls back to `RLIMIT_NPROC` for processes and has no memory limit (`RLIMIT_AS` is never used:
//! it breaks Node, the JVM and Go, which reserve far more address space than they use).

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

/// The directories of one run's cgroup(s); removed when dropped.
#[derive(Debug)]
pub(crate) struct Cgroup {
    dirs: Vec<PathBuf>,
    /// `cgroup.procs` of each directory, for the child to join itself before it runs bwrap.
    pub(crate) procs: Vec<CString>,
    pub(crate) memory_limited: bool,
}

impl Cgroup {
    /// A new cgroup limiting memory (when asked) and processes, or `None` when the host gives none.
    pub(crate) fn create(memory_mb: Option<u64>, max_processes: u64) -> Option<Cgroup> {
        let name = format!("specbot-sandbox-{}", uuid::Uuid::new_v4().simple());
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        let memory = memory_mb.map(|mb| (mb * 1024 * 1024).to_string());
        let pids = max_processes.to_string();
        if Path::new(ROOT).join("cgroup.controllers").exists() {
            let dir = Path::new(ROOT).join(own_path(&own, "")?).join(&name);
            let mut files = vec![("pids.max", pids.as_str())];
            if let Some(bytes) = &memory {
                files.extend([("memory.max", bytes.as_str()), ("memory.swap.max", "0")]);
            }
            let group = make(&dir, &files)?;
            return Some(Cgroup::from_dirs(vec![group], memory.is_some()));
        }
        let pids_dir = Path::new(ROOT)
            .join("pids")
            .join(own_path(&own, "pids")?)
            .join(&name);
        let mut dirs = vec![make(&pids_dir, &[("pids.max", &pids)])?];
        if let Some(bytes) = &memory {
            let memory_dir = Path::new(ROOT)
                .join("memory")
                .join(own_path(&own, "memory")?)
                .join(&name);
            // Drop what was made so far when memory cannot be limited.
            let made = make(&memory_dir, &[("memory.limit_in_bytes", bytes.as_str())]);
            match made {
                Some(dir) => {
                    // Swap counts too where the kernel accounts for it.
                    let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), bytes);
                    dirs.push(dir);
                }
                None => {
                    let _ = fs::remove_dir(&dirs[0]);
                    return None;
                }
            }
        }
        Some(Cgroup::from_dirs(dirs, memory.is_some()))
    }

    fn from_dirs(dirs: Vec<PathBuf>, memory_limited: bool) -> Cgroup {
        let procs = dirs
            .iter()
            .filter_map(|d| CString::new(d.join("cgroup.procs").as_os_str().as_bytes()).ok())
            .collect();
        Cgroup {
            dirs,
            procs,
            memory_limited,
        }
    }
}

impl Cgroup {
    /// Removes the directories that are empty by now; whether none is left.
    pub(crate) fn remove(&mut self) -> bool {
        self.dirs
            .retain(|dir| fs::remove_dir(dir).is_err() && dir.exists());
        self.dirs.is_empty()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if self.remove() {
            return;
        }
        // A dropped run's processes are still dying: retry off the async runtime for a while.
        let mut rest = Cgroup {
            dirs: std::mem::take(&mut self.dirs),
            procs: Vec::new(),
            memory_limited: false,
        };
        std::thread::spawn(move || {
            for _ in 0..100 {
                std::thread::sleep(std::time::Duration::from_millis(50));
                if rest.remove() {
                    return;
                }
            }
            // Give up: a leftover is empty, harmless and named for us.
            rest.dirs.clear();
        });
    }
}

/// This process's cgroup path in the hierarchy holding `controller` (`""` for cgroup v2).
fn own_path(proc_cgroup: &str, controller: &str) -> Option<PathBuf> {
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = if controller.is_empty() {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == controller)
        };
        matches.then(|| PathBuf::from(path.trim_start_matches('/')))
    })
}

/// Creates `dir` and writes each limit file; removes it again when any write fails.
fn make(dir: &Path, files: &[(&str, &str)]) -> Option<PathBuf> {
    fs::create_dir(dir).ok()?;
    for (file, value) in files {
        if fs::write(dir.join(file), value).is_err() {
            let _ = fs::remove_dir(dir);
            return None;
        }
    }
    Some(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_own_path_per_controller() {
        let text = "9:name=systemd:/\n8:pids:/a/b\n4:memory,foo:/m\n0::/unified\n";
        assert_eq!(own_path(text, "pids"), Some(PathBuf::from("a/b")));
        assert_eq!(own_path(text, "memory"), Some(PathBuf::from("m")));
        assert_eq!(own_path(text, ""), Some(PathBuf::from("unified")));
        assert_eq!(own_path(text, "cpu"), None);
    }
}
