//! `GET /metrics` in Prometheus' text format (the `metrics` crate and its Prometheus exporter):
//! requests by status, time to first token and request latency histograms, and, read from the
//! engine at each scrape, queue depth, running sequences, KV blocks used and total, preemptions
//! and generated tokens.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::engine::EngineStats;

/// Latency buckets in seconds, from a short line to a dense page on a loaded CPU.
const BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use (one per process, shared by every
/// server in it); `None` if another recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS);
            match builder.and_then(|b| b.install_recorder()) {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!("metrics disabled: {e}");
                    None
                }
            }
        })
        .as_ref()
}

/// Counts a finished request by route and HTTP status.
pub fn request_done(route: &'static str, status: u16) {
    metrics::counter!("folio_http_requests_total", "route" => route, "status" => status.to_string()).increment(1);
}

pub fn time_to_first_token(seconds: f64) {
    metrics::histogram!("folio_time_to_first_token_seconds").record(seconds);
}

pub fn request_latency(seconds: f64) {
    metrics::histogram!("folio_request_latency_seconds").record(seconds);
}

/// The exposition text, with the engine's gauges as of now.
pub fn render(stats: Option<EngineStats>) -> String {
    if let Some(s) = stats {
        metrics::gauge!("folio_queue_depth").set(s.waiting as f64);
        metrics::gauge!("folio_running_sequences").set(s.running as f64);
        metrics::gauge!("folio_kv_blocks_used").set(s.blocks_used as f64);
        metrics::gauge!("folio_kv_blocks_total").set(s.blocks_total as f64);
        metrics::gauge!("folio_preemptions").set(s.preemptions as f64);
        metrics::gauge!("folio_generated_tokens").set(s.generated_tokens as f64);
    }
    handle().map(|h| h.render()).unwrap_or_default()
}
