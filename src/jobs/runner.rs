//! The server's write path: queued index jobs run one at a time on a dedicated thread,
//! so searches on the async executor never wait for decoding or inference; a switch to
//! another model runs on a second thread beside them (while it is under way, index jobs
//! embed new footage with both models). The active model lives here: the API asks for
//! it per request, and a completed switch replaces it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, RwLock};

use super::{IndexOptions, JobError, ProgressSink, Queue, run_job, run_switch};
use crate::catalog::{Catalog, JobKind, JobState};
use crate::embed::{EmbedError, EmbedOptions, Embedder};

pub struct JobRunner {
    catalog: Arc<Catalog>,
    model: RwLock<Arc<Embedder>>,
    /// The model a switch under way is moving to.
    target: RwLock<Option<Arc<Embedder>>>,
    embed: EmbedOptions,
    wake: Mutex<Sender<()>>,
    wake_switch: Mutex<Sender<()>>,
    /// The running job of each thread and its cancel flag.
    running: Mutex<Option<(i64, Arc<AtomicBool>)>>,
    switching: Mutex<Option<(i64, Arc<AtomicBool>)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl JobRunner {
    /// Starts the worker threads; `handle` is the runtime the store's futures run on.
    pub fn start(
        catalog: Arc<Catalog>,
        model: Arc<Embedder>,
        embed: EmbedOptions,
        opts: IndexOptions,
        progress: ProgressSink,
        handle: tokio::runtime::Handle,
    ) -> Arc<Self> {
        let (tx, rx) = channel::<()>();
        let (stx, srx) = channel::<()>();
        let runner = Arc::new(Self {
            catalog,
            model: RwLock::new(model),
            target: RwLock::new(None),
            embed,
            wake: Mutex::new(tx),
            wake_switch: Mutex::new(stx),
            running: Mutex::new(None),
            switching: Mutex::new(None),
        });
        let (me, h, p) = (runner.clone(), handle.clone(), progress.clone());
        let (ready_tx, ready_rx) = channel::<()>();
        std::thread::Builder::new()
            .name("vidseek-jobs".into())
            .spawn(move || {
                // Indexing (and the decoder and inference threads it starts) runs below
                // the searches' priority: they preempt it rather than queue behind it.
                crate::util::priority::lower_priority(crate::util::priority::BACKGROUND_NICE);
                // Jobs a previous process left half-done come first.
                if let Err(e) = h.block_on(Queue::new(&me.catalog).requeue_interrupted()) {
                    tracing::error!("re-queueing interrupted jobs: {e}");
                }
                let _ = ready_tx.send(());
                me.index_loop(&h, &opts, &p, &rx)
            })
            .expect("spawn job thread");
        let (me, h) = (runner.clone(), handle);
        std::thread::Builder::new()
            .name("vidseek-switch".into())
            .spawn(move || {
                crate::util::priority::lower_priority(crate::util::priority::BACKGROUND_NICE);
                let _ = ready_rx.recv(); // after the re-queueing
                me.switch_loop(&h, &progress, &srx)
            })
            .expect("spawn switch thread");
        runner
    }

    /// The model searches use now: the one whose vectors the catalog's index holds
    /// (during the instant a completing switch swaps the index, its target).
    pub fn model(&self) -> Arc<Embedder> {
        let active = self.catalog.model();
        if let Some(t) = self.target.read().unwrap_or_else(|e| e.into_inner()).as_ref()
            && t.model_name() == active
        {
            return t.clone();
        }
        self.model.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits for a wake-up or 5 s; false when the runner is gone.
    fn wait(rx: &Receiver<()>) -> bool {
        !matches!(
            rx.recv_timeout(std::time::Duration::from_secs(5)),
            Err(RecvTimeoutError::Disconnected)
        )
    }

    fn index_loop(
        &self,
        handle: &tokio::runtime::Handle,
        opts: &IndexOptions,
        progress: &ProgressSink,
        rx: &Receiver<()>,
    ) {
        loop {
            let drained = handle.block_on(Queue::new(&self.catalog).drain(JobKind::Index, progress, |job| {
                let cancel = Arc::new(AtomicBool::new(false));
                *lock(&self.running) = Some((job.id, cancel.clone()));
                let mut opts = opts.clone();
                opts.also_embed = self.target.read().unwrap_or_else(|e| e.into_inner()).clone();
                let model = self.model();
                let progress = progress.clone();
                async move {
                    let paths: Vec<PathBuf> = job.paths.iter().map(PathBuf::from).collect();
                    let r = run_job(&self.catalog, model, job.id, &paths, &opts, progress, cancel).await;
                    *lock(&self.running) = None;
                    r
                }
            }));
            if let Err(e) = drained {
                tracing::error!("the job queue: {e}");
            }
            // The new footage's zero-shot tags, from its stored vectors.
            if let Err(e) = handle.block_on(crate::search::tags::ensure(&self.catalog, &self.model())) {
                tracing::warn!("the tags were not brought up to date: {e}");
            }
            if !Self::wait(rx) {
                break;
            }
        }
    }

    fn switch_loop(&self, handle: &tokio::runtime::Handle, progress: &ProgressSink, rx: &Receiver<()>) {
        loop {
            let drained = handle.block_on(Queue::new(&self.catalog).drain(JobKind::Switch, progress, |job| {
                let progress = progress.clone();
                async move {
                    let dir = job.paths.first().map(PathBuf::from).unwrap_or_default();
                    let target = match Embedder::load(&dir, &self.embed) {
                        Ok(m) => Arc::new(m),
                        Err(e) => {
                            self.catalog.cancel_switch().await?;
                            return Err(e.into());
                        }
                    };
                    let cancel = Arc::new(AtomicBool::new(false));
                    *lock(&self.switching) = Some((job.id, cancel.clone()));
                    *self.target.write().unwrap_or_else(|e| e.into_inner()) = Some(target.clone());
                    let r = run_switch(&self.catalog, target.clone(), &dir, job.id, progress, cancel).await;
                    // The active model first, then the target goes: `model()` never hands
                    // out one that does not match the index.
                    if self.catalog.model() == target.model_name() {
                        *self.model.write().unwrap_or_else(|e| e.into_inner()) = target;
                    }
                    *self.target.write().unwrap_or_else(|e| e.into_inner()) = None;
                    *lock(&self.switching) = None;
                    if r.is_err() {
                        self.catalog.cancel_switch().await?;
                    }
                    if let Ok(report) = &r
                        && report.state == JobState::Succeeded
                    {
                        tracing::info!("switched to {} in {:.0} s", report.to, report.wall_seconds);
                    }
                    r
                }
            }));
            if let Err(e) = drained {
                tracing::error!("the switch queue: {e}");
            }
            // Tags follow the new model (from its vectors, without decoding).
            if let Err(e) = handle.block_on(crate::search::tags::ensure(&self.catalog, &self.model())) {
                tracing::warn!("the tags were not brought up to date: {e}");
            }
            if !Self::wait(rx) {
                break;
            }
        }
    }

    /// Queues an index job for `paths` and returns its id.
    pub async fn submit(&self, paths: &[PathBuf]) -> Result<i64, JobError> {
        let keys: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        let id = Queue::new(&self.catalog).submit(JobKind::Index, &keys).await?;
        let _ = lock(&self.wake).send(());
        Ok(id)
    }

    /// Starts moving the library to the package in `dir` (checked by loading it now):
    /// returns the switch job's id. Refused while a switch to another model is under way.
    pub async fn switch_to(&self, dir: &Path) -> Result<i64, JobError> {
        let dir = dir.canonicalize().map_err(|e| {
            JobError::Model(EmbedError::PackageMissing {
                dir: PathBuf::from(format!("{} ({e})", dir.display())),
            })
        })?;
        let probe = Embedder::load(&dir, &self.embed)?;
        if probe.model_name() == self.catalog.model() {
            return Err(JobError::AlreadyActive(probe.model_name().to_string()));
        }
        if let Some(p) = self.catalog.pending_switch().await?
            && p.model != probe.model_name()
        {
            return Err(JobError::SwitchUnderWay(p.model));
        }
        let id = Queue::new(&self.catalog)
            .submit(JobKind::Switch, &[dir.display().to_string()])
            .await?;
        let _ = lock(&self.wake_switch).send(());
        Ok(id)
    }

    /// Cancels a queued or running job (a switch job abandons the switch); false when
    /// it had already ended.
    pub async fn cancel(&self, id: i64) -> Result<bool, JobError> {
        for slot in [&self.running, &self.switching] {
            if let Some((running, flag)) = lock(slot).as_ref()
                && *running == id
            {
                flag.store(true, Ordering::Relaxed);
            }
        }
        let live = self.catalog.queue().cancel(id).await?;
        if live
            && let Some(p) = self.catalog.pending_switch().await?
            && p.job_id == id
            && lock(&self.switching).is_none()
        {
            self.catalog.cancel_switch().await?;
        }
        Ok(live)
    }
}
