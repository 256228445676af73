//! The spec_event job: a spec PR was approved, merged, closed or reopened, and the spec's state
//! follows; on merge the component issues are labelled "spec accepted".

use crate::workflow::Workflow;
use crate::workflow::job::{SpecChange, SpecEvent};
use crate::workflow::records::{self, SpecRecord, issue_key};
use crate::workflow::step::{JobCtx, StepResult};

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
    let mut rec: SpecRecord = records::load(store, &key).await?.unwrap_or_default();
    rec.pull.get_or_insert(event.pull_number);
    rec.state = rec.state.after(event.what);
    if event.what == SpecChange::Merged && !rec.components.is_empty() {
        let repo = ctx.repo(&event.repo)?;
        for number in rec.components.values() {
            repo.add_labels(*number, &[ACCEPTED_LABEL.to_string()])
                .await?;
        }
    }
    records::save(store, &key, &rec, ctx.app.now()).await
}
