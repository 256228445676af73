//! A spec's component issues: filed once each (found again by store record, then by marker),
//! linked as sub-issues of the feature issue, blocked by the components they depend on; after a
//! revision, the ones the design dropped are closed with a note (never deleted), and reopened
//! when a later revision brings them back.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::repo::RepoConfig;
use crate::github::Repo;
use crate::github::model::{Issue, Repository};
use crate::github::repo::FileChange;
use crate::messages;
use crate::spec::{Component, SpecAnswer};
use crate::workflow::job::RepoTarget;
use crate::workflow::records::{self, ComponentRecord};
use crate::workflow::step::{JobCtx, StepError, StepResult};

/// Component slug → (issue number, issue id) of the issues filed so far.
pub type Filed = BTreeMap<String, (u64, u64)>;

/// Component slug → issue number, as a spec's record keeps them.
pub fn numbers(filed: &Filed) -> BTreeMap<String, u64> {
    filed.iter().map(|(k, v)| (k.clone(), v.0)).collect()
}

/// A spec's files as changes to commit.
pub fn changes(files: Vec<(String, String)>) -> Vec<FileChange> {
    files
        .into_iter()
        .map(|(path, content)| FileChange {
            path,
            content: Some(content),
            executable: false,
        })
        .collect()
}

/// The spec file at the commit `head` ([`crate::spec::spec_permalink`]), on the repository's own
/// web host; `None` without a commit or a web address.
pub fn spec_url(info: &Repository, head: Option<&str>, spec_path: &str) -> Option<String> {
    let head = head.filter(|_| !info.html_url.is_empty())?;
    Some(crate::spec::spec_permalink(&info.html_url, head, spec_path))
}

/// Where component issues are filed, and for which spec.
pub struct Filing<'a> {
    pub repo: &'a Repo,
    pub target: &'a RepoTarget,
    pub spec_issue: u64,
    pub config: &'a RepoConfig,
    pub spec_path: &'a str,
    /// The spec file at the commit just pushed ([`crate::spec::spec_permalink`]): the issues
    /// link each criterion to its anchor there.
    pub spec_url: Option<&'a str>,
    /// The status comment that shows "filing component n of m".
    pub board: Option<&'a crate::workflow::watch::PhaseBoard<'a>>,
}

/// File (or update) one issue per component of `answer`, dependencies first, checkpointing
/// `progress` after each (`component:<slug>`); `filed` picks the progress's list of filed issues.
///
/// An issue names the components it can be built alongside by number. Issues filed earlier
/// (a re-run, a revision) are known from the store before the first write; one filed in this
/// run before a sibling it can run in parallel with is edited once more at the end, when that
/// sibling's number is known.
pub async fn file<P: Serialize>(
    ctx: &mut JobCtx,
    at: &Filing<'_>,
    answer: &SpecAnswer,
    progress: &mut P,
    filed: fn(&mut P) -> &mut Filed,
) -> StepResult {
    let order = crate::spec::dependency_order(&answer.components)
        .map_err(|e| StepError::permanent(e.to_string()))?;
    let parallel = crate::spec::parallel_components(&answer.components);
    let mut known = known_numbers(ctx, at, answer).await?;
    // Labels need no separate request: GitHub creates missing ones with the issue. Issues an
    // earlier, interrupted attempt may have filed are listed once, only if needed.
    let mut labelled: Option<Vec<Issue>> = None;
    let mut linked_any_fallback = false;
    let mut incomplete: Vec<usize> = Vec::new();
    let total = order.len();
    for (n, &index) in order.iter().enumerate() {
        let component: &Component = &answer.components[index];
        let slug = component.slug();
        if filed(progress).contains_key(&slug) {
            // Filed by an earlier attempt: its parallel siblings may have been unknown then.
            if order[n + 1..].iter().any(|j| parallel[index].contains(j)) {
                incomplete.push(index);
            }
            continue;
        }
        if let Some(board) = at.board {
            let phase = messages::SpecPhase::Filing {
                n: n + 1,
                of: total,
            };
            board.show(phase).await;
        }
        let (body, complete) = issue_body(at, answer, index, &parallel[index], &known);
        if !complete {
            incomplete.push(index);
        }
        let issue = file_one(ctx, at, component, &body, &mut labelled).await?;
        if !at.repo.link_sub_issue(at.spec_issue, issue.id).await? {
            linked_any_fallback = true;
        }
        for dep in &component.depends_on {
            if let Some((_, dep_id)) = filed(progress).get(&crate::spec::slugify(dep)) {
                at.repo.add_blocked_by(issue.number, *dep_id).await?;
            }
        }
        known.insert(slug.clone(), issue.number);
        filed(progress).insert(slug.clone(), (issue.number, issue.id));
        ctx.save(&format!("component:{slug}"), progress).await?;
    }
    for index in incomplete {
        let slug = answer.components[index].slug();
        if let Some((number, _)) = filed(progress).get(&slug) {
            let (body, _) = issue_body(at, answer, index, &parallel[index], &known);
            at.repo
                .update_issue(*number, &serde_json::json!({"body": body}))
                .await?;
        }
    }
    if linked_any_fallback {
        // No sub-issues API here (older GitHub Enterprise Server): a task list in the parent.
        let issue = at.repo.issue(at.spec_issue).await?;
        let body = messages::with_task_list(issue.body.as_deref().unwrap_or(""), filed(progress));
        at.repo
            .update_issue(at.spec_issue, &serde_json::json!({"body": body}))
            .await?;
    }
    Ok(())
}

/// Component slug → issue number of the spec's components already filed by earlier jobs.
async fn known_numbers(
    ctx: &JobCtx,
    at: &Filing<'_>,
    answer: &SpecAnswer,
) -> StepResult<BTreeMap<String, u64>> {
    let mut known = BTreeMap::new();
    for c in &answer.components {
        let slug = c.slug();
        let key = ComponentRecord::key(at.target.repo_id, at.spec_issue, &slug);
        if let Some(record) = records::load::<ComponentRecord>(&*ctx.app.store, &key).await? {
            known.insert(slug, record.number);
        }
    }
    Ok(known)
}

/// The issue body of component `index`, and whether every component it names has a number.
fn issue_body(
    at: &Filing<'_>,
    answer: &SpecAnswer,
    index: usize,
    parallel: &[usize],
    known: &BTreeMap<String, u64>,
) -> (String, bool) {
    let component = &answer.components[index];
    let numbered = |title: &str| {
        (
            title.to_string(),
            known.get(&crate::spec::slugify(title)).copied(),
        )
    };
    let deps: Vec<(String, Option<u64>)> =
        component.depends_on.iter().map(|d| numbered(d)).collect();
    let parallel: Vec<(String, Option<u64>)> = parallel
        .iter()
        .map(|&j| numbered(&answer.components[j].title))
        .collect();
    let complete = deps.iter().chain(&parallel).all(|(_, n)| n.is_some());
    let body = messages::component_issue_body(
        component,
        &messages::IssueLinks {
            parent_issue: at.spec_issue,
            spec_path: at.spec_path,
            spec_url: at.spec_url,
            requirements: &answer.requirements,
            deps: &deps,
            parallel: &parallel,
        },
    );
    (body, complete)
}

/// Find the component's issue (store record, then marker) and update it, or file it.
async fn file_one(
    ctx: &JobCtx,
    at: &Filing<'_>,
    component: &Component,
    body: &str,
    labelled: &mut Option<Vec<Issue>>,
) -> StepResult<Issue> {
    let slug = component.slug();
    let key = ComponentRecord::key(at.target.repo_id, at.spec_issue, &slug);
    let marker = messages::component_marker(at.spec_issue, &slug);
    let store = &*ctx.app.store;
    let issue = match records::load::<ComponentRecord>(store, &key).await? {
        Some(known) => {
            let mut patch = serde_json::json!({"title": component.title, "body": body});
            if known.dropped {
                patch["state"] = "open".into();
            }
            let issue = at.repo.update_issue(known.number, &patch).await?;
            if known.dropped {
                let marker = messages::component_restored_marker();
                at.repo
                    .comment_once(issue.number, &marker, &messages::component_restored())
                    .await?;
            }
            issue
        }
        None => {
            // Only an earlier attempt of this job can have filed it without recording it.
            if labelled.is_none()
                && ctx.job.attempts > 1
                && let Some(label) = at.config.component_labels.first()
            {
                *labelled = Some(at.repo.issues_with_label(label).await?);
            }
            let found = labelled
                .iter()
                .flatten()
                .find(|i| i.body.as_deref().unwrap_or("").contains(&marker))
                .cloned();
            match found {
                Some(issue) => issue,
                None => {
                    at.repo
                        .create_issue(&component.title, body, &at.config.component_labels, &marker)
                        .await?
                }
            }
        }
    };
    let record = ComponentRecord {
        number: issue.number,
        id: issue.id,
        dropped: false,
    };
    records::save(store, &key, &record, ctx.app.now()).await?;
    Ok(issue)
}

/// Close the issues of components a revision dropped from the design, each with a note, and
/// remember that the bot closed them (a later revision that brings one back reopens it).
pub async fn close_dropped(
    ctx: &JobCtx,
    at: &Filing<'_>,
    before: &BTreeMap<String, u64>,
    answer: &SpecAnswer,
    spec_pull: u64,
) -> StepResult {
    let kept: Vec<String> = answer.components.iter().map(|c| c.slug()).collect();
    let store = &*ctx.app.store;
    for (slug, number) in before {
        if kept.contains(slug) {
            continue;
        }
        let marker = messages::component_dropped_marker(spec_pull);
        at.repo
            .comment_once(*number, &marker, &messages::component_dropped(spec_pull))
            .await?;
        at.repo
            .update_issue(
                *number,
                &serde_json::json!({"state": "closed", "state_reason": "not_planned"}),
            )
            .await?;
        let key = ComponentRecord::key(at.target.repo_id, at.spec_issue, slug);
        if let Some(mut record) = records::load::<ComponentRecord>(store, &key).await? {
            record.dropped = true;
            records::save(store, &key, &record, ctx.app.now()).await?;
        }
    }
    Ok(())
}
