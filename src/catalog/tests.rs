//! The vector index saved with its tombstones, and reopened beside a store that moved on.

use std::path::{Path, PathBuf};

use super::*;
use crate::types::{FrameId, VideoId};

const DIM: usize = 16;

/// A video of `frames` frames whose vectors are spread around its own direction.
fn video(path: &str, seed: u64, frames: usize) -> NewVideo {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f32 / (1u64 << 53) as f32 - 0.5
    };
    NewVideo {
        path: path.into(),
        duration: frames as f64,
        frames: (0..frames)
            .map(|i| {
                let mut vector: Vec<f32> = (0..DIM).map(|_| next()).collect();
                let n = vector.iter().map(|a| a * a).sum::<f32>().sqrt();
                vector.iter_mut().for_each(|a| *a /= n);
                NewFrame {
                    start: i as f64,
                    end: i as f64 + 1.0,
                    peak: i as f64,
                    shot: false,
                    vector,
                    extra_vectors: Vec::new(),
                    thumbnail: Vec::new(),
                }
            })
            .collect(),
        ..NewVideo::default()
    }
}

async fn open(dir: &Path) -> Catalog {
    Catalog::open(dir, "m", DIM, Access::Write).await.unwrap()
}

/// Ids of a video's frames, from the store.
async fn frame_ids(c: &Catalog, video: VideoId) -> Vec<FrameId> {
    c.frames_of(video).await.unwrap().iter().map(|f| f.id).collect()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The saved index's `vectors.json`.
fn read_meta(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A run of consecutive frame ids as `vectors.json` records it: [first, last].
fn run(ids: &[FrameId]) -> serde_json::Value {
    serde_json::json!([ids[0], ids[ids.len() - 1]])
}

/// The library every test starts from: videos a, b and d of 20 frames and e of 200, a
/// removed, the vector index saved and the catalog closed.
struct Saved {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    meta_path: PathBuf,
    b: VideoId,
    d: VideoId,
    a_ids: Vec<FrameId>,
    d_ids: Vec<FrameId>,
    a_vectors: Vec<(FrameId, Vec<f32>)>,
    d_vectors: Vec<(FrameId, Vec<f32>)>,
}

async fn saved_library() -> Saved {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let c = open(&dir).await;
    let a = c.add_video(&video("/a.mp4", 1, 20)).await.unwrap();
    let b = c.add_video(&video("/b.mp4", 2, 20)).await.unwrap();
    let d = c.add_video(&video("/d.mp4", 3, 20)).await.unwrap();
    c.add_video(&video("/e.mp4", 4, 200)).await.unwrap();
    let (a_ids, d_ids) = (frame_ids(&c, a).await, frame_ids(&c, d).await);
    let a_vectors = c.vectors_by_ids("m", &a_ids).await.unwrap();
    let d_vectors = c.vectors_by_ids("m", &d_ids).await.unwrap();
    c.remove_video(a).await.unwrap();
    c.save_vectors().await.unwrap();
    c.close().await;
    drop(c);
    Saved {
        _tmp: tmp,
        meta_path: dir.join("vectors/vectors.json"),
        dir,
        b,
        d,
        a_ids,
        d_ids,
        a_vectors,
        d_vectors,
    }
}

/// Asserts that no frame of `ids` comes back for any of `vectors`.
async fn never_returned(c: &Catalog, vectors: &[(FrameId, Vec<f32>)], ids: &[FrameId]) {
    for (id, v) in vectors {
        assert!(
            c.nearest(v, 10, 64)
                .await
                .unwrap()
                .iter()
                .all(|(hit, _)| !ids.contains(hit)),
            "frame {id} came back"
        );
    }
}

#[test]
fn a_saved_index_keeps_its_tombstones() {
    block_on(async {
        let s = saved_library().await;
        assert_eq!(read_meta(&s.meta_path)["deleted"], serde_json::json!([run(&s.a_ids)]));

        // Reopened at the saved generation: the removed video's frames are
        // tombstones again, never returned, and the index agrees with the store.
        let c = open(&s.dir).await;
        c.wait_vectors_ready();
        assert_eq!((c.vector_points(), c.vector_tombstones()), (260, 20));
        never_returned(&c, &s.a_vectors, &s.a_ids).await;
        assert!(c.consistency(1000).await.unwrap().agree);
        c.close().await;
    });
}

#[test]
fn an_index_saved_at_the_stores_generation_is_trusted_without_reading_its_frame_ids() {
    block_on(async {
        let s = saved_library().await;
        // The open trusts the saved tombstones without reading the store's frame ids:
        // with the removed video's run taken out of the file by hand, its frames are
        // live again (a comparison with the store would have found them).
        let mut forged = read_meta(&s.meta_path);
        forged["deleted"] = serde_json::json!([]);
        std::fs::write(&s.meta_path, serde_json::to_vec(&forged).unwrap()).unwrap();
        let c = open(&s.dir).await;
        assert_eq!(c.vector_tombstones(), 0);
        c.close().await;
    });
}

/// Removes d after the last save (a crash before the checkpoint), then reopens the
/// library.
async fn remove_d_unsaved(s: &Saved) -> Catalog {
    let c = open(&s.dir).await;
    c.remove_video(s.d).await.unwrap();
    c.close().await;
    drop(c);
    let c = open(&s.dir).await;
    c.wait_vectors_ready();
    c
}

#[test]
fn an_index_one_behind_the_store_is_compared_with_it() {
    block_on(async {
        let s = saved_library().await;
        // A video removed after the last save: the store's generation moved on, so the
        // open compares the ids and finds it.
        let c = remove_d_unsaved(&s).await;
        assert_eq!(c.vector_tombstones(), 40);
        never_returned(&c, &s.d_vectors, &s.d_ids).await;
        assert!(c.consistency(1000).await.unwrap().agree);
        // Saved now, at the new generation, with both videos' tombstones.
        c.save_vectors().await.unwrap();
        let meta = read_meta(&s.meta_path);
        assert_eq!(meta["deleted"], serde_json::json!([run(&s.a_ids), run(&s.d_ids)]));
        c.close().await;
    });
}

#[test]
fn a_checkpoint_that_keeps_a_large_dump_records_the_generation_and_the_tombstones() {
    block_on(async {
        let s = saved_library().await;
        let c = remove_d_unsaved(&s).await;
        c.save_vectors().await.unwrap();

        // A checkpoint that leaves a large dump as it is (two frames added) still
        // records the generation and the tombstones; the next open adds the two
        // frames from the store and compares nothing.
        let f = c.add_video(&video("/f.mp4", 5, 2)).await.unwrap();
        c.remove_video(s.b).await.unwrap();
        c.save_vectors().await.unwrap();
        let meta = read_meta(&s.meta_path);
        assert_eq!(meta["points"], 260, "the dump was rewritten");
        assert_eq!(meta["generation"], c.store.generation().await.unwrap());
        // (The three videos' frames have consecutive ids: one run.)
        assert_eq!(
            meta["deleted"],
            serde_json::json!([[s.a_ids[0], s.d_ids[s.d_ids.len() - 1]]])
        );
        c.close().await;
        drop(c);
        let c = open(&s.dir).await;
        c.wait_vectors_ready();
        assert_eq!((c.vector_points(), c.vector_tombstones()), (262, 60));
        let f_ids = frame_ids(&c, f).await;
        let f_vectors = c.vectors_by_ids("m", &f_ids).await.unwrap();
        assert!(c.nearest(&f_vectors[0].1, 1, 64).await.unwrap()[0].0 == f_ids[0]);
        assert!(c.consistency(1000).await.unwrap().agree);
        c.close().await;
    });
}

/// A 20-frame video with a file name and two timed cues.
fn with_texts(path: &str, seed: u64) -> NewVideo {
    let mut v = video(path, seed, 20);
    v.texts = ["a name", "a first cue", "a second cue"]
        .iter()
        .enumerate()
        .map(|(i, t)| NewText {
            kind: if i == 0 { TextKind::Filename } else { TextKind::Subtitle },
            start: (i > 0).then_some(i as f64),
            end: (i > 0).then_some(i as f64 + 1.0),
            text: (*t).into(),
            quad: None,
            words: None,
        })
        .collect();
    v
}

/// A fresh library of two 20-frame videos (each with its file name in the text index)
/// that agrees with itself: (catalog, its folder, a's frame ids, b's frame ids, b).
async fn two_videos() -> (Catalog, tempfile::TempDir, Vec<FrameId>, Vec<FrameId>, VideoId) {
    let tmp = tempfile::tempdir().unwrap();
    let c = open(tmp.path()).await;
    let a = c.add_video(&with_texts("/a.mp4", 1)).await.unwrap();
    let b = c.add_video(&with_texts("/b.mp4", 2)).await.unwrap();
    let (a_ids, b_ids) = (frame_ids(&c, a).await, frame_ids(&c, b).await);
    let ok = c.consistency(1000).await.unwrap();
    assert!(
        ok.agree && ok.texts == 6 && ok.text_docs == 6 && ok.frames_checked == 40,
        "{ok:?}"
    );
    (c, tmp, a_ids, b_ids, b)
}

#[test]
fn the_agreement_check_names_the_frames_the_vector_index_lost_or_invented() {
    block_on(async {
        let (c, _tmp, a_ids, b_ids, _) = two_videos().await;
        // A stored frame's vector deleted from the index (a tombstone the store does not
        // know of), and a point for a frame the store never had.
        let stray = b_ids[b_ids.len() - 1] + 1000;
        let v = c.vectors_by_ids("m", &[b_ids[0]]).await.unwrap().remove(0).1;
        {
            let mut guard = c.vectors.write().unwrap();
            let vectors = guard.embedded().unwrap();
            vectors.delete(&[a_ids[3]]);
            vectors.upsert(&[(stray, &v[..])]).unwrap();
        }
        let r = c.consistency(1000).await.unwrap();
        assert!(!r.agree, "{r:?}");
        assert_eq!(r.frames_not_in_vector_index, vec![a_ids[3]], "{r:?}");
        assert_eq!(r.vector_points_not_in_store, vec![stray], "{r:?}");
        assert!(
            r.texts_not_in_text_index.is_empty() && r.text_docs_not_in_store.is_empty(),
            "{r:?}"
        );
        c.close().await;
    });
}

#[test]
fn the_agreement_check_names_the_texts_the_text_index_lost_or_invented() {
    block_on(async {
        let (c, _tmp, _, _, b) = two_videos().await;
        // b's documents replaced by as many stray ones: the counts still match, the ids
        // do not.
        let gone: Vec<i64> = c
            .store
            .texts()
            .await
            .unwrap()
            .iter()
            .filter(|t| t.video_id == b)
            .map(|t| t.id)
            .collect();
        assert!(!gone.is_empty());
        let strays: Vec<i64> = gone.iter().map(|id| id + 1000).collect();
        let docs: Vec<crate::index::TextDoc> = strays
            .iter()
            .map(|id| crate::index::TextDoc {
                text_id: *id,
                video_id: b,
                kind: crate::types::TextKind::Filename,
                start: None,
                end: None,
                text: "stray words".into(),
                quad: None,
            })
            .collect();
        let generation = c.store.generation().await.unwrap();
        c.text.update(&[b], &docs, generation).unwrap();
        let r = c.consistency(1000).await.unwrap();
        assert!(!r.agree, "{r:?}");
        assert_eq!(r.text_docs, r.texts as u64, "{r:?}");
        assert_eq!(r.texts_not_in_text_index, gone, "{r:?}");
        assert_eq!(r.text_docs_not_in_store, strays, "{r:?}");
        assert!(
            r.frames_not_in_vector_index.is_empty() && r.vector_points_not_in_store.is_empty(),
            "{r:?}"
        );
        c.close().await;
    });
}

#[test]
fn a_nodes_own_writes_keep_it_followed_without_reading_the_directory_back() {
    block_on(async {
        let tmp = tempfile::tempdir().unwrap();
        let c = open(tmp.path()).await;
        let followed = |c: &Catalog| c.followed.load(std::sync::atomic::Ordering::Acquire);
        let a = c.add_video(&video("/v/a.mp4", 1, 4)).await.unwrap();
        c.add_video(&video("/v/b.mp4", 2, 4)).await.unwrap();
        assert_eq!(followed(&c), c.store.generation().await.unwrap());
        c.remove_video(a).await.unwrap();
        assert_eq!(followed(&c), c.store.generation().await.unwrap());
        // Behind (another node's write not yet followed): an own write must not skip it.
        let g = c.store.generation().await.unwrap();
        c.followed.store(g - 1, std::sync::atomic::Ordering::Release);
        c.add_video(&video("/v/c.mp4", 3, 4)).await.unwrap();
        assert_eq!(followed(&c), g - 1, "an own write after a foreign one skipped it");
        c.follow().await.unwrap();
        assert_eq!(followed(&c), c.store.generation().await.unwrap());
    })
}
