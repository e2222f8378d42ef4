//! Following a shared store: on a library in PostgreSQL other machines write too (their
//! workers index, their API nodes delete), and this node's derived indexes (vector graph,
//! text index, directory) must catch up with what they committed. The store's generation
//! says that something changed; the directory of videos read back from the store says
//! what: videos that are new, gone, or whose frames changed (ids are never reused, so a
//! replaced video is a removal plus an addition).

use std::sync::atomic::Ordering;

use super::rebuild::{load_directory, text_doc};
use super::vectors::Vectors;
use super::{Catalog, CatalogError, Listed};
use crate::types::{FrameId, VideoId};

/// What one [`Catalog::follow`] brought in.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Followed {
    /// The store's generation the indexes now reflect.
    pub generation: u64,
    pub added: usize,
    pub removed: usize,
}

impl Catalog {
    /// Records that this node's own write at `generation` is in its indexes: when they
    /// already reflected everything before it, they now reflect `generation` too, and
    /// the next [`Catalog::follow`] need not read the directory back for it (generations
    /// are handed out one by one in commit order, so nobody else's write lies between).
    pub(super) fn followed_own(&self, generation: u64) {
        let _ = self.followed.compare_exchange(
            generation.wrapping_sub(1),
            generation,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Brings the derived indexes level with the store after writes of other processes
    /// (a shared library). Cheap when nothing changed (one read of the generation).
    pub async fn follow(&self) -> Result<Option<Followed>, CatalogError> {
        let generation = self.store.generation().await?;
        if generation == self.followed.load(Ordering::Acquire) {
            return Ok(None);
        }
        let _w = self.writes.lock().await;
        let fresh = load_directory(&self.store).await?;
        let old = self.directory();
        // Changed or gone here, changed or new there (a listing differs in its frames).
        let gone: Vec<&Listed> = old.iter().filter(|l| fresh.get(l.id) != Some(*l)).collect();
        let new: Vec<&Listed> = fresh.iter().filter(|l| old.get(l.id) != Some(*l)).collect();
        if gone.is_empty() && new.is_empty() {
            self.followed.store(generation, Ordering::Release);
            return Ok(None);
        }
        let model = self.model();
        let mut vectors = Vec::new();
        let mut texts = Vec::new();
        // pgvector: other nodes' rows are in the shared table already.
        let embedded = matches!(
            *self.vectors.read().unwrap_or_else(|e| e.into_inner()),
            Vectors::Embedded(_)
        );
        for l in &new {
            if embedded {
                vectors.extend(self.store.vectors_of(l.id, &model).await?);
            }
            texts.extend(self.store.texts_of_video(l.id).await?.iter().map(text_doc));
        }
        let tombstones: Vec<FrameId> = gone
            .iter()
            .flat_map(|l| l.first_frame..l.first_frame + l.frames)
            .collect();
        if let Some(idx) = self.vectors.write().unwrap_or_else(|e| e.into_inner()).embedded() {
            idx.delete(&tombstones);
            let items: Vec<(FrameId, &[f32])> = vectors.iter().map(|(id, v)| (*id, v.as_slice())).collect();
            idx.upsert(&items)?;
            idx.settle();
        }
        let touched: Vec<VideoId> = gone.iter().chain(&new).map(|l| l.id).collect();
        self.frames.forget(&touched);
        let removed: Vec<VideoId> = gone.iter().map(|l| l.id).collect();
        self.text.update(&removed, &texts, generation)?;
        let followed = Followed {
            generation,
            added: new.len(),
            removed: gone.iter().filter(|l| fresh.get(l.id).is_none()).count(),
        };
        self.set_directory(fresh);
        self.followed.store(generation, Ordering::Release);
        tracing::info!(
            "caught up with the shared library at generation {generation}: {} videos added or changed, {} removed",
            followed.added,
            followed.removed
        );
        Ok(Some(followed))
    }
}
