//! The price table: USD per million input / output / cache-read / cache-write tokens, by model
//! name prefix, with defaults for current Claude and GPT models and JSON overrides.
//!
//! Defaults were checked against the providers' pricing pages in November 2026; prices change,
//! so deployments override them with JSON rather than wait for a release. Anthropic cache writes
//! are the 5-minute rate (what `cache_control: ephemeral` buys). OpenAI has no cache-write
//! surcharge and reports none. Claude Haiku 5.5 is listed at its ≤100k-token-prompt rate.
//!
//! A model the table does not price is free on a self-hosted endpoint and of unknown cost on a
//! paid provider's API ([`Pricing`]).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{LlmError, Usage};

/// USD per million tokens for one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelPrice {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
}

impl ModelPrice {
    pub const fn new(input: f64, output: f64, cache_read: f64, cache_write: f64) -> Self {
        Self {
            input,
            output,
            cache_read,
            cache_write,
        }
    }

    /// USD for `usage` at these prices.
    pub fn cost(&self, usage: &Usage) -> f64 {
        (usage.input_tokens as f64 * self.input
            + usage.output_tokens as f64 * self.output
            + usage.cache_read_tokens as f64 * self.cache_read
            + usage.cache_write_tokens as f64 * self.cache_write)
            / 1_000_000.0
    }
}

/// (prefix, input, output, cache read, cache write)
const DEFAULTS: &[(&str, f64, f64, f64, f64)] = &[
    // Anthropic
    ("claude-fable-5-1", 10.0, 50.0, 0.25, 12.5),
    ("claude-mythos-5-1", 10.0, 50.0, 0.25, 12.5),
    ("claude-fable-5", 10.0, 50.0, 1.0, 12.5),
    ("claude-mythos-5", 10.0, 50.0, 1.0, 12.5),
    ("claude-opus-5-5", 4.0, 20.0, 0.2, 5.0),
    ("claude-opus-5", 5.0, 25.0, 0.5, 6.25),
    ("claude-opus-4-8", 5.0, 25.0, 0.5, 6.25),
    ("claude-opus-4-7", 5.0, 25.0, 0.5, 6.25),
    ("claude-opus-4-6", 5.0, 25.0, 0.5, 6.25),
    ("claude-opus-4-5", 5.0, 25.0, 0.5, 6.25),
    ("claude-opus-4", 15.0, 75.0, 1.5, 18.75),
    ("claude-3-opus", 15.0, 75.0, 1.5, 18.75),
    ("claude-sonnet-5-5", 2.0, 10.0, 0.1, 2.5),
    ("claude-sonnet-5", 2.0, 10.0, 0.2, 2.5),
    ("claude-sonnet-4", 3.0, 15.0, 0.3, 3.75),
    ("claude-3-7-sonnet", 3.0, 15.0, 0.3, 3.75),
    ("claude-haiku-5-5", 0.1, 0.5, 0.01, 0.125),
    ("claude-haiku-4-5", 1.0, 5.0, 0.1, 1.25),
    ("claude-3-5-haiku", 0.8, 4.0, 0.08, 1.0),
    ("claude-3-haiku", 0.25, 1.25, 0.03, 0.3),
    // OpenAI
    ("gpt-5.5-pro", 30.0, 180.0, 30.0, 30.0),
    ("gpt-5.5", 5.0, 30.0, 0.5, 5.0),
    ("gpt-5.4-pro", 30.0, 180.0, 30.0, 30.0),
    ("gpt-5.4-mini", 0.75, 4.5, 0.075, 0.75),
    ("gpt-5.4-nano", 0.2, 1.25, 0.02, 0.2),
    ("gpt-5.4", 2.5, 15.0, 0.25, 2.5),
    ("gpt-5.2", 1.75, 14.0, 0.175, 1.75),
    ("gpt-5-mini", 0.25, 2.0, 0.025, 0.25),
    ("gpt-5-nano", 0.05, 0.4, 0.005, 0.05),
    ("gpt-5", 1.25, 10.0, 0.125, 1.25),
    ("gpt-4.1-mini", 0.4, 1.6, 0.1, 0.4),
    ("gpt-4.1-nano", 0.1, 0.4, 0.025, 0.1),
    ("gpt-4.1", 2.0, 8.0, 0.5, 2.0),
    ("gpt-4o-mini", 0.15, 0.6, 0.075, 0.15),
    ("gpt-4o", 2.5, 10.0, 1.25, 2.5),
    ("o4-mini", 1.1, 4.4, 0.275, 1.1),
    ("o3-mini", 1.1, 4.4, 0.55, 1.1),
    ("o3", 2.0, 8.0, 0.5, 2.0),
];

/// Prices by model-name prefix. The longest prefix that ends at a name boundary wins, so
/// `claude-sonnet-5-20260101` takes `claude-sonnet-5`, and `gpt-4o-mini` beats `gpt-4o`.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    prices: BTreeMap<String, ModelPrice>,
}

impl Default for PriceTable {
    fn default() -> Self {
        let prices = DEFAULTS
            .iter()
            .map(|&(p, i, o, r, w)| (p.to_owned(), ModelPrice::new(i, o, r, w)))
            .collect();
        Self { prices }
    }
}

/// One model in the JSON form; cache prices default to the input price (OpenAI-style, and
/// never an under-estimate for Anthropic reads).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonPrice {
    input: f64,
    output: f64,
    cache_read: Option<f64>,
    cache_write: Option<f64>,
}

impl PriceTable {
    /// A table with no prices at all.
    pub fn empty() -> Self {
        Self {
            prices: BTreeMap::new(),
        }
    }

    /// The defaults, with the JSON's entries added or replacing theirs. The JSON maps prefixes
    /// to USD per million tokens: `{"claude-sonnet-5": {"input": 2, "output": 10,
    /// "cache_read": 0.2, "cache_write": 2.5}}` (cache prices optional).
    pub fn from_json(json: &str) -> Result<Self, LlmError> {
        let mut t = Self::default();
        t.merge_json(json)?;
        Ok(t)
    }

    /// Add or replace entries from JSON (see [`PriceTable::from_json`]).
    pub fn merge_json(&mut self, json: &str) -> Result<(), LlmError> {
        let parsed: BTreeMap<String, JsonPrice> = serde_json::from_str(json)
            .map_err(|e| LlmError::Config(format!("price table JSON: {e}")))?;
        for (prefix, p) in parsed {
            let price = ModelPrice::new(
                p.input,
                p.output,
                p.cache_read.unwrap_or(p.input),
                p.cache_write.unwrap_or(p.input),
            );
            let all = [
                price.input,
                price.output,
                price.cache_read,
                price.cache_write,
            ];
            if all.iter().any(|v| !v.is_finite() || *v < 0.0) {
                return Err(LlmError::Config(format!(
                    "price table JSON: prices for {prefix:?} must be non-negative numbers"
                )));
            }
            self.set(&prefix, price);
        }
        Ok(())
    }

    /// Add or replace one entry.
    pub fn set(&mut self, prefix: &str, price: ModelPrice) {
        self.prices.insert(normalise(prefix), price);
    }

    /// The price for `model`, if any prefix matches.
    pub fn price(&self, model: &str) -> Option<ModelPrice> {
        let name = normalise(model);
        self.prices
            .iter()
            .filter(|(prefix, _)| {
                name.strip_prefix(prefix.as_str()).is_some_and(|rest| {
                    rest.is_empty() || !rest.starts_with(|c: char| c.is_ascii_alphanumeric())
                })
            })
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, p)| *p)
    }

    /// Whether `model` has a price (a cost of 0.0 for an unknown model is not "free").
    pub fn is_known(&self, model: &str) -> bool {
        self.price(model).is_some()
    }

    /// USD for `usage` on `model`; 0.0 when the model is unknown (check [`Self::is_known`]).
    pub fn cost(&self, model: &str, usage: &Usage) -> f64 {
        self.price(model).map_or(0.0, |p| p.cost(usage))
    }
}

/// What a model costs at an endpoint, for the budgets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pricing {
    /// The table prices it (a default or `LLM_PRICES`).
    Priced(ModelPrice),
    /// Not priced, on a self-hosted endpoint (Ollama, vLLM, llama.cpp): it costs nothing.
    SelfHosted,
    /// Not priced, on a paid provider's API: its cost is unknown, so no budget can hold.
    Unknown,
}

/// Whether `base_url` is a paid provider's API: Anthropic, OpenAI or Azure OpenAI. Any other
/// host is taken as self-hosted; an address that does not parse counts as paid.
pub fn is_paid_endpoint(base_url: &str) -> bool {
    let Some(host) = url::Url::parse(base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    else {
        return true;
    };
    let host = host.trim_end_matches('.');
    ["api.anthropic.com", "api.openai.com"].contains(&host)
        || [
            ".openai.azure.com",
            ".cognitiveservices.azure.com",
            ".services.ai.azure.com",
        ]
        .iter()
        .any(|suffix| host.ends_with(suffix))
}

impl PriceTable {
    /// What `model` costs when called at `base_url`.
    pub fn pricing(&self, model: &str, base_url: &str) -> Pricing {
        match self.price(model) {
            Some(price) => Pricing::Priced(price),
            None if is_paid_endpoint(base_url) => Pricing::Unknown,
            None => Pricing::SelfHosted,
        }
    }
}

/// Lower case, without a router's `vendor/` prefix, Claude version dots as dashes
/// (`anthropic/claude-sonnet-4.5` → `claude-sonnet-4-5`).
fn normalise(model: &str) -> String {
    let m = model.trim().to_ascii_lowercase();
    let m = m.rsplit('/').next().unwrap_or_default().to_owned();
    if m.starts_with("claude-") {
        m.replace('.', "-")
    } else {
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(i: u64, o: u64, r: u64, w: u64) -> Usage {
        Usage {
            input_tokens: i,
            output_tokens: o,
            cache_read_tokens: r,
            cache_write_tokens: w,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn cost_arithmetic() {
        let t = PriceTable::default();
        // Sonnet 5: $2 in, $10 out, $0.20 read, $2.50 write per million.
        let c = t.cost(
            "claude-sonnet-5",
            &usage(1_000_000, 100_000, 500_000, 200_000),
        );
        assert!(close(c, 2.0 + 1.0 + 0.1 + 0.5), "{c}");
        // GPT-4o mini: 0.15 / 0.60 / 0.075.
        let c = t.cost("gpt-4o-mini-2024-07-18", &usage(2_000, 1_000, 4_000, 0));
        assert!(
            close(c, (2_000.0 * 0.15 + 1_000.0 * 0.6 + 4_000.0 * 0.075) / 1e6),
            "{c}"
        );
        assert_eq!(t.cost("claude-sonnet-5", &Usage::default()), 0.0);
    }

    #[test]
    fn longest_prefix_at_a_boundary_wins() {
        let t = PriceTable::default();
        type Field = fn(ModelPrice) -> f64;
        let input: Field = |p| p.input;
        let cache_read: Field = |p| p.cache_read;
        let cases = [
            ("gpt-4o-mini", input, 0.15),
            ("gpt-4o", input, 2.5),
            ("claude-opus-4-5-20251101", input, 5.0),
            ("claude-opus-4-1-20250805", input, 15.0),
            ("claude-sonnet-5-5", cache_read, 0.1),
            ("anthropic/claude-sonnet-4.5", input, 3.0),
            ("o3-mini", cache_read, 0.55),
        ];
        for (model, field, want) in cases {
            assert_eq!(t.price(model).map(field), Some(want), "{model}");
        }
        // "gpt-5" must not price "gpt-50".
        assert!(!t.is_known("gpt-50"));
    }

    #[test]
    fn unknown_models_cost_nothing_and_say_so() {
        let t = PriceTable::default();
        assert!(!t.is_known("llama3.1:8b"));
        assert_eq!(t.cost("llama3.1:8b", &usage(1000, 1000, 0, 0)), 0.0);
    }

    #[test]
    fn unpriced_models_are_free_only_on_self_hosted_endpoints() {
        let t = PriceTable::default();
        for url in [
            "https://api.anthropic.com",
            "https://api.openai.com/v1",
            "https://acme.openai.azure.com/openai/deployments/x",
            "not a url",
        ] {
            assert_eq!(t.pricing("mystery-1", url), Pricing::Unknown, "{url}");
        }
        for url in [
            "http://localhost:11434/v1",
            "http://10.0.0.5:8000/v1",
            "https://llm.internal.example",
        ] {
            assert_eq!(t.pricing("llama3.1:8b", url), Pricing::SelfHosted, "{url}");
        }
        assert!(matches!(
            t.pricing("gpt-4o", "http://localhost:8080"),
            Pricing::Priced(_)
        ));
        let priced = PriceTable::from_json(r#"{"mystery-1": {"input": 1, "output": 2}}"#)
            .expect("valid JSON");
        assert!(matches!(
            priced.pricing("mystery-1", "https://api.anthropic.com"),
            Pricing::Priced(_)
        ));
    }

    #[test]
    fn json_overrides() {
        let t = PriceTable::from_json(
            r#"{"llama3.1": {"input": 0.1, "output": 0.2},
                "claude-sonnet-5": {"input": 1, "output": 2, "cache_read": 0.5, "cache_write": 3}}"#,
        )
        .expect("valid JSON");
        assert_eq!(
            t.price("llama3.1:8b"),
            Some(ModelPrice::new(0.1, 0.2, 0.1, 0.1))
        );
        assert!(close(
            t.cost("claude-sonnet-5", &usage(1_000_000, 0, 0, 1_000_000)),
            4.0
        ));
        assert!(t.is_known("gpt-4o"), "defaults stay");
        assert!(PriceTable::from_json(r#"{"x": {"input": -1, "output": 1}}"#).is_err());
        assert!(PriceTable::from_json(r#"{"x": {"input": 1}}"#).is_err());
        assert!(PriceTable::from_json("[]").is_err());
        assert!(!PriceTable::empty().is_known("gpt-4o"));
    }
}
