//! Bringing the derived indexes level with the store: the vector index filled, caught up
//! and its gone frames made tombstones; the text documents and the directory read back.
//! Shared by the open, the writes (compaction) and a model switch.

use super::directory::{Directory, Listed};
use super::{CatalogError, Store, Text};
use crate::index::vector::MIN_SELF_RECALL; // below it after a build or catch-up: one rebuild
use crate::index::{TextDoc, VectorBackend};
use crate::types::{FrameId, VideoId};

/// Rebuild the vector index when more than this share of its points are deleted frames.
pub(super) const MAX_TOMBSTONE_SHARE: f64 = 0.25;

/// Reads the directory of videos and frame runs from the store.
pub(super) async fn load_directory(store: &Store) -> Result<Directory, CatalogError> {
    let runs: std::collections::HashMap<VideoId, (FrameId, i64)> = store
        .frame_runs()
        .await?
        .into_iter()
        .map(|r| (r.video, (r.first, r.count)))
        .collect();
    Ok(Directory::new(store.videos().await?.into_iter().map(|v| {
        let (first_frame, frames) = runs.get(&v.id).copied().unwrap_or((0, 0));
        Listed {
            id: v.id,
            path: v.path,
            mtime_ns: v.mtime_ns,
            duration: v.duration,
            first_frame,
            frames,
        }
    })))
}

pub(super) fn text_doc(t: &Text) -> TextDoc {
    TextDoc {
        text_id: t.id,
        video_id: t.video_id,
        kind: t.kind,
        start: t.start,
        end: t.end,
        text: t.text.clone(),
        quad: t.quad,
    }
}

/// Makes tombstones of `idx`'s live points whose frames the store no longer has.
pub(super) async fn delete_gone(idx: &mut dyn VectorBackend, store: &Store) -> Result<(), CatalogError> {
    let stored = store.frame_ids().await?;
    let dead: Vec<FrameId> = idx
        .live_ids()
        .into_iter()
        .filter(|id| stored.binary_search(id).is_err())
        .collect();
    idx.delete(&dead);
    Ok(())
}

/// `idx` (empty) with every stored frame of its model.
pub(super) async fn fill_from_store(
    mut idx: Box<dyn VectorBackend>,
    store: &Store,
) -> Result<Box<dyn VectorBackend>, CatalogError> {
    catch_up(idx.as_mut(), store).await?;
    // The batches read from the store are freed between the graph's nodes: give the
    // pages back rather than keep them resident.
    crate::util::trim_heap();
    Ok(idx)
}

/// Feeds the backend every stored frame above its high-water mark (its model's vectors).
pub(super) async fn catch_up(idx: &mut dyn VectorBackend, store: &Store) -> Result<(), CatalogError> {
    let mut after = idx.high_water();
    let model = idx.model().to_string();
    loop {
        let batch = store.vectors_after(after, 20_000, &model).await?;
        let Some(last) = batch.last().map(|(id, _)| *id) else {
            break;
        };
        let items: Vec<(FrameId, &[f32])> = batch.iter().map(|(id, v)| (*id, v.as_slice())).collect();
        idx.upsert(&items)?;
        after = last;
    }
    idx.settle();
    Ok(())
}

/// Checks that stored frames find themselves (hnsw_rs can leave points unreachable).
pub(super) async fn check_recall(idx: &dyn VectorBackend, store: &Store) -> Result<bool, CatalogError> {
    if idx.points() < 50 {
        return Ok(true);
    }
    // An evenly spread sample of up to 200 live frames.
    let max = store.max_frame_id().await?;
    let step = (max / 200).max(1);
    let mut sample = Vec::new();
    let mut after = 0;
    while sample.len() < 200 && after < max {
        let batch = store.vectors_after(after, 1, idx.model()).await?;
        let Some((id, v)) = batch.into_iter().next() else {
            break;
        };
        sample.push((id, v));
        after = id + step - 1;
    }
    // A wide beam: this looks for points the graph lost (hnsw_rs can leave some
    // unreachable under contention), not for a narrow search's misses, which a rebuild
    // with the same parameters would not mend.
    let recall = idx.self_recall(&sample, 512);
    tracing::debug!("vector index self-recall {recall:.3} on {} frames", sample.len());
    Ok(recall >= MIN_SELF_RECALL)
}
