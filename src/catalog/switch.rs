//! Moving the library to another model without downtime: the switch recorded, the new
//! model's vectors added beside the old ones, and the hand-over (a new vector index built
//! from the store, then swapped in with the active model under the write lock).

use std::path::{Path, PathBuf};

use super::rebuild::{catch_up, delete_gone, fill_from_store, load_directory};
use super::store::PgTable;
use super::vectors::Vectors;
use super::{Catalog, CatalogError, Switch, SwitchStatus, Video};
use crate::types::{FrameId, VideoId};

impl Catalog {
    /// Remembers the active model's package folder, so the library can be opened later
    /// without `--model` (and knows where its model is after a switch).
    pub async fn remember_model_dir(&self, dir: &Path) -> Result<(), CatalogError> {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        if self.store.pending_switch().await?.is_none()
            && self.store.model_dir().await?.as_deref() != Some(dir.as_path())
        {
            self.store.set_model_dir(&dir).await?;
        }
        Ok(())
    }

    /// The active model's package folder, when recorded.
    pub async fn model_dir(&self) -> Result<Option<PathBuf>, CatalogError> {
        Ok(self.store.model_dir().await?)
    }

    /// The switch to another model under way, if any.
    pub async fn pending_switch(&self) -> Result<Option<Switch>, CatalogError> {
        Ok(self.store.pending_switch().await?)
    }

    /// The switch under way with its progress.
    pub async fn switch_status(&self) -> Result<Option<SwitchStatus>, CatalogError> {
        Ok(self.store.switch_status().await?)
    }

    /// Records a switch to another model (its vectors are then added alongside).
    /// On pgvector the new model's table is made first (empty, its own dimension):
    /// every vector of the new model written from then on goes there too.
    pub async fn begin_switch(&self, s: &Switch) -> Result<(), CatalogError> {
        if self.pg_table().is_some() {
            self.store.pg_create(&PgTable::new(&s.model, s.dim)).await?;
        }
        Ok(self.store.begin_switch(s).await?)
    }

    /// Abandons a switch: the new model's vectors go, the active model stays.
    pub async fn cancel_switch(&self) -> Result<(), CatalogError> {
        self.store.cancel_switch().await?;
        if let Some(active) = self.pg_table() {
            self.store.pg_drop_except(Some(&active)).await?;
        }
        Ok(())
    }

    /// The active pgvector table (None: the embedded backend).
    pub(super) fn pg_table(&self) -> Option<PgTable> {
        match &*self.vectors.read().unwrap_or_else(|e| e.into_inner()) {
            Vectors::Pg(t) => Some(t.clone()),
            Vectors::Embedded(_) => None,
        }
    }

    /// Frames of `model` still to embed, and of all frames.
    pub async fn vectors_missing(&self, model: &str) -> Result<(i64, i64), CatalogError> {
        Ok(self.store.vectors_missing(model).await?)
    }

    /// Indexed videos lacking vectors of `model`.
    pub async fn videos_missing(&self, model: &str) -> Result<Vec<Video>, CatalogError> {
        Ok(self.store.videos_missing(model).await?)
    }

    /// Adds `model`'s vectors for frames (one transaction); the vector index is not
    /// touched: they are for a model the index does not hold yet.
    pub async fn put_vectors(&self, model: &str, vectors: &[(FrameId, Vec<f32>)]) -> Result<u64, CatalogError> {
        Ok(self.store.put_vectors(model, vectors).await?)
    }

    /// Completes a switch once every frame has a vector of the new model: builds the
    /// new vector index from the store (searches keep using the old one meanwhile),
    /// then, holding the write lock, brings it level with frames added or removed
    /// during the build, commits the switch in one store transaction and swaps the
    /// index and the active model in. Returns the ids of videos that could not be
    /// re-embedded (kept as failed, with the reason).
    pub async fn finish_switch(&self, s: &Switch) -> Result<Vec<VideoId>, CatalogError> {
        if self.pg_table().is_some() {
            return self.finish_switch_pg(s).await;
        }
        let frames = self.store.counts().await?.frames as usize;
        let empty = self
            .vectors
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .embedded()
            .map(|v| v.empty_like(&s.model, s.dim, frames))
            .expect("the embedded backend");
        let mut fresh = fill_from_store(empty, &self.store).await?;
        let _w = self.writes.lock().await;
        catch_up(fresh.as_mut(), &self.store).await?;
        delete_gone(fresh.as_mut(), &self.store).await?;
        let switched = self.store.finish_switch(s).await?;
        let (generation, stale) = (switched.generation, switched.stale);
        self.text.update(&stale, &[], generation)?;
        fresh.checkpoint(&self.data_dir.join("vectors"), generation)?;
        {
            // Both at once for readers: `model()` waits while the index changes hands, so
            // no caller sees the new index under the old model's name (a search that
            // started before retries with the model it then gets). Nothing takes the
            // vector lock and then this one, so the order cannot deadlock.
            let mut active = self.active.write().unwrap_or_else(|e| e.into_inner());
            *self.vectors.write().unwrap_or_else(|e| e.into_inner()) = Vectors::Embedded(fresh);
            *active = (s.model.clone(), s.dim);
        }
        self.frames.clear();
        self.set_directory(load_directory(&self.store).await?);
        Ok(stale)
    }

    /// [`Catalog::finish_switch`] on pgvector: the new model's table (written since the
    /// switch began) completed from the store and indexed, the switch committed, the
    /// table swapped in and the old model's table dropped.
    async fn finish_switch_pg(&self, s: &Switch) -> Result<Vec<VideoId>, CatalogError> {
        let fresh = PgTable::new(&s.model, s.dim);
        self.store.pg_create(&fresh).await?;
        self.store.pg_fill(&fresh).await?;
        self.store.pg_index(&fresh).await?;
        let _w = self.writes.lock().await;
        self.store.pg_fill(&fresh).await?;
        let switched = self.store.finish_switch(s).await?;
        let (generation, stale) = (switched.generation, switched.stale);
        self.text.update(&stale, &[], generation)?;
        {
            let mut active = self.active.write().unwrap_or_else(|e| e.into_inner());
            *self.vectors.write().unwrap_or_else(|e| e.into_inner()) = Vectors::Pg(fresh.clone());
            *active = (s.model.clone(), s.dim);
        }
        self.store.pg_drop_except(Some(&fresh)).await?;
        self.frames.clear();
        self.set_directory(load_directory(&self.store).await?);
        Ok(stale)
    }
}
