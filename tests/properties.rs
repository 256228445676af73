//! Property tests over the parsers that read untrusted text: the model's spec answers (tool
//! input and free text), the engineer's paths, the repository's config file and the prompt
//! sanitiser. None may panic, and each keeps its promise on every input.
//! (Signature + event decoding and the command grammar have theirs beside their code.)

use proptest::prelude::*;
use serde_json::Value;
use specbot::agent::RepoPath;
use specbot::config::repo::RepoConfig;
use specbot::jobs::{MAX_BODY_BYTES, PackedBody, unpack_body};
use specbot::prompt::sanitize::sanitize;
use specbot::spec::{parse_text_answer, parse_tool_input, validate};

/// Arbitrary JSON, a few levels deep, with the spec answer's own keys in the mix.
fn json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("specification".to_string()),
        Just("components".to_string()),
        Just("title".to_string()),
        Just("summary".to_string()),
        Just("acceptance_criteria".to_string()),
        Just("depends_on".to_string()),
        Just("artifacts".to_string()),
        Just("diagram".to_string()),
        "[a-z_]{1,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,80}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Text that looks like a model's answer: headings, fences, JSON-ish bits, noise.
fn answer_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("# Spec\n".to_string()),
        Just("## Components\n".to_string()),
        Just("```json\n".to_string()),
        Just("```\n".to_string()),
        Just("{\"specification\": \"".to_string()),
        Just("\"components\": [".to_string()),
        Just("]}".to_string()),
        Just("- **Title** — summary\n".to_string()),
        Just("<summary>".to_string()),
        ".{0,40}",
    ];
    prop::collection::vec(piece, 0..30).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The parser is tolerant (validation decides); what both accept is a usable spec.
    #[test]
    fn tool_input_never_panics_and_what_validates_is_usable(input in json()) {
        if let Ok(answer) = parse_tool_input(&input) {
            prop_assert!(!answer.specification.trim().is_empty());
            if validate(&answer, &[]).is_ok() {
                for c in &answer.components {
                    prop_assert!(!c.title.trim().is_empty(), "{:?}", c);
                }
            }
        }
    }

    #[test]
    fn text_answers_never_panic(text in answer_text()) {
        let _ = parse_text_answer(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,2000}") {
        let _ = parse_text_answer(&text);
        let _ = RepoConfig::parse(&text);
        let _ = sanitize(&text);
    }

    #[test]
    fn accepted_paths_stay_inside_the_repository(raw in "[a-z./\\\\~:\\x00-\\x1f]{0,40}|(\\.\\./)+[a-z]{1,5}|/[a-z/]{0,20}") {
        if let Ok(path) = RepoPath::parse(&raw) {
            let p = path.as_str();
            prop_assert!(!p.is_empty());
            prop_assert!(!p.starts_with('/'), "{p}");
            prop_assert!(!p.contains('\\'), "{p}");
            prop_assert!(p.split('/').all(|s| !s.is_empty() && s != "." && s != ".."), "{p}");
            prop_assert!(!p.chars().any(char::is_control), "{p}");
            // Normalising is stable.
            prop_assert_eq!(RepoPath::parse(p).ok(), Some(path.clone()));
        }
    }

    #[test]
    fn sanitized_text_has_no_hidden_comments_or_invisible_characters(text in "(.|<!--|-->|\u{200b}|\u{202e}|\u{2066}){0,200}") {
        let clean = sanitize(&text);
        prop_assert!(!clean.contains("<!--"), "{clean:?}");
        for c in ['\u{200b}', '\u{202e}', '\u{2066}'] {
            prop_assert!(!clean.contains(c), "{clean:?}");
        }
    }

    #[test]
    fn sanitizing_keeps_the_words_of_real_scripts(words in proptest::collection::vec(prop_oneof![
        Just("Tiếng Việt có dấu: người, được, những"),
        Just("हिन्दी भाषा: क्षत्रिय, द्वारा, स्त्री"),
        Just("العربية: بِسْمِ ٱللَّٰهِ ٱلرَّحْمَٰنِ"),
        Just("Ελληνικά, русский, 日本語, 한국어"),
    ], 1..6)) {
        // Combining marks are part of these scripts: the sanitiser keeps them.
        let text = words.join("\n");
        prop_assert_eq!(sanitize(&text), text);
    }

    #[test]
    fn sanitized_text_has_no_marks_tower_or_hidden_fillers(base in "[a-z]{1,3}", marks in proptest::collection::vec(0x0300u32..0x036f, 5..40), filler in prop_oneof![Just('\u{3164}'), Just('\u{115F}'), Just('\u{1160}'), Just('\u{FE0F}'), Just('\u{E0100}')]) {
        let tower: String = marks.iter().filter_map(|&c| char::from_u32(c)).collect();
        let clean = sanitize(&format!("{base}{tower}{filler}x"));
        prop_assert!(clean.chars().filter(|c| ('\u{0300}'..='\u{036f}').contains(c)).count() <= 4, "{clean:?}");
        prop_assert!(!clean.contains(filler), "{clean:?}");
    }

    #[test]
    fn stored_bodies_of_any_bytes_unpack_or_fail_cleanly(stored in proptest::collection::vec(any::<u8>(), 0..300), raw in proptest::collection::vec(any::<u8>(), 0..3000)) {
        // Damaged rows: an error or bytes, never a panic or a huge allocation.
        if let Ok(body) = unpack_body(stored, Some(PackedBody::ENCODING)) {
            prop_assert!(body.len() <= MAX_BODY_BYTES);
        }
        // Whatever intake packs comes back as it was.
        let packed = PackedBody::pack(&raw);
        prop_assert_eq!(unpack_body(packed.stored().to_vec(), Some(PackedBody::ENCODING)).ok(), Some(raw));
    }

    #[test]
    fn config_files_of_any_shape_give_a_usable_config(yaml in "([a-z_]{1,16}: (\\[[a-z0-9, ]{0,20}\\]|[a-z0-9./{}*]{0,20}|\\{[a-z]{1,5}: [a-z0-9]{0,5}\\})\n){0,12}") {
        let (cfg, _problems) = RepoConfig::parse(&yaml);
        prop_assert!(!cfg.trigger_label.is_empty());
        prop_assert!(cfg.spec_path.ends_with(".md"));
        prop_assert!(cfg.max_cost_usd > 0.0);
        prop_assert!(cfg.implement.ci_fix_attempts <= 5);
    }
}
