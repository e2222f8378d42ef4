//! `cli`: the command line (clap). Parses, calls the library, prints. Every command is
//! a thin shell over the same functions the HTTP API and the tests call.

mod args;
mod bench;
mod demo;
mod doctor;
mod embed;
mod index;
mod model;
mod search;
mod serve;

use anyhow::Result;

pub use args::Cli;
use args::{BenchCmd, Command};

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    match &cli.command {
        Command::Embed(cmd) => embed::embed_cmd(g, cmd),
        Command::Doctor { json } => doctor::doctor(g, *json),
        Command::Model(cmd) => model::model_cmd(g, cmd),
        Command::ZeroShot { frames, json } => embed::zero_shot(g, *frames, *json),
        Command::Bench(BenchCmd::Gpu(args)) => bench::bench_gpu(g, args),
        Command::Serve(args) => serve::serve(g, args),
        Command::Demo { no_serve, bind } => demo::demo(g, *no_serve, *bind),
        Command::Index {
            paths,
            fps,
            batch,
            decoders,
            exact_resize,
            json,
        } => index::index(g, paths, *fps, *batch, *decoders, *exact_resize, *json),
        Command::Search {
            query,
            k,
            video,
            min_score,
            image,
            frame,
            image_weight,
            templates,
            tags,
            like,
            unlike,
            save_tag,
            json,
        } => {
            let mut req = crate::search::SearchRequest::new(query.clone(), *k);
            req.video = *video;
            req.min_score = min_score.parse()?;
            req.image = image.clone().map(crate::search::ImageQuery::File);
            req.frame = *frame;
            req.image_weight = *image_weight;
            req.templates = search::templates_arg(templates)?;
            req.tags = tags.clone();
            req.like = like.clone();
            req.unlike = unlike.clone();
            search::search_cmd(g, req, save_tag.as_deref(), *json)
        }
        Command::Eval {
            truth,
            min_score,
            templates,
            json,
        } => search::eval_cmd(g, truth, min_score, &search::templates_arg(templates)?, *json),
        Command::Labels(cmd) => search::labels_cmd(g, cmd),
        Command::Tags { json } => search::tags_cmd(g, *json),
        Command::Videos { json } => index::videos(g, *json),
        Command::Remove { target } => index::remove(g, target),
        Command::Prune => index::prune(g),
        Command::Reembed { json } => model::reembed(g, *json),
        Command::SampleFootage {
            dir,
            videos,
            scenes,
            seed,
        } => demo::sample_footage(dir, *videos, *scenes, *seed),
    }
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// The exit status of a failed command: 2 for a query, truth file or argument the user
/// must fix (as clap uses for usage errors), 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    use crate::error::{Classified, Fault};
    use crate::search;
    let bad = e.chain().any(|c| {
        c.downcast_ref::<search::SearchError>()
            .is_some_and(|s| s.fault() == Fault::BadInput)
            || c.downcast_ref::<search::eval::EvalError>()
                .is_some_and(|s| s.fault() == Fault::BadInput)
    });
    if bad { 2 } else { 1 }
}
