//! Checks several features make: vectors alike, a hit inside a scene, the provider the
//! machine should use, an API error's status and code.

use std::path::Path;

use serde_json::Value;
use vidseek::SceneSpan;

use super::expect_cuda;
use super::server::Response;

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// A JSON array of numbers as a vector.
pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// The eval rule (the same as `vidseek eval`'s): the same file, half the shorter span
/// overlapping, or the peak inside.
pub fn hit_is(r: &Value, path: &Path, span: &SceneSpan) -> bool {
    let t = vidseek::Truth {
        query: String::new(),
        path: path.display().to_string(),
        start: span.start,
        end: span.end,
    };
    vidseek::answers_truth(
        r["path"].as_str().unwrap(),
        r["start"].as_f64().unwrap(),
        r["end"].as_f64().unwrap(),
        r["peak"].as_f64().unwrap(),
        &t,
    )
}

/// A hit's span overlaps `start..end` by half the shorter of the two (the peak not asked).
pub fn overlaps(hit: &Value, start: f64, end: f64) -> bool {
    let (s, e) = (hit["start"].as_f64().unwrap(), hit["end"].as_f64().unwrap());
    e.min(end) - s.max(start) >= 0.5 * (e - s).min(end - start)
}

/// Checks a reported execution provider against what `VIDSEEK_EXPECT_CUDA` says
/// ("CUDA" or "CPU"; unset accepts either).
pub fn assert_provider(got: &str) {
    match expect_cuda().map(|c| if c { "CUDA" } else { "CPU" }) {
        Some(want) => assert_eq!(got, want, "VIDSEEK_EXPECT_CUDA says {want}"),
        None => assert!(got == "CPU" || got == "CUDA", "{got}"),
    }
}

/// An API error: the status, a message, and a code containing `code_part`.
pub fn assert_error(r: &Response, status: u16, code_part: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    let v = r.json();
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(v["code"].as_str().unwrap().contains(code_part), "{v}");
}
