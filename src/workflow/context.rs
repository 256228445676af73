//! The I/O half of drafting a spec: fetch what the context gatherer wants from GitHub, render
//! the architect prompt (the repository's own template when configured), ask the model with a
//! budget, and validate the answer with one repair round.

use crate::config::repo::{Artifact, RepoConfig};
use crate::github::Repo;
use crate::llm::{ChatModel, ChatRequest, Content, Message, Role, ToolChoice};
use crate::prompt::context::{ContextInput, DocKind, RepoDoc};
use crate::prompt::templates::{ArchitectInput, RenderedPrompt};
use crate::spec::{ArtifactKind, SpecAnswer};

use crate::workflow::spend::{self, Spend};
use crate::workflow::step::{JobCtx, JobError, StepError, StepResult};

/// Largest repository file read into the context.
const MAX_DOC_BYTES: usize = 200 * 1024;
/// Token budget for the context blocks.
const CONTEXT_TOKENS: usize = 60_000;

/// Fetch the issue, its human comments and the repository documents the gatherer wants; with
/// the commit of the default branch they were read at (the spec's base commit).
pub async fn gather_for_spec(
    repo: &Repo,
    issue: &crate::github::model::Issue,
    comments: &[crate::github::model::Comment],
    config: &RepoConfig,
    default_branch: &str,
) -> StepResult<(ContextInput, String)> {
    let issue_number = issue.number;
    let head = repo.branch_head(default_branch).await?.ok_or_else(|| {
        JobError::permanent(format!(
            "the default branch `{default_branch}` has no commits"
        ))
    })?;
    let tree = repo.tree(&head).await?;
    let paths: Vec<String> = tree
        .tree
        .iter()
        .filter(|e| e.kind == "blob")
        .map(|e| e.path.clone())
        .collect();
    let wanted = crate::prompt::context::wanted_paths(&paths, &config.context);
    let mut docs = Vec::new();
    for path in wanted {
        let size = tree
            .tree
            .iter()
            .find(|e| e.path == path)
            .and_then(|e| e.size)
            .unwrap_or(0);
        if size as usize > MAX_DOC_BYTES {
            continue;
        }
        if let Some(text) = repo.file(&path, &head).await? {
            docs.push(RepoDoc {
                kind: DocKind::for_path(&path),
                path,
                text,
            });
        }
    }
    let input = ContextInput {
        issue_number,
        title: issue.title.clone(),
        body: issue.body.clone().unwrap_or_default(),
        author: issue.user.login.clone(),
        comments: comments
            .iter()
            .filter(|c| !c.user.is_bot())
            .map(|c| (c.user.login.clone(), c.body.clone().unwrap_or_default()))
            .collect(),
        docs,
        tree: paths,
    };
    Ok((input, head))
}

/// Show the architect the spec a re-run replaces (from the spec branch, where it differs from
/// the default branch's copy), first among the existing specifications, so that it can echo
/// the IDs of what it keeps.
pub fn show_current_spec(input: &mut ContextInput, spec_path: &str, current: &str) {
    input.docs.retain(|d| d.path != spec_path);
    input.docs.insert(
        0,
        RepoDoc {
            kind: DocKind::Spec,
            path: spec_path.to_string(),
            text: crate::spec::strip_spec_header(current),
        },
    );
}

pub fn artifact_kinds(list: &[Artifact]) -> Vec<ArtifactKind> {
    list.iter()
        .map(|a| match a {
            Artifact::Diagram => ArtifactKind::Diagram,
            Artifact::OpenApi => ArtifactKind::OpenApi,
            Artifact::TestPlan => ArtifactKind::TestPlan,
            Artifact::RolloutPlan => ArtifactKind::RolloutPlan,
        })
        .collect()
}

/// Render the architect prompt: the repository's template if configured, else the default.
/// With a small context window (`LLM_CONTEXT_TOKENS`) the context gets a quarter of it.
pub async fn architect_prompt(
    repo: &Repo,
    config: &RepoConfig,
    default_branch: &str,
    input: &ContextInput,
    context_window: Option<u32>,
) -> StepResult<RenderedPrompt> {
    let budget = context_window.map_or(CONTEXT_TOKENS, |w| CONTEXT_TOKENS.min(w as usize / 4));
    let blocks = crate::prompt::context::gather(input, budget);
    let data = ArchitectInput {
        issue_number: input.issue_number,
        title: input.title.clone(),
        context_blocks: blocks,
        artifacts: artifact_kinds(&config.artifacts),
        spec_path: config.spec_path_for(input.issue_number),
    };
    let custom = match &config.architect_prompt {
        Some(path) => Some(repo.file(path, default_branch).await?.ok_or_else(|| {
            JobError::permanent(format!(
                "`prompts.architect` names `{path}`, which is not in the repository"
            ))
        })?),
        None => None,
    };
    crate::prompt::templates::render_architect(&data, custom.as_deref())
        .map_err(|e| StepError::Failed(JobError::permanent(format!("the architect prompt: {e}"))))
}

fn parse_answer(response: &crate::llm::ChatResponse) -> Result<SpecAnswer, String> {
    for part in &response.content {
        if let Content::ToolUse { name, input, .. } = part
            && name == crate::spec::SUBMIT_SPEC_TOOL
        {
            return crate::spec::parse_tool_input(input).map_err(|e| e.to_string());
        }
    }
    crate::spec::parse_text_answer(&response.text()).map_err(|e| e.to_string())
}

/// One conversation with the architect: the draft request, then at most one repair round.
/// Used by the spec job and by the local `specbot spec`; it does no I/O itself.
pub struct ArchitectSession {
    request: ChatRequest,
    kinds: Vec<ArtifactKind>,
    rounds: u8,
    /// The spec file a revision replaces: the record of the IDs issued so far.
    previous: Option<String>,
}

/// What the architect's last answer amounted to.
pub enum Draft {
    /// A valid spec (only the enabled artifacts kept).
    Ready(Box<SpecAnswer>),
    /// Not valid: send [`ArchitectSession::request`] again (it now shows the problems).
    Repair(String),
    /// Still not valid after the repair round.
    Unusable(String),
}

impl ArchitectSession {
    pub fn new(prompt: &RenderedPrompt, artifacts: &[Artifact]) -> Self {
        let spec_tool = crate::spec::submit_spec_tool();
        let tool = crate::llm::Tool {
            name: spec_tool.name,
            description: spec_tool.description,
            input_schema: spec_tool.input_schema,
        };
        ArchitectSession {
            request: ChatRequest {
                system: prompt.system.clone(),
                messages: vec![Message {
                    role: Role::User,
                    content: vec![Content::Text(prompt.user.clone())],
                }],
                tools: vec![tool],
                // The only answer wanted is this call. Named, OpenAI-compatible servers that
                // constrain decoding (llama-cpp-python, vLLM without tool parsers) hold the
                // answer to the tool's schema; llama-cpp-python ignores tools otherwise. Models
                // that think by default get `auto` from the Anthropic client.
                tool_choice: ToolChoice::Tool(crate::spec::SUBMIT_SPEC_TOOL.into()),
                max_tokens: 16_000,
                cache_prefix: true,
            },
            kinds: artifact_kinds(artifacts),
            rounds: 0,
            previous: None,
        }
    }

    /// For a revision: the spec file it replaces, whose requirement IDs are kept where the
    /// model echoes them and are never reused for new ones.
    pub fn revising(mut self, previous: &str) -> Self {
        self.previous = Some(previous.to_string());
        self
    }

    /// The structured answer checked as the file it would commit: `Err` with the problems to
    /// repair (in the first round) or that make it unusable; `Ok` with the gaps left to list.
    fn check_file(&self, answer: &SpecAnswer) -> Result<Vec<String>, Vec<String>> {
        let meta = crate::spec::SpecFileMeta {
            previous: self.previous.clone(),
            ..crate::spec::SpecFileMeta::default()
        };
        let check = crate::spec::check_spec_file(&crate::spec::render_spec_file(answer, &meta));
        let core: Vec<String> = check
            .findings
            .iter()
            .filter(|f| f.severity() == crate::spec::Severity::Core)
            .map(|f| f.to_string())
            .collect();
        let gaps = check.gaps();
        if !core.is_empty() || (self.rounds < 2 && !gaps.is_empty()) {
            return Err(core.into_iter().chain(gaps).collect());
        }
        Ok(gaps)
    }

    pub fn request(&self) -> &ChatRequest {
        &self.request
    }

    /// Judge an answer; on problems, add them to the conversation for one repair round.
    pub fn answer(&mut self, response: &crate::llm::ChatResponse) -> Draft {
        self.rounds += 1;
        let problems = match parse_answer(response) {
            Ok(mut answer) => match crate::spec::validate(
                crate::spec::complete_components_section(&mut answer),
                &self.kinds,
            ) {
                Ok(()) => {
                    crate::spec::assign_ids(&mut answer, self.previous.as_deref());
                    match self.check_file(&answer) {
                        Ok(gaps) => {
                            answer.gaps = gaps;
                            // Only the artifacts this repository enabled are committed.
                            answer.retain_artifacts(&self.kinds);
                            return Draft::Ready(Box::new(answer));
                        }
                        Err(problems) => problems,
                    }
                }
                // Optional artifacts never sink a spec: after the repair round they are dropped.
                Err(problems)
                    if self.rounds >= 2
                        && crate::spec::drop_unusable_artifacts(&mut answer, &problems) =>
                {
                    crate::spec::assign_ids(&mut answer, self.previous.as_deref());
                    match self.check_file(&answer) {
                        Ok(gaps) => answer.gaps = gaps,
                        Err(problems) => return Draft::Unusable(problems.join("; ")),
                    }
                    answer.retain_artifacts(&self.kinds);
                    return Draft::Ready(Box::new(answer));
                }
                Err(problems) => problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            },
            Err(e) => vec![e],
        };
        let summary = problems.join("; ");
        if self.rounds >= 2 {
            return Draft::Unusable(summary);
        }
        self.request.messages.push(Message {
            role: Role::Assistant,
            content: response.content.clone(),
        });
        let repair = crate::spec::repair_prompt(&problems);
        let tool_results: Vec<Content> = response
            .content
            .iter()
            .filter_map(|c| match c {
                Content::ToolUse { id, .. } => Some(Content::ToolResult {
                    tool_use_id: id.clone(),
                    content: repair.clone(),
                    is_error: true,
                }),
                _ => None,
            })
            .collect();
        self.request.messages.push(Message {
            role: Role::User,
            content: if tool_results.is_empty() {
                vec![Content::Text(repair)]
            } else {
                tool_results
            },
        });
        Draft::Repair(summary)
    }
}

/// Ask the architect with the job's budget, and give it one chance to repair.
pub async fn ask_architect(
    ctx: &mut JobCtx,
    model: &dyn ChatModel,
    mut session: ArchitectSession,
    budget_usd: f64,
    spend: &mut Spend,
    board: Option<&crate::workflow::watch::PhaseBoard<'_>>,
) -> StepResult<SpecAnswer> {
    loop {
        let response = spend::call(ctx, model, session.request(), budget_usd, spend).await?;
        match session.answer(&response) {
            Draft::Ready(answer) => return Ok(*answer),
            Draft::Repair(problems) => {
                tracing::info!(%problems, "the draft did not validate; asking for a repair");
                if let Some(b) = board {
                    b.show(crate::messages::SpecPhase::Repairing).await;
                }
            }
            Draft::Unusable(problems) => {
                return Err(StepError::Failed(JobError::permanent(format!(
                    "the model's answer was not a usable specification, even after one repair round: {problems}"
                ))));
            }
        }
    }
}
