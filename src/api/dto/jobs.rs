//! Jobs: their state, progress and per-file outcomes.

use serde::Serialize;
use utoipa::ToSchema;

use crate::catalog::{self, FileState, Job, JobFile, JobKind, JobState};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStateDto {
    Enqueued,
    Processing,
    Succeeded,
    Failed,
    Canceled,
}

impl From<JobState> for JobStateDto {
    fn from(s: JobState) -> Self {
        match s {
            JobState::Enqueued => Self::Enqueued,
            JobState::Processing => Self::Processing,
            JobState::Succeeded => Self::Succeeded,
            JobState::Failed => Self::Failed,
            JobState::Canceled => Self::Canceled,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobKindDto {
    Index,
    Switch,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileStateDto {
    Indexed,
    Unchanged,
    Failed,
}

/// What happened to one file of a job.
#[derive(Serialize, ToSchema)]
pub struct JobFileDto {
    pub path: String,
    pub state: FileStateDto,
    pub error: Option<String>,
    pub frames: i64,
}

impl From<JobFile> for JobFileDto {
    fn from(f: JobFile) -> Self {
        Self {
            path: f.path,
            state: match f.state {
                FileState::Indexed => FileStateDto::Indexed,
                FileState::Unchanged => FileStateDto::Unchanged,
                FileState::Failed => FileStateDto::Failed,
            },
            error: f.error,
            frames: f.frames,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct JobProgress {
    pub files_done: i64,
    pub files_total: i64,
    pub frames_done: i64,
    pub frames_per_second: f64,
}

/// An upload that started a job.
#[derive(Serialize, ToSchema)]
pub struct Uploaded {
    pub path: String,
    pub bytes: u64,
}

/// A job with its progress and per-file outcomes.
#[derive(Serialize, ToSchema)]
pub struct JobDto {
    pub id: i64,
    pub kind: JobKindDto,
    pub state: JobStateDto,
    pub paths: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
    pub progress: JobProgress,
    pub files: Vec<JobFileDto>,
    /// `DELETE /api/jobs/{id}`: whether it was still live when canceled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canceled: Option<bool>,
    /// `POST /api/upload`: where the file was stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uploaded: Option<Uploaded>,
}

impl JobDto {
    pub fn new(job: Job, files: Vec<JobFile>) -> Self {
        let elapsed = match (job.started_at, job.finished_at) {
            (Some(s), Some(f)) => (f - s).max(1),
            (Some(s), None) => (catalog::now() - s).max(1),
            _ => 1,
        };
        let fps = if job.started_at.is_some() {
            job.frames_done as f64 / elapsed as f64
        } else {
            0.0
        };
        Self {
            id: job.id,
            kind: match job.kind {
                JobKind::Index => JobKindDto::Index,
                JobKind::Switch => JobKindDto::Switch,
            },
            state: job.state.into(),
            progress: JobProgress {
                files_done: job.files_done,
                files_total: job.files_total,
                frames_done: job.frames_done,
                frames_per_second: fps,
            },
            paths: job.paths,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            error: job.error,
            files: files.into_iter().map(Into::into).collect(),
            canceled: None,
            uploaded: None,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Jobs {
    pub jobs: Vec<JobDto>,
}
