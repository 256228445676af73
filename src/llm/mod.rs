//! Language models (placeholder until the LLM module lands).
use std::sync::Arc;
#[async_trait::async_trait]
pub trait ChatModel: Send + Sync {}
pub fn from_config(_c: &crate::config::LlmConfig) -> Result<Option<Arc<dyn ChatModel>>, String> {
    Ok(None)
}
