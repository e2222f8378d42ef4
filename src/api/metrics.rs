//! `GET /metrics`: Prometheus text format, through the `metrics` crate and its
//! Prometheus exporter (a recorder of this server's own, no global state). Query
//! counters and a latency histogram are recorded as searches happen; library and job
//! counts are read from the catalog at scrape time.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use super::{ApiError, AppState, dto::ErrorBody};
use crate::catalog::{JobState, VideoStatus};

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("vidseek_query_duration_seconds".into()), &BUCKETS)
            .expect("buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            describe_counter!("vidseek_queries_total", "Searches answered.");
            describe_counter!("vidseek_query_errors_total", "Searches that failed.");
            describe_histogram!(
                "vidseek_query_duration_seconds",
                metrics::Unit::Seconds,
                "Search latency."
            );
            describe_gauge!("vidseek_indexed_frames", "Frames with a vector.");
            describe_gauge!("vidseek_videos", "Videos by status.");
            describe_gauge!("vidseek_jobs", "Jobs by state.");
            // Present from the first scrape.
            counter!("vidseek_queries_total").absolute(0);
            counter!("vidseek_query_errors_total").absolute(0);
        });
        Self { recorder, handle }
    }
}

impl Metrics {
    pub fn observe_query(&self, took: Duration, ok: bool) {
        metrics::with_local_recorder(&self.recorder, || {
            counter!("vidseek_queries_total").increment(1);
            if !ok {
                counter!("vidseek_query_errors_total").increment(1);
            }
            histogram!("vidseek_query_duration_seconds").record(took.as_secs_f64());
        });
    }
}

#[utoipa::path(get, path = "/metrics", tag = "status",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Prometheus metrics.
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let m = &state.metrics;
    let counts = state.catalog.counts().await?;
    let jobs = state.catalog.queue().recent(10_000).await?;
    metrics::with_local_recorder(&m.recorder, || {
        gauge!("vidseek_indexed_frames").set(counts.frames as f64);
        gauge!("vidseek_videos", "status" => VideoStatus::Indexed.as_str()).set(counts.indexed as f64);
        gauge!("vidseek_videos", "status" => VideoStatus::Failed.as_str()).set(counts.failed as f64);
        for s in JobState::ALL {
            gauge!("vidseek_jobs", "state" => s.as_str()).set(jobs.iter().filter(|j| j.state == *s).count() as f64);
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(m.handle.render()))
}
