//! What a data folder holds, read without a model, the writer's lock or the indexes.

use std::path::{Path, PathBuf};

use super::{CatalogError, Counts, Integrity, Job, SwitchStatus, Video};

/// What a data folder holds, read without a model or the writer's lock (the CLI's
/// `videos`, `model status`; checks).
#[derive(Clone, Debug, serde::Serialize)]
pub struct LibraryInfo {
    /// The active model and its dimension (None: nothing indexed yet).
    pub model: Option<(String, usize)>,
    /// The active model's package folder, when recorded.
    pub model_dir: Option<PathBuf>,
    /// A switch to another model under way.
    pub switch: Option<SwitchStatus>,
    /// Every video, by path.
    pub videos: Vec<Video>,
    /// Counts of videos, frames and texts.
    pub counts: Counts,
    /// Consistency counters for the active model's vectors.
    pub integrity: Integrity,
    /// The store generation the derived indexes record.
    pub generation: u64,
    /// The 100 most recent jobs, newest first.
    pub jobs: Vec<Job>,
}

/// Reads [`LibraryInfo`] of the data folder `data_dir`.
pub async fn info(data_dir: &Path) -> Result<LibraryInfo, CatalogError> {
    info_in(data_dir, None).await
}

/// Reads [`LibraryInfo`] of the library whose store is `database` (None: the SQLite
/// database in `data_dir`).
pub async fn info_in(data_dir: &Path, database: Option<&str>) -> Result<LibraryInfo, CatalogError> {
    let store = super::open::open_store(data_dir, database).await?;
    let model = store.model().await?;
    let integrity = store.integrity(model.as_ref().map_or("", |m| m.0.as_str())).await?;
    let info = LibraryInfo {
        model_dir: store.model_dir().await?,
        switch: store.switch_status().await?,
        videos: store.videos().await?,
        counts: store.counts().await?,
        generation: store.generation().await?,
        jobs: store.jobs(100).await?,
        integrity,
        model,
    };
    store.close().await;
    Ok(info)
}
