//! The check that the store and both indexes agree (the API's deep health check, tests).

use super::{Catalog, CatalogError};
use crate::types::FrameId;

/// See [`Catalog::consistency`].
#[derive(Clone, Debug, serde::Serialize, PartialEq)]
pub struct Consistency {
    /// Frames and texts in the store.
    pub frames: i64,
    pub texts: i64,
    /// Points of the vector index that are live frames, and deleted ones.
    pub vector_live: usize,
    pub vector_tombstones: usize,
    /// Stored frames the vector index lacks, and live points the store lacks.
    pub frames_not_in_vector_index: Vec<FrameId>,
    pub vector_points_not_in_store: Vec<FrameId>,
    /// Stored frames looked up by their own vector, and those not found.
    pub frames_checked: usize,
    pub frames_unreachable: Vec<FrameId>,
    /// Documents in the text index, the stored texts it lacks and the documents whose
    /// text the store lacks (by text id).
    pub text_docs: u64,
    pub texts_not_in_text_index: Vec<i64>,
    pub text_docs_not_in_store: Vec<i64>,
    /// True when nothing above disagrees.
    pub agree: bool,
}

impl Catalog {
    /// Whether the store and both indexes agree: the vector index holds exactly the
    /// stored frames (deleted ones are tombstones), a sample of `max_frames` of them
    /// (spread evenly, all when fewer) is found by its own vector, and the text index
    /// holds exactly the store's texts (by id). What disagrees is named by id.
    pub async fn consistency(&self, max_frames: usize) -> Result<Consistency, CatalogError> {
        let _w = self.writes.lock().await;
        let counts = self.store.counts().await?;
        let stored = self.store.frame_ids().await?;
        let (mut live, tombstones) = match self.pg_table() {
            Some(t) => (self.store.pg_ids(&t).await?, 0),
            None => {
                let v = self.vectors.read().unwrap_or_else(|e| e.into_inner());
                match &*v {
                    super::vectors::Vectors::Embedded(v) => (v.live_ids(), v.tombstones()),
                    super::vectors::Vectors::Pg(_) => (Vec::new(), 0),
                }
            }
        };
        live.sort_unstable();
        let not_in_index = missing_from(&stored, &live);
        let not_in_store = missing_from(&live, &stored);
        let step = (stored.len() / max_frames.max(1)).max(1);
        let mut checked = 0;
        let mut unreachable = Vec::new();
        for id in stored.iter().step_by(step) {
            let Some((_, v)) = self
                .store
                .vectors_after(id - 1, 1, &self.model())
                .await?
                .into_iter()
                .next()
            else {
                continue;
            };
            checked += 1;
            // Several frames can hold the very same picture (a file copied twice): any
            // hit as close as the frame itself counts.
            if !self
                .nearest(&v, 10, 128)
                .await?
                .iter()
                .any(|(hit, s)| hit == id || *s >= 0.99999)
            {
                unreachable.push(*id);
            }
        }
        let text_docs = self.text.num_docs();
        let (stored_texts, docs) = (self.store.text_ids().await?, self.text.text_ids()?);
        let texts_not_in_text_index = missing_from(&stored_texts, &docs);
        let text_docs_not_in_store = missing_from(&docs, &stored_texts);
        let agree = not_in_index.is_empty()
            && not_in_store.is_empty()
            && unreachable.is_empty()
            && texts_not_in_text_index.is_empty()
            && text_docs_not_in_store.is_empty()
            && text_docs == counts.texts as u64;
        Ok(Consistency {
            frames: counts.frames,
            texts: counts.texts,
            vector_live: live.len(),
            vector_tombstones: tombstones,
            frames_not_in_vector_index: not_in_index,
            vector_points_not_in_store: not_in_store,
            frames_checked: checked,
            frames_unreachable: unreachable,
            text_docs,
            texts_not_in_text_index,
            text_docs_not_in_store,
            agree,
        })
    }
}

/// The ids of `a` not in `b` (`b` sorted).
fn missing_from(a: &[i64], b: &[i64]) -> Vec<i64> {
    a.iter().filter(|id| b.binary_search(id).is_err()).copied().collect()
}
