//! Searching and measuring search: `search`, `eval`, `labels`, `tags`. The flags are
//! read into `search::params` (the same builder the API fills), so both accept the
//! same forms.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::args::{EvalArgs, Global, LabelsCmd, SearchArgs};
use super::output::Output;
use super::with_library;
use crate::catalog::{Access, Catalog, SavedProbe};
use crate::embed::Embedder;
use crate::export;
use crate::search::eval::{Miss, Report};
use crate::search::params::{self, SearchParams, TemplatesArg};
use crate::search::{self, ImageQuery, MinScore, SearchResponse};

/// `--templates`: auto, none and templates (they hold `{}`) as written, anything else a
/// file of them.
fn templates_arg(s: &str) -> TemplatesArg {
    if matches!(s, "auto" | "none") || s.contains("{}") {
        TemplatesArg::Written(s.to_string())
    } else {
        TemplatesArg::File(PathBuf::from(s))
    }
}

impl SearchArgs {
    /// The search these flags ask for.
    fn params(&self) -> SearchParams {
        SearchParams {
            video: self.video,
            min_score: Some(self.min_score.clone()),
            image: self.image.clone().map(ImageQuery::File),
            frame: self.frame,
            image_weight: Some(self.image_weight),
            templates: Some(templates_arg(&self.templates)),
            tags: self.tags.clone(),
            like: self.like.clone(),
            unlike: self.unlike.clone(),
            ..SearchParams::new(self.query.clone(), self.k)
        }
    }
}

pub(super) fn search_cmd(g: &Global, args: &SearchArgs) -> Result<()> {
    let req = args.params().request()?;
    let resp = with_library(g, Access::Read, async |catalog, model| {
        let resp = search::search(catalog, model.clone(), &req).await?;
        if let Some(name) = &args.save_tag {
            save_probe_tag(catalog, model, name, &req).await?;
        }
        Ok(resp)
    })?;
    export_timelines(args, &resp)?;
    Output::new(args.json).print(&resp, || print_results(&resp))
}

/// `--export-otio FILE`, `--export-edl FILE`: the results as timelines, in rank order.
fn export_timelines(args: &SearchArgs, resp: &SearchResponse) -> Result<()> {
    if args.export_otio.is_none() && args.export_edl.is_none() {
        return Ok(());
    }
    let clips = export::timeline_clips(&resp.moments())?;
    let title = format!("vidseek: {}", resp.query);
    let write = |path: &PathBuf, text: String| {
        std::fs::write(path, text).with_context(|| format!("cannot write the timeline {}", path.display()))
    };
    if let Some(p) = &args.export_otio {
        write(p, serde_json::to_string_pretty(&export::otio(&title, &clips))?)?;
        eprintln!("wrote {} moments to {}", clips.len(), p.display());
    }
    if let Some(p) = &args.export_edl {
        write(p, export::edl(&title, &clips))?;
        eprintln!("wrote {} moments to {}", clips.len(), p.display());
    }
    Ok(())
}

/// `--save-tag NAME`: the probe of `--like`/`--unlike` kept as a tag.
async fn save_probe_tag(
    catalog: &Catalog,
    model: &Arc<Embedder>,
    name: &str,
    req: &search::SearchRequest,
) -> Result<()> {
    let probe = SavedProbe {
        name: name.to_string(),
        query: req.query.clone(),
        likes: req.like.clone(),
        unlikes: req.unlike.clone(),
    };
    search::tags::save_probe(catalog, probe).await?;
    let n = search::tags::ensure(catalog, model).await?;
    eprintln!("saved the probe as the tag {name:?}; tags recomputed for {n} videos");
    Ok(())
}

fn print_results(resp: &SearchResponse) {
    if resp.results.is_empty() {
        if resp.withheld > 0 {
            println!(
                "no good match for {:?} ({} weaker matches held back: --min-score off shows them)",
                resp.query, resp.withheld
            );
        } else {
            println!("no matches for {:?}", resp.query);
        }
        return;
    }
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

pub(super) fn eval_cmd(g: &Global, args: &EvalArgs) -> Result<()> {
    let min_score = params::min_score(Some(&args.min_score), MinScore::Off)?;
    let templates = params::templates(Some(&templates_arg(&args.templates)))?;
    let truth = &args.truth;
    let text =
        std::fs::read_to_string(truth).with_context(|| format!("cannot read the truth file {}", truth.display()))?;
    let list = search::eval::parse_truth(&text).with_context(|| format!("in {}", truth.display()))?;
    let report = with_library(g, Access::Read, async |catalog, model| {
        Ok(search::eval::run(catalog, model.clone(), &list, min_score, &templates).await?)
    })?;
    Output::new(args.json).print(&report, || print_report(&report))
}

fn print_report(report: &Report) {
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
        print_miss(m);
    }
}

/// A truth moment not found first: its rank and what came first instead.
fn print_miss(m: &Miss) {
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

pub(super) fn labels_cmd(g: &Global, cmd: &LabelsCmd) -> Result<()> {
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
            with_library(g, Access::Read, async |catalog, model| {
                search::tags::set_labels(catalog, text.as_deref()).await?;
                let (labels, _) = search::tags::labels(catalog, model).await?;
                let n = search::tags::ensure(catalog, model).await?;
                println!(
                    "{} labels; tags recomputed for {n} videos from the stored vectors",
                    labels.len()
                );
                Ok(())
            })
        }
        LabelsCmd::Show { json } => {
            let (labels, set) = with_library(g, Access::Read, async |catalog, model| {
                Ok(search::tags::labels(catalog, model).await?)
            })?;
            Output::new(*json).print(&json!({"labels": labels, "default": !set}), || {
                if !set {
                    eprintln!("(the default vocabulary: `vidseek labels set FILE` sets the library's own)");
                }
                for l in &labels {
                    println!("{l}");
                }
            })
        }
    }
}

pub(super) fn tags_cmd(g: &Global, out: Output) -> Result<()> {
    let tags = with_library(g, Access::Read, async |catalog, model| {
        Ok(search::tags::counts(catalog, model).await?)
    })?;
    out.print(&json!({ "tags": tags }), || {
        if tags.is_empty() {
            println!("no tags yet: index videos, or set a vocabulary with `vidseek labels set FILE`");
        }
        for t in &tags {
            println!("{:>6} moments  {:>4} videos  {}", t.moments, t.videos, t.label);
        }
    })
}
