//! Texts about GitHub Actions job logs in CI fix rounds: what the fix round could not read and
//! what an administrator can do about it.

use super::one_line;

/// Why one check's job log was not read (kept in the fix round's checkpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogGapKind {
    /// The installation has not accepted `actions: read`.
    Permission,
    /// The log expired or was deleted.
    Gone,
    /// Anything else.
    Failed,
}

/// A paragraph for the fix round's comment naming the checks whose job log could not be read;
/// empty when every log was read.
pub fn ci_log_gaps(gaps: &[(String, LogGapKind)]) -> String {
    let names = |kind: LogGapKind| -> Vec<String> {
        gaps.iter()
            .filter(|(_, k)| *k == kind)
            .take(10)
            .map(|(n, _)| format!("`{}`", one_line(n).replace('`', "'")))
            .collect()
    };
    let mut out = String::new();
    let permission = names(LogGapKind::Permission);
    if !permission.is_empty() {
        out.push_str(&format!(
            "\nℹ️ I could not read the GitHub Actions job log of {} (this installation has not granted the App the `actions: read` permission), so this round worked from the check annotations only. An owner of this account or organisation can accept the updated permissions under *Settings → GitHub Apps → Configure*.\n",
            permission.join(", ")
        ));
    }
    let gone = names(LogGapKind::Gone);
    if !gone.is_empty() {
        out.push_str(&format!(
            "\nℹ️ The job log of {} is no longer available (expired or deleted), so this round worked from the check annotations only.\n",
            gone.join(", ")
        ));
    }
    let failed = names(LogGapKind::Failed);
    if !failed.is_empty() {
        out.push_str(&format!(
            "\nℹ️ Downloading the job log of {} failed, so this round worked from the check annotations only.\n",
            failed.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_gap_texts() {
        assert_eq!(ci_log_gaps(&[]), "");
        insta::assert_snapshot!(
            "ci_log_gaps",
            ci_log_gaps(&[
                ("test".into(), LogGapKind::Permission),
                ("lint".into(), LogGapKind::Permission),
                ("build".into(), LogGapKind::Gone),
                ("docs".into(), LogGapKind::Failed),
            ])
        );
    }
}
