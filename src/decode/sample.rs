//! Sampling: turning a video file into the frames worth embedding, each with the exact
//! time range it stands for; the options, results and counters of a run, and
//! [`sample`], which drives the span decoders (one, or several on threads) and the
//! sampler.
//!
//! Sampling: a frame every `1/fps` seconds, plus the first frame after each shot change
//! (mean absolute difference of a 16x16 luma grid against the previous decoded frame),
//! and a sampled frame that looks like the previous kept one is dropped, which extends
//! the kept frame's range. Every kept frame covers [its time, next kept frame's time),
//! the last one up to the end of the stream, so the ranges tile the video.
//!
//! Timestamps are the decoder's best-effort presentation times times the stream time
//! base, minus the stream start time: B-frame reordering, variable frame rates,
//! 29.97 fps and non-zero start times come out right. Rotation metadata (display
//! matrix) and non-square pixels are applied. Frames are scaled straight from the
//! decoder's pixel format to the requested geometry in one swscale pass. Non-reference
//! frames are not decoded while the next periodic sample is far away, nor the rest of a
//! GOP once no sample is due before the next keyframe. In software, stretches of the
//! stream between index keyframes are decoded side by side, one decoder each, and one
//! sampler takes their pictures in time order (see [`sample`]).

use std::path::Path;

use super::DecodeError;
use super::open::{VideoInfo, keyframe_index, open, open_decoder, seek};
use super::sampler::Sampler;
use super::spans::{Piece, SPAN_SECONDS, Span, SpanDecoder, plan_spans, reorder_depth};
use crate::image::RgbImage;

/// How to sample.
#[derive(Clone, Debug)]
pub struct SampleOptions {
    /// Periodic samples per second.
    pub fps: f64,
    /// Mean absolute luma difference (0..255) between consecutive decoded frames that
    /// counts as a shot change.
    pub scene_threshold: f32,
    /// A sample whose luma grid differs less than this from the last kept frame is
    /// collapsed into it.
    pub dedup_threshold: f32,
    /// Scale so the shorter display side has this many pixels (the model's resize;
    /// `jobs` sets it from the model's image size); 0 keeps the full resolution (the
    /// model's preprocessing then resizes exactly like PIL: `index --exact-resize`).
    pub short_side: u32,
    /// Shorter side of the JPEG thumbnails; 0 for none.
    pub thumb_short_side: u32,
    /// Decoding threads: spans between keyframes decoded side by side, one decoder each
    /// (0: one per core, at most 8; 1: one decoder); where one decoder takes the whole
    /// stream (no index, hardware decoding), its frame threads (0: FFmpeg's choice).
    pub threads: usize,
    /// Skip non-reference frames while the next sample is more than two frames away.
    pub skip_nonref: bool,
    /// Skip the packets up to the next keyframe when no sample is due before it (the
    /// container's index gives the keyframes: encoders put them at cuts and every GOP).
    /// Shot changes in the skipped stretch are found at the keyframe that ends it.
    /// Off: every decoded frame counts (full decoding).
    pub skip_to_keyframes: bool,
    /// Decode through FFmpeg's CUDA hwaccel (NVDEC) when the machine and the codec allow
    /// it; otherwise, per file, in software with the reason in [`SampleStats::hwaccel`].
    pub hwaccel: bool,
}

impl SampleOptions {
    /// Seconds between periodic samples (infinite: none after the first).
    pub(super) fn interval(&self) -> f64 {
        if self.fps > 0.0 { 1.0 / self.fps } else { f64::INFINITY }
    }
}

impl Default for SampleOptions {
    fn default() -> Self {
        Self {
            fps: 1.0,
            scene_threshold: 30.0,
            dedup_threshold: 2.0,
            short_side: 224,
            thumb_short_side: 120,
            threads: 0,
            skip_nonref: true,
            skip_to_keyframes: true,
            hwaccel: false,
        }
    }
}

/// A kept frame.
#[derive(Clone, Debug)]
pub struct SampledFrame {
    /// Seconds from the start of the stream; the frame stands for [start, end).
    pub start: f64,
    /// Where the next kept frame starts (the end of the stream for the last).
    pub end: f64,
    /// Time of the picture itself (equal to `start`).
    pub peak: f64,
    /// RGB at the requested geometry.
    pub image: RgbImage,
    /// JPEG thumbnail (empty when not asked for).
    pub thumbnail: Vec<u8>,
    /// Why it was sampled.
    pub reason: SampleReason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
/// Why a frame was sampled.
pub enum SampleReason {
    /// The periodic tick (`fps`).
    Periodic,
    /// A shot change between ticks.
    ShotChange,
}

/// Counters of one sampling run.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SampleStats {
    pub decoded_frames: u64,
    /// Of those, pictures NVDEC decoded (all of them, or `hwaccel` says "software").
    pub gpu_frames: u64,
    /// Packets not decoded at all (no sample was due before the next keyframe).
    pub skipped_packets: u64,
    /// Stretches between keyframes decoded on their own (1: the stream in one piece).
    pub spans: u64,
    pub sampled: u64,
    pub kept: u64,
    pub shot_changes: u64,
    /// Last decoded presentation time (seconds).
    pub last_time: f64,
    /// How the pictures were decoded: "software", "cuda" (every picture came from
    /// NVDEC), or "software (REASON)" when the hwaccel was asked for and could not be
    /// used, or was attached but FFmpeg decoded without it.
    pub hwaccel: String,
}

/// The first grid time `k * interval` after `t` (the next periodic sample is due then).
pub(super) fn grid_after(t: f64, interval: f64) -> f64 {
    if !interval.is_finite() {
        return f64::INFINITY;
    }
    (((t + 1e-6) / interval).floor() + 1.0) * interval
}

/// Decodes `path`, handing each kept frame to `sink` in time order; `sink` returns
/// false to stop early (cancellation). Returns the stream facts and counters.
///
/// Software decoding of a file whose index lists keyframes splits it into spans of
/// several seconds between keyframes and decodes them on `threads` threads at once (0:
/// one per core, at most 8), each with its own single-threaded decoder: the pictures of
/// a span depend on nothing before its keyframe, so this is the same decoding, and it
/// scales where FFmpeg's frame threads do not (each P picture waits for the one before).
/// Otherwise one decoder with `threads` frame threads decodes the whole stream.
pub fn sample(
    path: &Path,
    opts: &SampleOptions,
    sink: &mut dyn FnMut(SampledFrame) -> bool,
) -> Result<(VideoInfo, SampleStats), DecodeError> {
    let (raw_keys, reorder) = survey(path)?;
    // Read from the start again.
    let opened = open(path)?;
    let info = opened.info.clone();
    let (start, time_base) = (opened.start, opened.time_base);
    let interval = opts.interval();
    let secs = |ts: i64| (ts - start) as f64 * time_base;
    let keys: Vec<f64> = if opts.skip_to_keyframes && interval.is_finite() {
        raw_keys.iter().map(|&k| secs(k)).collect()
    } else {
        Vec::new()
    };
    let mut sampler = Sampler::new(path, opts, &info, sink)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = if opts.threads == 0 { cores } else { opts.threads }.min(8);
    let spans = plan_spans(&raw_keys, secs, SPAN_SECONDS);
    let stopped = if opts.hwaccel || workers < 2 || spans.len() < 2 {
        let (decoder, how) = open_decoder(path, &opened, opts.threads, opts.hwaccel)?;
        sampler.decoding_with(how);
        let dec = SpanDecoder::new(path, (opened, decoder), &keys, opts, reorder);
        in_one_piece(dec, &mut sampler)?
    } else {
        drop(opened);
        let setup = SpanSetup {
            path,
            keys: &keys,
            opts,
            reorder,
        };
        let lookahead = span_lookahead(&info);
        side_by_side(setup, &spans, (workers.min(spans.len()), lookahead), &mut sampler)?
    };
    let stats = sampler.finish(&info, stopped)?;
    Ok((info, stats))
}

/// The keyframe index (raw timestamps) and the reordering depth (see [`reorder_depth`])
/// of the file's video stream, read from an input opened for the purpose.
fn survey(path: &Path) -> Result<(Vec<i64>, f64), DecodeError> {
    let mut opened = open(path)?;
    // Matroska reads its cues (the keyframe index) at the first seek: one to the start
    // (a failed seek leaves the index as it was).
    let start = opened.start;
    seek(&mut opened, start);
    let raw_keys = keyframe_index(&opened.input.stream(opened.index).expect("stream index from open()"));
    let reorder = reorder_depth(&mut opened);
    Ok((raw_keys, reorder))
}

/// The whole stream through one decoder; true when the sampler stopped.
fn in_one_piece(mut dec: SpanDecoder, sampler: &mut Sampler) -> Result<bool, DecodeError> {
    let mut failed = None;
    let whole = Span { from: None, to: None };
    let go = dec.run(whole, &mut |piece| {
        sampler.take(piece).unwrap_or_else(|e| {
            failed = Some(e);
            false
        })
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(!go)
}

/// What the span decoders of one file share.
#[derive(Clone, Copy)]
struct SpanSetup<'a> {
    path: &'a Path,
    /// Keyframe times, seconds from the stream start.
    keys: &'a [f64],
    opts: &'a SampleOptions,
    reorder: f64,
}

impl<'a> SpanSetup<'a> {
    /// A span decoder of its own input, with a single-threaded software decoder.
    fn decoder(self) -> Result<SpanDecoder<'a>, DecodeError> {
        let opened = open(self.path)?;
        let (decoder, _) = open_decoder(self.path, &opened, 1, false)?;
        Ok(SpanDecoder::new(
            self.path,
            (opened, decoder),
            self.keys,
            self.opts,
            self.reorder,
        ))
    }
}

/// A span's channel to the sampler, until a thread takes it.
type SpanSender = std::sync::Mutex<Option<std::sync::mpsc::SyncSender<Piece>>>;

/// The pieces a span decoder may hand on before the sampler takes them: a whole span's
/// candidates at the usual sampling rates (a tick a second, and the shot changes), within
/// a memory budget for the decoded pictures they hold.
///
/// A decoder that waits on the sampler leaves its core idle: with keyframes only at cuts
/// (x264's default) spans are several seconds long, and with room for a few pieces only,
/// the second thread stopped a few seconds into its span until the first one's was done
/// (about 1.3 of 2 cores busy).
fn span_lookahead(info: &VideoInfo) -> usize {
    const BUDGET: usize = 96 << 20;
    // A decoded picture: 8-bit 4:2:0 at the coded size (10-bit and 4:4:4 hold more, the
    // clamp's floor still bounds them).
    let picture = (info.width as usize * info.height as usize * 3 / 2).max(1);
    (BUDGET / picture).clamp(4, 64)
}

/// `spans` decoded on `workers` threads, their pieces handed to the sampler in span
/// order; true when the sampler stopped.
fn side_by_side(
    setup: SpanSetup,
    spans: &[Span],
    (workers, lookahead): (usize, usize),
    sampler: &mut Sampler,
) -> Result<bool, DecodeError> {
    // A channel per span: the threads take spans in order as they come free, and a
    // thread runs ahead of the sampler by at most its one span (`lookahead` pieces).
    let (txs, rxs): (Vec<_>, Vec<_>) = spans
        .iter()
        .map(|_| std::sync::mpsc::sync_channel::<Piece>(lookahead))
        .unzip();
    let txs: Vec<SpanSender> = txs.into_iter().map(|tx| std::sync::Mutex::new(Some(tx))).collect();
    let next_span = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| -> Result<bool, DecodeError> {
        for _ in 0..workers {
            let (txs, next_span) = (&txs, &next_span);
            scope.spawn(move || decode_spans(setup, spans, txs, next_span));
        }
        // The spans in order: each one's pieces, then its end.
        for rx in rxs {
            loop {
                let piece = rx.recv().map_err(|_| DecodeError::Decode {
                    path: setup.path.to_path_buf(),
                    reason: "a decoding thread stopped without a reason".into(),
                })?;
                let end = matches!(piece, Piece::End(_));
                if !sampler.take(piece)? {
                    return Ok(true);
                }
                if end {
                    break;
                }
            }
        }
        Ok(false)
    })
}

/// One decoding thread: decodes the next span no thread has taken into its channel, and
/// so on, until none is left, the sampler stops, or decoding fails (the failure is sent).
fn decode_spans(setup: SpanSetup, spans: &[Span], txs: &[SpanSender], next_span: &std::sync::atomic::AtomicUsize) {
    let mut dec: Option<SpanDecoder> = None;
    loop {
        let i = next_span.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Taken out, so the sampler hears of a thread that ends early.
        let Some(tx) = txs.get(i).and_then(|t| t.lock().expect("unpoisoned").take()) else {
            return;
        };
        let dec = match dec.as_mut() {
            Some(d) => d,
            None => match setup.decoder() {
                Ok(d) => dec.insert(d),
                Err(e) => {
                    let _ = tx.send(Piece::Failed(e));
                    return;
                }
            },
        };
        match dec.run(spans[i], &mut |piece| tx.send(piece).is_ok()) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                let _ = tx.send(Piece::Failed(e));
                return;
            }
        }
    }
}
