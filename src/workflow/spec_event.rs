//! The spec_event job: a spec PR was approved, merged, closed or reopened, and the spec's state
//! follows; on merge the component issues are labelled "spec accepted".
//!
//! The new state is shown in the spec PR's body and in its "spec coverage" check run.
//!
//! Only the spec's own PR moves it (the PR number recorded when the bot opened it: a fork's PR
//! from a branch named like the spec branch is not it), and only people with write access.

use crate::github::Repo;
use crate::github::model::Permission;
use crate::workflow::job::{SpecChange, SpecEvent};
use crate::workflow::records::{self, SpecState, issue_key};
use crate::workflow::step::{JobCtx, StepResult};
use crate::workflow::{Workflow, coverage};

/// The label a component issue gets once its spec is merged.
const ACCEPTED_LABEL: &str = "spec accepted";

impl Workflow for SpecEvent {
    const KIND: &'static str = "spec_event";

    fn dedupe_key(&self) -> String {
        format!(
            "spec_event:{}#{}:{}",
            self.repo.repo_id,
            self.pull_number,
            self.what.as_str()
        )
    }

    async fn run(self, ctx: &mut JobCtx) -> StepResult {
        run(ctx, self).await
    }
}

async fn run(ctx: &mut JobCtx, event: SpecEvent) -> StepResult {
    let key = issue_key(event.repo.repo_id, event.issue_number);
    let store = &*ctx.app.store;
    let found = records::spec_of_pull(
        store,
        event.repo.repo_id,
        event.issue_number,
        event.pull_number,
    );
    let Some(mut rec) = found.await? else {
        return Ok(());
    };
    let repo = ctx.repo(&event.repo)?;
    let permission = match event.by.as_str() {
        "" => Permission::None,
        by => ctx.app.permission(&repo, by).await?,
    };
    if permission < Permission::Write {
        tracing::info!(by = %event.by, ?permission, what = event.what.as_str(), "a spec PR event from someone without write access: the spec's state stays");
        return Ok(());
    }
    rec.state = rec.state.after(event.what);
    if event.what == SpecChange::Merged {
        for number in rec.components.values() {
            repo.add_labels(*number, &[ACCEPTED_LABEL.to_string()])
                .await?;
        }
    }
    records::save(store, &key, &rec, ctx.app.now()).await?;
    show_status(ctx, &repo, &event, rec.state).await
}

/// The spec's live status where people look for it and no commit is needed: the spec PR's body
/// and the "spec coverage" check run on its head (recomputed by the coverage job, which reads
/// the status from the record).
async fn show_status(ctx: &JobCtx, repo: &Repo, event: &SpecEvent, state: SpecState) -> StepResult {
    let head = coverage::show_spec_status(repo, event.pull_number, state).await?;
    coverage::queue(
        ctx,
        &event.repo,
        event.issue_number,
        event.pull_number,
        &head,
    )
    .await
}
