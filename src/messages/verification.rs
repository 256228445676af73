//! The texts about what the bot ran: the PR's "Verification" section, written from the bot's
//! own run records (never from the model's words), and the status comment's lines about tests.

use crate::agent::{CommandRun, RunKind, TestChoice};
use crate::sandbox::Outcome;

/// Runs whose output is shown in the PR body (the rest are only in the table).
const MAX_SHOWN_RUNS: usize = 20;
/// Characters of output tail shown per run.
const MAX_TAIL_CHARS: usize = 3_000;
/// Rows of the table.
const MAX_ROWS: usize = 60;

/// What the bot ran for a PR.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    pub runs: Vec<CommandRun>,
    pub test: Option<TestChoice>,
    /// The bot's last test run passed (`None`: none ran).
    pub tests_pass: Option<bool>,
    /// Why nothing could run (`SANDBOX=off`, no bubblewrap here).
    pub not_run: Option<String>,
}

/// `implement.setup_network` asked for network this host cannot give.
pub fn setup_network_unavailable(why: &str) -> String {
    format!(
        "`implement.setup_network: true` in `{}` asks for network during setup, but this \
         installation cannot give commands network safely ({why}). Remove the setting (and \
         vendor or pre-install the dependencies), or ask the operator to install slirp4netns.",
        crate::config::repo::PATH
    )
}

fn who(kind: RunKind) -> &'static str {
    match kind {
        RunKind::Setup => "setup",
        RunKind::Engineer => "engineer",
        RunKind::Test => "specbot's test run",
    }
}

fn result(outcome: &Outcome) -> String {
    crate::agent::verify::outcome_words(outcome)
}

fn command_cell(command: &str) -> String {
    let flat: String = super::one_line(command).chars().take(200).collect();
    format!("`{}`", flat.replace('`', "'").replace('|', "\\|"))
}

/// The tail of a run's output, in a fence no line of it can close.
fn output_block(run: &CommandRun) -> String {
    let output = &run.record.output;
    let text = if output.tail.is_empty() {
        &output.head
    } else {
        &output.tail
    };
    let chars: Vec<char> = text.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(MAX_TAIL_CHARS)..]
        .iter()
        .collect();
    let longest = tail.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    if tail.trim().is_empty() {
        return "(no output)\n".into();
    }
    let cut = if tail.len() < text.len() || output.truncated {
        "(the end of the output)\n\n"
    } else {
        ""
    };
    format!("{cut}{fence}text\n{}\n{fence}\n", tail.trim_end())
}

/// The PR body's "Verification" section.
pub fn verification_section(v: &Verification) -> String {
    let mut out = String::from("## Verification\n\n");
    if let Some(why) = &v.not_run {
        out.push_str(&format!(
            "**Nothing was run.** Commands do not run on this installation ({}), so no command \
             of the repository — not its tests — ran before this PR was opened. CI is the first \
             to run this code.\n\n",
            super::one_line(why)
        ));
        return out;
    }
    if v.runs.is_empty() {
        out.push_str(
            "**Nothing was run.** No test command is set (`implement.test` in \
             `.github/specbot.yml`) or recognisable in the repository, and the engineer ran no \
             command. CI is the first to run this code.\n\n",
        );
        return out;
    }
    out.push_str(
        "specbot ran these commands itself, in a sandbox, and wrote this section from its own \
         records (not from the model's words):\n\n| # | Who | Command | Result | Time |\n| --- | --- | --- | --- | --- |\n",
    );
    for (i, run) in v.runs.iter().enumerate().take(MAX_ROWS) {
        let network = if run.record.network {
            " (with network)"
        } else {
            ""
        };
        out.push_str(&format!(
            "| {} | {}{network} | {} | {} | {:.1} s |\n",
            i + 1,
            who(run.kind),
            command_cell(&run.record.command),
            result(&run.record.outcome),
            run.record.duration_ms as f64 / 1000.0
        ));
    }
    if v.runs.len() > MAX_ROWS {
        out.push_str(&format!("| … | | {} more | | |\n", v.runs.len() - MAX_ROWS));
    }
    out.push('\n');
    out.push_str(&tests_line(v));
    let shown = v.runs.len().saturating_sub(MAX_SHOWN_RUNS);
    for (i, run) in v.runs.iter().enumerate().skip(shown) {
        out.push_str(&format!(
            "<details><summary>{}. {} — {}</summary>\n\n{}\n</details>\n\n",
            i + 1,
            command_cell(&run.record.command),
            result(&run.record.outcome),
            output_block(run)
        ));
    }
    out
}

fn tests_line(v: &Verification) -> String {
    let Some(test) = &v.test else {
        return "No test command is set (`implement.test`) or recognisable in the repository, \
                so specbot did not run tests itself.\n\n"
            .into();
    };
    let command = command_cell(&test.command);
    let source = match &test.detected {
        None => "from `implement.test`".to_string(),
        Some(reason) => format!("proposed because {}", super::one_line(reason)),
    };
    match v.tests_pass {
        Some(true) => {
            format!("✅ **Tests pass:** the last run of {command} ({source}) exited with 0.\n\n")
        }
        Some(false) => format!(
            "❌ **Tests fail:** the last run of {command} ({source}) failed; its output is \
             below. This PR is a draft until they pass.\n\n"
        ),
        None => format!("The test command {command} ({source}) did not run.\n\n"),
    }
}

/// The status comment's line about the tests (empty when there is nothing to say).
pub fn tests_status(test: Option<&TestChoice>, tests_pass: Option<bool>) -> String {
    let Some(test) = test else {
        return String::new();
    };
    let command = command_cell(&test.command);
    let source = match &test.detected {
        None => "set by `implement.test`".to_string(),
        Some(reason) => format!(
            "no `implement.test` is set, so I used {command} because {}",
            super::one_line(reason)
        ),
    };
    let result = match tests_pass {
        Some(true) => "✅ they pass",
        Some(false) => {
            "❌ **they fail**: I pushed the work anyway and opened the pull request as a draft"
        }
        None => "they did not run",
    };
    match &test.detected {
        None => format!("\n**Tests:** {command} ({source}): {result}.\n"),
        Some(_) => format!("\n**Tests:** {source}: {result}.\n"),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::sandbox::{AppliedLimits, Output, RunRecord};

    /// A run of `sh test.sh` that ended with `code`.
    pub(in crate::messages) fn run(kind: RunKind, code: i32, tail: &str) -> CommandRun {
        CommandRun {
            kind,
            record: RunRecord {
                command: "sh test.sh".into(),
                network: false,
                outcome: Outcome::Exited { code },
                duration_ms: 120,
                output: Output {
                    head: String::new(),
                    tail: tail.into(),
                    truncated: false,
                    total_bytes: tail.len() as u64,
                },
                limits: AppliedLimits {
                    timeout_secs: 600,
                    memory_mb: None,
                    max_processes: 512,
                    cgroup: false,
                },
            },
        }
    }

    #[test]
    fn verification_snapshots() {
        let test = Some(TestChoice {
            command: "sh test.sh".into(),
            detected: None,
        });
        insta::assert_snapshot!(
            "verification_green",
            verification_section(&Verification {
                runs: vec![
                    run(RunKind::Engineer, 1, "FAIL: expected dark\n"),
                    run(RunKind::Test, 0, "ok\n"),
                ],
                test: test.clone(),
                tests_pass: Some(true),
                not_run: None,
            })
        );
        insta::assert_snapshot!(
            "verification_failing",
            verification_section(&Verification {
                runs: vec![run(RunKind::Test, 1, "```\nFAIL\n")],
                test: test.clone(),
                tests_pass: Some(false),
                not_run: None,
            })
        );
        insta::assert_snapshot!(
            "verification_off",
            verification_section(&Verification {
                not_run: Some("SANDBOX=off: repository commands are not run".into()),
                ..Default::default()
            })
        );
        insta::assert_snapshot!(
            "tests_status_detected",
            tests_status(
                Some(&TestChoice {
                    command: "cargo test".into(),
                    detected: Some("the repository has a Cargo.toml (a Rust crate)".into()),
                }),
                Some(false)
            )
        );
    }
}
