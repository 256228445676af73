//! Logs and metrics: the tracing subscriber (`LOG_FORMAT=pretty|json`) and the Prometheus
//! recorder rendered at `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::config::LogFormat;

/// Install the global tracing subscriber. `RUST_LOG` filters (default `info`).
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide metrics handle (installed on first use; every server in the process
/// shares it).
pub fn metrics_handle() -> PrometheusHandle {
    METRICS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
                ])
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("specbot_intake_commit_seconds".into()),
                        &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
                    )
                })
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by an embedding program); then
            // our handle renders only what we describe, which is still a valid page.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(
        "specbot_deliveries_total",
        "Webhook deliveries by event and outcome"
    );
    metrics::describe_counter!(
        "specbot_jobs_finished_total",
        "Jobs finished by kind and state"
    );
    metrics::describe_gauge!("specbot_jobs", "Jobs in the store by kind and state");
    metrics::describe_histogram!("specbot_job_duration_seconds", "Job run time by kind");
    metrics::describe_histogram!(
        "specbot_intake_commit_seconds",
        "Time to store one batch of deliveries durably"
    );
    metrics::describe_histogram!("specbot_intake_batch_size", "Deliveries stored per batch");
    metrics::describe_counter!(
        "specbot_github_requests_total",
        "GitHub requests by route and status"
    );
    metrics::describe_gauge!(
        "specbot_github_rate_limit_remaining",
        "Last x-ratelimit-remaining seen per installation"
    );
    metrics::describe_counter!(
        "specbot_llm_tokens_total",
        "LLM tokens by provider, model and kind"
    );
    metrics::describe_counter!(
        "specbot_llm_cost_microdollars_total",
        "LLM cost in millionths of a US dollar by provider and model"
    );
    metrics::describe_counter!(
        "specbot_quota_refusals_total",
        "Jobs not run because a quota or the spend cap was reached, by quota"
    );
}
