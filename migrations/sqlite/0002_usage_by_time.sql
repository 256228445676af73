-- The global spend cap sums the last 24 hours of model usage.
CREATE INDEX IF NOT EXISTS llm_usage_created ON llm_usage (created_at);
