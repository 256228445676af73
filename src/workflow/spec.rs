//! The spec workflow.
use super::{JobCtx, SpecRequest, StepResult};
pub async fn run(_ctx: &mut JobCtx, _req: SpecRequest) -> StepResult {
    Ok(())
}
pub async fn report_failure(
    _app: &crate::app::App,
    _job: &crate::jobs::Job,
    _req: &SpecRequest,
    _m: &str,
) -> Result<(), crate::github::GitHubError> {
    Ok(())
}
