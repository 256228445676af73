//! The structured part of a spec: requirements with acceptance criteria, non-functional
//! requirements, assumptions, risks, open questions and noticed injection attempts; and the
//! bot's numbering of their IDs.
//!
//! Owns: [`Requirement`], [`Criterion`], [`NonFunctional`], [`IssuedIds`] and [`assign_ids`].
//!
//! IDs are the bot's, not the model's: requirements are `REQ-n`, their criteria `AC-n.m`,
//! non-functional requirements `NFR-n`. The committed spec file is the record of what was issued
//! (its header marker keeps the highest numbers ever issued, so a dropped ID is never reused). A
//! revision keeps an ID only when the model echoes one the previous file holds; everything else
//! gets a fresh number, and every reference to the model's labels (components' `covers`, tests)
//! is rewritten to the final IDs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::SpecAnswer;

/// A functional requirement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    /// `REQ-n` once numbered; before that, whatever label the model gave it.
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub title: String,
    /// `must`, `should` or `could`.
    #[serde(default)]
    pub priority: String,
    /// "As a …, I want …, so that …".
    #[serde(default)]
    pub user_story: String,
    #[serde(default)]
    pub criteria: Vec<Criterion>,
}

/// An acceptance criterion, in EARS ("WHEN … THE SYSTEM SHALL …") or Given/When/Then form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Criterion {
    #[serde(default)]
    pub id: String,
    pub text: String,
}

/// A non-functional requirement with a measurable threshold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonFunctional {
    #[serde(default)]
    pub id: String,
    pub text: String,
    /// The number that decides it, with its unit ("p95 < 200 ms").
    #[serde(default)]
    pub threshold: String,
}

static REQ_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bREQ-(\d{1,4})\b").expect("static regex"));
static AC_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bAC-(\d{1,4})\.(\d{1,4})\b").expect("static regex"));
static NFR_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bNFR-(\d{1,4})\b").expect("static regex"));
static ISSUED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<!-- specbot:spec issue=\d+ req=(\d{1,4}) nfr=(\d{1,4}) ac=([0-9.,]{0,4000}) -->")
        .expect("static regex")
});

/// What a spec file has issued: the IDs it holds now and the highest numbers ever issued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssuedIds {
    /// Requirement numbers present in the file.
    pub present_req: BTreeSet<u32>,
    /// (requirement, criterion) numbers present in the file.
    pub present_ac: BTreeSet<(u32, u32)>,
    pub present_nfr: BTreeSet<u32>,
    /// Highest requirement number ever issued.
    pub max_req: u32,
    /// Highest criterion number ever issued, per requirement number.
    pub max_ac: BTreeMap<u32, u32>,
    pub max_nfr: u32,
}

impl IssuedIds {
    /// The record a committed spec file keeps: its marker and the IDs written in it. Tolerant
    /// of any text (a person's edits included).
    pub fn from_file(file: &str) -> IssuedIds {
        let mut ids = IssuedIds::default();
        for c in REQ_ID.captures_iter(file) {
            if let Ok(n) = c[1].parse() {
                ids.present_req.insert(n);
            }
        }
        for c in AC_ID.captures_iter(file) {
            if let (Ok(r), Ok(a)) = (c[1].parse(), c[2].parse()) {
                ids.present_ac.insert((r, a));
            }
        }
        for c in NFR_ID.captures_iter(file) {
            if let Ok(n) = c[1].parse() {
                ids.present_nfr.insert(n);
            }
        }
        ids.max_req = ids.present_req.iter().copied().max().unwrap_or(0);
        ids.max_nfr = ids.present_nfr.iter().copied().max().unwrap_or(0);
        for (r, a) in &ids.present_ac {
            let m = ids.max_ac.entry(*r).or_insert(0);
            *m = (*m).max(*a);
            ids.max_req = ids.max_req.max(*r);
        }
        if let Some(c) = ISSUED.captures(file) {
            ids.max_req = ids.max_req.max(c[1].parse().unwrap_or(0));
            ids.max_nfr = ids.max_nfr.max(c[2].parse().unwrap_or(0));
            for pair in c[3].split(',') {
                if let Some((r, a)) = pair.split_once('.')
                    && let (Ok(r), Ok(a)) = (r.parse::<u32>(), a.parse::<u32>())
                {
                    let m = ids.max_ac.entry(r).or_insert(0);
                    *m = (*m).max(a);
                }
            }
        }
        ids
    }

    /// The marker's fields: ` req=N nfr=N ac=1.3,2.1` (the leading space included).
    pub fn marker_fields(&self) -> String {
        let ac: Vec<String> = self
            .max_ac
            .iter()
            .map(|(r, a)| format!("{r}.{a}"))
            .collect();
        format!(
            " req={} nfr={} ac={}",
            self.max_req,
            self.max_nfr,
            ac.join(",")
        )
    }
}

fn parse_req(label: &str) -> Option<u32> {
    let c = REQ_ID.captures(label.trim())?;
    c[1].parse().ok()
}

fn parse_ac(label: &str) -> Option<(u32, u32)> {
    let c = AC_ID.captures(label.trim())?;
    Some((c[1].parse().ok()?, c[2].parse().ok()?))
}

/// Number the answer's requirements, criteria and non-functional requirements (see the module
/// docs), rewrite every reference to them, and return the record to keep in the file.
/// `previous` is the spec file this answer revises, if any.
pub fn assign_ids(answer: &mut SpecAnswer, previous: Option<&str>) -> IssuedIds {
    let mut ids = previous.map(IssuedIds::from_file).unwrap_or_default();
    let mut map: HashMap<String, String> = HashMap::new();
    let mut taken_req = BTreeSet::new();
    for req in &mut answer.requirements {
        let old = req.id.trim().to_ascii_uppercase();
        let number = match parse_req(&old) {
            Some(n) if ids.present_req.contains(&n) && taken_req.insert(n) => n,
            _ => {
                ids.max_req += 1;
                taken_req.insert(ids.max_req);
                ids.max_req
            }
        };
        req.id = format!("REQ-{number}");
        if !old.is_empty() {
            map.entry(old).or_insert_with(|| req.id.clone());
        }
        let mut taken_ac = BTreeSet::new();
        for crit in &mut req.criteria {
            let old = crit.id.trim().to_ascii_uppercase();
            let kept = parse_ac(&old).filter(|(r, a)| {
                *r == number && ids.present_ac.contains(&(*r, *a)) && taken_ac.insert(*a)
            });
            let a = match kept {
                Some((_, a)) => a,
                None => {
                    let m = ids.max_ac.entry(number).or_insert(0);
                    *m += 1;
                    taken_ac.insert(*m);
                    *m
                }
            };
            crit.id = format!("AC-{number}.{a}");
            if !old.is_empty() {
                map.entry(old).or_insert_with(|| crit.id.clone());
            }
        }
        let m = ids.max_ac.entry(number).or_insert(0);
        *m = (*m).max(taken_ac.iter().copied().max().unwrap_or(0));
    }
    let mut taken_nfr = BTreeSet::new();
    for nfr in &mut answer.non_functional {
        let old = nfr.id.trim().to_ascii_uppercase();
        let kept = NFR_ID
            .captures(&old)
            .and_then(|c| c[1].parse::<u32>().ok())
            .filter(|n| ids.present_nfr.contains(n) && taken_nfr.insert(*n));
        let n = kept.unwrap_or_else(|| {
            ids.max_nfr += 1;
            taken_nfr.insert(ids.max_nfr);
            ids.max_nfr
        });
        nfr.id = format!("NFR-{n}");
    }
    let rewrite = |s: &str| -> String {
        let up = s.trim().to_ascii_uppercase();
        map.get(&up)
            .cloned()
            .unwrap_or_else(|| rewrite_labels(s, &map))
    };
    for c in &mut answer.components {
        c.covers = c.covers.iter().map(|s| rewrite(s)).collect();
        c.tests = c.tests.iter().map(|s| rewrite_labels(s, &map)).collect();
    }
    ids.present_req = taken_req;
    ids
}

/// Criterion and requirement labels inside a text rewritten to their final IDs.
fn rewrite_labels(text: &str, map: &HashMap<String, String>) -> String {
    static LABEL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\b(?:AC-\d{1,4}\.\d{1,4}|REQ-\d{1,4})\b").expect("static regex")
    });
    LABEL
        .replace_all(text, |c: &regex::Captures| {
            let up = c[0].to_ascii_uppercase();
            map.get(&up).cloned().unwrap_or(up)
        })
        .into_owned()
}

/// An ID as a heading anchor: `AC-1.2` → `ac-1-2`.
pub fn anchor(id: &str) -> String {
    id.to_ascii_lowercase().replace('.', "-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Component;

    fn req(id: &str, crits: &[&str]) -> Requirement {
        Requirement {
            id: id.into(),
            title: format!("t {id}"),
            criteria: crits
                .iter()
                .map(|c| Criterion {
                    id: (*c).into(),
                    text: "WHEN x THE SYSTEM SHALL y".into(),
                })
                .collect(),
            ..Requirement::default()
        }
    }

    #[test]
    fn a_first_spec_is_numbered_in_order_and_references_follow() {
        let mut answer = SpecAnswer {
            requirements: vec![req("REQ-7", &["AC-7.1", "AC-7.2"]), req("x", &["y"])],
            components: vec![Component {
                title: "A".into(),
                covers: vec!["ac-7.2".into(), "y".into()],
                tests: vec!["checks AC-7.1".into()],
                ..Component::default()
            }],
            ..SpecAnswer::default()
        };
        let ids = assign_ids(&mut answer, None);
        assert_eq!(answer.requirements[0].id, "REQ-1");
        assert_eq!(answer.requirements[0].criteria[1].id, "AC-1.2");
        assert_eq!(answer.requirements[1].criteria[0].id, "AC-2.1");
        assert_eq!(answer.components[0].covers, ["AC-1.2", "AC-2.1"]);
        assert_eq!(answer.components[0].tests, ["checks AC-1.1"]);
        assert_eq!(ids.marker_fields(), " req=2 nfr=0 ac=1.2,2.1");
    }

    #[test]
    fn a_revision_keeps_echoed_ids_and_never_reuses_dropped_ones() {
        let previous = "<!-- specbot:spec issue=7 req=3 nfr=0 ac=1.2,2.1,3.1 -->\nREQ-1 AC-1.1 AC-1.2 REQ-2 AC-2.1";
        // REQ-3 was dropped earlier (only in the marker); REQ-2 is dropped now; REQ-1 kept,
        // reordered after a new one, and loses AC-1.1 but gains a criterion.
        let mut answer = SpecAnswer {
            requirements: vec![req("new-a", &["n"]), req("REQ-1", &["AC-1.2", "new"])],
            ..SpecAnswer::default()
        };
        let ids = assign_ids(&mut answer, Some(previous));
        assert_eq!(answer.requirements[0].id, "REQ-4");
        assert_eq!(answer.requirements[1].id, "REQ-1");
        let crits: Vec<&str> = answer.requirements[1]
            .criteria
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(crits, ["AC-1.2", "AC-1.3"]);
        assert_eq!(ids.max_req, 4);
        // The next revision still knows REQ-2 and REQ-3 were issued.
        let again = IssuedIds::from_file(&format!(
            "<!-- specbot:spec issue=7{} -->",
            ids.marker_fields()
        ));
        assert_eq!(again.max_req, 4);
        assert_eq!(again.max_ac.get(&1), Some(&3));
    }
}
