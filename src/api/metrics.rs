//! `GET /metrics`: Prometheus text format. Query counters and a latency histogram are
//! kept here; library and job counts are read from the store at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::{HttpResponse, web};

use super::{ApiError, AppState};

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
pub struct Metrics {
    queries: AtomicU64,
    errors: AtomicU64,
    /// Cumulative counts per bucket (plus +Inf at the end).
    buckets: [AtomicU64; 11],
    sum_micros: AtomicU64,
}

impl Metrics {
    pub fn observe_query(&self, took: Duration, ok: bool) {
        self.queries.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let s = took.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if s <= *le {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.buckets[10].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }
}

pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let m = &state.metrics;
    let counts = state.catalog.store.counts().await?;
    let jobs = state.catalog.store.jobs(10_000).await?;
    let mut out = String::new();
    out.push_str("# HELP vidseek_queries_total Searches answered.\n# TYPE vidseek_queries_total counter\n");
    out.push_str(&format!(
        "vidseek_queries_total {}\n",
        m.queries.load(Ordering::Relaxed)
    ));
    out.push_str(
        "# HELP vidseek_query_errors_total Searches that failed.\n# TYPE vidseek_query_errors_total counter\n",
    );
    out.push_str(&format!(
        "vidseek_query_errors_total {}\n",
        m.errors.load(Ordering::Relaxed)
    ));
    out.push_str(
        "# HELP vidseek_query_duration_seconds Search latency.\n# TYPE vidseek_query_duration_seconds histogram\n",
    );
    for (i, le) in BUCKETS.iter().enumerate() {
        out.push_str(&format!(
            "vidseek_query_duration_seconds_bucket{{le=\"{le}\"}} {}\n",
            m.buckets[i].load(Ordering::Relaxed)
        ));
    }
    out.push_str(&format!(
        "vidseek_query_duration_seconds_bucket{{le=\"+Inf\"}} {}\n",
        m.buckets[10].load(Ordering::Relaxed)
    ));
    out.push_str(&format!(
        "vidseek_query_duration_seconds_sum {}\n",
        m.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
    ));
    out.push_str(&format!(
        "vidseek_query_duration_seconds_count {}\n",
        m.queries.load(Ordering::Relaxed)
    ));
    out.push_str("# HELP vidseek_indexed_frames Frames with a vector.\n# TYPE vidseek_indexed_frames gauge\n");
    out.push_str(&format!("vidseek_indexed_frames {}\n", counts.frames));
    out.push_str("# HELP vidseek_videos Videos by status.\n# TYPE vidseek_videos gauge\n");
    out.push_str(&format!(
        "vidseek_videos{{status=\"indexed\"}} {}\nvidseek_videos{{status=\"failed\"}} {}\n",
        counts.indexed, counts.failed
    ));
    out.push_str("# HELP vidseek_jobs Jobs by state.\n# TYPE vidseek_jobs gauge\n");
    for s in ["enqueued", "processing", "succeeded", "failed", "canceled"] {
        out.push_str(&format!(
            "vidseek_jobs{{state=\"{s}\"}} {}\n",
            jobs.iter().filter(|j| j.state == s).count()
        ));
    }
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(out))
}
