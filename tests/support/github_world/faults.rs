//! Fault injection for the GitHub simulator: rules that make a route answer 5xx, GitHub's
//! secondary rate limit, or never answer, or carry out a write and lose its answer, a given
//! number of times; and the rate-limit headers
//! that every response carries.

/// What a matching request gets instead of its normal answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and GitHub's generic error body.
    Status(u16),
    /// 403 with GitHub's secondary-rate-limit message; `retry_after` sets `retry-after`,
    /// `reset` (Unix seconds) sets `x-ratelimit-reset` with `x-ratelimit-remaining: 0`.
    SecondaryRateLimit {
        retry_after: Option<u64>,
        reset: Option<u64>,
    },
    /// Never answer (the client's timeout is what ends the request).
    Hang,
    /// The request is carried out, then its answer is lost: the client gets a 502 though the
    /// write happened (what a dropped connection or a gateway timeout looks like).
    LoseAnswer,
}

/// One injection rule. The first live rule that matches a request fires, then counts down.
#[derive(Clone, Debug)]
pub struct FaultRule {
    /// `GET`, `POST`, … or `*` for any method.
    pub method: String,
    /// Either an OpenAPI route template (`/repos/{owner}/{repo}/git/refs`), an exact path, or a
    /// glob over the concrete path where `*` matches any run of characters (`/repos/*/pulls*`).
    pub route: String,
    /// How many matching requests fire the fault (`usize::MAX` for always).
    pub times: usize,
    pub fault: Fault,
}

impl FaultRule {
    pub fn new(method: &str, route: &str, times: usize, fault: Fault) -> Self {
        FaultRule {
            method: method.to_ascii_uppercase(),
            route: route.to_string(),
            times,
            fault,
        }
    }

    pub(crate) fn matches(&self, method: &str, template: Option<&str>, path: &str) -> bool {
        if self.times == 0 || (self.method != "*" && !self.method.eq_ignore_ascii_case(method)) {
            return false;
        }
        template == Some(self.route.as_str()) || glob(&self.route, path)
    }
}

/// `*` matches any run of characters (slashes included); everything else literally.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

pub(crate) const SECONDARY_RATE_LIMIT_MESSAGE: &str = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID 0000:0000:0000000:0000000:00000000.";
pub(crate) const SECONDARY_RATE_LIMIT_DOCS: &str = "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits";

/// The primary rate-limit headers for the `used`-th request of a window of `limit`.
pub(crate) fn rate_limit_headers(used: u64, limit: u64, reset: i64) -> Vec<(String, String)> {
    vec![
        ("x-ratelimit-limit".into(), limit.to_string()),
        (
            "x-ratelimit-remaining".into(),
            limit.saturating_sub(used).to_string(),
        ),
        ("x-ratelimit-reset".into(), reset.to_string()),
        ("x-ratelimit-used".into(), used.min(limit).to_string()),
        ("x-ratelimit-resource".into(), "core".into()),
    ]
}

pub(crate) const PRIMARY_RATE_LIMIT_MESSAGE: &str = "API rate limit exceeded for installation. If you reach out to GitHub Support for help, please include the request ID 0000:0000:0000000:0000000:00000000.";
