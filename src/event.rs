//! Typed webhook events: the few payload shapes the bot acts on, and nothing else.
//!
//! These are thin serde types of our own (octocrab's payload types are incomplete): only the
//! fields a trigger or workflow reads, lenient where GitHub sends `null` or omits a field. Any
//! other event or action decodes to [`Event::Ignored`]; a known event whose payload does not
//! match decodes to [`Event::Malformed`] — both are acknowledged and dropped with a log line.

use serde::{Deserialize, Serialize};

/// A GitHub account: a person, an organisation or a bot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub login: String,
    pub id: u64,
    /// `User`, `Organization` or `Bot`.
    #[serde(rename = "type", default)]
    pub kind: String,
}

impl User {
    /// Bots never trigger anything: by account type, and by the `[bot]` login suffix GitHub
    /// gives App accounts.
    pub fn is_bot(&self) -> bool {
        self.kind.eq_ignore_ascii_case("bot") || self.login.ends_with("[bot]")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    pub id: u64,
    pub name: String,
    pub full_name: String,
    pub owner: User,
    #[serde(default)]
    pub default_branch: Option<String>,
    #[serde(default)]
    pub private: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationRef {
    pub id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub id: u64,
    pub number: u64,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    pub user: User,
    #[serde(default)]
    pub labels: Vec<Label>,
    #[serde(default)]
    pub state: Option<String>,
    /// Present when the "issue" is a pull request.
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
}

impl Issue {
    pub fn is_pull_request(&self) -> bool {
        self.pull_request.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    pub user: User,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitRef {
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub sha: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    pub id: u64,
    pub number: u64,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    pub user: User,
    pub head: GitRef,
    pub base: GitRef,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub merged: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    /// `approved`, `changes_requested`, `commented`, `dismissed` (any case).
    #[serde(default)]
    pub state: String,
    pub user: User,
}

/// A pull request as check suites and runs list them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRef {
    pub number: u64,
    pub head: GitRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRef {
    pub id: u64,
    #[serde(default)]
    pub slug: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSuite {
    pub id: u64,
    #[serde(default)]
    pub head_branch: Option<String>,
    pub head_sha: String,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub pull_requests: Vec<PullRef>,
    #[serde(default)]
    pub app: Option<AppRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSuiteRef {
    pub id: u64,
    #[serde(default)]
    pub head_branch: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRun {
    pub id: u64,
    pub name: String,
    pub head_sha: String,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub check_suite: Option<CheckSuiteRef>,
    #[serde(default)]
    pub pull_requests: Vec<PullRef>,
    #[serde(default)]
    pub app: Option<AppRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationRepo {
    pub id: u64,
    pub full_name: String,
}

/// Fields every repository event shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub action: String,
    pub repository: Repository,
    pub sender: User,
    pub installation: Option<InstallationRef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Ping {
        zen: Option<String>,
        hook_id: Option<u64>,
    },
    Issues {
        envelope: Envelope,
        issue: Issue,
        /// The label added or removed (`labeled` / `unlabeled`).
        label: Option<Label>,
    },
    IssueComment {
        envelope: Envelope,
        issue: Issue,
        comment: Comment,
        /// For `edited`: the body before the edit.
        previous_body: Option<String>,
    },
    PullRequest {
        envelope: Envelope,
        pull_request: PullRequest,
    },
    PullRequestReview {
        envelope: Envelope,
        pull_request: PullRequest,
        review: Review,
    },
    PullRequestReviewComment {
        envelope: Envelope,
        pull_request: PullRequest,
        comment: Comment,
    },
    CheckSuite {
        envelope: Envelope,
        check_suite: CheckSuite,
    },
    CheckRun {
        envelope: Envelope,
        check_run: CheckRun,
    },
    Installation {
        action: String,
        installation: InstallationRef,
        sender: User,
        repositories: Vec<InstallationRepo>,
    },
    InstallationRepositories {
        action: String,
        installation: InstallationRef,
        sender: User,
        added: Vec<InstallationRepo>,
        removed: Vec<InstallationRepo>,
    },
    /// An event or action the bot does not act on.
    Ignored {
        event: String,
        action: Option<String>,
    },
    /// An event the bot acts on whose payload did not decode.
    Malformed {
        event: String,
        action: Option<String>,
        error: String,
    },
}

/// The `action` of a payload, if it has one, read without decoding the rest.
pub fn peek_action(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Peek {
        action: Option<String>,
    }
    serde_json::from_slice::<Peek>(body)
        .ok()
        .and_then(|p| p.action)
}

/// Decode a repository event's payload in one pass: the [`Envelope`]'s fields beside the
/// event's own (`{ field: Type, … }`), then build the event from both (`|envelope, p| …`).
/// One pass rather than one for the event and another for the envelope: decoding is the
/// largest part of a delivery's own work, and the second pass read the whole body again.
macro_rules! with_envelope {
    ($body:expr, { $($fields:tt)* } => |$envelope:ident, $p:ident| $build:expr) => {{
        #[derive(Deserialize)]
        struct P {
            #[serde(default)]
            action: Option<String>,
            repository: Repository,
            sender: User,
            #[serde(default)]
            installation: Option<InstallationRef>,
            $($fields)*
        }
        let $p: P = serde_json::from_slice($body)?;
        let $envelope = Envelope {
            action: $p.action.unwrap_or_default(),
            repository: $p.repository,
            sender: $p.sender,
            installation: $p.installation,
        };
        $build
    }};
}

impl Event {
    /// Decode a verified delivery. Never fails: unknown shapes become `Ignored` or `Malformed`.
    pub fn parse(event: &str, body: &[u8]) -> Event {
        match Self::try_parse(event, body) {
            Ok(Some(event)) => event,
            Ok(None) => Event::Ignored {
                event: event.to_string(),
                action: peek_action(body),
            },
            Err(error) => Event::Malformed {
                event: event.to_string(),
                action: peek_action(body),
                error: error.to_string(),
            },
        }
    }

    fn try_parse(event: &str, body: &[u8]) -> Result<Option<Event>, serde_json::Error> {
        Ok(Some(match event {
            "ping" => {
                #[derive(Deserialize)]
                struct P {
                    zen: Option<String>,
                    hook_id: Option<u64>,
                }
                let p: P = serde_json::from_slice(body)?;
                Event::Ping {
                    zen: p.zen,
                    hook_id: p.hook_id,
                }
            }
            "issues" => {
                with_envelope!(body, {
                    issue: Issue,
                    #[serde(default)]
                    label: Option<Label>,
                } => |envelope, p| Event::Issues {
                    envelope,
                    issue: p.issue,
                    label: p.label,
                })
            }
            "issue_comment" => {
                #[derive(Deserialize)]
                struct Changes {
                    body: Option<From>,
                }
                #[derive(Deserialize)]
                struct From {
                    from: Option<String>,
                }
                with_envelope!(body, {
                    issue: Issue,
                    comment: Comment,
                    #[serde(default)]
                    changes: Option<Changes>,
                } => |envelope, p| Event::IssueComment {
                    envelope,
                    issue: p.issue,
                    comment: p.comment,
                    previous_body: p.changes.and_then(|c| c.body).and_then(|b| b.from),
                })
            }
            "pull_request" => {
                with_envelope!(body, {
                    pull_request: PullRequest,
                } => |envelope, p| Event::PullRequest {
                    envelope,
                    pull_request: p.pull_request,
                })
            }
            "pull_request_review" => {
                with_envelope!(body, {
                    pull_request: PullRequest,
                    review: Review,
                } => |envelope, p| Event::PullRequestReview {
                    envelope,
                    pull_request: p.pull_request,
                    review: p.review,
                })
            }
            "pull_request_review_comment" => {
                with_envelope!(body, {
                    pull_request: PullRequest,
                    comment: Comment,
                } => |envelope, p| Event::PullRequestReviewComment {
                    envelope,
                    pull_request: p.pull_request,
                    comment: p.comment,
                })
            }
            "check_suite" => {
                with_envelope!(body, {
                    check_suite: CheckSuite,
                } => |envelope, p| Event::CheckSuite {
                    envelope,
                    check_suite: p.check_suite,
                })
            }
            "check_run" => {
                with_envelope!(body, {
                    check_run: CheckRun,
                } => |envelope, p| Event::CheckRun {
                    envelope,
                    check_run: p.check_run,
                })
            }
            "installation" => {
                #[derive(Deserialize)]
                struct P {
                    action: String,
                    installation: InstallationRef,
                    sender: User,
                    #[serde(default)]
                    repositories: Option<Vec<InstallationRepo>>,
                }
                let p: P = serde_json::from_slice(body)?;
                Event::Installation {
                    action: p.action,
                    installation: p.installation,
                    sender: p.sender,
                    repositories: p.repositories.unwrap_or_default(),
                }
            }
            "installation_repositories" => {
                #[derive(Deserialize)]
                struct P {
                    action: String,
                    installation: InstallationRef,
                    sender: User,
                    #[serde(default)]
                    repositories_added: Vec<InstallationRepo>,
                    #[serde(default)]
                    repositories_removed: Vec<InstallationRepo>,
                }
                let p: P = serde_json::from_slice(body)?;
                Event::InstallationRepositories {
                    action: p.action,
                    installation: p.installation,
                    sender: p.sender,
                    added: p.repositories_added,
                    removed: p.repositories_removed,
                }
            }
            _ => return Ok(None),
        }))
    }

    /// The event name as GitHub sends it in `X-GitHub-Event`.
    pub fn name(&self) -> &str {
        match self {
            Event::Ping { .. } => "ping",
            Event::Issues { .. } => "issues",
            Event::IssueComment { .. } => "issue_comment",
            Event::PullRequest { .. } => "pull_request",
            Event::PullRequestReview { .. } => "pull_request_review",
            Event::PullRequestReviewComment { .. } => "pull_request_review_comment",
            Event::CheckSuite { .. } => "check_suite",
            Event::CheckRun { .. } => "check_run",
            Event::Installation { .. } => "installation",
            Event::InstallationRepositories { .. } => "installation_repositories",
            Event::Ignored { event, .. } | Event::Malformed { event, .. } => event,
        }
    }

    /// The payload's `action`, where it has one.
    pub fn action(&self) -> Option<&str> {
        match self {
            Event::Ping { .. } => None,
            Event::Installation { action, .. } | Event::InstallationRepositories { action, .. } => {
                Some(action)
            }
            Event::Ignored { action, .. } | Event::Malformed { action, .. } => action.as_deref(),
            other => other
                .envelope()
                .map(|e| e.action.as_str())
                .filter(|a| !a.is_empty()),
        }
    }

    pub fn envelope(&self) -> Option<&Envelope> {
        match self {
            Event::Issues { envelope, .. }
            | Event::IssueComment { envelope, .. }
            | Event::PullRequest { envelope, .. }
            | Event::PullRequestReview { envelope, .. }
            | Event::PullRequestReviewComment { envelope, .. }
            | Event::CheckSuite { envelope, .. }
            | Event::CheckRun { envelope, .. } => Some(envelope),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EVENTS: &[&str] = &[
        "issues",
        "issue_comment",
        "pull_request",
        "pull_request_review",
        "pull_request_review_comment",
        "check_suite",
        "check_run",
        "installation",
        "installation_repositories",
        "ping",
        "star",
    ];

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(body in proptest::collection::vec(any::<u8>(), 0..2048), which in 0..EVENTS.len()) {
            let event = Event::parse(EVENTS[which], &body);
            let _ = (event.name(), event.action(), event.envelope());
        }

        #[test]
        fn decoding_json_shaped_input_never_panics(
            action in "[a-z_]{0,12}",
            number in any::<u64>(),
            login in "\\PC{0,20}",
            which in 0..EVENTS.len(),
        ) {
            let body = serde_json::json!({
                "action": action,
                "issue": {"id": number, "number": number, "title": login, "user": {"login": login, "id": 1}},
                "comment": {"id": number, "body": login, "user": {"login": login, "id": 2, "type": "Bot"}},
                "repository": {"id": 1, "name": "r", "full_name": "o/r", "owner": {"login": "o", "id": 3}},
                "sender": {"login": login, "id": 4},
            });
            let event = Event::parse(EVENTS[which], &serde_json::to_vec(&body).unwrap());
            let _ = crate::trigger::plan(&event, "d", 3);
        }
    }

    #[test]
    fn the_envelope_is_decoded_with_the_event_and_required_with_it() {
        let mut body = serde_json::json!({
            "action": "created",
            "issue": {"id": 1, "number": 7, "title": "t", "user": {"login": "alice", "id": 1}},
            "comment": {"id": 9, "body": "/implement", "user": {"login": "alice", "id": 1}},
            "repository": {"id": 1, "name": "r", "full_name": "o/r", "owner": {"login": "o", "id": 3}},
            "sender": {"login": "alice", "id": 1},
            "installation": {"id": 77},
        });
        let event = Event::parse("issue_comment", &serde_json::to_vec(&body).unwrap());
        let envelope = event.envelope().expect("typed");
        assert_eq!(envelope.action, "created");
        assert_eq!(envelope.repository.full_name, "o/r");
        assert_eq!(envelope.sender.login, "alice");
        assert_eq!(envelope.installation.map(|i| i.id), Some(77));
        let Event::IssueComment { issue, comment, .. } = &event else {
            panic!("{event:?}");
        };
        assert_eq!((issue.number, comment.id), (7, 9));

        body.as_object_mut().unwrap().remove("sender");
        match Event::parse("issue_comment", &serde_json::to_vec(&body).unwrap()) {
            Event::Malformed { action, error, .. } => {
                assert_eq!(action.as_deref(), Some("created"));
                assert!(error.contains("sender"), "{error}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_sender_is_a_bot_by_type_or_by_login() {
        let bot = |login: &str, kind: &str| User {
            login: login.into(),
            id: 1,
            kind: kind.into(),
        };
        assert!(bot("specbot[bot]", "Bot").is_bot());
        assert!(bot("renovate[bot]", "User").is_bot());
        assert!(bot("ci", "Bot").is_bot());
        assert!(!bot("alice", "User").is_bot());
    }
}
