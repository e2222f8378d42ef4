//! `vidseek eval`: recall, mean average precision and the misses against a truth file.

use serde_json::{Value, json};

use super::library;
use crate::common::cli::{stderr, stdout, vs};

#[test]
fn eval_reports_recall_map_and_misses() {
    let lib = library();
    let tmp = tempfile::tempdir().unwrap();
    let mut truth: Vec<Value> = lib
        .scenes
        .iter()
        .filter(|(p, _)| p.to_str().unwrap().contains("video-"))
        .map(|(p, s)| {
            let (shape, colour) = s.scene.shape.unwrap();
            json!({
                "query": format!("a {} {}", colour.name(), shape.name()),
                "path": p.strip_prefix(&lib.root).unwrap().to_str().unwrap(),
                "start": s.start,
                "end": s.end,
            })
        })
        .collect();
    // A moment that is not there: a miss with what came first.
    truth.push(json!({"query": "a yellow circle", "path": "video-0.mp4", "start": 30.0, "end": 33.0}));
    let file = tmp.path().join("truth.json");
    std::fs::write(&file, serde_json::to_vec(&truth).unwrap()).unwrap();
    let out = vs(&lib.data, &["eval", file.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    for key in [
        "recall_at_1",
        "recall_at_5",
        "recall_at_10",
        "map",
        "misses",
        "median_peak_error",
    ] {
        assert!(r.get(key).is_some(), "{key} missing: {r}");
    }
    let r1 = r["recall_at_1"].as_f64().unwrap();
    assert!(r1 >= 16.0 * 0.9 / 17.0 && r1 < 1.0, "{r}");
    assert!(r["recall_at_10"].as_f64().unwrap() >= r1);
    let misses = r["misses"].as_array().unwrap();
    let planted = misses
        .iter()
        .find(|m| m["start"] == 30.0)
        .unwrap_or_else(|| panic!("{r}"));
    assert!(
        planted["rank"].is_null() && planted["first"]["path"].is_string(),
        "{planted}"
    );
    // Shifted truth is not found: the numbers follow the truth.
    let shifted: Vec<Value> = truth
        .iter()
        .map(|t| json!({"query": t["query"], "path": t["path"], "start": t["start"].as_f64().unwrap() + 100.0, "end": t["end"].as_f64().unwrap() + 100.0}))
        .collect();
    std::fs::write(&file, serde_json::to_vec(&shifted).unwrap()).unwrap();
    let out = vs(&lib.data, &["eval", file.to_str().unwrap(), "--json"]);
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(r["recall_at_10"].as_f64(), Some(0.0), "{r}");
    // A malformed truth file: exit 2, naming the entry.
    std::fs::write(
        &file,
        br#"[{"query": "a star", "path": "x.mp4", "start": 5, "end": 1}]"#,
    )
    .unwrap();
    let out = vs(&lib.data, &["eval", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("entry 0"), "{}", stderr(&out));
}
