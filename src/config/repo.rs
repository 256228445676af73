//! A repository's own settings: `.github/specbot.yml` (every key optional).
//!
//! The file is untrusted input. It is parsed with a YAML library that does not panic on hostile
//! input (serde-saphyr, with its default budgets) after a size cap, then read key by key:
//! unknown keys and bad values become [`ConfigProblem`]s that the bot shows in its status
//! comment, and the default is used for that key. A file that is not YAML at all gives one
//! problem and all defaults.

use serde_json::Value;

/// Where the file lives on the default branch.
pub const PATH: &str = ".github/specbot.yml";

/// Larger files are refused (a config this big is a mistake or an attack).
pub const MAX_BYTES: usize = 64 * 1024;

/// Extra files a spec PR can carry beside the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Artifact {
    Diagram,
    OpenApi,
    TestPlan,
    RolloutPlan,
}

impl Artifact {
    pub const ALL: [Artifact; 4] = [
        Artifact::Diagram,
        Artifact::OpenApi,
        Artifact::TestPlan,
        Artifact::RolloutPlan,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Artifact::Diagram => "diagram",
            Artifact::OpenApi => "openapi",
            Artifact::TestPlan => "test_plan",
            Artifact::RolloutPlan => "rollout_plan",
        }
    }

    fn from_key(key: &str) -> Option<Self> {
        Artifact::ALL.into_iter().find(|a| a.key() == key)
    }
}

/// The repository's settings, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoConfig {
    /// The label that asks for a spec.
    pub trigger_label: String,
    /// Where the spec goes; `{number}` is the issue number.
    pub spec_path: String,
    pub artifacts: Vec<Artifact>,
    /// File one issue per component.
    pub follow_up_issues: bool,
    /// Labels put on component issues.
    pub component_labels: Vec<String>,
    /// Repository files that replace the default prompts.
    pub architect_prompt: Option<String>,
    pub engineer_prompt: Option<String>,
    /// Paths and globs given to the architect as context.
    pub context: Vec<String>,
    /// Overrides `LLM_MODEL` for this repository.
    pub model: Option<String>,
    /// Budget per job in USD.
    pub max_cost_usd: f64,
    /// How `/implement` works here.
    pub implement: ImplementConfig,
}

/// How the LLM is credited in implementation commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribution {
    /// `Assisted-by: <model> via specbot` (the default).
    AssistedBy,
    /// `Co-authored-by: specbot[bot] <…>`, so GitHub shows the App as co-author.
    CoAuthoredBy,
    /// No trailer.
    None,
}

/// The `implement:` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ImplementConfig {
    /// Globs the engineer may not write to (beside `.github/workflows/**`, always refused).
    pub protected_paths: Vec<String>,
    /// Fix rounds after a failed CI run on an implementation PR (0 turns CI fixing off).
    pub ci_fix_attempts: u32,
    pub attribution: Attribution,
    /// `implement.setup`: shell lines run once in the sandbox before the engineer starts.
    pub setup: Vec<String>,
    /// `implement.setup_network`: the setup commands (only they) get user-mode network.
    pub setup_network: bool,
    /// `implement.test`: the shell line that verifies the work (`None`: detected).
    pub test: Option<String>,
    /// `implement.test_rounds`: how often a failing test run goes back to the model.
    pub test_rounds: u32,
}

impl Default for ImplementConfig {
    fn default() -> Self {
        ImplementConfig {
            protected_paths: Vec::new(),
            ci_fix_attempts: 2,
            attribution: Attribution::AssistedBy,
            setup: Vec::new(),
            setup_network: false,
            test: None,
            test_rounds: 2,
        }
    }
}

impl Default for RepoConfig {
    fn default() -> Self {
        RepoConfig {
            trigger_label: "needs-spec".into(),
            spec_path: "specs/IMPLEMENT-{number}.md".into(),
            artifacts: vec![Artifact::Diagram],
            follow_up_issues: true,
            component_labels: vec!["specbot:component".into()],
            architect_prompt: None,
            engineer_prompt: None,
            context: vec!["research/**".into(), "specs/**".into(), "docs/**".into()],
            model: None,
            max_cost_usd: 5.0,
            implement: ImplementConfig::default(),
        }
    }
}

/// One thing wrong with the file, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem(pub String);

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl RepoConfig {
    /// The spec file for an issue.
    pub fn spec_path_for(&self, number: u64) -> String {
        self.spec_path.replace("{number}", &number.to_string())
    }

    /// Read the file's text. Never fails: problems are returned beside the defaults used.
    pub fn parse(text: &str) -> (RepoConfig, Vec<ConfigProblem>) {
        let mut cfg = RepoConfig::default();
        let mut problems = Vec::new();
        let map = match read_mapping(text) {
            Ok(Some(map)) => map,
            Ok(None) => return (cfg, problems),
            Err(problem) => {
                problems.push(problem);
                return (cfg, problems);
            }
        };
        macro_rules! bad {
            ($key:expr, $expected:expr $(,)?) => {
                problems.push(ConfigProblem(format!(
                    "`{}` should be {}; using the default.",
                    $key, $expected
                )))
            };
        }
        for (key, value) in &map {
            match key.as_str() {
                "trigger_label" => match non_empty_str(value, 50) {
                    Some(s) => cfg.trigger_label = s,
                    None => bad!(key, "a label name (text, at most 50 characters)"),
                },
                "spec_path" => match non_empty_str(value, 200)
                    .filter(|p| safe_repo_path(p) && p.ends_with(".md"))
                {
                    Some(s) => cfg.spec_path = s,
                    None => bad!(
                        key,
                        "a relative path ending in `.md`, e.g. `specs/IMPLEMENT-{number}.md`"
                    ),
                },
                "artifacts" => match artifacts(value) {
                    Ok(list) => cfg.artifacts = list,
                    Err(unknown) => bad!(
                        key,
                        &format!(
                            "a list of {} (unknown: {unknown})",
                            Artifact::ALL.map(|a| format!("`{}`", a.key())).join(", ")
                        ),
                    ),
                },
                "follow_up_issues" => match value {
                    Value::Bool(b) => cfg.follow_up_issues = *b,
                    Value::Object(m) => {
                        if let Some(enabled) = m.get("enabled") {
                            match enabled {
                                Value::Bool(b) => cfg.follow_up_issues = *b,
                                _ => bad!("follow_up_issues.enabled", "true or false"),
                            }
                        }
                        if let Some(labels) = m.get("labels") {
                            match string_list(labels, 10, 50) {
                                Some(l) => cfg.component_labels = l,
                                None => bad!("follow_up_issues.labels", "a list of label names"),
                            }
                        }
                    }
                    _ => bad!(key, "true, false, or a mapping with `enabled` and `labels`"),
                },
                "prompts" => match value {
                    Value::Object(m) => {
                        for (k, v) in m {
                            let path = non_empty_str(v, 200).filter(|p| safe_repo_path(p));
                            match (k.as_str(), path) {
                                ("architect", Some(p)) => cfg.architect_prompt = Some(p),
                                ("engineer", Some(p)) => cfg.engineer_prompt = Some(p),
                                ("architect" | "engineer", None) => {
                                    bad!(&format!("prompts.{k}"), "a relative path to a file in this repository")
                                }
                                (other, _) => problems.push(ConfigProblem(format!(
                                    "`prompts.{other}` is not a setting (known: `architect`, `engineer`); ignored."
                                ))),
                            }
                        }
                    }
                    _ => bad!(key, "a mapping with `architect` and/or `engineer` paths"),
                },
                "context" => match string_list(value, 50, 200) {
                    Some(list) => cfg.context = list,
                    None => bad!(key, "a list of paths or globs such as `docs/**`"),
                },
                "model" => match value {
                    Value::Null => cfg.model = None,
                    v => match non_empty_str(v, 100) {
                        Some(s) => cfg.model = Some(s),
                        None => bad!(key, "a model name"),
                    },
                },
                "max_cost_usd" => match value.as_f64() {
                    Some(x) if x.is_finite() && x > 0.0 && x <= 1000.0 => cfg.max_cost_usd = x,
                    _ => bad!(key, "a number of US dollars between 0 and 1000"),
                },
                "implement" => match value {
                    Value::Object(m) => implement(m, &mut cfg.implement, &mut problems),
                    _ => bad!(
                        key,
                        "a mapping with `protected_paths`, `ci_fix_attempts`, `attribution`, \
                         `setup`, `setup_network`, `test` and/or `test_rounds`"
                    ),
                },
                other => problems.push(unknown_setting(other)),
            }
        }
        (cfg, problems)
    }
}

/// The file's settings mapping: `None` for an empty file, a problem when it is too large, not
/// YAML or not a mapping (the defaults are used then).
fn read_mapping(text: &str) -> Result<Option<serde_json::Map<String, Value>>, ConfigProblem> {
    if text.len() > MAX_BYTES {
        return Err(ConfigProblem(format!(
            "`{PATH}` is larger than {} KiB and was ignored.",
            MAX_BYTES / 1024
        )));
    }
    if text.trim().is_empty() {
        return Ok(None);
    }
    let value: Value = match serde_saphyr::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let msg: String = e
                .to_string()
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect();
            return Err(ConfigProblem(format!(
                "`{PATH}` is not valid YAML ({msg}); using the defaults."
            )));
        }
    };
    match value {
        Value::Object(map) => Ok(Some(map)),
        Value::Null => Ok(None),
        _ => Err(ConfigProblem(format!(
            "`{PATH}` should be a mapping of settings; using the defaults."
        ))),
    }
}

/// A key that is not a setting, with the closest known one as a hint.
fn unknown_setting(other: &str) -> ConfigProblem {
    let known = [
        "trigger_label",
        "spec_path",
        "artifacts",
        "follow_up_issues",
        "prompts",
        "context",
        "model",
        "max_cost_usd",
        "implement",
    ];
    let hint = known
        .iter()
        .find(|k| strsim_close(k, other))
        .map(|k| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default();
    let shown: String = other.chars().take(40).collect();
    ConfigProblem(format!(
        "`{shown}` is not a setting{hint}, so it was ignored."
    ))
}

fn implement(
    map: &serde_json::Map<String, Value>,
    cfg: &mut ImplementConfig,
    problems: &mut Vec<ConfigProblem>,
) {
    for (key, value) in map {
        let mut bad = |key: &str, expected: &str| {
            problems.push(ConfigProblem(format!(
                "`implement.{key}` should be {expected}; using the default."
            )))
        };
        match key.as_str() {
            "protected_paths" => match string_list(value, 50, 200).filter(|list| {
                list.iter()
                    .all(|g| crate::agent::Policy::default().protect(g).is_ok())
            }) {
                Some(list) => cfg.protected_paths = list,
                None => bad(key, "a list of globs such as `migrations/**`"),
            },
            "ci_fix_attempts" => match value.as_u64() {
                Some(n) if n <= 5 => cfg.ci_fix_attempts = n as u32,
                _ => bad(key, "a whole number from 0 (off) to 5"),
            },
            "attribution" => match value.as_str().map(str::trim) {
                Some("assisted-by") => cfg.attribution = Attribution::AssistedBy,
                Some("co-authored-by") => cfg.attribution = Attribution::CoAuthoredBy,
                Some("none") => cfg.attribution = Attribution::None,
                _ => bad(key, "`assisted-by`, `co-authored-by` or `none`"),
            },
            "setup" => match command_list(value) {
                Some(list) => cfg.setup = list,
                None => bad(
                    key,
                    "a list of non-empty shell commands (at most 20, each at most 2000 characters)",
                ),
            },
            "setup_network" => match value {
                Value::Bool(b) => cfg.setup_network = *b,
                _ => bad(key, "true or false"),
            },
            "test" => match non_empty_str(value, MAX_COMMAND_CHARS) {
                Some(line) => cfg.test = Some(line),
                None => bad(
                    key,
                    "a non-empty shell command such as `cargo test` (at most 2000 characters)",
                ),
            },
            "test_rounds" => match value.as_u64() {
                Some(n) if n <= 5 => cfg.test_rounds = n as u32,
                _ => bad(key, "a whole number from 0 to 5"),
            },
            other => {
                let shown: String = other.chars().take(40).collect();
                problems.push(ConfigProblem(format!(
                    "`implement.{shown}` is not a setting (known: `protected_paths`, \
                     `ci_fix_attempts`, `attribution`, `setup`, `setup_network`, `test`, \
                     `test_rounds`); ignored."
                )));
            }
        }
    }
}

/// Longest shell line `implement.setup` and `implement.test` accept.
const MAX_COMMAND_CHARS: usize = 2000;

/// A list of shell lines (one line alone counts as a list of one); `None` if any is empty.
fn command_list(v: &Value) -> Option<Vec<String>> {
    string_list(v, 20, MAX_COMMAND_CHARS)
}

fn non_empty_str(v: &Value, max: usize) -> Option<String> {
    v.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.chars().count() <= max)
        .map(str::to_string)
}

fn string_list(v: &Value, max_items: usize, max_len: usize) -> Option<Vec<String>> {
    match v {
        Value::String(_) => non_empty_str(v, max_len).map(|s| vec![s]),
        Value::Array(items) if items.len() <= max_items => {
            items.iter().map(|i| non_empty_str(i, max_len)).collect()
        }
        _ => None,
    }
}

fn artifacts(v: &Value) -> Result<Vec<Artifact>, String> {
    let mut out = Vec::new();
    let mut push = |key: &str| match Artifact::from_key(key) {
        Some(a) if !out.contains(&a) => {
            out.push(a);
            Ok(())
        }
        Some(_) => Ok(()),
        None => Err(format!("`{}`", key.chars().take(40).collect::<String>())),
    };
    match v {
        Value::Array(items) => {
            for item in items {
                push(
                    item.as_str()
                        .ok_or_else(|| "a non-text entry".to_string())?,
                )?;
            }
        }
        Value::Object(map) => {
            for (k, enabled) in map {
                match enabled {
                    Value::Bool(true) => push(k)?,
                    Value::Bool(false) => {
                        Artifact::from_key(k).ok_or_else(|| format!("`{k}`"))?;
                    }
                    _ => return Err(format!("`{k}` must be true or false")),
                }
            }
        }
        Value::Null => {}
        _ => return Err("not a list".into()),
    }
    Ok(out)
}

/// A relative path inside the repository: no `..`, not absolute, no backslashes.
pub fn safe_repo_path(p: &str) -> bool {
    !p.starts_with('/')
        && !p.contains('\\')
        && !p.contains('\0')
        && p.split('/')
            .all(|seg| !seg.is_empty() && seg != ".." && seg != ".")
}

/// Edit distance ≤ 2 (for "did you mean").
fn strsim_close(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > 2 || b.len() > 64 {
        return false;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()] <= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_or_empty_means_defaults() {
        assert_eq!(RepoConfig::parse(""), (RepoConfig::default(), vec![]));
        assert_eq!(
            RepoConfig::parse("# nothing\n"),
            (RepoConfig::default(), vec![])
        );
    }

    #[test]
    fn every_key_is_read() {
        let (cfg, problems) = RepoConfig::parse(
            "trigger_label: spec-me\nspec_path: docs/specs/{number}.md\nartifacts: [diagram, openapi, test_plan, rollout_plan]\nfollow_up_issues: {enabled: true, labels: [component, specbot]}\nprompts: {architect: .github/architect.md}\ncontext: ['research/**']\nmodel: claude-x\nmax_cost_usd: 2.5\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(cfg.trigger_label, "spec-me");
        assert_eq!(cfg.spec_path_for(7), "docs/specs/7.md");
        assert_eq!(cfg.artifacts.len(), 4);
        assert_eq!(cfg.component_labels, vec!["component", "specbot"]);
        assert_eq!(
            cfg.architect_prompt.as_deref(),
            Some(".github/architect.md")
        );
        assert_eq!(cfg.context, vec!["research/**"]);
        assert_eq!(cfg.model.as_deref(), Some("claude-x"));
        assert_eq!(cfg.max_cost_usd, 2.5);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_explained_not_fatal() {
        let (cfg, problems) = RepoConfig::parse(
            "trigger_lable: x\nmax_cost_usd: lots\nspec_path: ../../etc/passwd.md\nartifacts: [diagram, video]\n",
        );
        assert_eq!(cfg, RepoConfig::default());
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(text.len(), 4, "{text:?}");
        assert!(text.iter().any(|t| t
            == "`trigger_lable` is not a setting (did you mean `trigger_label`?), so it was ignored."));
        assert!(text.iter().any(|t| t.contains("max_cost_usd")));
        assert!(text.iter().any(|t| t.contains("spec_path")));
        assert!(text.iter().any(|t| t.contains("`video`")));
    }

    #[test]
    fn implement_settings_are_read_and_checked() {
        let (cfg, problems) = RepoConfig::parse(
            "implement:\n  protected_paths: ['migrations/**', Cargo.lock]\n  ci_fix_attempts: 0\n  attribution: co-authored-by\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            cfg.implement.protected_paths,
            vec!["migrations/**", "Cargo.lock"]
        );
        assert_eq!(cfg.implement.ci_fix_attempts, 0);
        assert_eq!(cfg.implement.attribution, Attribution::CoAuthoredBy);

        let (cfg, problems) = RepoConfig::parse(
            "implement:\n  protected_paths: ['../x']\n  ci_fix_attempts: 99\n  attribution: me\n  colour: red\n",
        );
        assert_eq!(cfg.implement, ImplementConfig::default());
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(text.len(), 4, "{text:?}");
        assert!(text.iter().any(|t| t.contains("implement.ci_fix_attempts")));
        assert!(text.iter().any(|t| t.contains("implement.colour")));
    }

    #[test]
    fn verification_settings_are_read_and_checked() {
        let (cfg, problems) = RepoConfig::parse(
            "implement:\n  setup: [npm ci, make deps]\n  setup_network: true\n  test: sh test.sh\n  test_rounds: 3\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(cfg.implement.setup, vec!["npm ci", "make deps"]);
        assert!(cfg.implement.setup_network);
        assert_eq!(cfg.implement.test.as_deref(), Some("sh test.sh"));
        assert_eq!(cfg.implement.test_rounds, 3);

        let (cfg, problems) = RepoConfig::parse(
            "implement:\n  setup: ['npm ci', '']\n  setup_network: yes please\n  test: '  '\n  test_rounds: 9\n  tests: x\n",
        );
        assert_eq!(cfg.implement, ImplementConfig::default());
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(text.len(), 5, "{text:?}");
        assert!(
            text.iter()
                .any(|t| t.contains("`implement.setup` should be"))
        );
        assert!(
            text.iter()
                .any(|t| t.contains("`implement.test` should be a non-empty"))
        );
        assert!(
            text.iter()
                .any(|t| t.contains("`implement.tests` is not a setting"))
        );
    }

    #[test]
    fn hostile_yaml_does_not_panic() {
        let bomb = "a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n";
        for text in [
            bomb,
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
            ": : :",
            "\u{0}",
            "- a\n- b",
            "!!binary foo",
            &"x".repeat(MAX_BYTES + 1),
        ] {
            let (_, _) = RepoConfig::parse(text);
        }
        let (_, problems) = RepoConfig::parse("- a\n- b\n");
        assert_eq!(problems.len(), 1);
    }
}
