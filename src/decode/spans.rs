//! Spans: stretches of the stream between index keyframes, each decoded on its own,
//! and the [`SpanDecoder`] that decodes them into candidate pictures for the sampler.
//!
//! A span decoder only proposes pictures (a periodic tick may be due, a shot may start
//! there, or it is the span's first); which are kept is the sampler's decision, made in
//! time order across spans.

use std::path::Path;

use ffmpeg::codec::discard::Discard;
use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

use super::hwaccel::download;
use super::open::{Opened, frame_dt, open, open_decoder, seek};
use super::sample::{SampleOptions, grid_after};
use super::signature::{Signature, signature};
use super::{DecodeError, failed_at};

/// A stretch of the stream decoded on its own: from a keyframe (None: the start of the
/// file) up to the next span's keyframe (None: the end). Raw index timestamps.
#[derive(Clone, Copy, Debug)]
pub(super) struct Span {
    pub(super) from: Option<i64>,
    pub(super) to: Option<i64>,
}

/// Spans of at least `min_seconds` that start at keyframes; one span (the whole stream)
/// when the index lists too few keyframes.
pub(super) fn plan_spans(keys: &[i64], secs: impl Fn(i64) -> f64, min_seconds: f64) -> Vec<Span> {
    let mut spans = Vec::new();
    let (mut from, mut from_t) = (None, 0.0);
    for &k in keys {
        if secs(k) - from_t >= min_seconds {
            spans.push(Span { from, to: Some(k) });
            (from, from_t) = (Some(k), secs(k));
        }
    }
    spans.push(Span { from, to: None });
    spans
}

/// The shortest span decoded on its own thread: long enough that the keyframe decoded
/// twice at each span's end (to find where it ends) and the seek are small beside it.
pub(super) const SPAN_SECONDS: f64 = 4.0;

/// A decoded picture the sampler may keep: a periodic tick may be due, or it starts a
/// shot, or it is the first of its span.
pub(super) struct Candidate {
    pub(super) t: f64,
    pub(super) sig: Signature,
    /// A shot change against the span's previous decoded picture; None for a span's
    /// first picture (the sampler compares it with the previous span's last).
    pub(super) shot: Option<bool>,
    /// The decoder's picture (a reference, not a copy), scaled only if it is kept.
    pub(super) frame: ffmpeg::frame::Video,
}

/// What a span's decoding tells the sampler, in order.
pub(super) enum Piece {
    // Boxed: a channel per span holds a few of these, so they stay small.
    Candidate(Box<Candidate>),
    End(Box<SpanEnd>),
    Failed(DecodeError),
}

/// A finished span.
pub(super) struct SpanEnd {
    pub(super) decoded: u64,
    pub(super) skipped: u64,
    pub(super) last_time: f64,
    /// The last decoded picture's signature (the next span's first is compared with it).
    pub(super) last_sig: Option<Signature>,
}

/// One input and decoder, decoding spans (one after another) into pieces.
pub(super) struct SpanDecoder<'a> {
    pub(super) path: &'a Path,
    pub(super) opened: Opened,
    pub(super) decoder: ffmpeg::decoder::Video,
    /// Keyframe times, seconds from the stream start.
    pub(super) keys: &'a [f64],
    pub(super) opts: &'a SampleOptions,
    /// Reopens the file for every span (seeking failed once).
    pub(super) rewind: bool,
    /// How far before the latest picture sent a picture still to be sent may be shown
    /// (B pictures), seconds: see [`reorder_depth`].
    pub(super) reorder: f64,
    pub(super) grey_sws: Option<scaling::Context>,
}

/// How far (seconds) a picture may be shown before the latest picture sent ahead of it
/// in the stream: the reordering of B pictures, measured on the first packets (the same
/// for every span, so spans decoded apart skip what one decoder skips), at least the
/// decoder's declared delay.
pub(super) fn reorder_depth(opened: &mut Opened) -> f64 {
    let (index, time_base) = (opened.index, opened.time_base);
    let fps = opened.info.fps;
    let frame_dt = frame_dt(fps);
    let mut depth = match opened.video_delay {
        0 => 0.0,
        d => (d + 1) as f64 * frame_dt,
    };
    let mut latest = i64::MIN;
    let pts = opened
        .input
        .packets()
        .filter(|(s, _)| s.index() == index)
        .filter_map(|(_, p)| p.pts());
    for p in pts.take(250) {
        depth = depth.max((latest.saturating_sub(p)) as f64 * time_base);
        latest = latest.max(p);
    }
    depth
}

/// What one decoded picture does to its span.
enum Pic {
    /// Not the span's (before its keyframe, or a leading picture whose references were
    /// skipped).
    Skip,
    Go,
    /// The next span's first picture.
    SpanDone,
    /// The sampler wants no more.
    Stop,
}

impl SpanDecoder<'_> {
    /// Puts the input at the keyframe `key` (raw index time) with a fresh decoder state:
    /// a seek, or, once a seek missed, the file opened again and read from the start.
    fn position(&mut self, key: i64) -> Result<(), DecodeError> {
        if !self.rewind {
            if seek(&mut self.opened, key) {
                self.decoder.flush();
                return Ok(());
            }
            self.rewind = true;
        }
        self.opened = open(self.path)?;
        (self.decoder, _) = open_decoder(self.path, &self.opened, 1, false)?;
        Ok(())
    }

    /// Decodes `span`, handing `emit` its candidates and then its end; `emit` returns
    /// false to stop. Returns false when stopped.
    pub(super) fn run(&mut self, span: Span, emit: &mut dyn FnMut(Piece) -> bool) -> Result<bool, DecodeError> {
        if let Some(key) = span.from {
            self.position(key)?;
            if let Some(go) = self.decode(span, emit)? {
                return Ok(go);
            }
            // The seek landed after the keyframe: read from the start from now on.
            tracing::debug!(
                "{}: a seek missed its keyframe; reading from the start",
                self.path.display()
            );
            self.rewind = true;
            self.position(key)?;
        }
        Ok(self
            .decode(span, emit)?
            .expect("a span read from the start finds its keyframe"))
    }

    /// [`SpanDecoder::run`] at the input's position; None when the first packet lies
    /// after the span's keyframe (nothing emitted).
    fn decode(&mut self, span: Span, emit: &mut dyn FnMut(Piece) -> bool) -> Result<Option<bool>, DecodeError> {
        let path = self.path;
        let opts = self.opts;
        let (index, start, time_base) = (self.opened.index, self.opened.start, self.opened.time_base);
        let secs = |p: Option<i64>| p.map(|p| (p - start) as f64 * time_base);
        let interval = opts.interval();
        let fps = self.opened.info.fps;
        let frame_dt = frame_dt(fps);
        let keys = self.keys;
        // How long after its index time a keyframe is shown: MP4 indexes decoding times,
        // and with B pictures a keyframe is shown a few frames later (its own packets
        // say by how much). Skipping to it early would lose the samples before it.
        let mut key_lag = self.opened.video_delay as f64 * frame_dt;
        let mut next_key: Option<f64> = None;
        let check_landing = span.from.is_some() && !self.rewind;
        // A packet's place against index times: its decoding time where there is one
        // (MP4 indexes those), or its presentation time (Matroska's cues).
        let latest = |p: &ffmpeg::Packet| p.dts().unwrap_or(i64::MIN).max(p.pts().unwrap_or(i64::MIN));
        let earliest = |p: &ffmpeg::Packet| p.dts().or(p.pts()).unwrap_or(i64::MIN).min(p.pts().unwrap_or(i64::MAX));
        let mut end = SpanEnd {
            decoded: 0,
            skipped: 0,
            last_time: f64::NEG_INFINITY,
            last_sig: None,
        };
        // Local sampling state (the sampler keeps its own): the next periodic sample due.
        let mut next_sample = f64::NEG_INFINITY;
        let mut skipping = false;
        self.decoder.skip_frame(Discard::Default);
        // Presentation times of the span's keyframe and of the next span's, once their
        // packets are read: pictures before `from_t` belong to the previous span (an open
        // GOP's leading pictures), pictures from `to_t` on to the next.
        let mut from_t = if span.from.is_some() {
            None
        } else {
            Some(f64::NEG_INFINITY)
        };
        let mut to_t: Option<f64> = None;
        // Skipping to the next keyframe: latest presentation time sent to the decoder, and
        // the keyframe decoding resumed at (pictures before it, an open GOP's leading
        // frames whose references were skipped, are dropped).
        let mut sent_max = f64::NEG_INFINITY;
        let reorder = self.reorder;
        // The first grid time whose sample may not be sent yet.
        let mut due = 0.0;
        let mut gop_skipped = false;
        // (latest time sent before the skip, the keyframe's time): pictures between the two
        // are leading pictures; earlier ones are still in the decoder's pipeline.
        let mut skipped_from = f64::NEG_INFINITY;
        let mut resume_at: Option<(f64, f64)> = None;
        let mut frame = ffmpeg::frame::Video::empty();
        let decoder = &mut self.decoder;
        let grey_sws = &mut self.grey_sws;
        let mut picture = |frame: &mut ffmpeg::frame::Video,
                           end: &mut SpanEnd,
                           from_t: Option<f64>,
                           to_t: Option<f64>,
                           resume_at: &mut Option<(f64, f64)>,
                           next_sample: &mut f64|
         -> Result<Pic, DecodeError> {
            let ts = frame.timestamp().or(frame.pts()).unwrap_or(0);
            let raw_t = (ts - start) as f64 * time_base;
            if from_t.is_none_or(|from| raw_t < from - 1e-6) {
                return Ok(Pic::Skip);
            }
            if to_t.is_some_and(|to| raw_t >= to - 1e-6) {
                return Ok(Pic::SpanDone);
            }
            if let Some((from, r)) = *resume_at {
                if raw_t > from + 1e-6 && raw_t < r - 1e-6 {
                    return Ok(Pic::Skip);
                }
                if raw_t >= r - 1e-6 {
                    *resume_at = None;
                }
            }
            let t = raw_t.max(0.0);
            // Pictures decoded on the GPU come back to host memory (NV12) for the luma
            // signature and swscale.
            if frame.format() == Pixel::CUDA {
                *frame = download(frame).map_err(failed_at(path, "copying a picture from the GPU"))?;
            }
            end.decoded += 1;
            end.last_time = end.last_time.max(t);
            let sig = signature(frame, grey_sws).map_err(failed_at(path, "reading luma"))?;
            let shot = end.last_sig.as_ref().map(|p| p.diff(&sig) >= opts.scene_threshold);
            let periodic = t + 1e-6 >= *next_sample;
            if periodic {
                *next_sample = grid_after(t, interval);
            }
            // The span's first picture goes to the sampler whatever it is: only the
            // sampler knows whether a tick is due or a shot starts there.
            let first = end.last_sig.is_none();
            end.last_sig = Some(sig.clone());
            if first || periodic || shot == Some(true) {
                let frame = std::mem::replace(frame, ffmpeg::frame::Video::empty());
                if !emit(Piece::Candidate(Box::new(Candidate { t, sig, shot, frame }))) {
                    return Ok(Pic::Stop);
                }
            }
            Ok(Pic::Go)
        };
        let mut packets = self.opened.input.packets();
        let mut done = false;
        // Past the next span's keyframe, for an open GOP's leading pictures.
        let mut overrun = false;
        'packets: while let Some((s, packet)) = packets.next() {
            if s.index() != index {
                continue;
            }
            let pt = secs(packet.pts().or(packet.dts()));
            if let (None, Some(key)) = (from_t, span.from) {
                if check_landing && earliest(&packet) > key {
                    return Ok(None);
                }
                // Packets before the span's keyframe (a seek that landed early, or the file
                // read from the start) are passed over.
                if !(packet.is_key() && latest(&packet) >= key) {
                    continue;
                }
                from_t = Some(pt.unwrap_or(f64::NEG_INFINITY));
                // The next sample due when one decoder reaches this keyframe: the first
                // grid time after the picture before it.
                next_sample = from_t.map_or(f64::NEG_INFINITY, |t| grid_after(t - frame_dt, interval));
                due = next_sample;
            }
            if let Some(key) = span.to
                && to_t.is_none()
                && packet.is_key()
                && latest(&packet) >= key
            {
                // The next span's keyframe: its pictures are the next span's. Pictures
                // before it in presentation order that follow it in the stream (an open
                // GOP's leading pictures) need it; otherwise the decoder is drained here.
                to_t = pt;
                let key_t = pt.unwrap_or(f64::INFINITY);
                if gop_skipped {
                    break 'packets;
                }
                let leading = loop {
                    match packets.next() {
                        Some((s, _)) if s.index() != index => continue,
                        Some((_, next)) => {
                            break secs(next.pts().or(next.dts()))
                                .is_some_and(|t| t < key_t - 1e-6)
                                .then_some(next);
                        }
                        None => break None,
                    }
                };
                let Some(next) = leading else { break 'packets };
                decoder.send_packet(&packet).map_err(failed_at(path, "decoding"))?;
                decoder.send_packet(&next).map_err(failed_at(path, "decoding"))?;
                overrun = true;
            } else {
                if packet.is_key() {
                    if let (Some(p), Some(d)) = (packet.pts(), packet.dts()) {
                        key_lag = ((p - d) as f64 * time_base).max(0.0);
                    }
                    // The index's next keyframe: the first listed after this one (whose
                    // index time is at most its latest timestamp).
                    let this = (latest(&packet) - start) as f64 * time_base;
                    next_key = keys.get(keys.partition_point(|t| *t <= this + 1e-6)).copied();
                }
                if !keys.is_empty() && !overrun {
                    if packet.is_key() {
                        if gop_skipped {
                            resume_at = pt.map(|t| (skipped_from, t));
                        }
                        gop_skipped = false;
                    } else if gop_skipped {
                        end.skipped += 1;
                        continue;
                    }
                }
                if let Some(t) = pt {
                    sent_max = sent_max.max(t);
                }
                // A non-reference picture shown 2.5 frames or more after the last grid time
                // is not decoded (nothing refers to it, and a sample takes the first picture
                // at or after its grid time). Decided from the packet alone, so one decoder
                // and many decide alike.
                let far = pt.is_some_and(|t| {
                    !interval.is_finite() || t - ((t + 1e-6) / interval).floor() * interval >= 2.5 * frame_dt
                });
                if opts.skip_nonref && far != skipping {
                    skipping = far;
                    decoder.skip_frame(if far { Discard::NonReference } else { Discard::Default });
                }
                decoder.send_packet(&packet).map_err(failed_at(path, "decoding"))?;
                // A grid time's sample is the first picture at or after it: sent once a
                // picture shown within a frame after it is, or once everything shown up to a
                // frame after it is (B pictures still to come are shown up to `reorder`
                // before the latest picture sent).
                while pt.is_some_and(|p| p >= due - 1e-6 && p < due + frame_dt - 1e-6)
                    || sent_max - reorder >= due + frame_dt
                {
                    due = grid_after(due, interval);
                }
                if !keys.is_empty() && sent_max.is_finite() && !overrun {
                    // Nothing before the next keyframe is needed when the first grid time
                    // whose sample may be unsent falls at or after that keyframe.
                    gop_skipped = next_key.is_some_and(|key| due >= key + key_lag - 1e-6);
                    if gop_skipped {
                        skipped_from = sent_max;
                    }
                }
            }
            while decoder.receive_frame(&mut frame).is_ok() {
                match picture(&mut frame, &mut end, from_t, to_t, &mut resume_at, &mut next_sample)? {
                    Pic::Skip | Pic::Go => {}
                    Pic::SpanDone => {
                        done = true;
                        break 'packets;
                    }
                    Pic::Stop => return Ok(Some(false)),
                }
            }
        }
        if !done {
            let _ = decoder.send_eof();
            while decoder.receive_frame(&mut frame).is_ok() {
                match picture(&mut frame, &mut end, from_t, to_t, &mut resume_at, &mut next_sample)? {
                    Pic::SpanDone => break,
                    Pic::Stop => return Ok(Some(false)),
                    Pic::Skip | Pic::Go => {}
                }
            }
        }
        Ok(Some(emit(Piece::End(Box::new(end)))))
    }
}
