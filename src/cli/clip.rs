//! `vidseek clip ID|PATH START END -o FILE`: a span of a video cut into a file through
//! `export::clip`, the same plan the API's `/api/videos/{id}/clip` runs.

use std::path::PathBuf;

use anyhow::{Result, bail};
use serde_json::json;

use super::args::{ClipArgs, Global};
use super::output::Output;
use super::runtime;
use crate::export::{self, ClipFormat, ClipRequest, Limits, Plan};

pub(super) fn clip(g: &Global, args: &ClipArgs) -> Result<()> {
    let source = source_of(g, &args.target)?;
    let format = match (&args.format, ClipFormat::of_path(&args.output)) {
        (Some(f), _) => f.parse::<ClipFormat>()?,
        (None, Some(f)) => f,
        (None, None) => ClipFormat::Mp4,
    };
    let req = ClipRequest {
        start: export::parse_time(&args.start)?,
        end: export::parse_time(&args.end)?,
        format,
        fast: args.fast,
    };
    let limits = Limits {
        max_seconds: args.max_seconds,
        ..Limits::default()
    };
    let plan = Plan::new(&source, &req, &limits)?;
    plan.run(&args.output)?;
    let widened = plan.widened(req.start);
    Output::new(args.json).print(
        &json!({"path": args.output, "source": source, "format": format.extension(),
                "start": plan.from, "end": plan.to, "widened": widened}),
        || {
            println!(
                "{}: {:.3}-{:.3} s of {}",
                args.output.display(),
                plan.from,
                plan.to,
                source.display()
            );
            if widened > 0.0 {
                println!(
                    "--fast: starts {widened:.3} s before {:.3} s, at the keyframe at {:.3} s (without --fast the cut is exact)",
                    req.start, plan.from
                );
            }
        },
    )
}

/// The file `target` names: a library id, or a path (in the library or not).
fn source_of(g: &Global, target: &str) -> Result<PathBuf> {
    let Ok(id) = target.parse::<i64>() else {
        return Ok(PathBuf::from(target));
    };
    let data = g.data_dir();
    let videos = runtime()?.block_on(async { anyhow::Ok(crate::catalog::info(&data).await?.videos) })?;
    match videos.into_iter().find(|v| v.id == id) {
        Some(v) => Ok(PathBuf::from(v.path)),
        None => bail!(
            "{target}: no video with this id in {} (see `vidseek videos`)",
            data.display()
        ),
    }
}
