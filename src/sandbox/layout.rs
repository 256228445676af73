//! The sandbox's file system and environment, as bubblewrap arguments: the host's `/usr` and
//! library directories and the few `/etc` files a toolchain needs, read-only; the operator's
//! toolchain paths read-only; generated `/etc/passwd`, `/etc/group`, `/etc/hosts` and
//! `/etc/resolv.conf`; a private `/tmp`, `/proc` and `/dev`; the workspace read-write at
//! [`WORKSPACE`](super::WORKSPACE); `HOME` at [`HOME`](super::HOME), a directory outside the
//! repository tree. Nothing else of the host is visible.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use super::confine::SANDBOX_ID;
use super::settings::SandboxSettings;
use super::{HOME, WORKSPACE};

/// Host directories that may be symlinks into `/usr` (merged-usr) or directories of their own.
const HOST_ROOT_DIRS: &[&str] = &["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/// `/etc` files a toolchain reads: TLS roots, `update-alternatives` links, the dynamic linker's
/// cache, time zone, name service order. Never the whole `/etc`.
const HOST_ETC: &[&str] = &[
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/nsswitch.conf",
];

/// `/bin`, `/lib`…: symlinks into `/usr` where the host has them so, else read-only binds.
pub(crate) fn host_root_dirs() -> Vec<OsString> {
    let mut args = Vec::new();
    for dir in HOST_ROOT_DIRS {
        match fs::read_link(dir) {
            Ok(target) => push(&mut args, &[&"--symlink", &target, dir]),
            Err(_) if Path::new(dir).is_dir() => push(&mut args, &[&"--ro-bind", dir, dir]),
            Err(_) => {}
        }
    }
    args
}

/// `PATH` inside, after any `<SANDBOX_RO_PATHS entry>/bin`.
const SYSTEM_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

/// Writes the generated `/etc` files into `dir` (world-readable: the sandbox user reads them).
pub(crate) fn write_etc(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    let id = SANDBOX_ID;
    let files = [
        (
            "passwd",
            format!("sandbox:x:{id}:{id}:sandbox:{HOME}:/bin/sh\n"),
        ),
        ("group", format!("sandbox:x:{id}:\n")),
        (
            "hosts",
            "127.0.0.1 localhost sandbox\n::1 localhost\n".to_owned(),
        ),
        // slirp4netns's DNS forwarder; unused without network.
        ("resolv.conf", "nameserver 10.0.2.3\n".to_owned()),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        fs::write(&path, text)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

/// What one run mounts and sets.
pub(crate) struct Layout<'a> {
    pub(crate) settings: &'a SandboxSettings,
    pub(crate) etc_dir: &'a Path,
    pub(crate) workspace: &'a Path,
    pub(crate) home: Option<&'a Path>,
    pub(crate) env: &'a BTreeMap<String, String>,
    pub(crate) argv: &'a [String],
}

fn push(args: &mut Vec<OsString>, items: &[&dyn AsRef<std::ffi::OsStr>]) {
    args.extend(items.iter().map(|item| item.as_ref().to_owned()));
}

/// bubblewrap's arguments for a run; descriptors 3 (`--info-fd`) and 4 (`--block-fd`) are passed.
pub(crate) fn bwrap_args(layout: &Layout<'_>) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let id = SANDBOX_ID.to_string();
    push(
        &mut args,
        &[
            &"--unshare-all",
            &"--unshare-user",
            &"--disable-userns",
            &"--uid",
            &id,
            &"--gid",
            &id,
            &"--die-with-parent",
            &"--new-session",
            &"--hostname",
            &"sandbox",
            &"--ro-bind",
            &"/usr",
            &"/usr",
        ],
    );
    args.extend(host_root_dirs());
    for path in HOST_ETC {
        push(&mut args, &[&"--ro-bind-try", path, path]);
    }
    for name in ["passwd", "group", "hosts", "resolv.conf"] {
        let target = format!("/etc/{name}");
        push(
            &mut args,
            &[&"--ro-bind", &layout.etc_dir.join(name), &target],
        );
    }
    for path in &layout.settings.ro_paths {
        push(&mut args, &[&"--ro-bind-try", path, path]);
    }
    push(
        &mut args,
        &[&"--proc", &"/proc", &"--dev", &"/dev", &"--tmpfs", &"/tmp"],
    );
    push(&mut args, &[&"--bind", &layout.workspace, &WORKSPACE]);
    match layout.home {
        Some(home) => push(&mut args, &[&"--bind", &home, &HOME]),
        None => push(&mut args, &[&"--tmpfs", &HOME]),
    }
    push(&mut args, &[&"--chdir", &WORKSPACE, &"--clearenv"]);
    let mut env: BTreeMap<&str, String> = BTreeMap::new();
    env.insert("PATH", search_path(&layout.settings.ro_paths));
    env.insert("HOME", HOME.to_owned());
    env.insert("LANG", "C.UTF-8".to_owned());
    for (name, value) in layout.env {
        env.insert(name, value.clone());
    }
    for (name, value) in &env {
        push(&mut args, &[&"--setenv", name, value]);
    }
    push(&mut args, &[&"--info-fd", &"3", &"--block-fd", &"4", &"--"]);
    args.extend(layout.argv.iter().map(OsString::from));
    args
}

/// `PATH` inside: each operator path's `bin` (when it has one), then the system's.
fn search_path(ro_paths: &[PathBuf]) -> String {
    let mut parts: Vec<String> = ro_paths
        .iter()
        .map(|p| p.join("bin"))
        .filter(|bin| bin.is_dir())
        .map(|bin| bin.display().to_string())
        .collect();
    parts.push(SYSTEM_PATH.to_owned());
    parts.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_only_what_is_listed_and_sets_a_clean_environment() {
        let settings = SandboxSettings {
            ro_paths: vec![PathBuf::from("/opt/toolchain")],
            ..SandboxSettings::default()
        };
        let env = BTreeMap::from([("CI".to_owned(), "true".to_owned())]);
        let argv = vec!["/bin/sh".to_owned(), "-c".to_owned(), "true".to_owned()];
        let args = bwrap_args(&Layout {
            settings: &settings,
            etc_dir: Path::new("/run/etc"),
            workspace: Path::new("/tmp/ws"),
            home: None,
            env: &env,
            argv: &argv,
        });
        let text: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = text.join(" ");
        assert!(joined.contains("--ro-bind /usr /usr"));
        assert!(joined.contains("--bind /tmp/ws /workspace"));
        assert!(joined.contains("--tmpfs /home/sandbox"));
        assert!(joined.contains("--ro-bind-try /opt/toolchain /opt/toolchain"));
        assert!(joined.contains("--ro-bind /run/etc/passwd /etc/passwd"));
        assert!(joined.contains("--setenv CI true"));
        assert!(joined.contains("--setenv HOME /home/sandbox"));
        assert!(!joined.contains("--ro-bind /etc /etc"));
        assert!(!joined.contains("--share-net"));
        assert!(joined.ends_with("-- /bin/sh -c true"));
        let setenv = text.iter().filter(|a| *a == "--setenv").count();
        assert_eq!(
            setenv, 4,
            "PATH, HOME, LANG and the one configured variable"
        );
    }
}
