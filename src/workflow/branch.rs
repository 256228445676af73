//! The branches the bot writes, named and recognised in one place: `specbot/spec-<issue>` holds
//! a feature issue's spec, `specbot/implement-<issue>` an issue's implementation.

use std::fmt;

/// A branch the bot writes, and the issue it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotBranch {
    /// The spec of a feature issue.
    Spec(u64),
    /// The implementation of an issue (a feature issue or a component issue).
    Implementation(u64),
}

const SPEC: &str = "specbot/spec-";
const IMPLEMENTATION: &str = "specbot/implement-";

impl BotBranch {
    /// Which of the bot's branches `name` is, if any: `specbot/spec-7` → `Spec(7)`.
    pub fn parse(name: &str) -> Option<Self> {
        if let Some(n) = name.strip_prefix(SPEC) {
            return n.parse().ok().map(BotBranch::Spec);
        }
        name.strip_prefix(IMPLEMENTATION)?
            .parse()
            .ok()
            .map(BotBranch::Implementation)
    }

    /// The feature issue of a spec branch.
    pub fn spec_issue(name: &str) -> Option<u64> {
        match Self::parse(name)? {
            BotBranch::Spec(n) => Some(n),
            BotBranch::Implementation(_) => None,
        }
    }

    /// The implemented issue of an implementation branch.
    pub fn implemented_issue(name: &str) -> Option<u64> {
        match Self::parse(name)? {
            BotBranch::Implementation(n) => Some(n),
            BotBranch::Spec(_) => None,
        }
    }
}

impl fmt::Display for BotBranch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BotBranch::Spec(n) => write!(f, "{SPEC}{n}"),
            BotBranch::Implementation(n) => write!(f, "{IMPLEMENTATION}{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::BotBranch;

    #[test]
    fn names_parse_back_to_what_made_them() {
        for branch in [BotBranch::Spec(7), BotBranch::Implementation(12)] {
            assert_eq!(BotBranch::parse(&branch.to_string()), Some(branch));
        }
        assert_eq!(BotBranch::spec_issue("specbot/spec-7"), Some(7));
        assert_eq!(BotBranch::implemented_issue("specbot/implement-9"), Some(9));
        for other in [
            "main",
            "specbot/spec-",
            "specbot/spec-x",
            "specbot/implement-7a",
            "feature/specbot/spec-7",
        ] {
            assert_eq!(BotBranch::parse(other), None, "{other}");
        }
        assert_eq!(BotBranch::spec_issue("specbot/implement-9"), None);
    }
}
