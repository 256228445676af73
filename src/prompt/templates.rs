//! The prompts: the default architect, engineer, revise and CI-fix templates, and rendering them
//! (or a repository's own template) with minijinja.
//!
//! Owns: the typed inputs ([`ArchitectInput`], [`EngineerInput`], [`ReviseInput`],
//! [`CiFixInput`]), [`RenderedPrompt`], the render functions, [`check_template`] and
//! [`TemplateError`]. The default templates live in `src/prompt/templates/*.md.j2` and are
//! compiled into the binary.
//!
//! Every prompt is split in two: `system` holds the static instructions (the same for every
//! issue of a repository, so providers can cache it) and `user` holds the per-issue data, all of
//! it sanitised and fenced as `<untrusted-data>`.
//!
//! **Repository templates** (`prompts.architect` / `prompts.engineer` in `.github/specbot.yml`)
//! replace the role-and-process part of the system prompt. The bot always appends its own
//! contract (the untrusted-data rule, the required structure, the components and artifacts
//! format, the output format), so a repository template cannot break parsing or the injection
//! defences, and the per-issue data always goes in the user message. Repository templates are
//! rendered with strict undefined variables, a fuel budget ([`TEMPLATE_FUEL`]), a size limit on
//! the source ([`MAX_TEMPLATE_BYTES`]) and on the output ([`MAX_RENDERED_BYTES`]); any failure is a
//! [`TemplateError`] whose message is meant for the repository's maintainers. The variables
//! they can use are listed in [`ARCHITECT_VARIABLES`] and [`ENGINEER_VARIABLES`].

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value, context};
use serde::{Deserialize, Serialize};

use super::context::{ContextBlock, render_blocks, thousands};
use super::sanitize::{fence, fence_untrusted, label_text, one_line, sanitize};
use crate::spec::{ArtifactKind, Component, Criterion};

/// Largest repository template source, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
/// Largest rendered repository template, in bytes.
pub const MAX_RENDERED_BYTES: usize = 256 * 1024;
/// The fuel a repository template may burn (minijinja: ~1 per instruction, ~1 per 64 bytes).
pub const TEMPLATE_FUEL: u64 = 100_000;
/// Most characters of one CI log put in the prompt (the end of the log is kept).
pub const MAX_LOG_CHARS: usize = 20_000;

/// Variables available to a repository's architect template.
pub const ARCHITECT_VARIABLES: &[&str] = &[
    "issue_number",
    "title",
    "spec_path",
    "artifacts",
    "deliverables",
    "context",
    "context_blocks",
];
/// Variables available to a repository's engineer template.
pub const ENGINEER_VARIABLES: &[&str] = &[
    "issue_number",
    "spec_path",
    "has_component",
    "component_title",
    "tools",
];

const ARCHITECT_SYSTEM: &str = include_str!("templates/architect.system.md.j2");
const ARCHITECT_CONTRACT: &str = include_str!("templates/architect.contract.md.j2");
const ARCHITECT_USER: &str = include_str!("templates/architect.user.md.j2");
const ENGINEER_SYSTEM: &str = include_str!("templates/engineer.system.md.j2");
const ENGINEER_CONTRACT: &str = include_str!("templates/engineer.contract.md.j2");
const ENGINEER_USER: &str = include_str!("templates/engineer.user.md.j2");
const REVISE_INSTRUCTIONS: &str = include_str!("templates/revise.instructions.md.j2");
const REVISE_USER: &str = include_str!("templates/revise.user.md.j2");
const CI_FIX_SYSTEM: &str = include_str!("templates/ci_fix.system.md.j2");
const CI_FIX_USER: &str = include_str!("templates/ci_fix.user.md.j2");

/// A rendered prompt: static instructions and per-issue data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedPrompt {
    pub system: String,
    pub user: String,
}

/// Why a prompt could not be rendered. The messages are written for the repository's
/// maintainers (they name their template's problem and line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the prompt template is {bytes} bytes long, more than the {max} bytes allowed")]
    TooLarge { bytes: usize, max: usize },
    #[error("the prompt template has a syntax error{}: {message}", at_line(*line))]
    Syntax {
        line: Option<usize>,
        message: String,
    },
    #[error("the prompt template uses an unknown variable{}: {message} (available: {available})", at_line(*line))]
    Undefined {
        line: Option<usize>,
        message: String,
        available: String,
    },
    #[error("the prompt template failed to render{}: {message}", at_line(*line))]
    Render {
        line: Option<usize>,
        message: String,
    },
    #[error("the prompt template does too much work (it ran out of its rendering budget)")]
    OutOfFuel,
    #[error(
        "the rendered prompt template is {bytes} bytes long, more than the {max} bytes allowed"
    )]
    OutputTooLarge { bytes: usize, max: usize },
    #[error("a built-in prompt template failed ({0}); this is a bug in specbot")]
    Internal(String),
}

fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(" on line {l}")).unwrap_or_default()
}

/// The architect's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchitectInput {
    pub issue_number: u64,
    /// The issue title, raw (it is sanitised here; the fenced copy is in the context blocks).
    pub title: String,
    /// From [`super::context::gather`]: already sanitised and fenced.
    pub context_blocks: Vec<ContextBlock>,
    /// The artifacts the repository enabled.
    pub artifacts: Vec<ArtifactKind>,
    /// Where the spec will be committed.
    pub spec_path: String,
}

/// A tool the engineer can use, as the caller describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolNote {
    pub name: String,
    pub description: String,
}

/// The engineer's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineerInput {
    /// The issue the implementation closes (the feature issue or the component issue).
    pub issue_number: u64,
    pub spec_path: String,
    /// The specification's text (a committed spec file's header may be left on).
    pub spec: String,
    /// The component, when `/implement` was on a component issue.
    pub component: Option<Component>,
    /// The acceptance criteria the engineer answers for, with their IDs (the spec's, or the
    /// component's); empty for a spec without IDs.
    #[serde(default)]
    pub criteria: Vec<Criterion>,
    /// Extra repository context (already fenced), often empty: the engineer reads files itself.
    pub context_blocks: Vec<ContextBlock>,
    pub tools: Vec<ToolNote>,
}

/// One piece of review feedback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    pub author: String,
    pub body: String,
    /// For a review comment on a line of the spec.
    pub path: Option<String>,
    pub line: Option<u64>,
}

/// The reviser's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviseInput {
    pub issue_number: u64,
    pub spec_path: String,
    /// The spec as it is on the branch now.
    pub current_spec: String,
    pub current_components: Vec<Component>,
    pub feedback: Vec<Feedback>,
    pub context_blocks: Vec<ContextBlock>,
    pub artifacts: Vec<ArtifactKind>,
}

/// One failing check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiFailure {
    pub name: String,
    /// The log (or the check's output text); only the last [`MAX_LOG_CHARS`] are kept.
    pub log: String,
    /// The failing step's tail from the GitHub Actions job log, when it could be read.
    #[serde(default)]
    pub job_log: Option<String>,
}

/// The CI fixer's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiFixInput {
    pub pull_number: u64,
    pub branch: String,
    pub spec_path: String,
    pub spec: Option<String>,
    pub failures: Vec<CiFailure>,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub tools: Vec<ToolNote>,
}

#[derive(Serialize)]
struct ArtifactVar {
    key: &'static str,
    title: &'static str,
    /// The file-name suffix (`diagram.mmd`): the same for every issue, for the system prompt.
    suffix: &'static str,
    /// The full path for this issue, for the user message.
    file: String,
    instructions: &'static str,
}

/// "the A", "the A and the B", "the A, the B and the C".
fn join_names(names: &[String]) -> String {
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// What the answer must hold: the specification, the components, each enabled artifact, and
/// any `extra` (the revision's `<changes>`), as an English list.
fn deliverables(kinds: &[ArtifactKind], extra: Option<&str>) -> String {
    let mut names = vec![
        "the specification".to_string(),
        "the components".to_string(),
    ];
    names.extend(
        ArtifactKind::ALL
            .into_iter()
            .filter(|k| kinds.contains(k))
            .map(|k| format!("the {}", k.title())),
    );
    names.extend(extra.map(str::to_string));
    join_names(&names)
}

fn artifact_vars(kinds: &[ArtifactKind], spec_path: &str) -> Vec<ArtifactVar> {
    ArtifactKind::ALL
        .into_iter()
        .filter(|k| kinds.contains(k))
        .map(|k| ArtifactVar {
            key: k.key(),
            title: k.title(),
            suffix: k.suffix(),
            file: k.path_for(spec_path),
            instructions: k.instructions(),
        })
        .collect()
}

fn environment(untrusted: bool) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    if untrusted {
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_recursion_limit(32);
    }
    env
}

/// Render one of the built-in templates.
fn builtin(source: &str, ctx: &Value) -> Result<String, TemplateError> {
    environment(false)
        .render_str(source, ctx)
        .map(|s| s.trim().to_string())
        .map_err(|e| TemplateError::Internal(describe(&e)))
}

fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// Render a repository's template with its budgets.
fn repository(source: &str, ctx: &Value, available: &[&str]) -> Result<String, TemplateError> {
    if source.len() > MAX_TEMPLATE_BYTES {
        return Err(TemplateError::TooLarge {
            bytes: source.len(),
            max: MAX_TEMPLATE_BYTES,
        });
    }
    let env = environment(true);
    let rendered = env.render_str(source, ctx).map_err(|e| {
        let line = e.line();
        let message = one_line(e.detail().unwrap_or(&e.kind().to_string()), 300);
        match e.kind() {
            ErrorKind::OutOfFuel => TemplateError::OutOfFuel,
            ErrorKind::SyntaxError | ErrorKind::BadEscape => {
                TemplateError::Syntax { line, message }
            }
            ErrorKind::UndefinedError => TemplateError::Undefined {
                line,
                message,
                available: available.join(", "),
            },
            _ => TemplateError::Render { line, message },
        }
    })?;
    if rendered.len() > MAX_RENDERED_BYTES {
        return Err(TemplateError::OutputTooLarge {
            bytes: rendered.len(),
            max: MAX_RENDERED_BYTES,
        });
    }
    Ok(rendered.trim().to_string())
}

fn architect_vars(input: &ArchitectInput) -> Value {
    let spec_path = label_text(&input.spec_path, 300);
    context! {
        issue_number => input.issue_number,
        title => label_text(&input.title, 300),
        artifacts => Value::from(Serde(artifact_vars(&input.artifacts, &spec_path))),
        deliverables => deliverables(&input.artifacts, None),
        spec_path => spec_path,
        context => render_blocks(&input.context_blocks),
        context_blocks => Value::from(Serde(&input.context_blocks)),
    }
}

/// The architect prompt: the repository's template (`custom`) or the default role, then the
/// bot's contract; the issue and its context in `user`.
pub fn render_architect(
    input: &ArchitectInput,
    custom: Option<&str>,
) -> Result<RenderedPrompt, TemplateError> {
    let vars = architect_vars(input);
    let role = match custom {
        Some(source) => repository(source, &vars, ARCHITECT_VARIABLES)?,
        None => builtin(ARCHITECT_SYSTEM, &vars)?,
    };
    let contract = builtin(ARCHITECT_CONTRACT, &vars)?;
    Ok(RenderedPrompt {
        system: format!("{role}\n\n{contract}\n"),
        user: format!("{}\n", builtin(ARCHITECT_USER, &vars)?),
    })
}

/// The revise prompt: the architect's role (the repository's architect template, if any), the
/// revising instructions and the contract; the current spec, its components and the feedback in
/// `user`.
pub fn render_revise(
    input: &ReviseInput,
    custom: Option<&str>,
) -> Result<RenderedPrompt, TemplateError> {
    let spec_path = label_text(&input.spec_path, 300);
    let context_text = render_blocks(&input.context_blocks);
    let vars = context! {
        issue_number => input.issue_number,
        title => "",
        artifacts => Value::from(Serde(artifact_vars(&input.artifacts, &spec_path))),
        deliverables => deliverables(&input.artifacts, None),
        spec_path => spec_path.clone(),
        context => context_text.clone(),
        context_blocks => Value::from(Serde(&input.context_blocks)),
    };
    let role = match custom {
        Some(source) => repository(source, &vars, ARCHITECT_VARIABLES)?,
        None => builtin(ARCHITECT_SYSTEM, &vars)?,
    };
    let instructions = builtin(REVISE_INSTRUCTIONS, &vars)?;
    let contract = builtin(ARCHITECT_CONTRACT, &vars)?;
    let spec_text = crate::spec::strip_spec_header(&input.current_spec);
    let components_json =
        serde_json::to_string_pretty(&components_as_submitted(&input.current_components))
            .unwrap_or_else(|_| "[]".to_string());
    let none = "(No written feedback: the reviewers requested changes without comments. Improve the specification where it is weakest.)";
    let feedback = blocks(&input.feedback, none, |f| {
        let mut label = format!("review comment by @{}", one_line(&f.author, 100));
        if let Some(path) = &f.path {
            label.push_str(&format!(" on {}", one_line(path, 200)));
            if let Some(line) = f.line {
                label.push_str(&format!(" line {line}"));
            }
        }
        fence_untrusted(&label, &f.body)
    });
    let user_vars = context! {
        issue_number => input.issue_number,
        spec_path => spec_path.clone(),
        artifacts => Value::from(Serde(artifact_vars(&input.artifacts, &spec_path))),
        deliverables => deliverables(&input.artifacts, Some("the <changes>")),
        current_spec => fence_untrusted(&spec_path, &spec_text),
        current_components => fence("current components", &sanitize(&components_json)),
        feedback => feedback,
        context => context_text,
    };
    Ok(RenderedPrompt {
        system: format!("{role}\n\n{instructions}\n\n{contract}\n"),
        user: format!("{}\n", builtin(REVISE_USER, &user_vars)?),
    })
}

/// The components in the shape the `submit_spec` tool takes them: each dependency as its title
/// and, where known, the reason it is needed first.
fn components_as_submitted(components: &[Component]) -> Vec<serde_json::Value> {
    components
        .iter()
        .map(|c| {
            let mut v = serde_json::to_value(c).unwrap_or_default();
            let deps: Vec<serde_json::Value> = c
                .depends_on
                .iter()
                .map(|d| match c.reason_for(d) {
                    Some(why) => serde_json::json!({"title": d, "reason": why}),
                    None => serde_json::json!(d),
                })
                .collect();
            if let Some(obj) = v.as_object_mut() {
                obj.remove("dependency_reasons");
                obj.insert("depends_on".into(), deps.into());
            }
            v
        })
        .collect()
}

/// Each item as a block, blank lines between; `none` when there are no items.
fn blocks<T>(items: &[T], none: &str, block: impl Fn(&T) -> String) -> String {
    if items.is_empty() {
        return none.to_string();
    }
    items.iter().map(block).collect::<Vec<_>>().join("\n\n")
}

fn component_text(c: &Component) -> String {
    let mut out = format!("Component: {}\n", one_line(&c.title, 300));
    if !c.summary.trim().is_empty() {
        out.push_str(&format!("\n{}\n", c.summary.trim()));
    }
    if !c.acceptance_criteria.is_empty() {
        out.push_str("\nAcceptance criteria:\n");
        for a in &c.acceptance_criteria {
            out.push_str(&format!("- {a}\n"));
        }
    }
    if !c.depends_on.is_empty() {
        let deps: Vec<String> = c
            .depends_on
            .iter()
            .map(|d| match c.reason_for(d) {
                Some(why) => format!("{d} ({})", one_line(why, 300)),
                None => d.clone(),
            })
            .collect();
        out.push_str(&format!(
            "\nDepends on (already done or done separately): {}\n",
            deps.join(", ")
        ));
    }
    out
}

/// The criteria as a list, one `- AC-1.2: text` line each (`None` when there are none).
fn criteria_text(criteria: &[Criterion]) -> Option<String> {
    (!criteria.is_empty()).then(|| {
        criteria
            .iter()
            .map(|c| format!("- {}: {}\n", one_line(&c.id, 20), one_line(&c.text, 2_000)))
            .collect()
    })
}

fn tool_vars(tools: &[ToolNote]) -> Vec<ToolNote> {
    tools
        .iter()
        .map(|t| ToolNote {
            name: one_line(&t.name, 100),
            description: one_line(&t.description, 1_000),
        })
        .collect()
}

/// The engineer prompt: the repository's engineer template (`custom`) or the default role,
/// then the contract (untrusted data, the tools, the closing summary); the spec, the component
/// and any context in `user`.
pub fn render_engineer(
    input: &EngineerInput,
    custom: Option<&str>,
) -> Result<RenderedPrompt, TemplateError> {
    let spec_path = label_text(&input.spec_path, 300);
    let component_title = input
        .component
        .as_ref()
        .map(|c| label_text(&c.title, 300))
        .unwrap_or_default();
    let vars = context! {
        issue_number => input.issue_number,
        spec_path => spec_path.clone(),
        has_component => input.component.is_some(),
        component_title => component_title.clone(),
        tools => Value::from(Serde(tool_vars(&input.tools))),
    };
    let role = match custom {
        Some(source) => repository(source, &vars, ENGINEER_VARIABLES)?,
        None => builtin(ENGINEER_SYSTEM, &vars)?,
    };
    let contract = builtin(ENGINEER_CONTRACT, &vars)?;
    let user_vars = context! {
        issue_number => input.issue_number,
        spec_path => spec_path.clone(),
        has_component => input.component.is_some(),
        component_title => component_title.replace('"', "'"),
        spec => fence_untrusted(&spec_path, &crate::spec::strip_spec_header(&input.spec)),
        component => input.component.as_ref().map(|c| fence_untrusted("component issue", &component_text(c))).unwrap_or_default(),
        criteria => criteria_text(&input.criteria).map(|t| fence_untrusted("acceptance criteria", &t)).unwrap_or_default(),
        context => render_blocks(&input.context_blocks),
    };
    Ok(RenderedPrompt {
        system: format!("{role}\n\n{contract}\n"),
        user: format!("{}\n", builtin(ENGINEER_USER, &user_vars)?),
    })
}

/// The last `max` characters of a log, with a note when the start was cut.
fn log_tail(log: &str, max: usize) -> (String, Option<String>) {
    let clean = sanitize(log);
    let total = clean.chars().count();
    if total <= max {
        return (clean, None);
    }
    let skip = total - max;
    let start = clean.char_indices().nth(skip).map(|(i, _)| i).unwrap_or(0);
    (
        clean[start..].to_string(),
        Some(format!(
            "[truncated: the first {} characters of the log]",
            thousands(skip)
        )),
    )
}

/// The CI-fix prompt: the fixer's role and the engineer's contract; the failing checks' logs
/// (their ends) and the spec in `user`.
pub fn render_ci_fix(input: &CiFixInput) -> Result<RenderedPrompt, TemplateError> {
    let spec_path = label_text(&input.spec_path, 300);
    let vars = context! {
        has_component => false,
        tools => Value::from(Serde(tool_vars(&input.tools))),
    };
    let role = builtin(CI_FIX_SYSTEM, &vars)?;
    let contract = builtin(ENGINEER_CONTRACT, &vars)?;
    let failures = blocks(&input.failures, "(The checks reported no details.)", |f| {
        let name = label_text(&f.name, 200);
        let (tail, note) = log_tail(&f.log, MAX_LOG_CHARS);
        let mut out = format!("#### {name}\n\n");
        if let Some(note) = note {
            out.push_str(&note);
            out.push('\n');
        }
        out.push_str(&fence(&format!("log of {name}"), &tail));
        if let Some(job_log) = &f.job_log {
            let (tail, _) = log_tail(job_log, MAX_LOG_CHARS);
            out.push_str("\n\nThe failing step of its GitHub Actions job log:\n");
            out.push_str(&fence(&format!("job log of {name}"), &tail));
        }
        out
    });
    let user_vars = context! {
        pull_number => input.pull_number,
        branch => label_text(&input.branch, 200).replace('`', "'"),
        attempt => input.attempt,
        spec_path => spec_path.clone(),
        spec => input.spec.as_deref().map(|s| fence_untrusted(&spec_path, &crate::spec::strip_spec_header(s))),
        failures => failures,
    };
    Ok(RenderedPrompt {
        system: format!("{role}\n\n{contract}\n"),
        user: format!("{}\n", builtin(CI_FIX_USER, &user_vars)?),
    })
}

/// Check a repository template before use (for `check-config` and config validation): it must
/// compile and render, within its budgets, against a sample issue. `engineer` picks the
/// engineer variables instead of the architect ones.
pub fn check_template(source: &str, engineer: bool) -> Result<(), TemplateError> {
    if engineer {
        let sample = EngineerInput {
            issue_number: 1,
            spec_path: "specs/IMPLEMENT-1.md".into(),
            spec: "# Sample".into(),
            component: None,
            criteria: Vec::new(),
            context_blocks: Vec::new(),
            tools: Vec::new(),
        };
        render_engineer(&sample, Some(source)).map(|_| ())
    } else {
        let sample = ArchitectInput {
            issue_number: 1,
            title: "Sample".into(),
            context_blocks: Vec::new(),
            artifacts: ArtifactKind::ALL.to_vec(),
            spec_path: "specs/IMPLEMENT-1.md".into(),
        };
        render_architect(&sample, Some(source)).map(|_| ())
    }
}

#[cfg(test)]
mod tests;
