//! What the bot says on an implementation PR when its CI fails: a fix pushed, nothing to
//! change, attempts used up, a round that failed. One marker per head commit.

use super::{model_text, one_line};

/// Marker of the reply to a CI failure on one head commit.
pub fn ci_marker(sha: &str) -> String {
    let short: String = sha.chars().take(40).collect();
    format!("<!-- specbot:ci-fix head={short} -->")
}

/// A fix round pushed.
pub fn ci_fix_pushed(
    sha: &str,
    new_head: &str,
    attempt: u32,
    max: u32,
    failing: &[String],
    summary: &str,
) -> String {
    let short: String = new_head.chars().take(7).collect();
    let mut out = format!(
        "{}\n🔧 CI failed ({}). I pushed a fix in {short} (attempt {attempt} of {max}).\n",
        ci_marker(sha),
        failing_list(failing)
    );
    let summary = model_text(summary.trim());
    if !summary.is_empty() {
        out.push_str(&format!(
            "\n{}\n",
            summary.chars().take(2000).collect::<String>()
        ));
    }
    out
}

/// The fix round found nothing to change.
pub fn ci_fix_nothing(sha: &str, attempt: u32, max: u32, failing: &[String]) -> String {
    format!(
        "{}\n🤷 CI failed ({}), and my fix round (attempt {attempt} of {max}) found nothing to change. Over to a human.\n",
        ci_marker(sha),
        failing_list(failing)
    )
}

/// No attempts left.
pub fn ci_gave_up(sha: &str, max: u32, failing: &[String]) -> String {
    format!(
        "{}\n🛑 CI still fails ({}) after {max} fix attempt{}. I am stopping here; over to a human.\n",
        ci_marker(sha),
        failing_list(failing),
        if max == 1 { "" } else { "s" }
    )
}

/// A fix round failed.
pub fn ci_fix_failed(sha: &str, error: &str) -> String {
    format!(
        "{}\n❌ CI failed and I could not fix it: {}\n",
        ci_marker(sha),
        one_line(error)
    )
}

fn failing_list(failing: &[String]) -> String {
    if failing.is_empty() {
        return "no failing check could be read".into();
    }
    let names: Vec<String> = failing
        .iter()
        .take(10)
        .map(|n| format!("`{}`", one_line(n).replace('`', "'")))
        .collect();
    let more = if failing.len() > 10 {
        format!(" and {} more", failing.len() - 10)
    } else {
        String::new()
    };
    format!("failing: {}{more}", names.join(", "))
}
