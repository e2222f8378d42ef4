//! `vidseek demo`: it renders, indexes, searches and evaluates its own footage.

use serde_json::Value;

use crate::common::cli::{self, stderr, stdout};
use crate::common::models;

#[test]
fn the_demo_indexes_searches_and_evaluates_its_footage() {
    let tmp = tempfile::tempdir().unwrap();
    let model = models::tiny_model_dir();
    let out = cli::vidseek(
        &[
            "--data",
            tmp.path().to_str().unwrap(),
            "--device",
            "cpu",
            "--model",
            model.to_str().unwrap(),
            "demo",
            "--no-serve",
        ],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.contains("example searches found the right moment"))
        .unwrap_or_else(|| panic!("{text}"));
    let right: usize = line.split('/').next().unwrap().trim().parse().unwrap();
    assert!(right >= 5, "{line}");
    let eval = text
        .lines()
        .find(|l| l.starts_with("eval over all"))
        .unwrap_or_else(|| panic!("{text}"));
    let r1: f64 = eval
        .split("R@1 ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(r1 >= 0.8, "{eval}");
    // The eval file it names gives the same numbers through `vidseek eval`.
    let file = tmp.path().join("demo-library/eval.json");
    let out = cli::vidseek(
        &[
            "--data",
            tmp.path().to_str().unwrap(),
            "--device",
            "cpu",
            "--model",
            model.to_str().unwrap(),
            "eval",
            file.to_str().unwrap(),
            "--json",
        ],
        &[],
        None,
    );
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    assert!((r["recall_at_1"].as_f64().unwrap() - r1).abs() < 0.001, "{r} vs {eval}");
}
