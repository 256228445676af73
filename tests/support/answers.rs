//! Model answers shared by the end-to-end suites.

use serde_json::{Value, json};

/// A complete, valid architect answer with `k` components (the second depends on the first).
pub fn good_answer(k: usize) -> Value {
    let spec = "# Dark mode\n\n## Summary\nAdd a dark theme.\n\n## Context\nUsers asked for it.\n\n## Goals\n- A toggle\n\n## Non-goals\n- Custom themes\n\n## Design\nA CSS variable set switched by a class on `<html>`.\n\n## Components\nSee the list.\n\n## Alternatives considered\nMedia query only.\n\n## Cross-cutting concerns\nAccessibility: contrast ratios.\n\n## Rollout\nBehind a flag.\n\n## Open questions\nNone.\n\n## Acceptance criteria\n- The toggle persists.\n";
    let components: Vec<Value> = (1..=k)
        .map(|i| {
            json!({
                "title": format!("Component {i}"),
                "summary": format!("Does part {i}."),
                "acceptance_criteria": [format!("Part {i} works"), format!("Part {i} is tested")],
                "depends_on": if i > 1 { vec![format!("Component {}", i - 1)] } else { vec![] },
                "covers": [format!("AC-1.{i}")],
                "touches": [format!("src/part{i}.rs")],
                "tests": [format!("AC-1.{i}: part {i} keeps the theme")],
            })
        })
        .collect();
    json!({
        "specification": spec,
        "requirements": good_requirements(k),
        "components": components,
        "artifacts": {"diagram": "flowchart TD\n  A[Toggle] --> B[Theme]\n"}
    })
}

/// One requirement, `REQ-1`, with a criterion `AC-1.i` for each of `k` components.
pub fn good_requirements(k: usize) -> Value {
    let criteria: Vec<Value> = (1..=k)
        .map(|i| json!({"id": format!("AC-1.{i}"), "text": format!("WHEN the user picks a theme THE SYSTEM SHALL apply part {i} within 100 ms")}))
        .collect();
    json!([{"id": "REQ-1", "title": "Theme choice", "priority": "must",
        "user_story": "As a reader, I want a dark theme, so that night reading is comfortable.",
        "acceptance_criteria": criteria}])
}

/// A valid answer with the given `requirements` and `components` (JSON as the tool takes them).
pub fn answer_with(requirements: Value, components: Value) -> Value {
    let mut a = good_answer(1);
    a["requirements"] = requirements;
    a["components"] = components;
    a
}

/// A requirement as the tool takes it: `id`, `title` and criteria given as (id, text).
pub fn requirement(id: &str, title: &str, criteria: &[(&str, &str)]) -> Value {
    let criteria: Vec<Value> = criteria
        .iter()
        .map(|(id, text)| json!({"id": id, "text": format!("WHEN {text} THE SYSTEM SHALL show it within 100 ms")}))
        .collect();
    json!({"id": id, "title": title, "priority": "must",
        "user_story": format!("As a reader, I want {title}, so that reading is comfortable."),
        "acceptance_criteria": criteria})
}

/// A requirement as `requirements` takes it: (id, title, criteria as (id, trigger)).
pub type Req<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

pub const DARK: Req = (
    "REQ-1",
    "a dark theme",
    &[("AC-1.1", "dark is on"), ("AC-1.2", "the OS prefers dark")],
);
pub const TOGGLE: Req = (
    "REQ-2",
    "a three-state toggle",
    &[("AC-2.1", "the toggle is pressed")],
);
pub const REMEMBERED: Req = (
    "REQ-3",
    "a remembered choice",
    &[("AC-3.1", "the page reloads")],
);

/// The requirements as the tool takes them.
pub fn requirements(list: &[Req]) -> Value {
    let list: Vec<Value> = list
        .iter()
        .map(|(id, title, criteria)| requirement(id, title, criteria))
        .collect();
    json!(list)
}

/// The two components of the ID tests, "Theme" and "Toggle" (which needs the theme), each as
/// (the criteria it covers, its tests).
pub fn theme_and_toggle(theme: (&[&str], &[&str]), toggle: (&[&str], &[&str])) -> Value {
    json!([
        {"title": "Theme", "summary": "The palettes.", "acceptance_criteria": ["Both palettes exist"],
         "depends_on": [], "covers": theme.0, "tests": theme.1},
        {"title": "Toggle", "summary": "The control.", "acceptance_criteria": ["It toggles"],
         "depends_on": [{"title": "Theme", "reason": "it switches the palettes"}],
         "covers": toggle.0, "tests": toggle.1}
    ])
}

/// A design with three requirements — REQ-1 (AC-1.1, AC-1.2), REQ-2 (AC-2.1), REQ-3 (AC-3.1) —
/// and two components, "Theme" and "Toggle".
pub fn three_requirements() -> Value {
    answer_with(
        requirements(&[DARK, TOGGLE, REMEMBERED]),
        theme_and_toggle(
            (
                &["AC-1.1", "AC-1.2"],
                &["AC-1.1, AC-1.2: both palettes render"],
            ),
            (
                &["AC-2.1", "AC-3.1"],
                &["AC-2.1: pressing cycles", "AC-3.1: a reload keeps it"],
            ),
        ),
    )
}

/// A realistic answer, used for `docs/examples/` (see `the_documented_example_is_what_the_pipeline_writes`
/// in `tests/spec_flow.rs`): every part a tech lead looks for — requirements with EARS and
/// Given/When/Then criteria, non-functional requirements with thresholds, assumptions, risks,
/// tests citing the criteria they check, and components that say what they cover and touch,
/// what they need first and why.
pub fn example_answer() -> Value {
    let spec = r#"# Dark mode

## Summary
Add a dark colour theme to the widget shop, switchable from the header and defaulting to the
operating system's preference. A guest's choice is kept in the browser; a signed-in customer's
choice is kept in their profile and follows them to every device.

## Context
Issue #7 reports that customers browse at night and find the white pages glaring; 38 % of
sessions start after 20:00 (`research/themes.md`). The shop's styles are plain CSS with no theme
layer: colours are hard-coded in 41 places (`grep -c '#fff' static/css/*.css`), and the pages
are server-rendered templates with one shared `templates/base.html`.

## Goals
- A dark theme on every page, meeting WCAG 2.2 AA contrast.
- A header toggle with three states: light, dark and system (follow the OS).
- The choice persists: in `localStorage` for guests, in the profile for signed-in customers.

## Non-goals
- Custom or per-brand themes.
- Theming emails, invoices and PDFs.
- Recolouring product images: they keep their colours, on a neutral frame.

## Design
Colours move into CSS custom properties declared once in `static/css/tokens.css`: the light set
on `:root`, the dark set on `:root[data-theme="dark"]`, and the dark set again inside
`@media (prefers-color-scheme: dark)` for `:root[data-theme="system"]`. Every other stylesheet
uses only the properties.

The theme is decided before the first paint. For a signed-in customer the server renders
`<html data-theme="…">` from `profiles.theme`. For a guest, a small inline script at the top of
`<head>` reads `localStorage.theme` and sets the attribute; with nothing stored it sets `system`.
No frame is ever painted in the wrong theme.

The toggle is a `<button>` in `templates/header.html`. Each press moves light → dark → system →
light, sets `data-theme` at once, writes `localStorage.theme`, and for a signed-in customer sends
`PATCH /api/profile` with `{"theme": "dark"}` in the background; a failed save is retried once
and never undoes the switch on screen.

### Data
`profiles.theme` — `text not null default 'system'`, one of `light`, `dark`, `system`
(a check constraint). `PATCH /api/profile` accepts the field and answers 422 to any other value.

## Components
1. **Theme tokens** — the custom properties and the dark palette.
2. **Profile preference** — the stored choice for signed-in customers.
3. **Theme toggle** — the header control and the pre-paint script; it needs the other two.

## Alternatives considered
- A second stylesheet swapped at runtime: doubles the CSS to maintain and flashes on load.
- Only `prefers-color-scheme`: no way to choose differently from the OS.
- A cookie instead of `localStorage` for guests: sent with every request for no server use.

## Cross-cutting concerns
- **Accessibility:** contrast is checked in CI with axe-core on every page template in both
  themes; focus rings stay visible in both; the toggle's accessible name says the current theme.
- **Performance:** the pre-paint script is inline and under 1 KB; no extra request on any page.
- **Privacy:** the preference sits in the profile the customer already has; nothing new is
  tracked.
- **Security:** `PATCH /api/profile` keeps its session and CSRF checks; the new field is
  validated against the three values.

## Rollout
Behind the `dark_mode` flag: staff first, then 10 % of sessions for a week while the
Largest Contentful Paint of both themes is compared, then everyone. Rollback: turn the flag off;
the column stays and is harmless.
"#;
    json!({
        "specification": spec,
        "requirements": [
            {"id": "REQ-1", "title": "A dark theme on every page", "priority": "must",
             "user_story": "As a night-time shopper, I want dark pages, so that the screen does not glare.",
             "acceptance_criteria": [
                {"id": "AC-1.1", "text": "WHEN the dark theme is active THE SYSTEM SHALL render the text of every page with a contrast ratio of at least 4.5:1 against its background"},
                {"id": "AC-1.2", "text": "WHEN the theme is `system` and the operating system prefers dark THE SYSTEM SHALL paint the first frame of a page in the dark theme"}]},
            {"id": "REQ-2", "title": "A three-state toggle", "priority": "must",
             "user_story": "As a shopper, I want to choose light, dark or system, so that I can differ from my operating system.",
             "acceptance_criteria": [
                {"id": "AC-2.1", "text": "WHEN the user activates the header toggle THE SYSTEM SHALL switch to the next state in the order light → dark → system → light within 100 ms"},
                {"id": "AC-2.2", "text": "WHEN the toggle is focused THE SYSTEM SHALL expose the current state in its accessible name (`Theme: dark`)"}]},
            {"id": "REQ-3", "title": "The choice persists", "priority": "should",
             "user_story": "As a returning shopper, I want my theme remembered, so that I choose it once.",
             "acceptance_criteria": [
                {"id": "AC-3.1", "text": "Given a guest chose dark, When the page reloads, Then the first frame is painted in the dark theme"},
                {"id": "AC-3.2", "text": "Given a signed-in customer chose dark, When they sign in on another device, Then the first page after sign-in is rendered with `data-theme=\"dark\"`"},
                {"id": "AC-3.3", "text": "WHEN a signed-in customer picks a theme THE SYSTEM SHALL store it in their profile through `PATCH /api/profile`, accepting only `light`, `dark` or `system` and answering 422 to any other value"}]}
        ],
        "non_functional": [
            {"text": "The pre-paint script adds little to every page.", "threshold": "at most 1 KB minified, inline in `<head>`, no extra request"},
            {"text": "The dark theme does not slow pages down.", "threshold": "Largest Contentful Paint p75 within 50 ms of the light theme's, over the 10 % rollout week"},
            {"text": "Saving a signed-in customer's choice keeps the profile API within its budget.", "threshold": "`PATCH /api/profile` p95 under 300 ms"}
        ],
        "assumptions": [
            "Every page extends `templates/base.html` and uses the shared stylesheets in `static/css/`; no template sets colours inline (`grep -rl 'style=\"color' templates/` finds none).",
            "The supported browsers (the last two versions of Chrome, Edge, Firefox and Safari) all support CSS custom properties and `prefers-color-scheme`.",
            "`PATCH /api/profile` already authenticates with the session cookie and checks CSRF, so the toggle needs no new endpoint."
        ],
        "risks": [
            "A hard-coded colour is missed in the move to tokens and shows light on dark — mitigation: stylelint's `color-no-hex` outside `tokens.css` fails CI, and the axe contrast scan runs on every template.",
            "Third-party widgets (payment form, reviews) keep their light colours — mitigation: they sit on a framed panel in dark mode, and the rollout notes list them.",
            "The migration locks `profiles` on a large table — mitigation: the column is added with a constant default (no table rewrite on PostgreSQL 11+), measured on a copy of production first."
        ],
        "open_questions": [],
        "components": [
            {"title": "Theme tokens",
             "summary": "Move every colour into CSS custom properties in `static/css/tokens.css` and add the dark palette, so that the theme is one attribute on `<html>`.",
             "acceptance_criteria": ["No hex colour remains outside `static/css/tokens.css`", "Each dark foreground/background pair is listed in `tokens.css` with its measured contrast"],
             "depends_on": [],
             "covers": ["AC-1.1"],
             "touches": ["static/css/tokens.css", "static/css/*.css", ".stylelintrc.json"],
             "tests": ["AC-1.1: the axe-core contrast scan of every page template in the dark theme finds no violation"]},
            {"title": "Profile preference",
             "summary": "Store a signed-in customer's theme in `profiles.theme`, accept it in `PATCH /api/profile`, and render it as `data-theme` on `<html>`.",
             "acceptance_criteria": ["The migration adds `profiles.theme text not null default 'system'` with a check constraint"],
             "depends_on": [],
             "covers": ["AC-3.2", "AC-3.3"],
             "touches": ["migrations/0042_profile_theme.sql", "api/profile.py", "templates/base.html"],
             "tests": ["AC-3.3: `PATCH /api/profile` with `dark` answers 204 and stores it; with `sepia` it answers 422 and stores nothing",
                       "AC-3.2: a customer who chose dark signs in from a fresh browser and the first page has `data-theme=\"dark\"`"]},
            {"title": "Theme toggle",
             "summary": "The three-state header toggle and the inline pre-paint script that applies a guest's stored choice or the system preference before the first frame.",
             "acceptance_criteria": ["The pre-paint script is inline in `<head>` and at most 1 KB minified"],
             "depends_on": [
                {"title": "Theme tokens", "reason": "it switches between the palettes the tokens define"},
                {"title": "Profile preference", "reason": "it saves a signed-in customer's choice through `PATCH /api/profile`"}
             ],
             "covers": ["AC-1.2", "AC-2.1", "AC-2.2", "AC-3.1"],
             "touches": ["templates/header.html", "templates/base.html", "static/js/theme.js"],
             "tests": ["AC-2.1: three presses of the toggle go light → dark → system → light, each applied within 100 ms",
                       "AC-2.2: after one press the toggle's accessible name is `Theme: dark`",
                       "AC-1.2, AC-3.1: with the OS preferring dark, or `localStorage.theme` set to `dark`, the first painted frame is dark"]}
        ],
        "artifacts": {
            "diagram": "flowchart TD\n  U[Shopper] -->|presses| T[Theme toggle]\n  T -->|sets data-theme| H[html element]\n  T -->|guest| L[(localStorage.theme)]\n  T -->|signed in| P[PATCH /api/profile]\n  P --> DB[(profiles.theme)]\n  DB -->|rendered by the server| H\n  L -->|pre-paint script| H\n  H --> C[CSS custom properties in tokens.css]\n"
        }
    })
}

/// The engineer's `finish`, reporting each criterion by ID: `(id, status, files, tests)`, with
/// `how_met` (and, for `not_done`, the reason) made from the ID.
pub fn finish_by_id(summary: &str, reports: &[(&str, &str, &[&str], &[&str])]) -> Value {
    let criteria: Vec<Value> = reports
        .iter()
        .map(|(id, status, files, tests)| {
            json!({
                "id": id,
                "status": status,
                "how_met": format!("{id}: how the change meets it"),
                "reason": if *status == "done" { String::new() } else { format!("{id}: why it is not done") },
                "files": files,
                "tests": tests,
            })
        })
        .collect();
    json!({"summary": summary, "criteria": criteria})
}

/// A spec written before criteria had IDs (or by hand): free-text criteria only.
pub const SPEC_WITHOUT_IDS: &str = "# Dark mode\n\n## Summary\nAdd a dark theme.\n\n## Design\nA CSS class on `<html>`.\n\n## Acceptance criteria\n- The toggle persists.\n";
