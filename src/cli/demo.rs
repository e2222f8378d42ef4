//! The first run: `vidseek demo` (render sample footage, index it, search it, serve it)
//! and `vidseek sample-footage`.
//!
//! The demo knows what it rendered (`truth.json`: every scene's caption and span), so
//! it checks its example searches against it, and suggests only queries its own
//! library answers. It also shows one query that finds nothing on purpose (a shape in a
//! colour it never rendered), so that an empty answer reads as the cut-off working.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::args::{DemoArgs, Global, SampleFootageArgs, ServeArgs};
use super::index::{print_reports, run_jobs};
use super::output::Output;
use super::runtime;
use super::serve::serve;
use crate::catalog::{Access, Catalog};
use crate::embed::Embedder;
use crate::jobs::IndexOptions;
use crate::search::{self, SearchRequest, SearchResponse, Segment};
use crate::synth::{self, Colour, Scene, Shape};

pub(super) fn sample_footage(args: &SampleFootageArgs) -> Result<()> {
    let truth = synth::sample_library(&args.dir, args.videos, args.scenes, args.seed)?;
    println!("{}", serde_json::to_string_pretty(&truth)?);
    Ok(())
}

/// A rendered video as `truth.json` lists it.
#[derive(Deserialize)]
struct TruthVideo {
    path: String,
    scenes: Vec<TruthScene>,
}

#[derive(Deserialize)]
struct TruthScene {
    caption: String,
    start: f64,
    end: f64,
}

impl TruthScene {
    /// The scene its caption names (every caption is a canonical one).
    fn scene(&self) -> Option<Scene> {
        Scene::canonical().into_iter().find(|s| s.caption() == self.caption)
    }
}

/// The demo library in the data folder and what was rendered into it.
struct Footage {
    dir: PathBuf,
    truth_file: PathBuf,
    videos: Vec<TruthVideo>,
}

impl Footage {
    /// Renders the sample footage into `dir` once, then reads its truth.
    fn render_once(dir: PathBuf) -> Result<Self> {
        let truth_file = dir.join("truth.json");
        if !truth_file.exists() {
            eprintln!("demo: rendering sample footage into {}", dir.display());
            synth::sample_library(&dir, 6, 6, 7)?;
        }
        let text =
            std::fs::read_to_string(&truth_file).with_context(|| format!("cannot read {}", truth_file.display()))?;
        let videos = serde_json::from_str(&text).with_context(|| format!("in {}", truth_file.display()))?;
        Ok(Self {
            dir,
            truth_file,
            videos,
        })
    }

    /// Whether a result overlaps a scene with this caption (random footage can show the
    /// same scene twice).
    fn shows(&self, caption: &str, r: &Segment) -> bool {
        self.videos.iter().any(|v| {
            v.path == r.path
                && v.scenes
                    .iter()
                    .any(|s| s.caption == caption && r.start < s.end && r.end > s.start)
        })
    }

    /// Whether a result overlaps a scene with this shape in this colour.
    fn shows_shape(&self, shape: (Shape, Colour), r: &Segment) -> bool {
        self.videos.iter().any(|v| {
            v.path == r.path
                && v.scenes
                    .iter()
                    .any(|s| r.start < s.end && r.end > s.start && s.scene().is_some_and(|sc| sc.shape == Some(shape)))
        })
    }

    /// Every shape-and-colour pair rendered, in the order the footage shows them.
    fn shapes(&self) -> Vec<(Shape, Colour)> {
        let mut out = Vec::new();
        for s in self.videos.iter().flat_map(|v| &v.scenes) {
            if let Some(pair) = s.scene().and_then(|sc| sc.shape)
                && !out.contains(&pair)
            {
                out.push(pair);
            }
        }
        out
    }

    /// Every scene's caption as a query, in `vidseek eval`'s form.
    fn eval_truth(&self) -> Vec<search::eval::Truth> {
        self.videos
            .iter()
            .flat_map(|v| {
                v.scenes.iter().map(|s| search::eval::Truth {
                    query: s.caption.clone(),
                    path: v.path.clone(),
                    start: s.start,
                    end: s.end,
                })
            })
            .collect()
    }
}

/// "a red circle": a shape in a colour, the short query the suggestions use.
fn shape_query((shape, colour): (Shape, Colour)) -> String {
    format!("a {} {}", colour.name(), shape.name())
}

/// Renders sample footage into the data folder (once), indexes it, runs a few example
/// searches against the known scenes, suggests queries, then serves the UI over that
/// library.
pub(super) fn demo(g: &Global, args: &DemoArgs) -> Result<()> {
    let footage = Footage::render_once(g.data_dir().join("demo-library"))?;
    let model = Arc::new(g.load_model()?);
    let suggested = runtime()?.block_on(async {
        let catalog = g.open_library(&model, Access::Write).await?;
        let reports = run_jobs(
            &catalog,
            model.clone(),
            std::slice::from_ref(&footage.dir),
            &IndexOptions::default(),
            Output::Text,
        )
        .await?;
        print_reports(&reports, Output::Text)?;
        example_searches(&catalog, &model, &footage).await?;
        evaluate(&catalog, &model, &footage).await?;
        let suggested = suggest(&catalog, &model, &footage).await?;
        no_match(&catalog, &model, &footage).await?;
        catalog.close().await;
        anyhow::Ok(suggested)
    })?;
    if args.no_serve {
        return Ok(());
    }
    let example = suggested.first().map_or(String::new(), |q| format!(", e.g. {q:?}"));
    println!("\nopen http://{}/ and search{example} (Ctrl-C stops)", args.bind);
    serve(
        g,
        &ServeArgs {
            bind: args.bind,
            libraries: vec![footage.dir],
            watch: true,
            token: None,
            max_upload_mb: 4096,
            fps: 1.0,
            clip_max_seconds: 600.0,
            clip_exports: 2,
            base_url: None,
        },
    )
}

/// The best moment for `query` under the default (calibrated) cut-off.
async fn best(catalog: &Catalog, model: &Arc<Embedder>, query: &str, k: i64) -> Result<SearchResponse> {
    Ok(search::search(catalog, model.clone(), &SearchRequest::new(query, k)).await?)
}

/// Two scenes of each of the first three videos, searched by their captions; each
/// first hit checked against the truth.
async fn example_searches(catalog: &Catalog, model: &Arc<Embedder>, footage: &Footage) -> Result<()> {
    println!("\nexample searches (the truth is in {}):", footage.truth_file.display());
    let (mut right, mut asked) = (0, 0);
    for s in footage.videos.iter().take(3).flat_map(|v| v.scenes.iter().take(2)) {
        let resp = best(catalog, model, &s.caption, 1).await?;
        let ok = resp.results.first().is_some_and(|r| footage.shows(&s.caption, r));
        asked += 1;
        right += ok as usize;
        match resp.results.first() {
            Some(r) => println!(
                "  {} {:?}\n      -> {}  {}-{}  {:.3}   (truth {}-{})",
                if ok { "ok  " } else { "MISS" },
                s.caption,
                r.path,
                search::clock(r.start),
                search::clock(r.end),
                r.score,
                search::clock(s.start),
                search::clock(s.end)
            ),
            None => println!("  MISS {:?} -> nothing", s.caption),
        }
    }
    println!("{right}/{asked} example searches found the right moment");
    Ok(())
}

/// Every scene's caption as a query, scored like `vidseek eval` (and written as the
/// eval file that repeats it).
async fn evaluate(catalog: &Catalog, model: &Arc<Embedder>, footage: &Footage) -> Result<()> {
    let eval = footage.eval_truth();
    let eval_file = footage.dir.join("eval.json");
    if !eval_file.exists() {
        // A demo library rendered before eval.json existed.
        std::fs::write(&eval_file, serde_json::to_string_pretty(&eval)?)?;
    }
    let r = search::eval::run(
        catalog,
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
        r.median_peak_error
            .map(|e| format!("{e:.2} s"))
            .unwrap_or_else(|| "-".into())
    );
    Ok(())
}

/// Up to three short queries this library answers: shapes it rendered, each kept only
/// when its first credible result shows that shape. Returns them.
async fn suggest(catalog: &Catalog, model: &Arc<Embedder>, footage: &Footage) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for pair in footage.shapes() {
        let q = shape_query(pair);
        let resp = best(catalog, model, &q, 1).await?;
        if let Some(r) = resp.results.first().filter(|r| footage.shows_shape(pair, r)) {
            found.push((q, r.clone()));
        }
        if found.len() == 3 {
            break;
        }
    }
    if found.is_empty() {
        return Ok(Vec::new());
    }
    println!("\ntry these (the footage shows them; in the UI or with `vidseek search`):");
    for (q, r) in &found {
        println!(
            "  {:<20} -> {}  {}-{}  {:.3}",
            format!("{q:?}"),
            r.path,
            search::clock(r.start),
            search::clock(r.end),
            r.score
        );
    }
    Ok(found.into_iter().map(|(q, _)| q).collect())
}

/// One query with no good match on purpose: a shape in a colour the footage never
/// shows, else something outside its domain, whichever the cut-off holds back first.
async fn no_match(catalog: &Catalog, model: &Arc<Embedder>, footage: &Footage) -> Result<()> {
    let rendered = footage.shapes();
    let absent = Shape::ALL
        .into_iter()
        .flat_map(|s| Colour::ALL.map(|c| (s, c)))
        .filter(|p| !rendered.contains(p))
        .map(|p| {
            let q = shape_query(p);
            let why = format!("no {} {} was rendered", p.1.name(), p.0.name());
            (q, why)
        });
    let outside = std::iter::once((
        "a dog catching a frisbee".to_string(),
        "the footage shows only coloured shapes".to_string(),
    ));
    for (q, why) in absent.chain(outside) {
        let resp = best(catalog, model, &q, 10).await?;
        if resp.results.is_empty() {
            println!("and one that finds nothing, on purpose:");
            println!(
                "  {:<20} -> no good match ({} weaker matches held back): {why}.",
                format!("{q:?}"),
                resp.withheld
            );
            println!(
                "  By default only credible matches are shown (the calibrated cut-off: a result must look more\n  \
                 like the query than like any label of the model's vocabulary); --min-score off lists the rest."
            );
            return Ok(());
        }
    }
    Ok(())
}
