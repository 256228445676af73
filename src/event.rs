//! Typed webhook events: the few payload shapes the bot acts on, and nothing else.
//!
//! These are thin serde types of our own (octocrab's payload types are incomplete): only the
//! fields a trigger or workflow reads, lenient where GitHub sends `null` or omits a field. Any
//! other event or action decodes to [`Event::Ignored`]; a known event whose payload does not
//! match decodes to [`Event::Malformed`] — both are acknowledged and dropped with a log line.

use serde::{Deserialize, Deserializer};

use crate::github::model::{
    CheckRun, CheckSuite, Comment, InstallationRef, InstallationRepo, Issue, Label, PullRequest,
    Repository, Review, User,
};

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

/// An `issue_comment` edit's `changes.body.from`: the comment's body before the edit.
fn body_before_edit<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Changes {
        body: Option<From>,
    }
    #[derive(Deserialize)]
    struct From {
        from: Option<String>,
    }
    let changes = Option::<Changes>::deserialize(d)?;
    Ok(changes.and_then(|c| c.body).and_then(|b| b.from))
}

/// Decode one payload in one pass into `Event::$variant { $field, … }`: a struct of exactly
/// the variant's fields (with their serde attributes) is read, then moved into the variant.
/// With `envelope`, the [`Envelope`]'s fields are read in the same pass beside the event's
/// own: decoding is the largest part of a delivery's own work, and a second pass for the
/// envelope read the whole body again.
macro_rules! decode {
    ($body:expr, $variant:ident { $($(#[$meta:meta])* $field:ident: $ty:ty),* $(,)? }) => {{
        #[derive(Deserialize)]
        struct P {
            $($(#[$meta])* $field: $ty,)*
        }
        let p: P = serde_json::from_slice($body)?;
        Event::$variant { $($field: p.$field),* }
    }};
    ($body:expr, envelope, $variant:ident { $($(#[$meta:meta])* $field:ident: $ty:ty),* $(,)? }) => {{
        #[derive(Deserialize)]
        struct P {
            #[serde(default)]
            action: Option<String>,
            repository: Repository,
            sender: User,
            #[serde(default)]
            installation: Option<InstallationRef>,
            $($(#[$meta])* $field: $ty,)*
        }
        let p: P = serde_json::from_slice($body)?;
        Event::$variant {
            envelope: Envelope {
                action: p.action.unwrap_or_default(),
                repository: p.repository,
                sender: p.sender,
                installation: p.installation,
            },
            $($field: p.$field),*
        }
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
            "ping" => decode!(body, Ping { zen: Option<String>, hook_id: Option<u64> }),
            "issues" => decode!(body, envelope, Issues { issue: Issue, label: Option<Label> }),
            "issue_comment" => decode!(body, envelope, IssueComment {
                issue: Issue,
                comment: Comment,
                #[serde(rename = "changes", default, deserialize_with = "body_before_edit")]
                previous_body: Option<String>,
            }),
            "pull_request" => decode!(
                body,
                envelope,
                PullRequest {
                    pull_request: PullRequest
                }
            ),
            "pull_request_review" => decode!(
                body,
                envelope,
                PullRequestReview {
                    pull_request: PullRequest,
                    review: Review,
                }
            ),
            "pull_request_review_comment" => decode!(
                body,
                envelope,
                PullRequestReviewComment {
                    pull_request: PullRequest,
                    comment: Comment,
                }
            ),
            "check_suite" => decode!(
                body,
                envelope,
                CheckSuite {
                    check_suite: CheckSuite
                }
            ),
            "check_run" => decode!(
                body,
                envelope,
                CheckRun {
                    check_run: CheckRun
                }
            ),
            "installation" => decode!(body, Installation {
                action: String,
                installation: InstallationRef,
                sender: User,
                #[serde(default, deserialize_with = "crate::github::model::or_default")]
                repositories: Vec<InstallationRepo>,
            }),
            "installation_repositories" => decode!(body, InstallationRepositories {
                action: String,
                installation: InstallationRef,
                sender: User,
                #[serde(rename = "repositories_added", default)]
                added: Vec<InstallationRepo>,
                #[serde(rename = "repositories_removed", default)]
                removed: Vec<InstallationRepo>,
            }),
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
}
