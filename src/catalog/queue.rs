//! The job queue's rows (in the store): the one place jobs change state. The drain that
//! runs them is `jobs::Queue`; this is what it and the API read and write.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use std::path::Path;

use super::store::{Claim, JobWaker, Store, lease_seconds, node_id};
use super::{CatalogError, FileState, Job, JobFile, JobKind, JobState};

/// Renews a job's lease until dropped.
pub struct Heartbeat {
    task: tokio::task::JoinHandle<()>,
    lost: Arc<AtomicBool>,
}

impl Heartbeat {
    /// True once another node has taken the job.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The job rows of a catalog.
#[derive(Clone, Copy)]
pub struct Queue<'a> {
    store: &'a Store,
}

type Result<T> = std::result::Result<T, CatalogError>;

impl<'a> Queue<'a> {
    pub(super) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    /// Something to wait on for new jobs: woken by their announcement on PostgreSQL,
    /// a plain timeout elsewhere.
    pub async fn waker(&self) -> JobWaker {
        self.store.job_waker().await
    }

    /// Queues a job (an identical one still waiting is reused); returns its id.
    pub async fn create(&self, kind: JobKind, paths: &[String]) -> Result<i64> {
        Ok(self.store.create_job(kind, paths).await?)
    }

    pub async fn job(&self, id: i64) -> Result<Option<Job>> {
        Ok(self.store.job(id).await?)
    }

    /// The most recent jobs, newest first.
    pub async fn recent(&self, limit: i64) -> Result<Vec<Job>> {
        Ok(self.store.jobs(limit).await?)
    }

    /// Jobs of `kind` waiting to run, oldest first.
    pub async fn waiting(&self, kind: JobKind) -> Result<Vec<Job>> {
        Ok(self.store.enqueued_jobs(kind).await?)
    }

    /// Puts jobs a killed process left `processing` back in the queue.
    pub async fn requeue_interrupted(&self) -> Result<u64> {
        Ok(self.store.requeue_interrupted().await?)
    }

    /// Claims a job for this process (marks it running); see [`Claim`].
    pub async fn start(&self, id: i64, files_total: i64) -> Result<Claim> {
        Ok(self.store.start_job(id, files_total).await?)
    }

    /// Keeps this process's claim on job `id` alive while the returned guard lives: the
    /// lease is renewed every third of its length. When the claim is lost (another node
    /// took the job after this one was cut off for longer than the lease) `cancel` is
    /// set, so that nothing more of it is committed here, and [`Heartbeat::lost`] says
    /// so: the job's state is then the other node's to write.
    pub fn heartbeat(&self, id: i64, cancel: Arc<AtomicBool>) -> Heartbeat {
        let store = self.store.clone();
        let lost = Arc::new(AtomicBool::new(false));
        let flag = lost.clone();
        let every = std::time::Duration::from_secs((lease_seconds() / 3).max(1) as u64);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match store.renew_lease(id).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!("job {id}: this node ({}) lost its claim; stopping it here", node_id());
                        flag.store(true, Ordering::Relaxed);
                        cancel.store(true, Ordering::Relaxed);
                        return;
                    }
                    // The server is unreachable: keep trying; the lease may still hold.
                    Err(e) => tracing::warn!("job {id}: renewing its lease: {e}"),
                }
            }
        });
        Heartbeat { task, lost }
    }

    pub async fn progress(&self, id: i64, files_done: i64, frames_done: i64) -> Result<()> {
        Ok(self.store.job_progress(id, files_done, frames_done).await?)
    }

    /// Hands a job this process runs back to the queue (see `Store::release_job`).
    pub async fn release(&self, id: i64) -> Result<bool> {
        Ok(self.store.release_job(id).await?)
    }

    /// Ends a job in a final state (a canceled job stays canceled).
    pub async fn finish(&self, id: i64, state: JobState, error: Option<&str>) -> Result<()> {
        Ok(self.store.finish_job(id, state, error).await?)
    }

    /// Cancels a job that has not ended; false when it had.
    pub async fn cancel(&self, id: i64) -> Result<bool> {
        Ok(self.store.cancel_job(id).await?)
    }

    /// Records what happened to one file of a job.
    pub async fn file(&self, job: i64, path: &str, state: FileState, error: Option<String>, frames: i64) -> Result<()> {
        Ok(self
            .store
            .put_job_file(
                job,
                &JobFile {
                    path: path.to_string(),
                    state,
                    error,
                    frames,
                },
            )
            .await?)
    }

    pub async fn files(&self, job: i64) -> Result<Vec<JobFile>> {
        Ok(self.store.job_files(job).await?)
    }
}

/// The job queue of a library opened without a model or the data folder's lock (the
/// CLI's `index --enqueue-only`, which hands the work to the workers and may wait).
pub struct QueueHandle {
    store: Store,
}

impl QueueHandle {
    /// The queue of the library at `data_dir` / `database`.
    pub async fn open(data_dir: &Path, database: Option<&str>) -> Result<Self> {
        Ok(Self {
            store: super::open::open_store(data_dir, database).await?,
        })
    }

    pub fn queue(&self) -> Queue<'_> {
        Queue::new(&self.store)
    }

    pub async fn close(self) {
        self.store.close().await;
    }
}
