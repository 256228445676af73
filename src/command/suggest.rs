//! Did-you-mean: deciding whether an unknown `/word` is a botched attempt at one of our
//! commands (answer, with a suggestion) or something else entirely (stay quiet).

/// Our command names, in the order suggestions prefer on a tie.
pub(super) const NAMES: [&str; 5] = ["spec", "implement", "revise", "cancel", "help"];

/// Other bots' commands that sit within edit distance of ours; never treated as near misses.
const OTHER_BOTS: [&str; 2] = ["review", "rebase"];

/// The command `word` (lower-cased, without the slash) was probably meant to be, if any.
///
/// A near miss is within Damerau–Levenshtein distance 1 of a short name (≤ 4 letters: `spec`,
/// `help`) or 2 of a longer one, or a prefix of at least 3 letters (`/imp`). Short names get
/// the tighter bound so that `/hold`, `/test` and friends do not read as `/help` or `/spec`.
pub(super) fn near_command(word: &str) -> Option<&'static str> {
    if OTHER_BOTS.contains(&word) {
        return None;
    }
    // Nothing longer than `implement` + 2 can be close; don't even collect long words.
    if word.chars().nth(11).is_some() {
        return None;
    }
    let word: Vec<char> = word.chars().collect();
    let mut best: Option<(usize, &'static str)> = None;
    for name in NAMES {
        let name_chars: Vec<char> = name.chars().collect();
        let bound = if name_chars.len() <= 4 { 1 } else { 2 };
        let distance = if word.len() >= 3 && name_chars.starts_with(&word) {
            Some(1)
        } else {
            Some(distance(&word, &name_chars)).filter(|&d| d <= bound)
        };
        if let Some(d) = distance
            && best.is_none_or(|(b, _)| d < b)
        {
            best = Some((d, name));
        }
    }
    best.map(|(_, name)| name)
}

/// The flag `flag` (as typed, dashes and all) was probably meant to be, if any.
pub(super) fn near_flag(flag: &str) -> Option<&'static str> {
    let core = flag
        .trim_start_matches(['-', '\u{2013}', '\u{2014}'])
        .to_lowercase();
    if core.chars().nth(8).is_some() {
        return None;
    }
    let core: Vec<char> = core.chars().collect();
    let force: Vec<char> = "force".chars().collect();
    (core == ['f'] || distance(&core, &force) <= 2).then_some("--force")
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and transpositions
/// of adjacent characters each cost 1.
fn distance(a: &[char], b: &[char]) -> usize {
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for (i, cell) in d.iter_mut().step_by(width).enumerate() {
        *cell = i;
    }
    for (j, cell) in d.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(a: &str, b: &str) -> usize {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        distance(&a, &b)
    }

    #[test]
    fn distances() {
        assert_eq!(dist("", ""), 0);
        assert_eq!(dist("spec", ""), 4);
        assert_eq!(dist("implment", "implement"), 1);
        assert_eq!(dist("sepc", "spec"), 1);
        assert_eq!(dist("kitten", "sitting"), 3);
        assert_eq!(dist("hold", "help"), 2);
    }

    #[test]
    fn near_commands() {
        let cases = [
            ("implment", Some("implement")),
            ("implemnet", Some("implement")),
            ("specs", Some("spec")),
            ("sepc", Some("spec")),
            ("spec.", Some("spec")),
            ("revse", Some("revise")),
            ("cancle", Some("cancel")),
            ("canel", Some("cancel")),
            ("halp", Some("help")),
            ("imp", Some("implement")),
            ("impl", Some("implement")),
            ("hold", None),
            ("test", None),
            ("review", None),
            ("rebase", None),
            ("assign", None),
            ("cc", None),
            ("usr", None),
            ("etc", None),
            ("home", None),
            ("label", None),
            ("lgtm", None),
            ("approve", None),
            ("retest", None),
            ("close", None),
            ("he", None),
            ("implementation", None),
            ("", None),
        ];
        for (word, want) in cases {
            assert_eq!(near_command(word), want, "{word}");
        }
    }

    #[test]
    fn near_flags() {
        for flag in [
            "--froce",
            "-force",
            "--forse",
            "--f",
            "\u{2014}force",
            "--FORCE!",
        ] {
            assert_eq!(near_flag(flag), Some("--force"), "{flag}");
        }
        for flag in ["--dry-run", "-x", "--yes", "--verbose"] {
            assert_eq!(near_flag(flag), None, "{flag}");
        }
    }
}
