//! Planning a job: which files it covers (library scan), which are unchanged since they
//! were indexed (size, mtime and content hash), and the stream facts of the rest, each
//! file probed once (the decoders reuse the facts). Unreadable files fail here, alone.

use std::path::PathBuf;

use super::{FileReport, JobError, JobReport, Outcome, Progress, ProgressSink};
use crate::catalog::{Catalog, Claim, FileState, VideoStatus};
use crate::decode::{self, VideoInfo};
use crate::library::{self, FileIdentity};

/// A file to index, with what is known of it.
pub(super) struct Work {
    pub path: PathBuf,
    pub identity: FileIdentity,
    /// Its stream facts, or why they could not be read (the file then fails).
    pub info: Result<VideoInfo, String>,
}

/// Plans job `job_id` over `paths`: claims it, records unreadable and unchanged files on
/// the job and in `report`, and returns the files to index. Err(claim) when it is not
/// this process's to run (canceled while it waited, or another node runs it).
pub(super) async fn plan(
    catalog: &Catalog,
    job_id: i64,
    paths: &[PathBuf],
    report: &mut JobReport,
    progress: &ProgressSink,
) -> Result<Result<Vec<Work>, Claim>, JobError> {
    let scan = library::scan(paths)?;
    match catalog.queue().start(job_id, scan.files.len() as i64).await? {
        Claim::Mine => {}
        other => return Ok(Err(other)),
    }
    for (path, reason) in &scan.errors {
        let r = FileReport {
            path: path.display().to_string(),
            outcome: Outcome::Failed {
                error: format!("{}: cannot read: {reason}", path.display()),
            },
            duration: 0.0,
        };
        record_unreadable(catalog, job_id, &r).await?;
        report.files.push(r);
    }
    let mut work = Vec::new();
    for path in &scan.files {
        let key = path.display().to_string();
        let identity = match library::identity(path) {
            Ok(i) => i,
            Err(e) => {
                let r = FileReport {
                    path: key.clone(),
                    outcome: Outcome::Failed {
                        error: format!("{key}: cannot read: {e}"),
                    },
                    duration: 0.0,
                };
                record_unreadable(catalog, job_id, &r).await?;
                report.files.push(r);
                continue;
            }
        };
        if let Some(v) = catalog.video_by_path(&key).await?
            && v.status == VideoStatus::Indexed
            && v.size == identity.size as i64
            && v.mtime_ns == identity.mtime_ns
            && v.hash == identity.hash
        {
            let r = FileReport {
                path: key,
                outcome: Outcome::Unchanged,
                duration: v.duration.unwrap_or(0.0),
            };
            record(catalog, job_id, &r).await?;
            report.files.push(r);
            continue;
        }
        let info = decode::probe(path).map_err(|e| e.to_string());
        work.push(Work {
            path: path.clone(),
            identity,
            info,
        });
    }
    progress(Progress::Planned {
        job_id,
        files: scan.files.len() + scan.errors.len(),
        to_index: work.len(),
        video_seconds: work
            .iter()
            .filter_map(|w| w.info.as_ref().ok())
            .map(|i| i.duration)
            .sum(),
    });
    Ok(Ok(work))
}

/// Records a file's outcome on its job.
pub(super) async fn record(catalog: &Catalog, job_id: i64, r: &FileReport) -> Result<(), JobError> {
    let (state, error, frames) = match &r.outcome {
        Outcome::Indexed { frames, .. } => (FileState::Indexed, None, *frames as i64),
        Outcome::Unchanged => (FileState::Unchanged, None, 0),
        Outcome::Failed { error } => (FileState::Failed, Some(error.clone()), 0),
    };
    catalog.queue().file(job_id, &r.path, state, error, frames).await?;
    Ok(())
}

/// A file that could not even be read: recorded as a failed video (so `videos` and the
/// library view show it with its reason) and on the job.
async fn record_unreadable(catalog: &Catalog, job_id: i64, r: &FileReport) -> Result<(), JobError> {
    if let Outcome::Failed { error } = &r.outcome {
        catalog.put_failed(&r.path, 0, 0, "", error).await?;
    }
    record(catalog, job_id, r).await
}
