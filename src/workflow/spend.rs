//! What a job spends on the model: tokens and dollars, recorded per call (store and metrics),
//! checked against the repository's budget, and shown in the status comment.

use serde::{Deserialize, Serialize};

use crate::llm::{ChatModel, ChatRequest, ChatResponse, LlmError, Usage};
use crate::workflow::step::{JobCtx, JobError, StepError, StepResult};

/// Tokens and cost so far (kept in a job's checkpoint, flattened beside its other fields).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Spend {
    pub tokens: u64,
    pub cost_usd: f64,
}

impl Spend {
    /// Count one call's usage at its cost.
    pub fn add(&mut self, usage: &Usage, cost_usd: f64) {
        self.tokens += usage.input_tokens
            + usage.output_tokens
            + usage.cache_read_tokens
            + usage.cache_write_tokens;
        self.cost_usd += cost_usd;
    }
}

/// Record a model's usage for the job (store and metrics), count it in `spend`; its cost in USD.
pub async fn account(
    ctx: &JobCtx,
    model: &dyn ChatModel,
    u: &Usage,
    spend: &mut Spend,
) -> StepResult<f64> {
    let cost = ctx.app.prices.cost(model.model(), u);
    let now = ctx.app.now();
    ctx.app
        .store
        .record_usage(
            &crate::jobs::UsageRecord {
                job_id: ctx.job.id,
                provider: model.provider().to_string(),
                model: model.model().to_string(),
                input_tokens: u.input_tokens as i64,
                output_tokens: u.output_tokens as i64,
                cache_read_tokens: u.cache_read_tokens as i64,
                cache_write_tokens: u.cache_write_tokens as i64,
                cost_usd: cost,
            },
            now,
        )
        .await?;
    let (provider, name) = (model.provider().to_string(), model.model().to_string());
    for (kind, n) in [("input", u.input_tokens), ("output", u.output_tokens)] {
        metrics::counter!("specbot_llm_tokens_total", "provider" => provider.clone(), "model" => name.clone(), "kind" => kind).increment(n);
    }
    // Counters are integers: cost is counted in millionths of a dollar.
    metrics::counter!("specbot_llm_cost_microdollars_total", "provider" => provider, "model" => name)
        .increment((cost * 1_000_000.0).round() as u64);
    spend.add(u, cost);
    Ok(cost)
}

/// One model call with cancellation, usage recording and the budget check.
pub async fn call(
    ctx: &mut JobCtx,
    model: &dyn ChatModel,
    request: &ChatRequest,
    budget_usd: f64,
    spend: &mut Spend,
) -> StepResult<ChatResponse> {
    ctx.check()?;
    let response = match model.chat(request, &ctx.cancel).await {
        Ok(r) => r,
        Err(LlmError::Cancelled) => return Err(StepError::Stopped),
        Err(e) => return Err(StepError::Failed(JobError::from_llm(&e))),
    };
    account(ctx, model, &response.usage, spend).await?;
    let spent = ctx.app.store.job_cost(ctx.job.id).await?;
    if spent > budget_usd {
        return Err(StepError::permanent(format!(
            "this job spent ${spent:.2}, over its budget of ${budget_usd:.2} (`max_cost_usd`), and was stopped"
        )));
    }
    Ok(response)
}
