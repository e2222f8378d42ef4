//! The durable job queue: jobs and their per-file outcomes.

use serde::Serialize;
use sqlx::Row;

use super::*;

text_enum! {
    /// Where a job is in its life.
    JobState {
        /// Waiting in the queue.
        Enqueued = "enqueued",
        /// Being worked on (or its process was killed: the next start re-queues it).
        Processing = "processing",
        /// Ended well.
        Succeeded = "succeeded",
        /// Ended with an error (or some of its files failed).
        Failed = "failed",
        /// Canceled before it ended.
        Canceled = "canceled",
    }
}

impl JobState {
    /// True once the job will not change any more.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Canceled)
    }
}

text_enum! {
    /// What a job does.
    JobKind {
        /// Index files or folders.
        Index = "index",
        /// Move the library to another model (one path: the package folder).
        Switch = "switch",
    }
}

text_enum! {
    /// What happened to one file of a job.
    FileState {
        /// Indexed now.
        Indexed = "indexed",
        /// Skipped: unchanged since it was indexed.
        Unchanged = "unchanged",
        /// Could not be indexed (the error says why).
        Failed = "failed",
    }
}

/// How long a job's claim holds without a heartbeat: a node that dies (or loses the
/// network) loses its jobs to the other nodes after this long. 30 s, or
/// `VIDSEEK_JOB_LEASE_SECONDS` (at least 2; every node of a library should use the same).
pub fn lease_seconds() -> i64 {
    static LEASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *LEASE.get_or_init(|| {
        std::env::var("VIDSEEK_JOB_LEASE_SECONDS")
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .map_or(30, |s| s.max(2))
    })
}

/// The outcome of claiming a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This process runs it now.
    Mine,
    /// It was canceled or has ended: it must not run.
    Ended,
    /// Another node runs it (its lease holds).
    Elsewhere,
}

/// This process among the nodes of a shared library: host, process id and a nonce
/// (a restarted process with a reused pid is another node).
pub fn node_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "host".into());
        let nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        format!("{}/{}/{nonce:08x}", host.trim(), std::process::id())
    })
}

/// True when `owner` (a [`node_id`]) was a process of this machine that no longer runs.
fn gone_from_here(owner: &str) -> bool {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "host".into());
    let mut parts = owner.split('/');
    let (Some(h), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    h == host.trim()
        && owner != node_id()
        && pid.parse::<u32>().is_ok()
        && !std::path::Path::new("/proc").join(pid).exists()
}

/// A job row.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Job {
    pub id: i64,
    pub kind: JobKind,
    pub state: JobState,
    pub paths: Vec<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub files_total: i64,
    pub files_done: i64,
    pub frames_done: i64,
    pub error: Option<String>,
}

/// Per-file outcome of a job.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct JobFile {
    pub path: String,
    pub state: FileState,
    pub error: Option<String>,
    pub frames: i64,
}

fn job_from(r: &sqlx::any::AnyRow) -> Result<Job> {
    let paths: String = r.get(3);
    Ok(Job {
        id: r.get(0),
        kind: JobKind::parse(r.get(1))?,
        state: JobState::parse(r.get(2))?,
        paths: serde_json::from_str(&paths).unwrap_or_default(),
        created_at: r.get(4),
        started_at: r.get(5),
        finished_at: r.get(6),
        files_total: r.get(7),
        files_done: r.get(8),
        frames_done: r.get(9),
        error: r.get(10),
    })
}

const JOB_COLS: &str =
    "id, kind, state, paths, created_at, started_at, finished_at, files_total, files_done, frames_done, error";

impl Store {
    /// Queues a job, or returns the id of an identical one still waiting to start
    /// (the same kind and paths): asking twice for the same work queues it once.
    pub async fn create_job(&self, kind: JobKind, paths: &[String]) -> Result<i64> {
        let paths = serde_json::to_string(paths).unwrap_or_else(|_| "[]".into());
        let mut tx = self.begin_write().await.map_err(self.q("starting a transaction"))?;
        let waiting: Option<i64> = sqlx::query(
            "SELECT id FROM jobs WHERE state = 'enqueued' AND kind = $1 AND paths = $2 ORDER BY id LIMIT 1",
        )
        .bind(kind.as_str())
        .bind(&paths)
        .fetch_optional(&mut *tx)
        .await
        .map_err(self.q("looking for a waiting job"))?
        .map(|r| r.get(0));
        let id = match waiting {
            Some(id) => id,
            None => sqlx::query(
                "INSERT INTO jobs(kind, state, paths, created_at) VALUES ($1, 'enqueued', $2, $3) RETURNING id",
            )
            .bind(kind.as_str())
            .bind(&paths)
            .bind(now())
            .fetch_one(&mut *tx)
            .await
            .map(|r| r.get(0))
            .map_err(self.q("creating a job"))?,
        };
        self.announce_job(&mut tx, id).await?;
        tx.commit().await.map_err(self.q("committing a job"))?;
        Ok(id)
    }

    pub async fn job(&self, id: i64) -> Result<Option<Job>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLS} FROM jobs WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.read)
        .await
        .map_err(self.q("reading a job"))?
        .as_ref()
        .map(job_from)
        .transpose()
    }

    pub async fn jobs(&self, limit: i64) -> Result<Vec<Job>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLS} FROM jobs ORDER BY id DESC LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(&self.read)
        .await
        .map_err(self.q("listing jobs"))?
        .iter()
        .map(job_from)
        .collect()
    }

    /// Jobs waiting to run, oldest first.
    pub async fn enqueued_jobs(&self, kind: JobKind) -> Result<Vec<Job>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLS} FROM jobs WHERE state = 'enqueued' AND kind = $1 ORDER BY id"
        )))
        .bind(kind.as_str())
        .fetch_all(&self.read)
        .await
        .map_err(self.q("listing jobs"))?
        .iter()
        .map(job_from)
        .collect()
    }

    /// Puts jobs whose process died back in the queue; returns how many. On SQLite
    /// (one process runs the queue: the data folder's lock holder) every job left
    /// `processing`; on a shared server those whose lease has expired, and at once those
    /// of a process of this machine that is gone (a killed CLI run resumes without
    /// waiting out its lease).
    pub async fn requeue_interrupted(&self) -> Result<u64> {
        let every = matches!(self.backend, Backend::Sqlite);
        let mut n = sqlx::query(
            "UPDATE jobs SET state = 'enqueued', owner = NULL
             WHERE state = 'processing' AND ($1 OR lease_until IS NULL OR lease_until < $2)",
        )
        .bind(every)
        .bind(now())
        .execute(&self.write)
        .await
        .map(|r| r.rows_affected())
        .map_err(self.q("re-queueing jobs"))?;
        let running: Vec<(i64, String)> =
            sqlx::query("SELECT id, owner FROM jobs WHERE state = 'processing' AND owner IS NOT NULL")
                .fetch_all(&self.read)
                .await
                .map_err(self.q("re-queueing jobs"))?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
        for (id, owner) in running.iter().filter(|(_, o)| gone_from_here(o)) {
            n += sqlx::query("UPDATE jobs SET state = 'enqueued', owner = NULL WHERE id = $1 AND owner = $2")
                .bind(id)
                .bind(owner)
                .execute(&self.write)
                .await
                .map(|r| r.rows_affected())
                .map_err(self.q("re-queueing jobs"))?;
        }
        Ok(n)
    }

    /// Claims a queued (or interrupted) job for this process until `now + LEASE`.
    pub async fn start_job(&self, id: i64, files_total: i64) -> Result<Claim> {
        let t = now();
        let won = sqlx::query(
            "UPDATE jobs SET state = 'processing', started_at = COALESCE(started_at, $1), files_total = $2,
                    owner = $3, lease_until = $4
             WHERE id = $5 AND (state = 'enqueued'
                   OR (state = 'processing' AND (owner IS NULL OR owner = $3 OR lease_until < $1)))",
        )
        .bind(t)
        .bind(files_total)
        .bind(node_id())
        .bind(t + lease_seconds())
        .bind(id)
        .execute(&self.write)
        .await
        .map_err(self.q("starting a job"))?
        .rows_affected()
            > 0;
        if won {
            return Ok(Claim::Mine);
        }
        Ok(match self.job(id).await?.map(|j| j.state) {
            Some(JobState::Processing) => Claim::Elsewhere,
            _ => Claim::Ended,
        })
    }

    /// Extends this process's claim on a running job; false when it has lost it (the
    /// lease expired and another node took the job, or the job ended or was canceled).
    pub async fn renew_lease(&self, id: i64) -> Result<bool> {
        sqlx::query("UPDATE jobs SET lease_until = $1 WHERE id = $2 AND owner = $3 AND state = 'processing'")
            .bind(now() + lease_seconds())
            .bind(id)
            .bind(node_id())
            .execute(&self.write)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(self.q("renewing a job's lease"))
    }

    /// Hands a job this process runs back to the queue (enqueued, no owner) after the
    /// database failed under it, so that any node takes it up again; false when it was
    /// not this process's any more.
    pub async fn release_job(&self, id: i64) -> Result<bool> {
        sqlx::query(
            "UPDATE jobs SET state = 'enqueued', owner = NULL, lease_until = NULL
             WHERE id = $1 AND owner = $2 AND state = 'processing'",
        )
        .bind(id)
        .bind(node_id())
        .execute(&self.write)
        .await
        .map(|r| r.rows_affected() > 0)
        .map_err(self.q("handing a job back"))
    }

    pub async fn job_progress(&self, id: i64, files_done: i64, frames_done: i64) -> Result<()> {
        sqlx::query("UPDATE jobs SET files_done = $1, frames_done = $2 WHERE id = $3")
            .bind(files_done)
            .bind(frames_done)
            .bind(id)
            .execute(&self.write)
            .await
            .map(|_| ())
            .map_err(self.q("updating a job"))
    }

    /// Ends a job (unless it was canceled meanwhile) in `state`, a final one.
    pub async fn finish_job(&self, id: i64, state: JobState, error: Option<&str>) -> Result<()> {
        debug_assert!(state.is_final());
        // Only the job's own runner ends it (a node that lost its lease writes nothing).
        sqlx::query(
            "UPDATE jobs SET state = $1, error = $2, finished_at = $3
             WHERE id = $4 AND state <> 'canceled' AND (owner IS NULL OR owner = $5)",
        )
        .bind(state.as_str())
        .bind(error)
        .bind(now())
        .bind(id)
        .bind(node_id())
        .execute(&self.write)
        .await
        .map(|_| ())
        .map_err(self.q("finishing a job"))
    }

    /// Marks a job canceled unless it already ended; returns whether it was still live.
    pub async fn cancel_job(&self, id: i64) -> Result<bool> {
        sqlx::query(
            "UPDATE jobs SET state = 'canceled', finished_at = $1 WHERE id = $2 AND state IN ('enqueued', 'processing')",
        )
        .bind(now())
        .bind(id)
        .execute(&self.write)
        .await
        .map(|r| r.rows_affected() > 0)
        .map_err(self.q("canceling a job"))
    }

    pub async fn put_job_file(&self, job: i64, f: &JobFile) -> Result<()> {
        sqlx::query(
            "INSERT INTO job_files(job_id, path, state, error, frames) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT(job_id, path) DO UPDATE SET state = excluded.state, error = excluded.error, frames = excluded.frames",
        )
        .bind(job)
        .bind(&f.path)
        .bind(f.state.as_str())
        .bind(&f.error)
        .bind(f.frames)
        .execute(&self.write)
        .await
        .map(|_| ())
        .map_err(self.q("recording a file result"))
    }

    pub async fn job_files(&self, job: i64) -> Result<Vec<JobFile>> {
        sqlx::query("SELECT path, state, error, frames FROM job_files WHERE job_id = $1 ORDER BY path")
            .bind(job)
            .fetch_all(&self.read)
            .await
            .map_err(self.q("listing file results"))?
            .iter()
            .map(|r| {
                Ok(JobFile {
                    path: r.get(0),
                    state: FileState::parse(r.get(1))?,
                    error: r.get(2),
                    frames: r.get(3),
                })
            })
            .collect()
    }
}
