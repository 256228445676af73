//! The command line: `serve | migrate | spec | replay | delivery | check-config`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::config::{EnvArgs, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "specbot",
    version,
    about = "Spec-driven development in your GitHub issues."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub env: EnvArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the webhook server and the job workers (the main job).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Run the architect on a feature text against a local checkout and write the spec files.
    Spec {
        /// The feature text: first line is the title, the rest the body.
        #[arg(long)]
        issue_file: PathBuf,
        /// The repository checkout to use as context.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Where to write the spec files (default: the repository).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The issue number for `{number}` in the spec path (default: digits in the file name).
        #[arg(long)]
        number: Option<u64>,
    },
    /// Validate the environment (and a `.github/specbot.yml`), one line per finding.
    CheckConfig {
        /// A repository config file to validate too.
        #[arg(long)]
        repo_config: Option<PathBuf>,
        /// Do not contact GitHub or the model endpoint (the database is still checked).
        #[arg(long)]
        offline: bool,
    },
    /// Check a spec file offline: IDs, coverage, sections, open questions (exit 0 when every
    /// criterion is covered and the core is usable).
    CheckSpec {
        /// The spec file, e.g. `specs/IMPLEMENT-7.md`.
        file: PathBuf,
    },
    /// Dry run of one webhook payload: print the jobs it would queue and why.
    Replay {
        /// The payload file (JSON).
        payload: PathBuf,
        /// The event name, as in `X-GitHub-Event`.
        #[arg(long)]
        event: String,
    },
    /// Print a stored delivery's body as GitHub sent it (bodies are stored compressed).
    Delivery {
        /// The delivery id (`X-GitHub-Delivery`).
        id: String,
    },
}

/// Run the CLI; the returned code is the process exit code.
pub async fn run(cli: Cli) -> i32 {
    // Load `.env` values the environment did not set (Probot's convention).
    match cli.command {
        Command::Serve => {
            let settings = match Settings::from_env(cli.env, true) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("specbot: {e}");
                    return 2;
                }
            };
            crate::telemetry::init_logging(settings.log_format);
            match crate::runtime::serve(settings).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("specbot: {e}");
                    1
                }
            }
        }
        Command::Migrate => {
            let settings = match settings(cli.env) {
                Ok(s) => s,
                Err(code) => return code,
            };
            match crate::jobs::open(settings.database_url.expose_secret()).await {
                Ok(store) => match store.migrate().await {
                    Ok(()) => {
                        println!("migrations applied");
                        0
                    }
                    Err(e) => {
                        eprintln!("specbot: {e}");
                        1
                    }
                },
                Err(e) => {
                    eprintln!("specbot: {e}");
                    1
                }
            }
        }
        Command::Replay { payload, event } => replay(&payload, &event),
        Command::Delivery { id } => match settings(cli.env) {
            Ok(settings) => print_delivery(settings.database_url.expose_secret(), &id).await,
            Err(code) => code,
        },
        Command::Spec {
            issue_file,
            repo,
            out,
            number,
        } => {
            let settings = match settings(cli.env) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let job = crate::local::LocalSpec {
                issue_file,
                out: out.unwrap_or_else(|| repo.clone()),
                repo,
                number,
            };
            match crate::local::run(&settings, job).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("specbot: {e}");
                    1
                }
            }
        }
        Command::CheckSpec { file } => crate::check_spec::run(&file),
        Command::CheckConfig {
            repo_config,
            offline,
        } => {
            let text = match &repo_config {
                Some(path) => match std::fs::read_to_string(path) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        eprintln!("specbot: {}: {e}", path.display());
                        return 2;
                    }
                },
                None => None,
            };
            let findings = crate::check::check(cli.env, text.as_deref(), !offline).await;
            let mut failed = false;
            for f in &findings {
                println!("{} {}", if f.ok { "ok  " } else { "FAIL" }, f.line);
                failed |= !f.ok;
            }
            i32::from(failed)
        }
    }
}

/// The settings of a one-shot command (no webhook secret needed), or the exit code after
/// saying what is wrong.
fn settings(env: EnvArgs) -> Result<Settings, i32> {
    Settings::from_env(env, false).map_err(|e| {
        eprintln!("specbot: {e}");
        2
    })
}

async fn print_delivery(database_url: &str, id: &str) -> i32 {
    use std::io::Write;
    let found = match crate::jobs::open_existing(database_url).await {
        Ok(store) => store.delivery(id).await,
        Err(e) => Err(e),
    };
    match found {
        Ok(Some(stored)) => {
            let mut out = std::io::stdout().lock();
            match out
                .write_all(&stored.delivery.body)
                .and_then(|()| out.flush())
            {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("specbot: {e}");
                    1
                }
            }
        }
        Ok(None) => {
            eprintln!("specbot: no delivery {id:?} is stored");
            1
        }
        Err(e) => {
            eprintln!("specbot: {e}");
            1
        }
    }
}

fn replay(path: &std::path::Path, event: &str) -> i32 {
    let body = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("specbot: {}: {e}", path.display());
            return 2;
        }
    };
    if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
        eprintln!("specbot: {} is not JSON", path.display());
        return 2;
    }
    let parsed = crate::event::Event::parse(event, &body);
    if let crate::event::Event::Malformed { error, .. } = &parsed {
        println!("payload does not match the `{event}` event: {error}");
    }
    let plan = crate::trigger::plan(
        &parsed,
        "replay",
        crate::config::Settings::base().jobs.max_attempts,
    );
    for note in &plan.notes {
        println!("why: {note}");
    }
    if plan.jobs.is_empty() {
        println!("jobs: none");
    }
    for job in &plan.jobs {
        println!(
            "job: {} (dedupe key {})\n{}",
            job.kind,
            job.dedupe_key.as_deref().unwrap_or("-"),
            serde_json::to_string_pretty(&job.payload).unwrap_or_default()
        );
    }
    0
}
