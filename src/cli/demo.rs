//! The first run: `vidseek demo` (render sample footage, index it, search it, serve it)
//! and `vidseek sample-footage`.

use std::sync::Arc;

use anyhow::Result;

use super::args::{Global, ServeArgs};
use super::index::{print_reports, run_jobs};
use super::runtime;
use super::serve::serve;
use crate::catalog::{Access, Catalog};
use crate::jobs::IndexOptions;
use crate::search::{self, SearchRequest};
use crate::synth;

pub(super) fn sample_footage(dir: &std::path::Path, videos: usize, scenes: usize, seed: u64) -> Result<()> {
    let truth = synth::sample_library(dir, videos, scenes, seed)?;
    println!("{}", serde_json::to_string_pretty(&truth)?);
    Ok(())
}

/// Renders sample footage into the data folder (once), indexes it, runs a few example
/// searches against the known scenes, then serves the UI over that library.
pub(super) fn demo(g: &Global, no_serve: bool, bind: std::net::SocketAddr) -> Result<()> {
    let data = g.data_dir();
    let lib = data.join("demo-library");
    let truth_file = lib.join("truth.json");
    if !truth_file.exists() {
        eprintln!("demo: rendering sample footage into {}", lib.display());
        synth::sample_library(&lib, 6, 6, 7)?;
    }
    let truth: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&truth_file)?)?;
    let model = Arc::new(g.load_model()?);
    let opts = IndexOptions::default();
    let rt = runtime()?;
    rt.block_on(async {
        let catalog = Catalog::open(&data, model.model_name(), model.dim(), Access::Write).await?;
        let reports = run_jobs(&catalog, model.clone(), std::slice::from_ref(&lib), &opts, false).await?;
        print_reports(&reports, false)?;
        println!("\nexample searches (the truth is in {}):", truth_file.display());
        let mut right = 0;
        let mut asked = 0;
        for v in truth.iter().take(3) {
            for s in v["scenes"].as_array().into_iter().flatten().take(2) {
                let caption = s["caption"].as_str().unwrap_or_default();
                let resp = search::search(&catalog, model.clone(), &SearchRequest::new(caption, 1)).await?;
                let (ws, we) = (s["start"].as_f64().unwrap_or(0.0), s["end"].as_f64().unwrap_or(0.0));
                // Right when the hit overlaps any scene with this caption (random footage
                // can show the same scene twice).
                let ok = resp.results.first().is_some_and(|r| {
                    truth.iter().any(|tv| {
                        tv["path"].as_str() == Some(r.path.as_str())
                            && tv["scenes"].as_array().into_iter().flatten().any(|ts| {
                                ts["caption"].as_str() == Some(caption)
                                    && r.start < ts["end"].as_f64().unwrap_or(0.0)
                                    && r.end > ts["start"].as_f64().unwrap_or(0.0)
                            })
                    })
                });
                asked += 1;
                right += ok as usize;
                match resp.results.first() {
                    Some(r) => println!(
                        "  {} {caption:?}\n      -> {}  {}-{}  {:.3}   (truth {}-{})",
                        if ok { "ok  " } else { "MISS" },
                        r.path,
                        search::clock(r.start),
                        search::clock(r.end),
                        r.score,
                        search::clock(ws),
                        search::clock(we)
                    ),
                    None => println!("  MISS {caption:?} -> nothing"),
                }
            }
        }
        println!("{right}/{asked} example searches found the right moment");
        // Every scene's caption as a query, scored like `vidseek eval`.
        let eval: Vec<search::eval::Truth> = truth
            .iter()
            .flat_map(|v| {
                let path = v["path"].as_str().unwrap_or_default().to_string();
                v["scenes"].as_array().cloned().unwrap_or_default().into_iter().map(move |s| search::eval::Truth {
                    query: s["caption"].as_str().unwrap_or_default().to_string(),
                    path: path.clone(),
                    start: s["start"].as_f64().unwrap_or(0.0),
                    end: s["end"].as_f64().unwrap_or(0.0),
                })
            })
            .collect();
        let eval_file = lib.join("eval.json");
        if !eval_file.exists() {
            // A demo library rendered before eval.json existed.
            std::fs::write(&eval_file, serde_json::to_string_pretty(&eval)?)?;
        }
        let r = search::eval::run(
            &catalog,
            model.clone(),
            &eval,
            search::MinScore::Off,
            &search::prompts::Templates::Auto,
        )
        .await?;
        println!(
            "eval over all {} scenes ({} queries; `vidseek eval {}` repeats it): R@1 {:.3}  R@5 {:.3}  R@10 {:.3}  mAP {:.3}  median peak error {}",
            r.moments,
            r.queries,
            eval_file.display(),
            r.recall_at_1,
            r.recall_at_5,
            r.recall_at_10,
            r.map,
            r.median_peak_error.map(|e| format!("{e:.2} s")).unwrap_or_else(|| "-".into())
        );
        catalog.close().await;
        anyhow::Ok(())
    })?;
    drop(rt);
    if no_serve {
        return Ok(());
    }
    println!("\nopen http://{bind}/ and search, e.g. \"a red circle\" (Ctrl-C stops)");
    serve(
        g,
        &ServeArgs {
            bind,
            libraries: vec![lib],
            watch: true,
            token: None,
            max_upload_mb: 4096,
            fps: 1.0,
        },
    )
}
