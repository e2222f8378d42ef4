//! The one owner of the job queue: jobs are queued, canceled and run through here, by
//! the CLI (`vidseek index`, `model use`) and the server (`JobRunner`) alike.

use std::future::Future;

use super::{JobError, Progress, ProgressSink};
use crate::catalog::{Catalog, Job, JobKind, JobState};
use crate::error::Classified;

/// The job queue of a catalog.
pub struct Queue<'a> {
    catalog: &'a Catalog,
}

impl<'a> Queue<'a> {
    /// The queue of `catalog`.
    pub fn new(catalog: &'a Catalog) -> Self {
        Self { catalog }
    }

    /// Queues `kind` work on `paths` (an identical job still waiting is reused).
    pub async fn submit(&self, kind: JobKind, paths: &[String]) -> Result<i64, JobError> {
        Ok(self.catalog.queue().create(kind, paths).await?)
    }

    /// Puts jobs a killed process left running back in the queue; returns how many.
    pub async fn requeue_interrupted(&self) -> Result<u64, JobError> {
        Ok(self.catalog.queue().requeue_interrupted().await?)
    }

    /// Runs every waiting job of `kind`, oldest first, with `run`, until none is left
    /// (jobs queued meanwhile included). A job whose run fails is recorded as failed
    /// with the reason (and the `Finished` event sent), and the next one runs; each
    /// outcome is returned in order.
    pub async fn drain<T, F, Fut>(
        &self,
        kind: JobKind,
        progress: &ProgressSink,
        mut run: F,
    ) -> Result<Vec<Result<T, JobError>>, JobError>
    where
        F: FnMut(Job) -> Fut,
        Fut: Future<Output = Result<T, JobError>>,
    {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            if self.catalog.is_shared() {
                // Jobs of nodes that died (their lease expired) are anyone's again.
                self.requeue_interrupted().await?;
            }
            let waiting: Vec<Job> = self
                .catalog
                .queue()
                .waiting(kind)
                .await?
                .into_iter()
                .filter(|j| seen.insert(j.id))
                .collect();
            if waiting.is_empty() {
                return Ok(out);
            }
            for job in waiting {
                let id = job.id;
                let r = run(job).await;
                if let Err(e) = &r
                    && self.catalog.is_shared()
                    && e.fault() == crate::error::Fault::Unavailable
                {
                    // The shared database failed under the job: it is not the job's
                    // fault, so it goes back to the queue (or, if even that cannot be
                    // written, its lease runs out) and is taken up again; files already
                    // committed are then skipped as unchanged.
                    tracing::warn!("job {id} interrupted: {e}");
                    if let Err(e2) = self.catalog.queue().release(id).await {
                        tracing::warn!("job {id}: handing it back: {e2}");
                    }
                    return r.map(|_| out);
                }
                if let Err(e) = &r {
                    tracing::warn!("job {id} failed: {e}");
                    self.catalog
                        .queue()
                        .finish(id, JobState::Failed, Some(&e.to_string()))
                        .await?;
                    progress(Progress::Finished {
                        job_id: id,
                        state: JobState::Failed,
                        indexed: 0,
                        unchanged: 0,
                        failed: 0,
                    });
                }
                out.push(r);
            }
        }
    }
}
