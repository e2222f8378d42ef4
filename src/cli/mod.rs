//! `cli`: the command line (clap). Parses, calls the library, prints. Every command is
//! a thin shell over the same functions the HTTP API and the tests call.
//!
//! Layout: `args` holds every clap definition (`global` the options every command takes
//! and what they resolve to); one file per command group runs them
//! (`index`, `search`, `clip`, `model`, `ocr`, `embed`, `doctor`, `serve`, `mcp`, `migrate`,
//! `demo`, `bench`); `output`
//! prints an answer as text or as JSON (`--json`), `progress` draws the progress bar.

mod args;
mod bench;
mod clip;
mod demo;
mod doctor;
mod embed;
mod global;
mod index;
mod keys;
mod mcp;
mod migrate;
mod model;
mod ocr;
mod output;
mod progress;
mod search;
mod serve;
mod speech;
mod worker;

use std::sync::Arc;

use anyhow::Result;

pub use args::Cli;
use args::{BenchCmd, Command, Global};
use output::Output;

use crate::catalog::{Access, Catalog};
use crate::embed::Embedder;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    // A command that prints its answer ends quietly when its reader goes (`| head`), as
    // Unix tools do; the server and the footage writers (pipes into ffmpeg) keep
    // treating a closed pipe as an error to handle.
    if !matches!(
        cli.command,
        Command::Serve(_) | Command::Mcp(_) | Command::Demo(_) | Command::SampleFootage(_)
    ) {
        crate::util::end_on_broken_pipe();
    }
    match &cli.command {
        Command::Embed(cmd) => embed::embed_cmd(g, cmd),
        Command::Doctor { json } => doctor::doctor(g, Output::new(*json)),
        Command::Model(cmd) => model::model_cmd(g, cmd),
        Command::ZeroShot { frames, json } => embed::zero_shot(g, *frames, Output::new(*json)),
        Command::Bench(BenchCmd::Gpu(args)) => bench::bench_gpu(g, args),
        Command::Serve(args) => serve::serve(g, args),
        Command::Mcp(args) => mcp::mcp(g, args),
        Command::Demo(args) => demo::demo(g, args),
        Command::Index(args) => index::index(g, args),
        Command::Worker(args) => worker::worker(g, args),
        Command::Search(args) => search::search_cmd(g, args),
        Command::Eval(args) => search::eval_cmd(g, args),
        Command::Labels(cmd) => search::labels_cmd(g, cmd),
        Command::Keys(cmd) => keys::keys_cmd(g, cmd),
        Command::Migrate { to, json } => migrate::migrate(g, to, Output::new(*json)),
        Command::Tags { json } => search::tags_cmd(g, Output::new(*json)),
        Command::Videos { json } => index::videos(g, Output::new(*json)),
        Command::Clip(args) => clip::clip(g, args),
        Command::Remove { target } => index::remove(g, target),
        Command::Text { target, json } => ocr::text_cmd(g, target, Output::new(*json)),
        Command::Transcript { target, srt, vtt, json } => {
            use speech::TranscriptFormat as F;
            let f = if *json {
                F::Json
            } else if *srt {
                F::Srt
            } else if *vtt {
                F::Vtt
            } else {
                F::Text
            };
            speech::transcript_cmd(g, target, f)
        }
        Command::Prune => index::prune(g),
        Command::Reembed { json } => model::reembed(g, Output::new(*json)),
        Command::SampleFootage(args) => demo::sample_footage(args),
    }
}

/// The runtime a command's async calls run on: one thread (the server builds its own).
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// Loads the model, opens the library with it, runs `f` and closes the library: the
/// frame of every command that opens the library with the model.
fn with_library<T>(
    g: &Global,
    access: Access,
    f: impl AsyncFnOnce(&Catalog, &Arc<Embedder>) -> Result<T>,
) -> Result<T> {
    let model = Arc::new(g.load_model()?);
    runtime()?.block_on(async {
        let catalog = g.open_library(&model, access).await?;
        let r = f(&catalog, &model).await;
        catalog.close().await;
        r
    })
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
            || c.downcast_ref::<crate::export::ExportError>()
                .is_some_and(|s| s.fault() == Fault::BadInput)
    });
    if bad { 2 } else { 1 }
}
