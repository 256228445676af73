//! What the forked child does to itself between `fork` and `exec` of bubblewrap: join the run's
//! cgroup, set the resource limits, keep only the file descriptors it is meant to pass (every
//! other inherited descriptor is closed, whatever its close-on-exec flag), and, when the bot runs
//! as root, become the unprivileged sandbox user. Everything here runs in the child after `fork`,
//! so it only calls async-signal-safe functions and never allocates.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;

/// The uid and gid commands run as when the bot is root (`nobody` on Debian).
pub(crate) const SANDBOX_ID: u32 = 65534;

/// Prepared in the parent; applied in the child by [`Confinement::apply`].
#[derive(Debug)]
pub(crate) struct Confinement {
    /// Descriptors the child keeps, renumbered to 3, 4, … in this order (at most 8).
    pub(crate) pass: Vec<RawFd>,
    /// `(resource, limit)`: the soft and hard limits alike, except CPU (see `apply`).
    pub(crate) rlimits: Vec<(libc::__rlimit_resource_t, u64)>,
    /// `cgroup.procs` files to join.
    pub(crate) cgroup_procs: Vec<CString>,
    /// Whether to drop from root to [`SANDBOX_ID`].
    pub(crate) drop_root: bool,
}

fn check(result: libc::c_int) -> io::Result<()> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Confinement {
    /// Applies the confinement to the calling process.
    ///
    /// # Safety
    /// Only to be called in a freshly forked child (a `pre_exec` hook): it closes descriptors
    /// it does not own and changes the process's identity.
    pub(crate) unsafe fn apply(&self) -> io::Result<()> {
        for procs in &self.cgroup_procs {
            // SAFETY: a valid NUL-terminated path; the descriptor is closed right after.
            unsafe {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                let written = libc::write(fd, b"0\n".as_ptr().cast(), 2);
                libc::close(fd);
                if written < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        for &(resource, limit) in &self.rlimits {
            // CPU: SIGXCPU at the limit, SIGKILL five seconds later.
            let hard = if resource == libc::RLIMIT_CPU {
                limit.saturating_add(5)
            } else {
                limit
            };
            let value = libc::rlimit {
                rlim_cur: limit,
                rlim_max: hard,
            };
            // SAFETY: a plain system call on a valid struct.
            check(unsafe { libc::setrlimit(resource, &value) })?;
        }
        let first_free = 3 + self.pass.len() as RawFd;
        // Move the passed descriptors out of the way first, so renumbering cannot clobber one.
        let mut moved = [0 as RawFd; 8];
        for (slot, &fd) in moved.iter_mut().zip(&self.pass) {
            // SAFETY: duplicating a descriptor the parent opened for this child.
            *slot = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, first_free) };
            check(*slot)?;
        }
        for (target, &fd) in (3..).zip(moved.iter().take(self.pass.len())) {
            // SAFETY: dup2 onto a number this child owns; dup2 clears close-on-exec.
            check(unsafe { libc::dup2(fd, target) })?;
        }
        // SAFETY: closes every descriptor above the passed ones, inherited or not.
        check(unsafe { libc::close_range(first_free as libc::c_uint, libc::c_uint::MAX, 0) })?;
        if self.drop_root {
            // SAFETY: plain system calls; order matters (groups and gid before uid).
            unsafe {
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setresgid(SANDBOX_ID, SANDBOX_ID, SANDBOX_ID))?;
                check(libc::setresuid(SANDBOX_ID, SANDBOX_ID, SANDBOX_ID))?;
            }
        }
        Ok(())
    }
}
