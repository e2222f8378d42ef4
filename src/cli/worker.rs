//! `vidseek worker` and `vidseek index --enqueue-only [--wait]`: the job queue of a
//! shared (PostgreSQL) library worked on by as many machines as there are workers.
//! A worker drains the queue (jobs whose node died included), then sleeps until a new
//! job is announced (`LISTEN`) or its poll interval passes; Ctrl-C stops it after the
//! job at hand (a worker killed outright loses its job to another once the lease ends).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::args::{Global, WorkerArgs};
use super::index::{drain_jobs, index_options, print_report};
use super::output::Output;
use super::{runtime, with_library};
use crate::catalog::{Access, JobKind, JobState, QueueHandle};
use crate::jobs::IndexOptions;
use crate::search;

fn needs_shared(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} works on the job queue of a library shared through PostgreSQL: give --database URL (or \
         VIDSEEK_DATABASE_URL). A library in a data folder is indexed by `vidseek index` or a running `vidseek serve`"
    )
}

pub(super) fn worker(g: &Global, args: &WorkerArgs) -> Result<()> {
    if g.database().is_none() {
        return Err(needs_shared("`vidseek worker`"));
    }
    if !(args.poll.is_finite() && args.poll > 0.0) {
        bail!("--poll must be a positive number of seconds (got {})", args.poll);
    }
    let out = Output::new(args.json);
    let base = index_options(args.work.fps, args.work.batch, args.work.decoders)?;
    with_library(g, Access::Write, async |catalog, model| {
        let queue = catalog.queue();
        let mut waker = queue.waker().await;
        eprintln!(
            "vidseek worker {} with {}: working on the library's queue ({})",
            crate::catalog::node_id(),
            model.model_name(),
            if waker.listening() {
                "woken as jobs are queued"
            } else {
                "polling"
            }
        );
        let mut stop = std::pin::pin!(tokio::signal::ctrl_c());
        let mut outage = Outage::default();
        loop {
            let pause = match work_once(g, catalog, model, &base, out).await {
                Ok(()) => outage.over(),
                // The database is down or cut off: wait for it, then take up the queue
                // again (a job it held is taken over by whoever looks first once its
                // lease has run out; nothing half-written was committed).
                Err(e) if unavailable(&e) => outage.wait(&e),
                Err(e) => return Err(e),
            };
            tokio::select! {
                _ = &mut stop => break,
                _ = waker.wait(pause.unwrap_or(Duration::from_secs_f64(args.poll))) => {}
            }
        }
        eprintln!("vidseek worker: stopped");
        Ok(())
    })
}

/// One look at the queue: the settings read afresh (another node may have changed
/// them), every job there run, the tags brought up to date.
async fn work_once(
    g: &Global,
    catalog: &crate::catalog::Catalog,
    model: &std::sync::Arc<crate::embed::Embedder>,
    base: &IndexOptions,
    out: Output,
) -> Result<()> {
    let opts = IndexOptions {
        also_embed: super::index::switch_target(g, catalog).await?,
        ocr: super::ocr::ocr_for(g, catalog).await?,
        speech: super::speech::speech_for(g, catalog).await?,
        ..base.clone()
    };
    let outcomes = drain_jobs(catalog, model.clone(), &opts, out).await?;
    let ran = report_outcomes(outcomes, out)?;
    if ran && let Err(e) = search::tags::ensure(catalog, model).await {
        tracing::warn!("the tags were not brought up to date: {e}");
    }
    Ok(())
}

/// Whether a failure is the database's being unavailable (down, unreachable, shutting
/// down): something to wait out, not a reason to stop.
fn unavailable(e: &anyhow::Error) -> bool {
    use crate::error::{Classified, Fault};
    e.chain().any(|c| {
        c.downcast_ref::<crate::catalog::CatalogError>()
            .is_some_and(|s| s.fault() == Fault::Unavailable)
            || c.downcast_ref::<crate::catalog::StoreError>()
                .is_some_and(|s| s.is_unavailable())
            || c.downcast_ref::<crate::jobs::JobError>()
                .is_some_and(|s| s.fault() == Fault::Unavailable)
    })
}

/// The worker's view of a database outage: it says so once, then waits 1, 2, 4 ... up
/// to 30 s between tries, and says when the database is back.
#[derive(Default)]
struct Outage {
    tries: u32,
}

impl Outage {
    fn wait(&mut self, e: &anyhow::Error) -> Option<Duration> {
        if self.tries == 0 {
            eprintln!("vidseek worker: the database is unavailable ({e:#}); waiting for it");
        }
        self.tries += 1;
        Some(Duration::from_secs((1u64 << (self.tries - 1).min(5)).min(30)))
    }

    fn over(&mut self) -> Option<Duration> {
        if self.tries > 0 {
            eprintln!("vidseek worker: the database is back; working on the queue again");
        }
        self.tries = 0;
        None
    }
}

/// Prints each job this worker ran (not those another node took first); true if any.
fn report_outcomes(outcomes: Vec<Result<crate::jobs::JobReport, crate::jobs::JobError>>, out: Output) -> Result<bool> {
    let mut ran = false;
    for o in outcomes {
        match o {
            Ok(r) if r.state == JobState::Processing => {} // another node's
            Ok(r) => {
                ran = true;
                out.print_line(&r, || print_report(&r))?;
            }
            Err(e) => {
                ran = true;
                eprintln!("a job failed: {e}");
            }
        }
    }
    Ok(ran)
}

/// `index --enqueue-only`: queues the job and prints its id; with `wait`, shows its
/// progress until it ends and fails when it did.
pub(super) fn enqueue(g: &Global, paths: &[PathBuf], wait: bool, out: Output) -> Result<()> {
    let Some(db) = g.database() else {
        return Err(needs_shared("`vidseek index --enqueue-only`"));
    };
    // Every node must read the same path: absolute, as this machine resolves it.
    let keys = paths
        .iter()
        .map(|p| {
            p.canonicalize()
                .with_context(|| format!("{}: no such file or folder", p.display()))
                .map(|p| p.display().to_string())
        })
        .collect::<Result<Vec<_>>>()?;
    runtime()?.block_on(async {
        let handle = QueueHandle::open(&g.data_dir(), Some(db)).await?;
        let r = enqueue_in(&handle, &keys, wait, out).await;
        handle.close().await;
        r
    })
}

async fn enqueue_in(handle: &QueueHandle, keys: &[String], wait: bool, out: Output) -> Result<()> {
    let queue = handle.queue();
    let id = queue.create(JobKind::Index, keys).await?;
    if !wait {
        return out.print(&json!({"job_id": id, "state": "enqueued"}), || {
            println!("job {id} queued: a worker will take it (`vidseek worker --database URL`)")
        });
    }
    if !out.is_json() {
        eprintln!("job {id} queued; waiting for the workers (Ctrl-C stops waiting, not the job)");
    }
    let mut last = (-1, -1);
    let job = loop {
        let job = queue
            .job(id)
            .await?
            .with_context(|| format!("job {id} is gone from the queue"))?;
        if !out.is_json() && (job.files_done, job.files_total) != last && job.files_total > 0 {
            eprintln!(
                "job {id}: {} of {} files, {} frames",
                job.files_done, job.files_total, job.frames_done
            );
            last = (job.files_done, job.files_total);
        }
        if !matches!(job.state, JobState::Enqueued | JobState::Processing) {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let files = queue.files(id).await?;
    out.print(&json!({"job": job, "files": files}), || {
        println!(
            "job {id}: {} ({} files, {} frames){}",
            job.state,
            job.files_done,
            job.frames_done,
            job.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
        );
        for f in files.iter().filter(|f| f.error.is_some()) {
            eprintln!("  failed: {}: {}", f.path, f.error.as_deref().unwrap_or_default());
        }
    })?;
    if job.state != JobState::Succeeded {
        bail!("job {id} ended {}", job.state);
    }
    Ok(())
}
