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

/// A realistic answer, used for `docs/examples/` (see `tests/local_spec.rs`).
pub fn example_answer() -> Value {
    let spec = r#"# Dark mode

## Summary
Add a dark colour theme to the widget shop, switchable by the user and defaulting to the
operating system's preference. The choice persists across sessions and devices for signed-in
users.

## Context
Issue #7 reports that customers browse at night and find the white pages glaring. The shop's
styles are plain CSS with no theme layer; colours are hard-coded in 41 places
(`grep -c '#fff' static/css/*.css`). Research notes in `research/themes.md` show 38 % of
sessions start after 20:00.

## Goals
- A dark theme covering every page, meeting WCAG 2.2 AA contrast.
- A toggle in the header with three states: light, dark, system.
- The choice persists: `localStorage` for guests, the profile for signed-in users.

## Non-goals
- Custom or per-brand themes.
- Theming emails and PDFs.

## Design
Colours move into CSS custom properties on `:root`, with a dark set under
`:root[data-theme="dark"]` and `@media (prefers-color-scheme: dark)` for the system state. A
small script in `<head>` sets `data-theme` before first paint to avoid a flash of the wrong
theme. The toggle writes `localStorage.theme` and, when signed in, `PATCH /api/profile`
with `{"theme": "dark"}`.

### Data
`profiles.theme` — `text`, one of `light`, `dark`, `system`, default `system`.

## Components
1. Theme tokens — the custom properties and the dark palette.
2. Theme toggle — the header control and the pre-paint script.
3. Profile preference — storing the choice for signed-in users.

## Alternatives considered
- A second stylesheet swapped at runtime: doubles maintenance and flashes on load.
- Only `prefers-color-scheme`: no way to choose differently from the OS.

## Cross-cutting concerns
- **Accessibility:** contrast checked in CI with axe; focus rings visible in both themes.
- **Performance:** the pre-paint script is inline and under 1 KB.
- **Privacy:** the preference is not personal data beyond the profile it already sits in.

## Rollout
Behind the `dark_mode` flag for staff, then 10 %, then everyone. Rollback: turn the flag off;
the column stays.

## Open questions
- Should product images get a darker frame in dark mode?

## Acceptance criteria
- Every page renders in both themes with AA contrast.
- The choice survives a reload and, when signed in, a new device.
"#;
    json!({
        "specification": spec,
        "requirements": [
            {"id": "REQ-1", "title": "A dark theme on every page", "priority": "must",
             "user_story": "As a night-time shopper, I want dark pages, so that the screen does not glare.",
             "acceptance_criteria": [
                {"id": "AC-1.1", "text": "WHEN the dark theme is active THE SYSTEM SHALL render every page with text contrast of at least 4.5:1"},
                {"id": "AC-1.2", "text": "WHEN the theme is `system` and the OS prefers dark THE SYSTEM SHALL show the dark theme before first paint"}]},
            {"id": "REQ-2", "title": "A three-state toggle", "priority": "must",
             "user_story": "As a shopper, I want to choose light, dark or system, so that I can differ from my OS.",
             "acceptance_criteria": [
                {"id": "AC-2.1", "text": "WHEN the user clicks the header toggle THE SYSTEM SHALL cycle light → dark → system"}]},
            {"id": "REQ-3", "title": "The choice persists", "priority": "should",
             "user_story": "As a signed-in shopper, I want my theme on every device, so that I choose it once.",
             "acceptance_criteria": [
                {"id": "AC-3.1", "text": "Given a guest chose dark, When the page reloads, Then the dark theme is shown"},
                {"id": "AC-3.2", "text": "Given a signed-in user chose dark, When they sign in on a new device, Then the dark theme is shown"}]}
        ],
        "non_functional": [
            {"text": "The pre-paint script stays small.", "threshold": "under 1 KB minified, inline"}
        ],
        "assumptions": ["Every page uses the shared stylesheets in static/css."],
        "risks": ["Third-party widgets keep light colours — mitigation: list them in the rollout and frame them."],
        "open_questions": ["Should product images get a darker frame in dark mode?"],
        "components": [
            {"title": "Theme tokens", "summary": "Move colours into CSS custom properties and add the dark palette.",
             "acceptance_criteria": ["No hard-coded colours remain in static/css", "Both palettes meet WCAG 2.2 AA contrast"], "depends_on": [],
             "covers": ["AC-1.1"], "touches": ["static/css/"], "tests": ["AC-1.1: axe contrast check on every page in both themes"]},
            {"title": "Theme toggle", "summary": "Header control with light, dark and system states, and the pre-paint script.",
             "acceptance_criteria": ["The toggle cycles light → dark → system", "No flash of the wrong theme on load"], "depends_on": ["Theme tokens"],
             "covers": ["AC-1.2", "AC-2.1", "AC-3.1"], "touches": ["templates/header.html", "static/js/theme.js"],
             "tests": ["AC-2.1: clicking the toggle three times returns to light", "AC-1.2, AC-3.1: reload with dark stored shows dark before first paint"]},
            {"title": "Profile preference", "summary": "Store the theme for signed-in users and apply it on sign-in.",
             "acceptance_criteria": ["PATCH /api/profile accepts theme", "A new device shows the saved theme after sign-in"], "depends_on": ["Theme toggle"],
             "covers": ["AC-3.2"], "touches": ["api/profile.py", "migrations/"], "tests": ["AC-3.2: sign-in on a fresh browser applies the saved theme"]}
        ],
        "artifacts": {
            "diagram": "flowchart TD\n  U[User] -->|clicks| T[Theme toggle]\n  T -->|sets data-theme| D[Document]\n  T -->|guest| L[localStorage]\n  T -->|signed in| P[PATCH /api/profile]\n  P --> DB[(profiles.theme)]\n  D --> C[CSS custom properties]\n"
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
