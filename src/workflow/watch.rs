//! Live status comments: while a job works, its one status comment is edited to show what it
//! is doing (the engineer's step, action, last command, spend and time; the spec job's phase).
//!
//! Edits are throttled by the bot's clock to at most one per `GitHubPolicy::status_edit_gap`
//! (15 s by default), so a long run does not flood the installation's write queue; the latest
//! state is shown once the gap has passed, even when nothing new happens. An edit goes to the
//! same comment every time (never a new one), an unchanged body is not sent again, and a
//! failed edit is logged and skipped: progress is a courtesy, it never fails a job.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::agent::progress::ProgressEvent;
use crate::agent::tools;
use crate::agent::verify::RUN_COMMAND;
use crate::app::App;
use crate::github::Repo;
use crate::jobs::Millis;
use crate::llm::ModelPrice;
use crate::messages::{Doing, LiveWork, SpecPhase, TestResult};

/// At most one edit per `gap`, on a clock the caller passes in (the bot's clock in the job, a
/// fake one in tests).
#[derive(Debug, Clone)]
pub struct Throttle {
    gap_ms: Millis,
    last: Option<Millis>,
}

impl Throttle {
    pub fn new(gap: Duration) -> Self {
        Throttle {
            gap_ms: gap.as_millis().min(i64::MAX as u128) as Millis,
            last: None,
        }
    }

    /// How long until an edit may go out (zero: now).
    pub fn wait(&self, now: Millis) -> Duration {
        match self.last {
            Some(last) => Duration::from_millis((last + self.gap_ms - now).max(0).unsigned_abs()),
            None => Duration::ZERO,
        }
    }

    /// Whether an edit may go out now; if so, it counts as made.
    pub fn take(&mut self, now: Millis) -> bool {
        if self.wait(now).is_zero() {
            self.last = Some(now);
            true
        } else {
            false
        }
    }
}

/// Where an implement job shows its progress: its status comment, and how to draw it.
pub struct StatusBoard<'a> {
    pub repo: &'a Repo,
    pub comment_id: u64,
    /// The comment's body for a live state.
    pub render: &'a (dyn Fn(&LiveWork) -> String + Send + Sync),
}

/// A spec status comment's body for a phase and the seconds elapsed.
type PhaseText<'a> = dyn Fn(&SpecPhase, u64) -> String + Send + Sync + 'a;

/// A status comment that shows a job's phases (the spec job: reading context, drafting,
/// repairing, committing, filing component 2 of 5), throttled like the engineer's progress.
pub struct PhaseBoard<'a> {
    app: &'a App,
    repo: &'a Repo,
    comment_id: u64,
    /// The comment's body for a phase and the seconds since the board was made.
    render: Box<PhaseText<'a>>,
    started: Millis,
    /// Shared by the job's boards, so that its edits keep the gap between them.
    throttle: &'a std::sync::Mutex<Throttle>,
}

impl<'a> PhaseBoard<'a> {
    pub fn new(
        app: &'a App,
        repo: &'a Repo,
        comment_id: u64,
        throttle: &'a std::sync::Mutex<Throttle>,
        render: impl Fn(&SpecPhase, u64) -> String + Send + Sync + 'a,
    ) -> Self {
        PhaseBoard {
            app,
            repo,
            comment_id,
            render: Box::new(render),
            started: app.now(),
            throttle,
        }
    }

    /// Show `phase`, unless an edit went out less than the gap ago (the next phase will
    /// show). Failures are logged, never returned.
    pub async fn show(&self, phase: SpecPhase) {
        let now = self.app.now();
        let due = match self.throttle.lock() {
            Ok(mut t) => t.take(now),
            Err(_) => false,
        };
        if !due {
            return;
        }
        let elapsed = ((now - self.started).max(0) / 1000).unsigned_abs();
        let body = (self.render)(&phase, elapsed);
        if let Err(e) = self.repo.update_comment(self.comment_id, &body).await {
            tracing::warn!(error = %e, "editing the status comment failed; going on");
        }
    }
}

/// Fold one event into the live state.
pub fn apply(live: &mut LiveWork, event: ProgressEvent, price: Option<&ModelPrice>) {
    match event {
        ProgressEvent::Answered {
            step,
            max_steps,
            usage,
        } => {
            live.step = step;
            live.max_steps = max_steps;
            live.tokens = usage.prompt_tokens() + usage.output_tokens;
            live.cost_usd = price.map(|p| p.cost(&usage));
            live.doing = Some(Doing::Thinking);
        }
        ProgressEvent::ToolStarted { name, target } => {
            let target = target.unwrap_or_default();
            live.doing = Some(match name.as_str() {
                tools::READ_FILE | tools::LIST_DIRECTORY => Doing::Reading(target),
                tools::SEARCH => Doing::Searching(target),
                tools::WRITE_FILE | tools::EDIT_FILE => Doing::Editing(target),
                tools::DELETE_FILE => Doing::Deleting(target),
                tools::FINISH => Doing::Finishing,
                RUN_COMMAND => Doing::Running(target),
                other => Doing::Tool(other.to_string()),
            });
        }
        ProgressEvent::ToolEnded {
            name,
            target,
            first_line,
            ..
        } => {
            if name == RUN_COMMAND {
                live.last_command = Some((target.unwrap_or_default(), first_line));
                live.doing = Some(Doing::Thinking);
            }
        }
        ProgressEvent::Tested {
            command,
            passed,
            result,
        } => {
            live.last_test = Some(TestResult {
                command,
                passed,
                result,
            });
        }
    }
}

/// Show the engineer's progress on `board` until the loop closes its channel. Without a board,
/// or with progress edits off, the events are only drained.
pub async fn watch(
    app: &App,
    board: Option<&StatusBoard<'_>>,
    price: Option<ModelPrice>,
    mut events: UnboundedReceiver<ProgressEvent>,
) {
    let (Some(board), Some(gap)) = (board, app.settings.github.status_edit_gap) else {
        while events.recv().await.is_some() {}
        return;
    };
    let started = app.now();
    let mut throttle = Throttle::new(gap);
    let mut live = LiveWork::default();
    let mut shown: Option<String> = None;
    let mut pending = false;
    loop {
        let next = if pending {
            let wait = throttle.wait(app.now());
            tokio::select! {
                e = events.recv() => e.map(Next::Event).unwrap_or(Next::Closed),
                () = tokio::time::sleep(wait) => Next::Due,
            }
        } else {
            events.recv().await.map(Next::Event).unwrap_or(Next::Closed)
        };
        match next {
            Next::Closed => return,
            Next::Event(event) => {
                apply(&mut live, event, price.as_ref());
                pending = true;
            }
            Next::Due => {}
        }
        let now = app.now();
        if pending && throttle.take(now) {
            pending = false;
            live.elapsed_secs = ((now - started).max(0) / 1000).unsigned_abs();
            let body = (board.render)(&live);
            if shown.as_deref() == Some(body.as_str()) {
                continue;
            }
            match board.repo.update_comment(board.comment_id, &body).await {
                Ok(_) => shown = Some(body),
                Err(e) => tracing::warn!(error = %e, "editing the status comment failed; going on"),
            }
        }
    }
}

enum Next {
    Event(ProgressEvent),
    Closed,
    /// The throttle's gap passed with an edit pending.
    Due,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_lets_one_edit_through_per_gap_on_the_given_clock() {
        let mut t = Throttle::new(Duration::from_secs(15));
        assert!(t.take(1_000), "the first edit goes out at once");
        assert!(!t.take(1_001));
        assert_eq!(t.wait(6_000), Duration::from_secs(10));
        assert!(!t.take(15_999));
        assert!(t.take(16_000), "15 s later");
        assert!(!t.take(20_000));
        assert!(t.take(100_000));
        let mut off = Throttle::new(Duration::ZERO);
        assert!(
            off.take(5) && off.take(5) && off.take(5),
            "a zero gap edits every time"
        );
    }

    #[test]
    fn events_become_the_live_state() {
        let mut live = LiveWork::default();
        let usage = crate::llm::Usage {
            input_tokens: 1000,
            output_tokens: 200,
            ..Default::default()
        };
        apply(
            &mut live,
            ProgressEvent::Answered {
                step: 12,
                max_steps: 60,
                usage,
            },
            None,
        );
        assert_eq!((live.step, live.max_steps, live.tokens), (12, 60, 1200));
        assert_eq!(live.cost_usd, None);
        let started = |name: &str, target: &str| ProgressEvent::ToolStarted {
            name: name.into(),
            target: Some(target.into()),
        };
        apply(&mut live, started("edit_file", "src/lib.rs"), None);
        assert_eq!(live.doing, Some(Doing::Editing("src/lib.rs".into())));
        apply(&mut live, started("run_command", "cargo test"), None);
        assert_eq!(live.doing, Some(Doing::Running("cargo test".into())));
        apply(
            &mut live,
            ProgressEvent::ToolEnded {
                name: "run_command".into(),
                target: Some("cargo test".into()),
                ok: true,
                first_line: "exit code 1".into(),
            },
            None,
        );
        assert_eq!(
            live.last_command,
            Some(("cargo test".into(), "exit code 1".into()))
        );
    }
}
