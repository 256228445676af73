//! Language models: one small trait, Anthropic Messages and OpenAI Chat Completions behind it.
