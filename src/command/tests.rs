//! The grammar's tables, snapshots and properties.

use super::parser::{Item, items};
use super::*;
use proptest::prelude::*;

fn spec() -> Item {
    Ok(Command::Spec)
}
fn implement(force: bool) -> Item {
    Ok(Command::Implement { force })
}
fn revise(feedback: &str) -> Item {
    Ok(Command::Revise {
        feedback: feedback.to_owned(),
    })
}
fn cancel() -> Item {
    Ok(Command::Cancel)
}
fn help() -> Item {
    Ok(Command::Help)
}
fn unknown(got: &str, suggestion: &'static str) -> Item {
    Err(ParseError::UnknownCommand {
        got: got.to_owned(),
        suggestion: Some(suggestion),
    })
}
fn unexpected(command: &'static str, got: &str) -> Item {
    Err(ParseError::UnexpectedArgument {
        command,
        got: got.to_owned(),
    })
}
fn flag(flag: &str, suggestion: Option<&'static str>) -> Item {
    Err(ParseError::UnknownFlag {
        command: "implement",
        flag: flag.to_owned(),
        suggestion,
    })
}
fn no_feedback() -> Item {
    Err(ParseError::MissingArgument {
        command: "revise",
        what: "feedback",
    })
}

/// Commands, case and flags.
#[test]
fn grammar_table_commands_and_flags() {
    #[rustfmt::skip]
    let rows: Vec<(&str, &str, Vec<Item>)> = vec![
        // Each command.
        ("spec", "/spec", vec![spec()]),
        ("implement", "/implement", vec![implement(false)]),
        ("revise", "/revise make it async", vec![revise("make it async")]),
        ("cancel", "/cancel", vec![cancel()]),
        ("help", "/help", vec![help()]),
        ("trailing newline", "/spec\n", vec![spec()]),
        ("trailing spaces", "/spec   \t", vec![spec()]),
        ("empty", "", vec![]),
        ("plain prose", "Looks good to me!", vec![]),
        ("lone slash", "/", vec![]),
        ("slash space", "/ spec", vec![]),
        // Case.
        ("upper case", "/SPEC", vec![spec()]),
        ("mixed case", "/Implement --Force", vec![implement(true)]),
        ("case revise", "/ReViSe Do it", vec![revise("Do it")]),
        // Flags.
        ("force long", "/implement --force", vec![implement(true)]),
        ("force short", "/implement -f", vec![implement(true)]),
        ("force short upper", "/implement -F", vec![implement(true)]),
        ("force twice", "/implement -f --force", vec![implement(true)]),
        ("flag typo", "/implement --froce", vec![flag("--froce", Some("--force"))]),
        ("single dash word", "/implement -force", vec![flag("-force", Some("--force"))]),
        ("em dash", "/implement \u{2014}force", vec![flag("\u{2014}force", Some("--force"))]),
        ("unknown flag", "/implement --dry-run", vec![flag("--dry-run", None)]),
        ("implement word", "/implement now", vec![unexpected("implement", "now")]),
        ("spec argument", "/spec please", vec![unexpected("spec", "please")]),
        ("cancel argument", "/cancel it all", vec![unexpected("cancel", "it all")]),
        ("help argument", "/help implement", vec![unexpected("help", "implement")]),
        ("help flag", "/help --force", vec![unexpected("help", "--force")]),
    ];
    check_rows(&rows);
}

/// Lines markdown shows as something other than a command line: code, quotes, comments.
#[test]
fn grammar_table_markdown() {
    #[rustfmt::skip]
    let rows: Vec<(&str, &str, Vec<Item>)> = vec![
        // Leading spaces.
        ("one space", " /spec", vec![spec()]),
        ("three spaces", "   /spec", vec![spec()]),
        ("four spaces is code", "    /spec", vec![]),
        ("tab is code", "\t/spec", vec![]),
        ("indented after text", "Hi\n    /spec", vec![]),
        // Fenced code.
        ("backtick fence", "```\n/spec\n```\n/help", vec![help()]),
        ("tilde fence", "~~~\n/spec\n~~~\n/help", vec![help()]),
        ("fence with info", "```rust\n/spec\n```", vec![]),
        ("longer fence", "````\n/spec\n```\n/cancel\n````\n/help", vec![help()]),
        ("tilde inside backticks", "```\n~~~\n/spec\n```\n/help", vec![help()]),
        ("closing fence too short", "~~~~\n~~~\n/spec", vec![]),
        ("fence indented 3", "   ```\n/spec\n   ```\n/help", vec![help()]),
        ("unclosed fence", "/help\n```\n/spec\n/cancel", vec![help()]),
        ("inline triple backticks", "```/spec```\n/help", vec![help()]),
        ("fence closer with text is content", "```\n``` x\n/spec", vec![]),
        // Block quotes.
        ("quote", "> /revise make it blue", vec![]),
        ("quote indented", "  > /spec", vec![]),
        ("nested quote", ">> /spec", vec![]),
        ("quote then reply", "> /revise make it blue\n\n/spec", vec![spec()]),
        ("quote then command line", "> quoted\n/help", vec![help()]),
        // Code spans.
        ("inline code", "`/spec`", vec![]),
        ("inline code mid-line", "Type `/spec` to start", vec![]),
        ("code span over lines", "Try `this\n/spec` out", vec![]),
        ("double backtick span", "``a\n/spec``", vec![]),
        ("unclosed backtick", "a ` b\n/spec", vec![spec()]),
        ("escaped backtick", "a \\` b\n/spec\nc `", vec![spec()]),
        ("span closed in other paragraph", "a `\n\n/spec\n`", vec![spec()]),
        // HTML comments.
        ("comment line", "<!-- /spec -->\n/help", vec![help()]),
        ("comment block", "<!--\n/spec\n/implement\n-->\n/help", vec![help()]),
        ("comment block blank lines", "<!--\n\n/spec\n\n-->", vec![]),
        ("comment unclosed", "<!--\n/spec", vec![]),
        ("inline comment over lines", "Hi <!-- note\n/spec\n--> there", vec![]),
        ("comment after command", "/spec <!-- go -->", vec![spec()]),
        ("comment template", "<!-- Describe your change -->\n/implement -f", vec![implement(true)]),
        ("short comment", "<!-->\n/spec", vec![spec()]),
        // Other HTML is shown as written; only the comments in it hide.
        ("html block line", "<details>\n/spec\n</details>", vec![spec()]),
        ("comment inside html block", "<div>\n<!-- x\n/spec\n-->\n</div>\n\n/help", vec![help()]),
    ];
    check_rows(&rows);
}

/// Other slashes, near misses, `/revise` feedback, several commands, line endings, unicode.
#[test]
fn grammar_table_slashes_feedback_and_text() {
    #[rustfmt::skip]
    let rows: Vec<(&str, &str, Vec<Item>)> = vec![
        // Mid-sentence and other slashes.
        ("mid sentence", "please /spec this", vec![]),
        ("list item", "- /spec", vec![]),
        ("heading", "# /spec", vec![]),
        ("path", "/usr/bin/foo", vec![]),
        ("path with spec", "/spec/foo.md is wrong", vec![]),
        ("cc", "/cc @someone", vec![]),
        ("assign", "/assign @me", vec![]),
        ("other bot", "/review\n/rebase\n/hold\n/lgtm\n/retest", vec![]),
        ("link", "[/spec](https://example.com)", vec![]),
        // Near misses.
        ("implment", "/implment", vec![unknown("implment", "implement")]),
        ("specs", "/specs", vec![unknown("specs", "spec")]),
        ("revse", "/revse make it blue", vec![unknown("revse", "revise")]),
        ("cancle", "/cancle", vec![unknown("cancle", "cancel")]),
        ("prefix", "/impl --force", vec![unknown("impl", "implement")]),
        ("trailing punctuation", "/spec.", vec![unknown("spec.", "spec")]),
        ("near miss keeps case", "/Implment", vec![unknown("Implment", "implement")]),
        // /revise feedback.
        ("revise empty", "/revise", vec![no_feedback()]),
        ("revise blank", "/revise   \n\n  \n", vec![no_feedback()]),
        ("revise only comment", "/revise <!-- nothing -->", vec![no_feedback()]),
        ("revise multi-line", "/revise first\nsecond\n\nthird", vec![revise("first\nsecond\n\nthird")]),
        ("revise on next line", "/revise\nmake it\nblue", vec![revise("make it\nblue")]),
        ("revise leading blank lines", "/revise\n\n\n  indented\nmore", vec![revise("  indented\nmore")]),
        ("revise stops at command", "/revise a\nb\n/implement\nc", vec![revise("a\nb"), implement(false)]),
        ("revise stops at near miss", "/revise a\n/implment", vec![revise("a"), unknown("implment", "implement")]),
        ("revise then revise", "/revise a\n/revise b", vec![revise("a"), revise("b")]),
        ("revise empty then command", "/revise\n/spec", vec![no_feedback(), spec()]),
        ("revise keeps code", "/revise use this:\n```\n/spec\n```", vec![revise("use this:\n```\n/spec\n```")]),
        ("revise keeps quote", "/revise\n> /spec\nno", vec![revise("> /spec\nno")]),
        ("revise keeps other slashes", "/revise see /usr/bin\n/cc @me", vec![revise("see /usr/bin\n/cc @me")]),
        ("revise drops comments", "/revise a <!-- x -->b\n<!--\nhidden\n-->\nc", vec![revise("a b\n\nc")]),
        ("revise keeps inner blank lines", "/revise a\n\nb", vec![revise("a\n\nb")]),
        ("revise unclosed fence", "/revise x\n```\n/spec", vec![revise("x\n```\n/spec")]),
        // Several commands, Windows line endings, unicode.
        ("several", "/spec\nthen\n/implement -f\n/help", vec![spec(), implement(true), help()]),
        ("duplicates", "/help\n/help", vec![help(), help()]),
        ("crlf", "/spec\r\n/revise a\r\nb\r\n/cancel\r\n", vec![spec(), revise("a\nb"), cancel()]),
        ("crlf fence", "```\r\n/spec\r\n```\r\n/help\r\n", vec![help()]),
        ("unicode feedback", "/revise ça marche 🎉\n日本語", vec![revise("ça marche 🎉\n日本語")]),
        ("unicode near miss", "/spéc", vec![unknown("spéc", "spec")]),
        ("unicode word", "/日本語", vec![]),
        ("nbsp separates", "/spec\u{a0}now", vec![unexpected("spec", "now")]),
        ("ideographic space indent", "\u{3000}/spec", vec![]),
    ];
    check_rows(&rows);
}

/// Every row's input parses to its items; all mismatches are reported at once.
fn check_rows(rows: &[(&str, &str, Vec<Item>)]) {
    let mut failures = Vec::new();
    for (name, input, want) in rows {
        let got = items(input);
        if &got != want {
            failures.push(format!(
                "{name}: {input:?}\n   got {got:?}\n  want {want:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn parse_splits_commands_and_errors() {
    let parsed = parse("/spec\n/implment\n/help\n/revise");
    assert_eq!(parsed.commands, vec![Command::Spec, Command::Help]);
    assert_eq!(parsed.errors.len(), 2);
    assert!(!parsed.is_empty());
    assert!(parse("nothing here").is_empty());
}

#[test]
fn too_many_commands_run_none() {
    let body = "/help\n".repeat(MAX_COMMANDS);
    assert_eq!(parse(&body).commands.len(), MAX_COMMANDS);
    let body = "/help\n".repeat(MAX_COMMANDS + 2);
    let parsed = parse(&body);
    assert!(parsed.commands.is_empty());
    assert_eq!(
        parsed.errors,
        vec![ParseError::TooMany {
            limit: MAX_COMMANDS,
            got: MAX_COMMANDS + 2
        }]
    );
}

#[test]
fn feedback_length_is_capped() {
    let ok = format!("/revise {}", "é".repeat(MAX_FEEDBACK_CHARS));
    assert_eq!(parse(&ok).commands.len(), 1);
    let long = format!("/revise {}", "a".repeat(MAX_FEEDBACK_CHARS + 1));
    assert_eq!(
        parse(&long).errors,
        vec![ParseError::TooLong {
            command: "revise",
            limit: MAX_FEEDBACK_CHARS,
            got: MAX_FEEDBACK_CHARS + 1
        }]
    );
}

#[test]
fn errors_clip_what_they_echo() {
    let body = format!("/spec {}", "x".repeat(1000));
    let parsed = parse(&body);
    let [ParseError::UnexpectedArgument { got, .. }] = parsed.errors.as_slice() else {
        panic!("expected one UnexpectedArgument");
    };
    assert_eq!(got.chars().count(), error::MAX_ECHO_CHARS + 1);
}

#[test]
fn added_by_edit_table() {
    #[rustfmt::skip]
    let rows: Vec<(&str, &str, &str, Vec<Command>)> = vec![
        ("adds help", "/spec", "/spec\n/help", vec![Command::Help]),
        ("no change", "/spec\n/help", "/spec\n/help", vec![]),
        ("prose edit", "/spec\ntypo", "/spec\ntypo fixed", vec![]),
        ("second help", "/help", "/help\n/help", vec![Command::Help]),
        ("reorder", "/spec\n/help", "/help\n/spec", vec![]),
        ("removal", "/spec\n/help", "/spec", vec![]),
        ("from nothing", "hello", "hello\n/implement -f", vec![Command::Implement { force: true }]),
        ("flag added", "/implement", "/implement --force", vec![Command::Implement { force: true }]),
        ("feedback edited", "/revise a", "/revise b", vec![Command::Revise { feedback: "b".into() }]),
        ("un-fenced", "```\n/spec\n```", "/spec", vec![Command::Spec]),
        ("fenced", "/spec", "```\n/spec\n```", vec![]),
    ];
    for (name, old, new, want) in rows {
        assert_eq!(added_by_edit(old, new).commands, want, "{name}");
    }
}

#[test]
fn added_by_edit_keeps_new_errors_only() {
    let fixed = added_by_edit("/implment", "/implement");
    assert_eq!(fixed.commands, vec![Command::Implement { force: false }]);
    assert!(fixed.errors.is_empty());
    let same = added_by_edit("/implment\nhi", "/implment\nhi there");
    assert!(same.is_empty());
}

#[test]
fn added_by_edit_caps_what_was_added() {
    let old = "/help\n".repeat(MAX_COMMANDS + 5);
    let new = format!("{old}/spec");
    assert_eq!(added_by_edit(&old, &new).commands, vec![Command::Spec]);
    let many = added_by_edit("", &old);
    assert!(matches!(
        many.errors.as_slice(),
        [ParseError::TooMany { .. }]
    ));
}

#[test]
fn mentions_command_matches_parse() {
    for body in [
        "",
        "hi",
        "/spec",
        "  /implment",
        "/usr/bin",
        "`/spec`",
        "```\n/spec",
        "a\n/revise",
        "please /spec",
    ] {
        assert_eq!(mentions_command(body), !parse(body).is_empty(), "{body:?}");
    }
}

#[test]
fn command_accessors_and_display() {
    let all = [
        Command::Spec,
        Command::Implement { force: false },
        Command::Implement { force: true },
        Command::Revise {
            feedback: "make it blue".into(),
        },
        Command::Cancel,
        Command::Help,
    ];
    let rendered: Vec<String> = all
        .iter()
        .map(|c| format!("{} | {} | {}", c.name(), c.usage(), c))
        .collect();
    insta::assert_snapshot!(rendered.join("\n"), @r"
    spec | /spec | /spec
    implement | /implement [--force] | /implement
    implement | /implement [--force] | /implement --force
    revise | /revise <feedback> | /revise make it blue
    cancel | /cancel | /cancel
    help | /help | /help
    ");
    for command in all {
        assert_eq!(parse(&command.to_string()).commands, vec![command.clone()]);
        assert!(help_text().contains(&format!("`{}`", command.usage())));
    }
}

#[test]
fn command_serialises_for_job_payloads() -> Result<(), serde_json::Error> {
    let json = serde_json::to_string(&Command::Implement { force: true })?;
    assert_eq!(json, r#"{"command":"implement","force":true}"#);
    let back: Command = serde_json::from_str(r#"{"command":"help"}"#)?;
    assert_eq!(back, Command::Help);
    Ok(())
}

#[test]
fn help_text_snapshot() {
    assert_eq!(help_text().lines().count(), 5);
    insta::assert_snapshot!(help_text());
}

#[test]
fn error_display_snapshot() {
    let errors = [
        ParseError::UnknownCommand {
            got: "implment".into(),
            suggestion: Some("implement"),
        },
        ParseError::UnknownCommand {
            got: "frobnicate".into(),
            suggestion: None,
        },
        ParseError::MissingArgument {
            command: "revise",
            what: "feedback",
        },
        ParseError::UnexpectedArgument {
            command: "spec",
            got: "please".into(),
        },
        ParseError::UnexpectedArgument {
            command: "help",
            got: "`@someone` please".into(),
        },
        ParseError::UnknownFlag {
            command: "implement",
            flag: "--froce".into(),
            suggestion: Some("--force"),
        },
        ParseError::UnknownFlag {
            command: "implement",
            flag: "--dry-run".into(),
            suggestion: None,
        },
        ParseError::TooLong {
            command: "revise",
            limit: MAX_FEEDBACK_CHARS,
            got: 25_431,
        },
        ParseError::TooMany {
            limit: MAX_COMMANDS,
            got: 12,
        },
    ];
    let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
    insta::assert_snapshot!(rendered.join("\n"));
}

/// Pieces that exercise every branch of the scanner when shuffled together.
fn markdownish() -> impl Strategy<Value = String> {
    const PIECES: &[&str] = &[
        "/spec",
        "/implement",
        " --force",
        "/revise",
        "/cancel",
        "/help",
        "/implment",
        "/usr",
        "\n",
        "\r\n",
        "   ",
        "\t",
        "```",
        "~~~~",
        "`",
        "\\",
        "> ",
        "<!--",
        "-->",
        "# ",
        "é🎉",
    ];
    let piece = prop_oneof![
        21 => prop::sample::select(PIECES).prop_map(str::to_owned),
        1 => "[a-z ]{0,8}",
    ];
    prop::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
}

/// Like [`markdownish`] without fences or HTML comments: feedback that holds them is the
/// documented exception to `Display` round-tripping.
fn markdownish_without_openers() -> impl Strategy<Value = String> {
    markdownish().prop_map(|body| {
        body.replace("<!--", "<!")
            .replace("-->", "->")
            .replace("```", "``")
            .replace("~~~", "~~")
    })
}

/// Bounds every parse must respect, whatever the input.
fn check_bounds(body: &str, parsed: &Parsed) {
    assert!(parsed.commands.len() + parsed.errors.len() <= MAX_COMMANDS);
    for command in &parsed.commands {
        if let Command::Revise { feedback } = command {
            assert!(!feedback.is_empty());
            assert!(feedback.chars().count() <= MAX_FEEDBACK_CHARS);
            assert!(feedback.len() <= body.len());
        }
    }
    assert_eq!(mentions_command(body), !parsed.is_empty());
}

/// Failing seeds live beside this file (`tests.regressions`), inside the module.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::with_cases(cases)
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn never_panics_on_arbitrary_strings(body in any::<String>()) {
        check_bounds(&body, &parse(&body));
    }

    #[test]
    fn never_panics_on_markdownish_strings(body in markdownish()) {
        check_bounds(&body, &parse(&body));
    }

    #[test]
    fn canonical_form_round_trips(body in markdownish_without_openers()) {
        for command in parse(&body).commands {
            prop_assert_eq!(parse(&command.to_string()).commands, vec![command]);
        }
    }

    #[test]
    fn edit_to_itself_adds_nothing(body in markdownish()) {
        prop_assert!(added_by_edit(&body, &body).is_empty());
    }

    #[test]
    fn edit_from_empty_is_parse(body in markdownish()) {
        prop_assert_eq!(added_by_edit("", &body), parse(&body));
    }
}

proptest! {
    #![proptest_config(config(4))]

    #[test]
    fn bounded_on_megabyte_inputs(chunk in markdownish()) {
        let body = chunk.repeat((1 << 20) / chunk.len().max(1) + 1);
        check_bounds(&body, &parse(&body));
    }
}

/// Shapes that would be quadratic in a naive scanner; each must stay fast at 1 MB.
#[test]
fn megabyte_adversarial_inputs() {
    const MB: usize = 1 << 20;
    let mut distinct_runs = String::new();
    let mut n = 1;
    while distinct_runs.len() < MB {
        distinct_runs.push_str(&"`".repeat(n));
        distinct_runs.push(' ');
        n += 1;
    }
    let inputs = [
        "/revise x\n".repeat(MB / 10),
        format!("/revise {}", "a".repeat(MB)),
        format!("/{}", "a".repeat(MB)),
        "<!-- ".repeat(MB / 5),
        "a `".repeat(MB / 3),
        "`".repeat(MB),
        distinct_runs,
        "```\n".repeat(MB / 4),
        format!("<!--\n{}", "/spec\n".repeat(MB / 6)),
        "> /spec\n".repeat(MB / 8),
        "\n".repeat(MB),
        "/implement -f -f -f ".repeat(MB / 20),
    ];
    for body in &inputs {
        let started = std::time::Instant::now();
        let parsed = parse(body);
        check_bounds(body, &parsed);
        let _ = added_by_edit(body, body);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "slow on input starting {:?}",
            &body[..40]
        );
    }
}
