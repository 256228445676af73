//! What GitHub takes in one title or body, and how a text too long for its limit is cut.

use std::borrow::Cow;

/// The most characters github.com takes in the body of an issue, a pull request, a comment or
/// a review; a longer one is refused with `422` ("body is too long (maximum is 65536
/// characters)").
pub const BODY_MAX_CHARS: usize = 65_536;

/// The most characters GitHub's API takes in the title of an issue or a pull request (more:
/// `422` "title is too long (maximum is 256 characters)").
pub const TITLE_MAX_CHARS: usize = 256;

/// Said at the end of a body that was cut.
const CUT_NOTE: &str = "\n\n… _(cut here: GitHub takes at most 65,536 characters in one body)_\n";

/// `body` as GitHub takes it. A longer one keeps its head, where the hidden markers that find
/// a comment or an issue again stand, and says it was cut.
pub fn fit_body(body: &str) -> Cow<'_, str> {
    cut_to(body, BODY_MAX_CHARS, CUT_NOTE)
}

/// `title` as GitHub takes it: a longer one is cut to its first 255 characters and `…`.
pub fn fit_title(title: &str) -> Cow<'_, str> {
    if title.chars().count() <= TITLE_MAX_CHARS {
        return Cow::Borrowed(title);
    }
    let head: String = title.chars().take(TITLE_MAX_CHARS - 1).collect();
    Cow::Owned(format!("{head}…"))
}

/// `text` as it fits in `max` characters: itself, or its head up to the last whole line that
/// fits before `note`, then `note`.
pub(super) fn cut_to<'a>(text: &'a str, max: usize, note: &str) -> Cow<'a, str> {
    if text.chars().count() <= max {
        return Cow::Borrowed(text);
    }
    let keep = max.saturating_sub(note.chars().count());
    let end = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
    let head = &text[..end];
    let head = head.rfind('\n').map_or(head, |line_end| &head[..line_end]);
    Cow::Owned(format!("{head}{note}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_fits_is_kept_as_it_is() {
        let body = "é".repeat(BODY_MAX_CHARS);
        assert!(matches!(fit_body(&body), Cow::Borrowed(_)));
    }

    #[test]
    fn a_longer_body_keeps_its_head_and_whole_lines_and_says_it_was_cut() {
        let line = format!("{}\n", "ü".repeat(99));
        let body = format!("<!-- marker -->\n{}", line.repeat(1_000));
        let cut = fit_body(&body);
        assert!(
            cut.chars().count() <= BODY_MAX_CHARS,
            "{}",
            cut.chars().count()
        );
        assert!(cut.starts_with("<!-- marker -->\n"));
        assert!(cut.ends_with(CUT_NOTE));
        let kept = cut.strip_suffix(CUT_NOTE).unwrap_or_default();
        assert!(
            kept.lines().skip(1).all(|l| l == line.trim_end()),
            "no line is halved"
        );
    }

    #[test]
    fn a_title_is_cut_to_256_characters_with_an_ellipsis() {
        let fits = "t".repeat(TITLE_MAX_CHARS);
        assert!(matches!(fit_title(&fits), Cow::Borrowed(_)));
        let longer = format!("{fits}ü");
        let cut = fit_title(&longer);
        assert_eq!(cut.chars().count(), TITLE_MAX_CHARS);
        assert!(cut.ends_with("t…"));
    }

    #[test]
    fn one_long_line_is_cut_on_a_character() {
        let body = "🎉".repeat(BODY_MAX_CHARS + 1);
        let cut = fit_body(&body);
        assert_eq!(cut.chars().count(), BODY_MAX_CHARS);
    }
}
