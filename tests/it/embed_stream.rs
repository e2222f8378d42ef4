//! The batch stream into the image tower (`ImageStream`): batches of any size, padded to
//! fixed sizes or not, staged like the CUDA path, come back once each, in order, each row
//! equal to its single-image embedding; oversized batches and failed fills are refused
//! without harm.

use std::sync::Arc;

use vidseek::{EmbedError, Embedder, ImageStream, Padding, StreamOptions};

use crate::common::assert::cosine;
use crate::common::models::{cpu_options, tiny_model_dir};

/// `n` rendered frames of the synthetic domain, preprocessed, and each one's embedding
/// from a plain single-image run.
fn stream_fixture(model: &Embedder, n: usize) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut rng = vidseek::Rng::new(77);
    let pixels: Vec<Vec<f32>> = (0..n)
        .map(|i| {
            let scene = vidseek::Scene::random(&mut rng, 0.1);
            let img = vidseek::render(&scene, 160 + 40 * i as u32, 120, &mut rng);
            let mut out = vec![0f32; model.pixels_per_image()];
            model.preprocess(&img, &mut out).unwrap();
            out
        })
        .collect();
    let single = pixels.iter().map(|p| model.embed_pixels(p).unwrap().data).collect();
    (pixels, single)
}

/// Runs `sizes` batches through a stream and checks every row against its single-image
/// embedding and every batch against its tag, in submission order.
fn check_stream(padding: Padding, staged: bool, max: usize, sizes: &[usize]) {
    let model = Arc::new(Embedder::load(&tiny_model_dir(), &cpu_options()).unwrap());
    let total: usize = sizes.iter().sum();
    let (pixels, single) = stream_fixture(&model, total);
    let mut stream = ImageStream::<(usize, usize)>::new(
        model.clone(),
        StreamOptions {
            max_batch: max,
            padding: Some(padding),
            staged: Some(staged),
        },
    )
    .unwrap();
    assert_eq!(stream.padding(), padding);
    let mut done = Vec::new();
    let mut start = 0;
    for &n in sizes {
        let first = start;
        let p = &pixels;
        done.extend(
            stream
                .submit(n, (first, n), |i, out| {
                    out.copy_from_slice(&p[first + i]);
                    Ok(())
                })
                .unwrap(),
        );
        start += n;
    }
    done.extend(stream.flush().unwrap());
    let tags: Vec<(usize, usize)> = done.iter().map(|(t, _)| *t).collect();
    let mut want = Vec::new();
    let mut s = 0;
    for &n in sizes {
        want.push((s, n));
        s += n;
    }
    assert_eq!(tags, want, "batches come back once each, in order");
    for ((first, n), e) in &done {
        assert_eq!(e.len(), *n);
        for k in 0..*n {
            let c = cosine(e.row(k), &single[first + k]);
            assert!(
                c > 0.9999,
                "row {k} of the batch at {first}: cosine {c} to its own embedding"
            );
        }
    }
}

#[test]
fn stream_batches_equal_single_images_at_their_own_size() {
    // More batches than slots in flight, sizes that change, a batch of one.
    check_stream(Padding::Exact, false, 4, &[4, 3, 1, 4, 2]);
}

#[test]
fn stream_padded_to_fixed_sizes_returns_only_the_real_rows() {
    // Max 16: 3 runs at 4, 5 and 9 at 16 (after a full 16 has left stale rows there).
    check_stream(Padding::Buckets, false, 16, &[16, 3, 5, 9]);
}

#[test]
fn stream_staged_like_cuda_copies_each_batch_into_the_model_input() {
    // The CUDA path's steps on the CPU: staging buffer -> ONNX Runtime's copy -> the
    // buffer the binding feeds the model, fixed sizes, two batches in flight.
    check_stream(Padding::Buckets, true, 16, &[16, 3, 16, 5, 1]);
}

#[test]
fn stream_refuses_oversized_batches_and_survives_a_failed_fill() {
    let model = Arc::new(Embedder::load(&tiny_model_dir(), &cpu_options()).unwrap());
    let (pixels, single) = stream_fixture(&model, 2);
    let mut stream = ImageStream::<u8>::new(
        model.clone(),
        StreamOptions {
            max_batch: 2,
            ..StreamOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        stream.padding(),
        Padding::Exact,
        "the CPU runs batches at their own size"
    );
    let err = stream.submit(3, 0, |_, _| Ok(())).unwrap_err();
    assert!(err.to_string().contains("does not fit"), "{err}");
    let err = stream
        .submit(2, 1, |_, _| Err(EmbedError::BadInput("frame 7 is broken".into())))
        .unwrap_err();
    assert!(err.to_string().contains("frame 7"), "{err}");
    let mut done = stream
        .submit(2, 2, |i, out| {
            out.copy_from_slice(&pixels[i]);
            Ok(())
        })
        .unwrap();
    done.extend(stream.flush().unwrap());
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].0, 2);
    assert!(cosine(done[0].1.row(1), &single[1]) > 0.9999);
}
