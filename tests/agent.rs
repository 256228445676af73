//! The engineer agent end to end: a scripted model (the LLM fake, Anthropic and OpenAI formats)
//! drives tool sessions over small tarballs built here; the guardrails, the tarball caps, the
//! loop's caps and cancellation. Deterministic: no sleeps, no network but the local fake.

#[path = "support/llm_fake.rs"]
mod llm_fake;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use llm_fake::{Fault, LlmFake, RecordedRequest, Reply, Stop};
use secrecy::SecretString;
use serde_json::{Value, json};
use specbot::agent::{
    AgentConfig, AgentError, AgentFailure, AgentOutcome, CriterionMet, FileChange, SecretScanner,
    TranscriptEntry, Workspace, WorkspaceError, WorkspaceLimits, run_agent, tool_notes,
};
use specbot::llm::{ChatModel, LlmSettings, ModelPrice, Provider, Usage, connect};
use specbot::prompt::templates::{EngineerInput, RenderedPrompt, render_engineer};
use tokio_util::sync::CancellationToken;

const TOP: &str = "octo-hello-0123abc";
const GHP: &str = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
const BOT_SECRET: &str = "bot-webhook-secret-7f3a9c";

// ---------------------------------------------------------------------------------------------
// Tarballs

enum E<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    /// A regular file whose header name is written as is (no top folder, no checks).
    Raw(&'a str, &'a [u8]),
    /// A GNU long-name member of this many bytes (the tar crate reads it whole).
    LongName(usize),
}

fn header(kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(1_790_000_000);
    h
}

/// A `.tar.gz` shaped like GitHub's: a pax global header, then everything under `TOP/`.
fn tarball(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    let comment = b"52 comment=0123abc0123abc0123abc0123abc0123abc0123\n";
    let mut h = header(tar::EntryType::XGlobalHeader, comment.len() as u64);
    h.set_path("pax_global_header").expect("path");
    h.set_cksum();
    b.append(&h, &comment[..]).expect("append");
    let mut h = header(tar::EntryType::Directory, 0);
    h.set_path(format!("{TOP}/")).expect("path");
    h.set_cksum();
    b.append(&h, &[][..]).expect("append");
    for e in entries {
        match e {
            E::File(p, data) => {
                let mut h = header(tar::EntryType::Regular, data.len() as u64);
                h.set_path(format!("{TOP}/{p}")).expect("path");
                h.set_cksum();
                b.append(&h, *data).expect("append");
            }
            E::Dir(p) => {
                let mut h = header(tar::EntryType::Directory, 0);
                h.set_path(format!("{TOP}/{p}/")).expect("path");
                h.set_cksum();
                b.append(&h, &[][..]).expect("append");
            }
            E::Symlink(p, target) => {
                let mut h = header(tar::EntryType::Symlink, 0);
                h.set_path(format!("{TOP}/{p}")).expect("path");
                h.set_link_name(target).expect("link name");
                h.set_cksum();
                b.append(&h, &[][..]).expect("append");
            }
            E::Raw(name, data) => {
                let mut h = header(tar::EntryType::Regular, data.len() as u64);
                let slot = &mut h.as_old_mut().name;
                slot.fill(0);
                slot[..name.len()].copy_from_slice(name.as_bytes());
                h.set_cksum();
                b.append(&h, *data).expect("append");
            }
            E::LongName(n) => {
                let mut h = header(tar::EntryType::GNULongName, *n as u64);
                h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
                h.set_cksum();
                b.append(&h, vec![b'a'; *n].as_slice()).expect("append");
                let mut h = header(tar::EntryType::Regular, 0);
                h.set_path(format!("{TOP}/short")).expect("path");
                h.set_cksum();
                b.append(&h, &[][..]).expect("append");
            }
        }
    }
    b.into_inner().expect("tar").finish().expect("gzip")
}

const LIB_RS: &str = "/// Adds two numbers.\npub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n";
const README: &str = "# hello\n\nA tiny crate.\n";

fn sample_repo() -> Vec<u8> {
    tarball(&[
        E::File("README.md", README.as_bytes()),
        E::Dir("src"),
        E::File("src/lib.rs", LIB_RS.as_bytes()),
        E::File("Cargo.toml", b"[package]\nname = \"hello\"\n"),
        E::Dir(".github/workflows"),
        E::File(".github/workflows/ci.yml", b"on: push\n"),
        E::File("assets/logo.png", b"\x89PNG\r\n\x1a\n\0\0\0binary"),
    ])
}

fn workspace(bytes: &[u8]) -> Workspace {
    Workspace::from_tarball(bytes, &WorkspaceLimits::default()).expect("workspace")
}

// ---------------------------------------------------------------------------------------------
// The model and the run

fn model(fake: &LlmFake, provider: Provider, stream: bool) -> Arc<dyn ChatModel> {
    let mut s = LlmSettings::defaults_for(provider);
    s.base_url = match provider {
        Provider::Anthropic => fake.anthropic_base_url(),
        Provider::OpenAi => fake.openai_base_url(),
    };
    s.api_key = Some(SecretString::from("sk-test-key-for-the-fake"));
    s.stream = stream;
    s.request_timeout = Duration::from_secs(30);
    s.max_retries = 0;
    s.max_retry_wait = Duration::from_millis(1);
    s.retry_base = Duration::from_millis(1);
    connect(&s, reqwest::Client::new()).expect("connect")
}

fn prompt() -> RenderedPrompt {
    render_engineer(
        &EngineerInput {
            issue_number: 7,
            spec_path: "specs/IMPLEMENT-7.md".into(),
            spec: "# Safe add\n\nMake `add` never overflow; test it.\n".into(),
            component: None,
            criteria: Vec::new(),
            context_blocks: Vec::new(),
            tools: tool_notes(),
        },
        None,
    )
    .expect("prompt")
}

fn config() -> AgentConfig {
    let mut c = AgentConfig::default();
    c.policy.secrets = SecretScanner::new([SecretString::from(BOT_SECRET)]);
    c
}

/// Run with a fresh token; also returns the usage reported through the callback.
async fn run(
    m: &Arc<dyn ChatModel>,
    ws: &mut Workspace,
    config: &AgentConfig,
) -> (Result<AgentOutcome, AgentFailure>, Usage) {
    let mut seen = Usage::default();
    let r = run_agent(
        m.as_ref(),
        &prompt(),
        ws,
        config,
        &CancellationToken::new(),
        &mut |u: &Usage| seen += *u,
    )
    .await;
    (r, seen)
}

/// The tool results a request sends back (`(content, is_error)`), either format.
fn tool_results(req: &RecordedRequest) -> Vec<(String, bool)> {
    let messages = req.body["messages"].as_array().cloned().unwrap_or_default();
    if req.is_anthropic() {
        let last = messages.last().cloned().unwrap_or(Value::Null);
        last["content"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|c| c["type"] == "tool_result")
            .map(|c| {
                (
                    c["content"].as_str().unwrap_or_default().to_owned(),
                    c["is_error"] == json!(true),
                )
            })
            .collect()
    } else {
        let mut out: Vec<(String, bool)> = messages
            .iter()
            .rev()
            .take_while(|m| m["role"] == "tool")
            .map(|m| {
                let c = m["content"].as_str().unwrap_or_default();
                match c.strip_prefix("Error: ") {
                    Some(rest) => (rest.to_owned(), true),
                    None => (c.to_owned(), false),
                }
            })
            .collect();
        out.reverse();
        out
    }
}

fn tool_names(req: &RecordedRequest) -> Vec<String> {
    req.body["tools"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|t| {
            t.pointer("/name")
                .or_else(|| t.pointer("/function/name"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn calls(calls: Vec<(&str, Value)>) -> Reply {
    Reply {
        tool_calls: calls.into_iter().map(|(n, i)| (n.to_owned(), i)).collect(),
        ..Reply::default()
    }
}

fn finish_call() -> (&'static str, Value) {
    (
        "finish",
        json!({
            "summary": "Made `add` saturating and tested it.",
            "criteria": [{"criterion": "add never overflows", "how_met": "saturating_add, tested"}],
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// A whole session

const NEW_LIB: &str = "/// Adds two numbers, saturating.\npub fn add(a: u32, b: u32) -> u32 {\n    a.saturating_add(b)\n}\n";
const NEW_TEST: &str =
    "#[test]\nfn saturates() {\n    assert_eq!(hello::add(u32::MAX, 1), u32::MAX);\n}\n";

#[tokio::test]
async fn a_whole_session_in_both_formats() {
    for (provider, stream) in [(Provider::Anthropic, false), (Provider::OpenAi, true)] {
        let at = format!("{provider} stream={stream}");
        let fake = LlmFake::start().await;
        fake.push_reply(Reply {
            text: Some("Let me look around.".into()),
            tool_calls: vec![("list_directory".into(), json!({"path": ""}))],
            ..Reply::default()
        });
        fake.push_tool_call("read_file", json!({"path": "src/lib.rs"}));
        fake.push_tool_call(
            "edit_file",
            json!({"path": "./src/lib.rs", "old": "Adds two numbers.\npub fn add(a: u32, b: u32) -> u32 {\n    a + b", "new": "Adds two numbers, saturating.\npub fn add(a: u32, b: u32) -> u32 {\n    a.saturating_add(b)"}),
        );
        fake.push_tool_call(
            "write_file",
            json!({"path": "tests/add.rs", "content": NEW_TEST}),
        );
        let (name, input) = finish_call();
        fake.push_tool_call(name, input);

        let m = model(&fake, provider, stream);
        let mut ws = workspace(&sample_repo());
        let (result, seen) = run(&m, &mut ws, &config()).await;
        let out = result.unwrap_or_else(|f| panic!("{at}: {f}"));

        assert_eq!(
            out.changes,
            vec![
                FileChange {
                    path: "src/lib.rs".into(),
                    content: Some(NEW_LIB.into()),
                    executable: false,
                },
                FileChange {
                    path: "tests/add.rs".into(),
                    content: Some(NEW_TEST.into()),
                    executable: false,
                },
            ],
            "{at}"
        );
        assert_eq!(out.summary, "Made `add` saturating and tested it.", "{at}");
        assert_eq!(
            out.criteria,
            vec![CriterionMet {
                criterion: "add never overflows".into(),
                how_met: "saturating_add, tested".into(),
                ..CriterionMet::default()
            }],
            "{at}"
        );
        assert!(out.log.refusals.is_empty(), "{at}: {:?}", out.log.refusals);
        assert_eq!(out.log.steps, 5, "{at}");
        assert_eq!(out.log.usage, seen, "{at}: the callback saw every answer");
        assert!(out.log.usage.output_tokens > 0, "{at}");
        assert_eq!(out.cost_usd, None, "{at}: no price given");
        assert_eq!(fake.remaining(), 0, "{at}");

        let reqs = fake.requests();
        assert_eq!(reqs.len(), 5, "{at}");
        assert_eq!(
            tool_names(&reqs[0]),
            [
                "list_directory",
                "read_file",
                "search",
                "write_file",
                "edit_file",
                "delete_file",
                "finish"
            ],
            "{at}"
        );
        assert!(
            reqs[0].body.to_string().contains("`edit_file`"),
            "{at}: the system prompt lists the tools"
        );
        let listing = &tool_results(&reqs[1]);
        assert_eq!(listing.len(), 1, "{at}");
        for want in ["src/", "README.md  (", ".github/", "Cargo.toml"] {
            assert!(listing[0].0.contains(want), "{at}: {}", listing[0].0);
        }
        let read = &tool_results(&reqs[2])[0];
        assert!(!read.1, "{at}");
        assert!(
            read.0.contains("(lines 1–4 of 4)") && read.0.contains("     3\t    a + b"),
            "{at}: {}",
            read.0
        );
        assert_eq!(
            tool_results(&reqs[3]),
            [("edited `src/lib.rs` (now 4 lines)".to_owned(), false)],
            "{at}"
        );
        assert!(
            tool_results(&reqs[4])[0]
                .0
                .starts_with("created `tests/add.rs`"),
            "{at}"
        );

        // The transcript: prompt, every call and result, in order.
        let kinds: Vec<&str> = out
            .log
            .transcript
            .iter()
            .map(|e| match e {
                TranscriptEntry::System { .. } => "system",
                TranscriptEntry::User { .. } => "user",
                TranscriptEntry::Assistant { .. } => "assistant",
                TranscriptEntry::ToolCall { .. } => "call",
                TranscriptEntry::ToolResult { .. } => "result",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "system",
                "user",
                "assistant",
                "call",
                "result",
                "call",
                "result",
                "call",
                "result",
                "call",
                "result",
                "call",
                "result"
            ],
            "{at}"
        );
        let stored = serde_json::to_string(&out.log.transcript).expect("serialisable");
        assert!(stored.contains("\"type\":\"tool_call\""), "{at}");
    }
}

#[tokio::test]
async fn tool_errors_tell_the_model_what_to_do() {
    let fake = LlmFake::start().await;
    fake.push_reply(calls(vec![
        ("read_file", json!({"path": "missing.rs"})),
        ("read_file", json!({"path": "assets/logo.png"})),
        (
            "read_file",
            json!({"path": "src/lib.rs", "start_line": 2, "end_line": 3}),
        ),
        (
            "search",
            json!({"pattern": "fn \\w+", "path_glob": "src/**"}),
        ),
        ("search", json!({"pattern": "(unclosed"})),
        (
            "edit_file",
            json!({"path": "README.md", "old": "nowhere", "new": "x"}),
        ),
        (
            "edit_file",
            json!({"path": "src/lib.rs", "old": "u32", "new": "u64"}),
        ),
        ("delete_file", json!({"path": "README.md"})),
        ("list_directory", json!({"path": "src/lib.rs"})),
        ("make_coffee", json!({})),
        ("write_file", json!({"path": "x.txt"})),
    ]));
    let (name, input) = finish_call();
    fake.push_tool_call(name, input);
    // `make_coffee` is undeclared: only an OpenAI-compatible server passes such a call on.
    let m = model(&fake, Provider::OpenAi, true);
    let mut ws = workspace(&sample_repo());
    let (result, _) = run(&m, &mut ws, &config()).await;
    let out = result.expect("finishes");
    assert_eq!(
        out.changes,
        vec![FileChange {
            path: "README.md".into(),
            content: None,
            executable: false,
        }]
    );
    assert!(
        out.log.refusals.is_empty(),
        "ordinary errors are not refusals"
    );

    let results = tool_results(&fake.requests()[1]);
    let want: &[(&str, bool)] = &[
        ("`missing.rs` does not exist", true),
        ("is a binary file", true),
        ("(lines 2–3 of 4):\n     2\tpub fn add", false),
        ("src/lib.rs:2: pub fn add(a: u32, b: u32) -> u32 {", false),
        ("invalid regular expression", true),
        ("`old` does not occur in `README.md`", true),
        (
            "`old` occurs more than once in `src/lib.rs`; it must occur exactly once",
            true,
        ),
        ("deleted `README.md`", false),
        ("`src/lib.rs` is a file; use read_file", true),
        ("unknown tool `make_coffee`", true),
        ("invalid arguments: missing field `content`", true),
    ];
    assert_eq!(results.len(), want.len());
    for ((got, err), (text, is_err)) in results.iter().zip(want) {
        assert!(got.contains(text), "want {text:?} in {got:?}");
        assert_eq!(err, is_err, "{got}");
    }
}

// ---------------------------------------------------------------------------------------------
// Guardrails

#[tokio::test]
async fn guardrails_refuse_with_reasons_and_the_run_still_finishes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tarball(&[
        E::File("README.md", README.as_bytes()),
        E::File("src/lib.rs", LIB_RS.as_bytes()),
        E::Symlink("escape", "../../../etc/passwd"),
        E::Symlink("vendor", "/etc"),
        E::Dir(".github/workflows"),
        E::File(".github/workflows/ci.yml", b"on: push\n"),
        E::File("secrets/prod.env", b"TOKEN=placeholder\n"),
    ]);
    let mut ws =
        Workspace::from_tarball_in(repo.as_slice(), &WorkspaceLimits::default(), tmp.path())
            .expect("workspace");
    let skipped: Vec<(&str, &str)> = ws
        .skipped()
        .iter()
        .map(|s| (s.path.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            (
                "escape",
                "symbolic link to `../../../etc/passwd`, outside the repository"
            ),
            ("vendor", "symbolic link to `/etc`, outside the repository"),
        ]
    );

    let mut config = config();
    config.policy.max_file_bytes = 1_000;
    config.policy.protect("secrets/**").expect("glob");
    let leak = format!("const TOKEN: &str = \"{GHP}\";\n");
    let own = format!("webhook_secret: {BOT_SECRET}\n");

    let fake = LlmFake::start().await;
    fake.push_reply(calls(vec![
        ("write_file", json!({"path": "../x", "content": "x"})),
        ("write_file", json!({"path": "/etc/passwd", "content": "x"})),
        ("write_file", json!({"path": "a/../../x", "content": "x"})),
        ("write_file", json!({"path": "ok.txt", "content": "fine\n"})),
        (
            "edit_file",
            json!({"path": ".github/workflows/ci.yml", "old": "push", "new": "pull_request"}),
        ),
        ("write_file", json!({"path": "escape", "content": "x"})),
        (
            "write_file",
            json!({"path": "vendor/passwd", "content": "x"}),
        ),
        ("delete_file", json!({"path": "secrets/prod.env"})),
        (
            "write_file",
            json!({"path": "big.txt", "content": "a".repeat(2_000)}),
        ),
        (
            "write_file",
            json!({"path": "src/token.rs", "content": leak}),
        ),
        (
            "edit_file",
            json!({"path": "README.md", "old": "A tiny crate.", "new": own}),
        ),
        (
            "write_file",
            json!({"path": "bin.dat", "content": "a\u{0}b"}),
        ),
    ]));
    fake.push_tool_call(
        "finish",
        json!({"summary": format!("Done; the secret is {BOT_SECRET}."), "criteria": []}),
    );
    // A criterion's report is posted too: its files and tests are scanned like the summary.
    fake.push_tool_call(
        "finish",
        json!({"summary": "Done.", "criteria": [{"id": "AC-1.1", "status": "done", "how_met": "x", "files": [format!("src/{GHP}.rs")]}]}),
    );
    let (name, input) = finish_call();
    fake.push_tool_call(name, input);

    let m = model(&fake, Provider::OpenAi, false);
    let (result, _) = run(&m, &mut ws, &config).await;
    let out = result.expect("finishes");

    assert_eq!(
        out.changes,
        vec![FileChange {
            path: "ok.txt".into(),
            content: Some("fine\n".into()),
            executable: false,
        }],
        "only the legal change"
    );
    let reqs = fake.requests();
    let results = tool_results(&reqs[1]);
    let want: &[&str] = &[
        "refused: `../x` leaves the repository",
        "refused: `/etc/passwd` is an absolute path",
        "refused: `a/../../x` leaves the repository",
        "created `ok.txt`",
        "refused: `.github/workflows/ci.yml` is a GitHub Actions workflow",
        "refused: `escape` was not unpacked from the repository (symbolic link",
        "refused: `vendor` was not unpacked from the repository (symbolic link to `/etc`",
        "refused: `secrets/prod.env` is protected by the repository's configuration (`secrets/**`)",
        "refused: the content for `big.txt` is 2000 bytes; the limit is 1000 bytes per file",
        "refused: the content for `src/token.rs` contains what looks like a secret (GitHub token on line 1)",
        "refused: the content for `README.md` contains what looks like a secret (a secret of the bot itself on line 3)",
        "refused: the content for `bin.dat` contains NUL bytes",
    ];
    assert_eq!(results.len(), want.len());
    for ((got, is_error), text) in results.iter().zip(want) {
        assert!(got.starts_with(text), "want {text:?}, got {got:?}");
        assert_eq!(*is_error, text.starts_with("refused"), "{got}");
    }
    let finish_refused = &tool_results(&reqs[2])[0];
    assert!(finish_refused.1);
    assert!(
        finish_refused
            .0
            .starts_with("refused: the summary contains what looks like a secret"),
        "{}",
        finish_refused.0
    );
    let criteria_refused = &tool_results(&reqs[3])[0];
    assert!(
        criteria_refused
            .0
            .starts_with("refused: the report on the criteria contains what looks like a secret"),
        "{}",
        criteria_refused.0
    );

    // Every refusal is recorded for the PR body, none quotes a secret.
    let refused: Vec<(&str, Option<&str>)> = out
        .log
        .refusals
        .iter()
        .map(|r| (r.tool.as_str(), r.path.as_deref()))
        .collect();
    assert_eq!(
        refused,
        [
            ("write_file", Some("../x")),
            ("write_file", Some("/etc/passwd")),
            ("write_file", Some("a/../../x")),
            ("edit_file", Some(".github/workflows/ci.yml")),
            ("write_file", Some("escape")),
            ("write_file", Some("vendor/passwd")),
            ("delete_file", Some("secrets/prod.env")),
            ("write_file", Some("big.txt")),
            ("write_file", Some("src/token.rs")),
            ("edit_file", Some("README.md")),
            ("write_file", Some("bin.dat")),
            ("finish", None),
            ("finish", None),
        ]
    );
    let all = format!("{:?}", out.log.refusals);
    assert!(!all.contains(GHP) && !all.contains(BOT_SECRET));

    // The stored transcript is redacted.
    let stored = serde_json::to_string(&out.log.transcript).expect("json");
    assert!(!stored.contains(GHP), "GitHub token in the transcript");
    assert!(!stored.contains(BOT_SECRET), "own secret in the transcript");
    assert!(stored.contains("[REDACTED: GitHub token]"));

    // Nothing escaped the workspace, nothing was written.
    let written = ws.root().join("ok.txt");
    assert!(written.exists());
    assert!(!tmp.path().join("x").exists());
    assert!(!ws.root().join("vendor").exists() && !ws.root().join("escape").exists());
    assert_eq!(
        std::fs::read_to_string(ws.root().join(".github/workflows/ci.yml")).expect("ci"),
        "on: push\n"
    );
}

#[tokio::test]
async fn a_secret_already_in_a_file_does_not_block_an_unrelated_edit() {
    let fixture = format!("# test fixture\nTOKEN = \"{GHP}\"\nX = 1\n");
    let repo = tarball(&[E::File("fixtures/env.py", fixture.as_bytes())]);
    let fake = LlmFake::start().await;
    fake.push_tool_call(
        "edit_file",
        json!({"path": "fixtures/env.py", "old": "X = 1", "new": "X = 2"}),
    );
    let (name, input) = finish_call();
    fake.push_tool_call(name, input);
    let m = model(&fake, Provider::Anthropic, false);
    let mut ws = workspace(&repo);
    let out = run(&m, &mut ws, &config()).await.0.expect("finishes");
    assert_eq!(out.changes.len(), 1);
    assert!(out.log.refusals.is_empty(), "{:?}", out.log.refusals);
}

#[tokio::test]
async fn change_caps_count_files_and_bytes() {
    let fake = LlmFake::start().await;
    fake.push_reply(calls(vec![
        ("write_file", json!({"path": "a.txt", "content": "aaaa"})),
        ("write_file", json!({"path": "b.txt", "content": "bbbb"})),
        ("write_file", json!({"path": "c.txt", "content": "cccc"})),
        (
            "write_file",
            json!({"path": "a.txt", "content": "aaaaaaaaaaaa"}),
        ),
        ("delete_file", json!({"path": "README.md"})),
    ]));
    let (name, input) = finish_call();
    fake.push_tool_call(name, input);
    let m = model(&fake, Provider::Anthropic, false);
    let mut ws = workspace(&sample_repo());
    let mut config = config();
    config.policy.max_changed_files = 2;
    config.policy.max_diff_bytes = 10;
    let out = run(&m, &mut ws, &config).await.0.expect("finishes");
    let paths: Vec<&str> = out.changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["a.txt", "b.txt"]);
    let results = tool_results(&fake.requests()[1]);
    assert!(
        results[2]
            .0
            .contains("this would change 3 files; a change may touch at most 2")
    );
    assert!(
        results[3]
            .0
            .contains("this would bring the new content to 16 bytes")
    );
    assert!(results[4].0.contains("this would change 3 files"));
    assert_eq!(out.log.refusals.len(), 3);
}

// ---------------------------------------------------------------------------------------------
// The loop's caps, cancellation

/// The workflow runs the agent inside spawned tasks.
fn assert_send<T: Send>(_: &T) {}

#[tokio::test]
async fn cancelling_mid_loop_aborts_the_request_and_leaves_nothing() {
    let fake = LlmFake::start().await;
    fake.push_tool_call("list_directory", json!({}));
    fake.push_tool_call(
        "write_file",
        json!({"path": "half.txt", "content": "half\n"}),
    );
    fake.push_fault(Fault::Hang);
    let m = model(&fake, Provider::Anthropic, true);
    let mut ws = workspace(&sample_repo());
    let cancel = CancellationToken::new();
    let config = config();
    let prompt = prompt();
    let mut seen = Usage::default();
    let mut on_usage = |u: &Usage| seen += *u;
    let running = run_agent(
        m.as_ref(),
        &prompt,
        &mut ws,
        &config,
        &cancel,
        &mut on_usage,
    );
    assert_send(&running);
    let canceller = async {
        fake.wait_for_request(3).await;
        cancel.cancel();
    };
    let (result, ()) = tokio::join!(running, canceller);
    let failure = result.expect_err("cancelled");
    assert!(matches!(failure.error, AgentError::Cancelled), "{failure}");
    assert_eq!(failure.log.steps, 3);
    assert_eq!(failure.log.usage, seen);
    assert_eq!(fake.requests().len(), 3);
    assert_eq!(failure.to_string(), "the run was cancelled (after 3 steps)");
}

#[tokio::test]
async fn the_step_cap_stops_the_run_clearly() {
    let fake = LlmFake::start().await;
    for _ in 0..3 {
        fake.push_tool_call("list_directory", json!({"path": "src"}));
    }
    let m = model(&fake, Provider::OpenAi, true);
    let mut ws = workspace(&sample_repo());
    let mut config = config();
    config.limits.max_steps = 2;
    let failure = run(&m, &mut ws, &config).await.0.expect_err("step cap");
    assert!(matches!(failure.error, AgentError::StepLimit { max: 2 }));
    assert!(
        failure
            .to_string()
            .starts_with("the engineer used all 2 steps without calling `finish`"),
        "{failure}"
    );
    assert_eq!(fake.requests().len(), 2);
    assert!(failure.log.transcript.iter().any(
        |e| matches!(e, TranscriptEntry::ToolResult { name, .. } if name == "list_directory")
    ));
}

#[tokio::test]
async fn stopping_without_finish_is_reported_after_one_reminder() {
    let fake = LlmFake::start().await;
    fake.push_tool_call("write_file", json!({"path": "x.txt", "content": "x\n"}));
    fake.push_text("I am done.");
    fake.push_text("<summary>Really done.</summary>");
    let m = model(&fake, Provider::Anthropic, true);
    let mut ws = workspace(&sample_repo());
    let failure = run(&m, &mut ws, &config()).await.0.expect_err("no finish");
    assert!(matches!(failure.error, AgentError::NoFinish { .. }));
    let text = failure.to_string();
    assert!(
        text.contains("the model stopped without calling `finish`")
            && text.contains("Really done."),
        "{text}"
    );
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3);
    assert!(reqs[2].body.to_string().contains("without calling a tool"));
}

/// A scripted answer that ends with `stop`.
fn ending(text: &str, stop: Stop) -> Reply {
    Reply {
        text: Some(text.into()),
        stop: Some(stop),
        ..Reply::default()
    }
}

#[tokio::test]
async fn a_refusal_ends_the_run_with_the_models_reason() {
    for (provider, stream) in [(Provider::Anthropic, true), (Provider::OpenAi, false)] {
        let fake = LlmFake::start().await;
        fake.push_reply(ending("I can't help with that request.", Stop::Refusal));
        let m = model(&fake, provider, stream);
        let mut ws = workspace(&sample_repo());
        let failure = run(&m, &mut ws, &config()).await.0.expect_err("refused");
        let text = failure.to_string();
        assert!(
            text.contains("declined") && text.contains("I can't help with that request."),
            "{provider}: {text}"
        );
        assert_eq!(
            fake.requests().len(),
            1,
            "{provider}: no reminder after a refusal"
        );
    }
}

#[tokio::test]
async fn a_paused_turn_is_sent_back_as_is_to_continue() {
    let fake = LlmFake::start().await;
    fake.push_reply(ending("Let me think this through first.", Stop::PauseTurn));
    let (name, input) = finish_call();
    fake.push_tool_call(name, input);
    let m = model(&fake, Provider::Anthropic, true);
    let mut ws = workspace(&sample_repo());
    run(&m, &mut ws, &config()).await.0.expect("finishes");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    let last = reqs[1].body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["role"], "assistant", "the paused turn goes back as is");
    assert_eq!(
        last["content"][0]["text"],
        "Let me think this through first."
    );
}

#[tokio::test]
async fn a_full_context_window_ends_the_run_clearly() {
    let fake = LlmFake::start().await;
    fake.push_reply(ending("partial", Stop::ContextWindowExceeded));
    let m = model(&fake, Provider::Anthropic, false);
    let mut ws = workspace(&sample_repo());
    let failure = run(&m, &mut ws, &config())
        .await
        .0
        .expect_err("window full");
    assert!(failure.to_string().contains("context window"), "{failure}");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn an_answer_cut_off_at_max_tokens_is_continued_in_smaller_steps() {
    for (provider, stream) in [(Provider::Anthropic, false), (Provider::OpenAi, true)] {
        let fake = LlmFake::start().await;
        fake.push_reply(ending("Here is the whole file: fn", Stop::MaxTokens));
        let (name, input) = finish_call();
        fake.push_tool_call(name, input);
        let m = model(&fake, provider, stream);
        let mut ws = workspace(&sample_repo());
        run(&m, &mut ws, &config()).await.0.expect("finishes");
        let second = fake.requests()[1].body.to_string();
        assert!(second.contains("cut off at the output limit"), "{provider}");
    }
}

#[tokio::test]
async fn thinking_blocks_go_back_unchanged_with_their_tool_calls() {
    for stream in [false, true] {
        let fake = LlmFake::start().await;
        fake.push_reply(Reply {
            thinking: Some("The task is small; look at the sources first.".into()),
            text: Some("Looking.".into()),
            tool_calls: vec![("list_directory".into(), json!({"path": "src"}))],
            ..Reply::default()
        });
        let (name, input) = finish_call();
        fake.push_reply(Reply {
            thinking: Some("Nothing else to do.".into()),
            tool_calls: vec![(name.into(), input)],
            ..Reply::default()
        });
        let m = model(&fake, Provider::Anthropic, stream);
        let mut ws = workspace(&sample_repo());
        let (result, _) = run(&m, &mut ws, &config()).await;
        result.unwrap_or_else(|f| panic!("stream={stream}: {f}"));
        let body = &fake.requests()[1].body;
        let turn = &body["messages"][1]["content"];
        assert_eq!(turn[0]["type"], "thinking", "stream={stream}: {turn}");
        assert_eq!(
            turn[0]["thinking"],
            "The task is small; look at the sources first."
        );
        assert!(turn[0]["signature"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(body.get("thinking").is_none(), "no thinking field is sent");
    }
}

#[tokio::test]
async fn token_and_cost_caps() {
    let fake = LlmFake::start().await;
    fake.push_reply(Reply {
        tool_calls: vec![("list_directory".into(), json!({}))],
        usage: (1_000, 1_000),
        ..Reply::default()
    });
    let m = model(&fake, Provider::Anthropic, false);
    let mut ws = workspace(&sample_repo());
    let mut config = config();
    config.limits.max_tokens = 1_500;
    let failure = run(&m, &mut ws, &config).await.0.expect_err("token cap");
    assert!(
        matches!(failure.error, AgentError::TokenLimit { used, max: 1_500 } if used >= 2_000),
        "{failure}"
    );

    let fake = LlmFake::start().await;
    fake.push_reply(Reply {
        tool_calls: vec![("list_directory".into(), json!({}))],
        usage: (1_000_000, 0),
        ..Reply::default()
    });
    let m = model(&fake, Provider::Anthropic, false);
    let mut config = self::config();
    config.limits.max_tokens = u64::MAX;
    config.limits.max_cost_usd = Some(1.0);
    config.price = Some(ModelPrice::new(2.0, 10.0, 0.2, 2.5));
    let failure = run(&m, &mut ws, &config).await.0.expect_err("cost cap");
    assert!(
        matches!(failure.error, AgentError::CostLimit { spent, .. } if spent >= 2.0),
        "{failure}"
    );
    assert!(failure.to_string().contains("more than the $1.00 allowed"));
}

#[tokio::test]
async fn the_wall_time_cap() {
    let fake = LlmFake::start().await;
    let m = model(&fake, Provider::Anthropic, false);
    let mut ws = workspace(&sample_repo());
    let mut config = config();
    config.limits.max_wall_time = Duration::ZERO;
    let failure = run(&m, &mut ws, &config).await.0.expect_err("time cap");
    assert!(matches!(failure.error, AgentError::TimeLimit { .. }));
    assert!(fake.requests().is_empty());
}

// ---------------------------------------------------------------------------------------------
// The workspace

#[test]
fn the_workspace_is_private_and_removed_on_drop() {
    let ws = workspace(&sample_repo());
    let root = ws.root().to_path_buf();
    let mode = std::fs::metadata(&root).expect("root").permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    assert_eq!(
        std::fs::read_to_string(root.join("src/lib.rs")).expect("lib"),
        LIB_RS
    );
    assert_eq!(ws.snapshot_files(), 5);
    assert!(ws.skipped().is_empty());
    assert!(ws.changes().expect("changes").is_empty());
    drop(ws);
    assert!(!root.exists());
}

#[test]
fn tarball_caps_and_unsafe_entries_are_refused() {
    let files: Vec<String> = (0..20).map(|i| format!("f{i}.txt")).collect();
    let many: Vec<E> = files.iter().map(|f| E::File(f, b"x")).collect();
    let limits = WorkspaceLimits {
        max_entries: 10,
        ..WorkspaceLimits::default()
    };
    assert!(matches!(
        Workspace::from_tarball(tarball(&many).as_slice(), &limits),
        Err(WorkspaceError::TooManyEntries { max: 10 })
    ));

    let big = vec![b'a'; 20_000];
    let limits = WorkspaceLimits {
        max_total_bytes: 10_000,
        ..WorkspaceLimits::default()
    };
    let err = Workspace::from_tarball(tarball(&[E::File("big.bin", &big)]).as_slice(), &limits)
        .expect_err("too big");
    assert!(matches!(err, WorkspaceError::TooLarge { max: 10_000 }));
    assert_eq!(
        err.to_string(),
        "the repository snapshot is larger than 10000 bytes"
    );

    // A bomb hidden where the headers do not count it still stops at the cap.
    let limits = WorkspaceLimits {
        max_total_bytes: 10_000,
        max_entries: 10,
        ..WorkspaceLimits::default()
    };
    assert!(matches!(
        Workspace::from_tarball(tarball(&[E::LongName(500_000)]).as_slice(), &limits),
        Err(WorkspaceError::TooLarge { .. })
    ));

    let limits = WorkspaceLimits {
        max_depth: 3,
        ..WorkspaceLimits::default()
    };
    assert!(matches!(
        Workspace::from_tarball(tarball(&[E::File("a/b/c/d.txt", b"x")]).as_slice(), &limits),
        Err(WorkspaceError::TooDeep { max: 3, .. })
    ));

    let limits = WorkspaceLimits::default();
    for (name, what) in [
        ("/etc/passwd", "absolute"),
        ("../escape.txt", "parent"),
        ("octo-hello-0123abc/a/../../../escape.txt", "parent inside"),
    ] {
        let err = Workspace::from_tarball(tarball(&[E::Raw(name, b"x")]).as_slice(), &limits)
            .expect_err(what);
        assert!(
            matches!(err, WorkspaceError::UnsafePath { .. }),
            "{what}: {err}"
        );
    }
    let err = Workspace::from_tarball(tarball(&[E::Raw("other-top/x", b"x")]).as_slice(), &limits)
        .expect_err("two top folders");
    assert!(matches!(err, WorkspaceError::Malformed(_)), "{err}");

    let err = Workspace::from_tarball(
        tarball(&[E::Symlink("lib", "/usr/lib"), E::File("lib/x.so", b"x")]).as_slice(),
        &limits,
    )
    .expect_err("below a link");
    assert!(err.to_string().contains("below `lib`"), "{err}");

    assert!(matches!(
        Workspace::from_tarball(&b"not a tarball at all"[..], &limits),
        Err(WorkspaceError::Malformed(_))
    ));
}

#[test]
fn an_oversized_file_is_skipped_and_recorded_not_fatal() {
    let limits = WorkspaceLimits {
        max_file_bytes: 100,
        ..WorkspaceLimits::default()
    };
    let big = vec![b'a'; 1_000];
    let ws = Workspace::from_tarball(
        tarball(&[E::File("data.bin", &big), E::File("ok.txt", b"ok")]).as_slice(),
        &limits,
    )
    .expect("workspace");
    assert_eq!(ws.snapshot_files(), 1);
    assert_eq!(ws.skipped().len(), 1);
    assert_eq!(ws.skipped()[0].path, "data.bin");
    assert_eq!(ws.skipped()[0].reason, "larger than 100 bytes (1000 bytes)");
}

#[test]
fn a_plain_tar_works_too() {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Regular, 3);
    h.set_path(format!("{TOP}/a.txt")).expect("path");
    h.set_cksum();
    b.append(&h, &b"abc"[..]).expect("append");
    let raw = b.into_inner().expect("tar");
    let ws = Workspace::from_tarball(raw.as_slice(), &WorkspaceLimits::default()).expect("ws");
    assert_eq!(ws.snapshot_files(), 1);
}

#[tokio::test]
async fn edits_keep_crlf_line_endings() {
    let repo = tarball(&[E::File("win.txt", b"one\r\ntwo\r\nthree\r\n")]);
    let fake = LlmFake::start().await;
    fake.push_tool_call(
        "edit_file",
        json!({"path": "win.txt", "old": "one\ntwo", "new": "one\n2"}),
    );
    let (name, input) = finish_call();
    fake.push_tool_call(name, input);
    let m = model(&fake, Provider::OpenAi, false);
    let mut ws = workspace(&repo);
    let out = run(&m, &mut ws, &config()).await.0.expect("finishes");
    assert_eq!(
        out.changes,
        vec![FileChange {
            path: "win.txt".into(),
            content: Some("one\r\n2\r\nthree\r\n".into()),
            executable: false,
        }]
    );
}
