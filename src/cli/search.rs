//! Searching and measuring search: `search`, `eval`, `labels`, `tags`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::args::{Global, LabelsCmd};
use super::runtime;
use crate::catalog::{Access, Catalog};
use crate::embed;
use crate::search::{self, SearchRequest};

/// `--templates auto|none|FILE`.
pub(super) fn templates_arg(s: &str) -> Result<search::prompts::Templates> {
    Ok(match s {
        "auto" | "none" => s.parse()?,
        file => {
            let path = PathBuf::from(file);
            if !path.is_file() {
                return Err(search::SearchError::BadTemplates(format!(
                    "--templates {file}: no such file; give auto, none, or a file of templates (one a line, each with {{}})"
                ))
                .into());
            }
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read the templates {file}"))?;
            search::prompts::Templates::given(embed::parse_labels(&text))
                .map_err(|e| anyhow::anyhow!(e).context(format!("in {file}")))?
        }
    })
}

pub(super) fn labels_cmd(g: &Global, cmd: &LabelsCmd) -> Result<()> {
    let model = Arc::new(g.load_model()?);
    let rt = runtime()?;
    rt.block_on(async {
        let catalog = Catalog::open(&g.data_dir(), model.model_name(), model.dim(), Access::Read).await?;
        match cmd {
            LabelsCmd::Set { file, default } => {
                let text = match (file, default) {
                    (Some(f), false) => Some(
                        std::fs::read_to_string(f)
                            .with_context(|| format!("cannot read the label file {}", f.display()))?,
                    ),
                    (None, true) => None,
                    _ => bail!("give a label file (one label a line) or --default"),
                };
                search::tags::set_labels(&catalog, text.as_deref()).await?;
                let (labels, _) = search::tags::labels(&catalog, &model).await?;
                let n = search::tags::ensure(&catalog, &model).await?;
                println!(
                    "{} labels; tags recomputed for {n} videos from the stored vectors",
                    labels.len()
                );
            }
            LabelsCmd::Show { json } => {
                let (labels, set) = search::tags::labels(&catalog, &model).await?;
                if *json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&json!({"labels": labels, "default": !set}))?
                    );
                } else {
                    if !set {
                        eprintln!("(the default vocabulary: `vidseek labels set FILE` sets the library's own)");
                    }
                    for l in labels {
                        println!("{l}");
                    }
                }
            }
        }
        catalog.close().await;
        anyhow::Ok(())
    })
}

pub(super) fn tags_cmd(g: &Global, json: bool) -> Result<()> {
    let model = Arc::new(g.load_model()?);
    let rt = runtime()?;
    let tags = rt.block_on(async {
        let catalog = Catalog::open(&g.data_dir(), model.model_name(), model.dim(), Access::Read).await?;
        let t = search::tags::counts(&catalog, &model).await;
        catalog.close().await;
        anyhow::Ok(t?)
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&json!({ "tags": tags }))?);
    } else if tags.is_empty() {
        println!("no tags yet: index videos, or set a vocabulary with `vidseek labels set FILE`");
    } else {
        for t in &tags {
            println!("{:>6} moments  {:>4} videos  {}", t.moments, t.videos, t.label);
        }
    }
    Ok(())
}

pub(super) fn search_cmd(g: &Global, req: SearchRequest, save_tag: Option<&str>, json: bool) -> Result<()> {
    search::validate(&req)?;
    let model = Arc::new(g.load_model()?);
    let rt = runtime()?;
    let resp = rt.block_on(async {
        let catalog = Catalog::open(&g.data_dir(), model.model_name(), model.dim(), Access::Read).await?;
        let resp = search::search(&catalog, model.clone(), &req).await?;
        if let Some(name) = save_tag {
            search::tags::save_probe(
                &catalog,
                crate::catalog::SavedProbe {
                    name: name.to_string(),
                    query: req.query.clone(),
                    likes: req.like.clone(),
                    unlikes: req.unlike.clone(),
                },
            )
            .await?;
            let n = search::tags::ensure(&catalog, &model).await?;
            eprintln!("saved the probe as the tag {name:?}; tags recomputed for {n} videos");
        }
        anyhow::Ok(resp)
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&resp)?);
    } else if resp.results.is_empty() {
        if resp.withheld > 0 {
            println!(
                "no good match for {:?} ({} weaker matches held back: --min-score off shows them)",
                resp.query, resp.withheld
            );
        } else {
            println!("no matches for {:?}", resp.query);
        }
    } else {
        for r in &resp.results {
            let frame = r.frame_id.map(|f| format!("  frame {f}")).unwrap_or_default();
            let text = r.text.as_deref().map(|t| format!("  \"{t}\"")).unwrap_or_default();
            let tags = if r.tags.is_empty() {
                String::new()
            } else {
                format!("  [{}]", r.tags.join(", "))
            };
            println!(
                "{}  {}-{}  {:.3}  {:?}{frame}{text}{tags}",
                r.path,
                search::clock(r.start),
                search::clock(r.end),
                r.score,
                r.source
            );
        }
        if resp.withheld > 0 {
            println!(
                "({} weaker matches held back: --min-score off shows them)",
                resp.withheld
            );
        }
    }
    Ok(())
}

pub(super) fn eval_cmd(
    g: &Global,
    truth: &std::path::Path,
    min_score: &str,
    templates: &search::prompts::Templates,
    json: bool,
) -> Result<()> {
    let min_score: search::MinScore = min_score.parse()?;
    let text =
        std::fs::read_to_string(truth).with_context(|| format!("cannot read the truth file {}", truth.display()))?;
    let list = search::eval::parse_truth(&text).with_context(|| format!("in {}", truth.display()))?;
    let model = Arc::new(g.load_model()?);
    let rt = runtime()?;
    let report = rt.block_on(async {
        let catalog = Catalog::open(&g.data_dir(), model.model_name(), model.dim(), Access::Read).await?;
        anyhow::Ok(search::eval::run(&catalog, model.clone(), &list, min_score, templates).await?)
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{} queries, {} moments (cut-off {}, templates {})\nR@1 {:.3}  R@5 {:.3}  R@10 {:.3}  mAP {:.3}  median peak error {}",
        report.queries,
        report.moments,
        report.cutoff,
        report.templates,
        report.recall_at_1,
        report.recall_at_5,
        report.recall_at_10,
        report.map,
        report
            .median_peak_error
            .map(|e| format!("{e:.2} s"))
            .unwrap_or_else(|| "-".into())
    );
    for m in &report.misses {
        let rank = m
            .rank
            .map(|r| format!("rank {r}"))
            .unwrap_or_else(|| format!("not in the first {}", search::eval::DEPTH));
        let first = m
            .first
            .as_ref()
            .map(|f| {
                let also = if m.first_is_truth {
                    ", another moment of this query's truth"
                } else {
                    ""
                };
                format!(
                    "{} {}-{} ({:.3}{also})",
                    f.path,
                    search::clock(f.start),
                    search::clock(f.end),
                    f.score
                )
            })
            .unwrap_or_else(|| "nothing".into());
        println!(
            "miss: {:?} {} {}-{}: {rank}; first came {first}",
            m.query,
            m.path,
            search::clock(m.start),
            search::clock(m.end)
        );
    }
    Ok(())
}
