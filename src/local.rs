//! `specbot spec`: the architect pipeline against a local checkout — same context gathering,
//! prompt, model call, validation and file layout as the spec job, with no GitHub involved.
//! Writes the spec files and prints the component issues it would file.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::config::repo::RepoConfig;
use crate::prompt::context::{ContextInput, DocKind, RepoDoc};
use crate::workflow::context::{ArchitectSession, Draft};

/// Folders never walked.
const SKIP_DIRS: &[&str] = &[
    ".git",
    "target",
    "node_modules",
    ".venv",
    "vendor",
    "dist",
    "build",
];
const MAX_FILES: usize = 20_000;
const MAX_DOC_BYTES: u64 = 200 * 1024;

pub struct LocalSpec {
    pub issue_file: PathBuf,
    pub repo: PathBuf,
    pub out: PathBuf,
    pub number: Option<u64>,
}

fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name().to_string_lossy().to_string();
            if kind.is_dir() {
                if !SKIP_DIRS.contains(&name.as_str())
                    && (!name.starts_with('.') || name == ".github")
                {
                    stack.push(entry.path());
                }
            } else if kind.is_file()
                && let Ok(rel) = entry.path().strip_prefix(root)
            {
                out.push(rel.to_string_lossy().replace('\\', "/"));
                if out.len() >= MAX_FILES {
                    return out;
                }
            }
        }
    }
    out.sort();
    out
}

fn issue_from_file(text: &str) -> (String, String) {
    let mut lines = text.lines();
    let title = lines
        .by_ref()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("Untitled feature")
        .trim()
        .trim_start_matches('#')
        .trim()
        .to_string();
    (title, lines.collect::<Vec<_>>().join("\n"))
}

fn number_from_name(path: &Path) -> u64 {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let digits: String = name.chars().filter(|c| c.is_ascii_digit()).collect();
    digits.parse().unwrap_or(0)
}

/// Run the pipeline; returns the process exit code.
pub async fn run(settings: &Settings, job: LocalSpec) -> Result<(), String> {
    let text = std::fs::read_to_string(&job.issue_file)
        .map_err(|e| format!("{}: {e}", job.issue_file.display()))?;
    let (title, body) = issue_from_file(&text);
    let number = job
        .number
        .unwrap_or_else(|| number_from_name(&job.issue_file));
    let config_text =
        std::fs::read_to_string(job.repo.join(crate::config::repo::PATH)).unwrap_or_default();
    let (config, problems) = RepoConfig::parse(&config_text);
    for p in &problems {
        eprintln!("warning: {}: {p}", crate::config::repo::PATH);
    }
    let tree = walk(&job.repo);
    let docs = repo_docs(&job.repo, &tree, &config);
    let input = ContextInput {
        issue_number: number,
        title: title.clone(),
        body,
        author: "local".into(),
        comments: Vec::new(),
        docs,
        tree,
    };
    let blocks = crate::prompt::context::gather(&input, 60_000);
    let spec_path = config.spec_path_for(number);
    let custom = match &config.architect_prompt {
        Some(p) => Some(
            std::fs::read_to_string(job.repo.join(p))
                .map_err(|e| format!("prompts.architect {p}: {e}"))?,
        ),
        None => None,
    };
    let prompt = crate::prompt::templates::render_architect(
        &crate::prompt::templates::ArchitectInput {
            issue_number: number,
            title: title.clone(),
            context_blocks: blocks,
            artifacts: crate::workflow::context::artifact_kinds(&config.artifacts),
            spec_path: spec_path.clone(),
        },
        custom.as_deref(),
    )
    .map_err(|e| format!("the architect prompt: {e}"))?;
    let llm = crate::app::llm_settings(&settings.llm, config.model.as_deref())?
        .ok_or("no model configured: set LLM_API_KEY (or LLM_BASE_URL for a local server)")?;
    let model = crate::llm::connect(&llm, reqwest::Client::new()).map_err(|e| e.to_string())?;
    let mut usage = crate::llm::Usage::default();
    // A spec written by an earlier run is the record of the requirement IDs issued so far.
    let previous = std::fs::read_to_string(job.out.join(&spec_path)).ok();
    let answer = draft(&*model, &prompt, &config, previous.as_deref(), &mut usage).await?;
    // SOURCE_DATE_EPOCH (seconds), as reproducible builds use it, pins the date.
    let now_ms = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map(|s| s.saturating_mul(1000))
        .unwrap_or_else(crate::jobs::now_ms);
    let meta = crate::spec::SpecFileMeta {
        issue_number: number,
        issue_title: title.clone(),
        base_commit: local_head(&job.repo),
        date: Some(crate::spec::utc_date(now_ms)),
        model: Some(model.model().to_string()),
        requested_by: None,
        previous,
    };
    for (path, content) in crate::spec::files_for(&answer, &spec_path, &meta) {
        if !crate::config::repo::safe_repo_path(&path) {
            return Err(format!(
                "refusing to write outside the output folder: {path}"
            ));
        }
        let target = job.out.join(&path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&target, content).map_err(|e| format!("{}: {e}", target.display()))?;
        println!("wrote {}", target.display());
    }
    print_components(&answer, number, &spec_path);
    let cost = crate::llm::PriceTable::default().cost(model.model(), &usage);
    println!(
        "\n{} input + {} output tokens, ${cost:.4}",
        usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens,
        usage.output_tokens
    );
    Ok(())
}

/// The repository's documents the architect reads (as the context globs pick them), each
/// under the size cap.
fn repo_docs(repo: &Path, tree: &[String], config: &RepoConfig) -> Vec<RepoDoc> {
    let mut docs = Vec::new();
    for path in crate::prompt::context::wanted_paths(tree, &config.context) {
        let full = repo.join(&path);
        if std::fs::metadata(&full)
            .map(|m| m.len() > MAX_DOC_BYTES)
            .unwrap_or(true)
        {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(&full) {
            docs.push(RepoDoc {
                kind: DocKind::for_path(&path),
                path,
                text,
            });
        }
    }
    docs
}

/// Ask the architect, with the one repair round, until a valid spec or a clear failure.
async fn draft(
    model: &dyn crate::llm::ChatModel,
    prompt: &crate::prompt::templates::RenderedPrompt,
    config: &RepoConfig,
    previous: Option<&str>,
    usage: &mut crate::llm::Usage,
) -> Result<crate::spec::SpecAnswer, String> {
    let mut session = ArchitectSession::new(prompt, &config.artifacts);
    if let Some(previous) = previous {
        session = session.revising(previous);
    }
    let cancel = CancellationToken::new();
    loop {
        let response = model
            .chat(session.request(), &cancel)
            .await
            .map_err(|e| e.to_string())?;
        *usage += response.usage;
        match session.answer(&response) {
            Draft::Ready(answer) => return Ok(*answer),
            Draft::Repair(problems) => {
                eprintln!("the draft did not validate ({problems}); asking for a repair")
            }
            Draft::Unusable(problems) => {
                return Err(format!("the model's answer was not usable: {problems}"));
            }
        }
    }
}

/// The component issues the bot would file, printed: each title, then the body it would have
/// (without its hidden marker; criteria named, not linked, as there is no commit to link to).
fn print_components(answer: &crate::spec::SpecAnswer, issue: u64, spec_path: &str) {
    println!("\ncomponent issues that would be filed:");
    let parallel = crate::spec::parallel_components(&answer.components);
    for (c, parallel) in answer.components.iter().zip(parallel) {
        let deps: Vec<(String, Option<u64>)> =
            c.depends_on.iter().map(|d| (d.clone(), None)).collect();
        let parallel: Vec<(String, Option<u64>)> = parallel
            .iter()
            .map(|&j| (answer.components[j].title.clone(), None))
            .collect();
        let body = crate::messages::component_issue_body(
            c,
            &crate::messages::IssueLinks {
                parent_issue: issue,
                spec_path,
                spec_url: None,
                requirements: &answer.requirements,
                deps: &deps,
                parallel: &parallel,
            },
        );
        let body = body
            .split_once('\n')
            .map_or(body.as_str(), |(_, rest)| rest);
        println!("\n# {}\n{}", c.title, body.trim_end());
    }
}

/// The checked-out commit of a local repository, read from `.git` without running git.
fn local_head(repo: &std::path::Path) -> Option<String> {
    let git = repo.join(".git");
    let head = std::fs::read_to_string(git.join("HEAD")).ok()?;
    let sha = match head.trim().strip_prefix("ref: ") {
        Some(r) => std::fs::read_to_string(git.join(r)).ok()?,
        None => head,
    };
    let sha = sha.trim();
    (sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit())).then(|| sha.to_string())
}
