//! The operator's sandbox settings, read from the process environment by the config: `SANDBOX`,
//! `SANDBOX_RO_PATHS`, `SANDBOX_TIMEOUT_SECS`, `SANDBOX_MEMORY_MB`. Only parsing lives here; the
//! caller passes a lookup function, so nothing below reads the environment itself.

use std::path::PathBuf;
use std::time::Duration;

/// Wall time a command gets when neither the operator nor the command says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Output kept per command: its first half and its last half.
pub const DEFAULT_OUTPUT_LIMIT: usize = 64 * 1024;
/// Processes (and threads) a run may have at once.
pub const DEFAULT_MAX_PROCESSES: u64 = 512;
/// Largest file a command may write.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1 << 30;

/// `SANDBOX=`: whether repository commands run at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxMode {
    /// Run commands under bubblewrap.
    Bubblewrap,
    /// Run nothing: the engineer gets no run tool.
    Off,
}

/// How the sandbox runs commands on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSettings {
    /// `SANDBOX`; `None` means "bubblewrap when it works here, else off" (see `probe`).
    pub mode: Option<SandboxMode>,
    /// `SANDBOX_RO_PATHS`: extra host paths mounted read-only at the same place (toolchains).
    pub ro_paths: Vec<PathBuf>,
    /// `SANDBOX_TIMEOUT_SECS`: wall time per command, and the cap on a command's own timeout.
    pub timeout: Duration,
    /// `SANDBOX_MEMORY_MB`: memory per command, enforced by a cgroup where the host gives one.
    pub memory_mb: Option<u64>,
    /// Bytes of output kept per command (head and tail together).
    pub output_limit: usize,
    /// Processes a run may have at once.
    pub max_processes: u64,
    /// Largest file a command may write.
    pub max_file_bytes: u64,
    /// The bubblewrap binary.
    pub bwrap: PathBuf,
    /// The user-mode networking helper for setup commands that ask for network.
    pub slirp4netns: PathBuf,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            mode: None,
            ro_paths: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            memory_mb: None,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            max_processes: DEFAULT_MAX_PROCESSES,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            bwrap: PathBuf::from("bwrap"),
            slirp4netns: PathBuf::from("slirp4netns"),
        }
    }
}

/// A setting the operator gave that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("SANDBOX must be `bubblewrap` or `off`, not `{0}`")]
    Mode(String),
    #[error("SANDBOX_RO_PATHS entries must be absolute paths: `{0}` is not")]
    RelativePath(String),
    #[error("SANDBOX_RO_PATHS may not mount `{0}`: it would hide the sandbox's own layout")]
    ReservedPath(String),
    #[error("{name} must be a whole number above 0, not `{value}`")]
    Number { name: &'static str, value: String },
}

/// Paths the sandbox lays out itself; an operator path may not cover them.
const RESERVED: &[&str] = &["/", "/workspace", "/home", "/tmp", "/proc", "/dev", "/etc"];

impl SandboxSettings {
    /// Reads the four `SANDBOX*` variables through `lookup` (e.g. `|k| std::env::var(k).ok()`);
    /// unset or empty variables keep their defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut settings = SandboxSettings::default();
        if let Some(mode) = get("SANDBOX") {
            settings.mode = Some(match mode.to_ascii_lowercase().as_str() {
                "bubblewrap" | "bwrap" => SandboxMode::Bubblewrap,
                "off" | "none" => SandboxMode::Off,
                _ => return Err(SettingsError::Mode(mode)),
            });
        }
        if let Some(paths) = get("SANDBOX_RO_PATHS") {
            settings.ro_paths = parse_ro_paths(&paths)?;
        }
        if let Some(secs) = get("SANDBOX_TIMEOUT_SECS") {
            settings.timeout = Duration::from_secs(positive("SANDBOX_TIMEOUT_SECS", &secs)?);
        }
        if let Some(mb) = get("SANDBOX_MEMORY_MB") {
            settings.memory_mb = Some(positive("SANDBOX_MEMORY_MB", &mb)?);
        }
        Ok(settings)
    }
}

fn parse_ro_paths(value: &str) -> Result<Vec<PathBuf>, SettingsError> {
    value
        .split(':')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let trimmed = p.trim_end_matches('/');
            if !p.starts_with('/') {
                Err(SettingsError::RelativePath(p.to_owned()))
            } else if trimmed.is_empty() || RESERVED.contains(&trimmed) {
                Err(SettingsError::ReservedPath(p.to_owned()))
            } else {
                Ok(PathBuf::from(trimmed))
            }
        })
        .collect()
}

fn positive(name: &'static str, value: &str) -> Result<u64, SettingsError> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(SettingsError::Number {
            name,
            value: value.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<SandboxSettings, SettingsError> {
        SandboxSettings::from_lookup(|k| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let s = from(&[]).unwrap();
        assert_eq!(s.mode, None);
        assert_eq!(s.timeout, Duration::from_secs(600));
        assert_eq!(s.memory_mb, None);
        assert!(s.ro_paths.is_empty());
    }

    #[test]
    fn reads_every_variable() {
        let s = from(&[
            ("SANDBOX", "off"),
            ("SANDBOX_RO_PATHS", "/opt/rust:/opt/node/"),
            ("SANDBOX_TIMEOUT_SECS", "30"),
            ("SANDBOX_MEMORY_MB", "2048"),
        ])
        .unwrap();
        assert_eq!(s.mode, Some(SandboxMode::Off));
        assert_eq!(
            s.ro_paths,
            vec![PathBuf::from("/opt/rust"), PathBuf::from("/opt/node")]
        );
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(s.memory_mb, Some(2048));
        assert_eq!(
            from(&[("SANDBOX", "Bubblewrap")]).unwrap().mode,
            Some(SandboxMode::Bubblewrap)
        );
    }

    #[test]
    fn explains_bad_values() {
        assert_eq!(
            from(&[("SANDBOX", "docker")]).unwrap_err().to_string(),
            "SANDBOX must be `bubblewrap` or `off`, not `docker`"
        );
        assert!(matches!(
            from(&[("SANDBOX_RO_PATHS", "opt/rust")]),
            Err(SettingsError::RelativePath(_))
        ));
        assert!(matches!(
            from(&[("SANDBOX_RO_PATHS", "/opt:/etc/")]),
            Err(SettingsError::ReservedPath(_))
        ));
        assert_eq!(
            from(&[("SANDBOX_TIMEOUT_SECS", "0")])
                .unwrap_err()
                .to_string(),
            "SANDBOX_TIMEOUT_SECS must be a whole number above 0, not `0`"
        );
    }
}
