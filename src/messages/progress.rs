//! Texts of the live progress a status comment shows while a job works: the implement job's
//! step, current action, last command, spend and time; the spec job's phase.

use super::{ImplementStatus, implement_status, one_line};

/// What the engineer is doing now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Doing {
    /// Waiting for the model's next answer.
    Thinking,
    Reading(String),
    Searching(String),
    Editing(String),
    Deleting(String),
    /// A command runs.
    Running(String),
    /// Another tool (by name).
    Tool(String),
    /// The model called `finish`.
    Finishing,
}

/// A run of the repository's tests by specbot.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    pub command: String,
    pub passed: bool,
    /// `exit code 1 after 0.2 s`.
    pub result: String,
}

/// The live part of an implement job's status comment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveWork {
    pub step: u32,
    pub max_steps: u32,
    pub doing: Option<Doing>,
    /// The last command the engineer ran and how it ended (`exit code 1`).
    pub last_command: Option<(String, String)>,
    /// The last time specbot ran the repository's tests itself.
    pub last_test: Option<TestResult>,
    pub tokens: u64,
    /// `None` when the model's price is unknown.
    pub cost_usd: Option<f64>,
    pub elapsed_secs: u64,
}

fn code(text: &str) -> String {
    format!("`{}`", one_line(text).replace('`', "'"))
}

fn doing(d: &Doing) -> String {
    match d {
        Doing::Thinking => "thinking about the next step".into(),
        Doing::Reading(p) => format!("reading {}", code(p)),
        Doing::Searching(p) => format!("searching for {}", code(p)),
        Doing::Editing(p) => format!("editing {}", code(p)),
        Doing::Deleting(p) => format!("deleting {}", code(p)),
        Doing::Running(c) => format!("running {}", code(c)),
        Doing::Tool(t) => format!("using {}", code(t)),
        Doing::Finishing => "finishing up".into(),
    }
}

/// `3 min 05 s`, `42 s`, `1 h 02 min`.
fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {:02} s", s / 60, s % 60),
        s => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

/// The working status comment with the live progress under it.
pub fn implement_live(status: &ImplementStatus, live: &LiveWork) -> String {
    let mut out = implement_status(status);
    out.push_str(&format!(
        "\n**Progress:** step {} / {}",
        live.step, live.max_steps
    ));
    if let Some(d) = &live.doing {
        out.push_str(&format!(" · {}", doing(d)));
    }
    out.push('\n');
    if let Some((command, result)) = &live.last_command {
        out.push_str(&format!(
            "\n**Last command:** {} → {}\n",
            code(command),
            one_line(result)
        ));
    }
    if let Some(t) = &live.last_test {
        let verdict = if t.passed { "✅ pass" } else { "❌ fail" };
        out.push_str(&format!(
            "\n**Last test run** (by specbot): {} → {verdict} ({})\n",
            code(&t.command),
            one_line(&t.result)
        ));
    }
    let cost = live
        .cost_usd
        .map(|c| format!(", ${c:.4}"))
        .unwrap_or_default();
    out.push_str(&format!(
        "\n<sub>{} tokens{cost} · {} so far</sub>\n",
        live.tokens,
        duration(live.elapsed_secs)
    ));
    out
}

/// A phase of the spec job, as its status comment shows it while it works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecPhase {
    ReadingContext,
    Drafting,
    /// The draft did not validate; the model repairs it.
    Repairing,
    Committing,
    /// Filing component issue `n` of `of`.
    Filing {
        n: usize,
        of: usize,
    },
}

/// The line a spec status comment shows for its current phase.
pub fn spec_phase(phase: &SpecPhase, elapsed_secs: u64) -> String {
    let what = match phase {
        SpecPhase::ReadingContext => "reading the issue and the repository".to_string(),
        SpecPhase::Drafting => "drafting the spec".to_string(),
        SpecPhase::Repairing => {
            "the draft did not pass validation; the model is repairing it".to_string()
        }
        SpecPhase::Committing => "committing the spec and opening its pull request".to_string(),
        SpecPhase::Filing { n, of } => format!("filing component {n} of {of}"),
    };
    format!(
        "\n**Now:** {what} <sub>({} so far)</sub>\n",
        duration(elapsed_secs)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::ImplementStage;

    #[test]
    fn live_progress_texts() {
        let status = ImplementStatus {
            issue: 7,
            stage: ImplementStage::Working,
            spec: Some(("specs/IMPLEMENT-7.md".into(), "main".into())),
            ..ImplementStatus::default()
        };
        let live = LiveWork {
            step: 12,
            max_steps: 60,
            doing: Some(Doing::Editing("src/lib.rs".into())),
            last_command: Some(("cargo test".into(), "exit code 1 after 4.2 s".into())),
            last_test: Some(TestResult {
                command: "cargo test".into(),
                passed: false,
                result: "exit code 101 after 12.0 s".into(),
            }),
            tokens: 48_210,
            cost_usd: Some(0.2113),
            elapsed_secs: 185,
        };
        insta::assert_snapshot!("implement_live", implement_live(&status, &live));
        let unpriced = LiveWork {
            step: 1,
            max_steps: 60,
            doing: Some(Doing::Thinking),
            ..LiveWork::default()
        };
        insta::assert_snapshot!(
            "implement_live_first_step",
            implement_live(&status, &unpriced)
        );
        insta::assert_snapshot!(
            "spec_phases",
            [
                SpecPhase::ReadingContext,
                SpecPhase::Drafting,
                SpecPhase::Repairing,
                SpecPhase::Committing,
                SpecPhase::Filing { n: 2, of: 5 },
            ]
            .iter()
            .map(|p| spec_phase(p, 3725))
            .collect::<String>()
        );
        assert_eq!(duration(42), "42 s");
    }
}
