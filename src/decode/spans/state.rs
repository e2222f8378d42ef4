//! One span's decoding in progress ([`SpanState`]): where the span begins and ends in
//! presentation time (an open GOP's leading pictures belong to the span before), which
//! packets need no decoding (non-reference pictures far from a grid time, the rest of a
//! GOP once no sample is due before the next keyframe), and which decoded pictures go to
//! the sampler as candidates.
//!
//! Holds no input or decoder: [`SpanDecoder`](super::SpanDecoder) reads the packets and
//! lends the decoder at each step.

use std::path::Path;

use ffmpeg::codec::discard::Discard;
use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

use super::{Candidate, Piece, Span, SpanDecoder, SpanEnd};
use crate::decode::hwaccel::download;
use crate::decode::open::frame_dt;
use crate::decode::sample::{SampleOptions, grid_after};
use crate::decode::signature::signature;
use crate::decode::{DecodeError, failed_at};

/// What one decoded picture does to its span.
pub(super) enum Pic {
    /// Not the span's (before its keyframe, or a leading picture whose references were
    /// skipped).
    Skip,
    Go,
    /// The next span's first picture.
    SpanDone,
    /// The sampler wants no more.
    Stop,
}

/// Where a packet lies against the span's keyframe, while that keyframe is not yet read.
pub(super) enum Landing {
    /// The input starts after the keyframe: a seek missed it.
    Missed,
    /// Before the keyframe (a seek that landed early, or the file read from the start).
    Before,
    /// At the keyframe, or the keyframe was read already.
    In,
}

/// One span's decoding in progress: where the span begins and ends in presentation time,
/// which packets need no decoding, and the span's own counters.
pub(super) struct SpanState<'a> {
    path: &'a Path,
    opts: &'a SampleOptions,
    /// Keyframe times, seconds from the stream start.
    keys: &'a [f64],
    span: Span,
    pub(super) index: usize,
    start: i64,
    time_base: f64,
    interval: f64,
    frame_dt: f64,
    reorder: f64,
    /// A packet after the span's keyframe means the seek missed it.
    check_landing: bool,
    /// How long after its index time a keyframe is shown (see [`SpanState::new`]).
    key_lag: f64,
    /// The index's next keyframe after the latest one read (seconds).
    next_key: Option<f64>,
    pub(super) end: SpanEnd,
    /// Local sampling state (the sampler keeps its own): the next periodic sample due.
    next_sample: f64,
    /// Non-reference pictures are being discarded.
    skipping: bool,
    /// Presentation times of the span's keyframe and of the next span's, once their
    /// packets are read: pictures before `from_t` belong to the previous span (an open
    /// GOP's leading pictures), pictures from `to_t` on to the next.
    from_t: Option<f64>,
    to_t: Option<f64>,
    /// Latest presentation time sent to the decoder.
    sent_max: f64,
    /// The first grid time whose sample may not be sent yet.
    due: f64,
    /// The packets up to the next keyframe are passed over.
    gop_skipped: bool,
    /// The latest time sent when packets began to be passed over.
    skipped_from: f64,
    /// Skipping to the next keyframe: the keyframe decoding resumed at (pictures before
    /// it, an open GOP's leading frames whose references were skipped, are dropped), as
    /// (latest time sent before the skip, the keyframe's time): pictures between the two
    /// are leading pictures; earlier ones are still in the decoder's pipeline.
    resume_at: Option<(f64, f64)>,
    /// Past the next span's keyframe, for an open GOP's leading pictures.
    overrun: bool,
}

/// A packet's place against index times: its decoding time where there is one (MP4
/// indexes those), or its presentation time (Matroska's cues); the later of the two.
fn latest(p: &ffmpeg::Packet) -> i64 {
    p.dts().unwrap_or(i64::MIN).max(p.pts().unwrap_or(i64::MIN))
}

/// The earlier of a packet's decoding and presentation times (see [`latest`]).
fn earliest(p: &ffmpeg::Packet) -> i64 {
    p.dts().or(p.pts()).unwrap_or(i64::MIN).min(p.pts().unwrap_or(i64::MAX))
}

impl<'a> SpanState<'a> {
    /// The state of decoding `span` with `dec`, from its input's position.
    pub(super) fn new(dec: &SpanDecoder<'a>, span: Span) -> Self {
        let frame_dt = frame_dt(dec.opened.info.fps);
        Self {
            path: dec.path,
            opts: dec.opts,
            keys: dec.keys,
            span,
            index: dec.opened.index,
            start: dec.opened.start,
            time_base: dec.opened.time_base,
            interval: dec.opts.interval(),
            frame_dt,
            reorder: dec.reorder,
            check_landing: span.from.is_some() && !dec.rewind,
            // How long after its index time a keyframe is shown: MP4 indexes decoding
            // times, and with B pictures a keyframe is shown a few frames later (its own
            // packets say by how much). Skipping to it early would lose the samples
            // before it.
            key_lag: dec.opened.video_delay as f64 * frame_dt,
            next_key: None,
            end: SpanEnd {
                decoded: 0,
                gpu: 0,
                skipped: 0,
                last_time: f64::NEG_INFINITY,
                last_sig: None,
            },
            next_sample: f64::NEG_INFINITY,
            skipping: false,
            from_t: if span.from.is_some() {
                None
            } else {
                Some(f64::NEG_INFINITY)
            },
            to_t: None,
            sent_max: f64::NEG_INFINITY,
            due: 0.0,
            gop_skipped: false,
            skipped_from: f64::NEG_INFINITY,
            resume_at: None,
            overrun: false,
        }
    }

    /// Seconds from the stream start of a raw timestamp.
    pub(super) fn secs(&self, p: Option<i64>) -> Option<f64> {
        p.map(|p| (p - self.start) as f64 * self.time_base)
    }

    /// Until the span's keyframe is read: where `packet` (shown at `pt`) lies against it.
    /// At the keyframe, the span starts there.
    pub(super) fn land(&mut self, packet: &ffmpeg::Packet, pt: Option<f64>) -> Landing {
        let (None, Some(key)) = (self.from_t, self.span.from) else {
            return Landing::In;
        };
        if self.check_landing && earliest(packet) > key {
            return Landing::Missed;
        }
        // Packets before the span's keyframe (a seek that landed early, or the file read
        // from the start) are passed over.
        if !(packet.is_key() && latest(packet) >= key) {
            return Landing::Before;
        }
        self.from_t = Some(pt.unwrap_or(f64::NEG_INFINITY));
        // The next sample due when one decoder reaches this keyframe: the first grid time
        // after the picture before it.
        self.next_sample = self
            .from_t
            .map_or(f64::NEG_INFINITY, |t| grid_after(t - self.frame_dt, self.interval));
        self.due = self.next_sample;
        Landing::In
    }

    /// The next span's keyframe, first read.
    pub(super) fn is_next_span_key(&self, packet: &ffmpeg::Packet) -> bool {
        self.span
            .to
            .is_some_and(|key| self.to_t.is_none() && packet.is_key() && latest(packet) >= key)
    }

    /// At the next span's keyframe `packet` (shown at `pt`): its pictures are the next
    /// span's. Pictures before it in presentation order that follow it in the stream (an
    /// open GOP's leading pictures) need it, and both are sent; otherwise (false) the
    /// decoder is to be drained here.
    pub(super) fn enter_next_span(
        &mut self,
        packet: &ffmpeg::Packet,
        pt: Option<f64>,
        packets: &mut ffmpeg::format::context::input::PacketIter<'_>,
        decoder: &mut ffmpeg::decoder::Video,
    ) -> Result<bool, DecodeError> {
        self.to_t = pt;
        let key_t = pt.unwrap_or(f64::INFINITY);
        if self.gop_skipped {
            return Ok(false);
        }
        let leading = loop {
            match packets.next() {
                Some((s, _)) if s.index() != self.index => continue,
                Some((_, next)) => {
                    break self
                        .secs(next.pts().or(next.dts()))
                        .is_some_and(|t| t < key_t - 1e-6)
                        .then_some(next);
                }
                None => break None,
            }
        };
        let Some(next) = leading else { return Ok(false) };
        decoder.send_packet(packet).map_err(failed_at(self.path, "decoding"))?;
        decoder.send_packet(&next).map_err(failed_at(self.path, "decoding"))?;
        self.overrun = true;
        Ok(true)
    }

    /// Notes a keyframe of the span, then whether `packet` (shown at `pt`) is passed over:
    /// no sample is due before the next keyframe (counted as skipped).
    pub(super) fn passes_over(&mut self, packet: &ffmpeg::Packet, pt: Option<f64>) -> bool {
        if packet.is_key() {
            if let (Some(p), Some(d)) = (packet.pts(), packet.dts()) {
                self.key_lag = ((p - d) as f64 * self.time_base).max(0.0);
            }
            // The index's next keyframe: the first listed after this one (whose index time
            // is at most its latest timestamp).
            let this = (latest(packet) - self.start) as f64 * self.time_base;
            let keys = self.keys;
            self.next_key = keys.get(keys.partition_point(|t| *t <= this + 1e-6)).copied();
        }
        if !self.keys.is_empty() && !self.overrun {
            if packet.is_key() {
                if self.gop_skipped {
                    self.resume_at = pt.map(|t| (self.skipped_from, t));
                }
                self.gop_skipped = false;
            } else if self.gop_skipped {
                self.end.skipped += 1;
                return true;
            }
        }
        false
    }

    /// Sends a packet of the span (shown at `pt`) to the decoder, then moves on the grid
    /// times whose samples are sent, and decides whether the rest of the GOP is needed.
    pub(super) fn send(
        &mut self,
        packet: &ffmpeg::Packet,
        pt: Option<f64>,
        decoder: &mut ffmpeg::decoder::Video,
    ) -> Result<(), DecodeError> {
        if let Some(t) = pt {
            self.sent_max = self.sent_max.max(t);
        }
        let (interval, frame_dt) = (self.interval, self.frame_dt);
        // A non-reference picture shown 2.5 frames or more after the last grid time is not
        // decoded (nothing refers to it, and a sample takes the first picture at or after
        // its grid time). Decided from the packet alone, so one decoder and many decide
        // alike.
        let far = pt
            .is_some_and(|t| !interval.is_finite() || t - ((t + 1e-6) / interval).floor() * interval >= 2.5 * frame_dt);
        if self.opts.skip_nonref && far != self.skipping {
            self.skipping = far;
            decoder.skip_frame(if far { Discard::NonReference } else { Discard::Default });
        }
        decoder.send_packet(packet).map_err(failed_at(self.path, "decoding"))?;
        // A grid time's sample is the first picture at or after it: sent once a picture
        // shown within a frame after it is, or once everything shown up to a frame after it
        // is (B pictures still to come are shown up to `reorder` before the latest picture
        // sent).
        while pt.is_some_and(|p| p >= self.due - 1e-6 && p < self.due + frame_dt - 1e-6)
            || self.sent_max - self.reorder >= self.due + frame_dt
        {
            self.due = grid_after(self.due, interval);
        }
        if !self.keys.is_empty() && self.sent_max.is_finite() && !self.overrun {
            // Nothing before the next keyframe is needed when the first grid time whose
            // sample may be unsent falls at or after that keyframe.
            self.gop_skipped = self.next_key.is_some_and(|key| self.due >= key + self.key_lag - 1e-6);
            if self.gop_skipped {
                self.skipped_from = self.sent_max;
            }
        }
        Ok(())
    }

    /// Whether the picture shown at `raw_t` is the span's: None when it is, else what
    /// to do with it.
    fn place(&mut self, raw_t: f64) -> Option<Pic> {
        if self.from_t.is_none_or(|from| raw_t < from - 1e-6) {
            return Some(Pic::Skip);
        }
        if self.to_t.is_some_and(|to| raw_t >= to - 1e-6) {
            return Some(Pic::SpanDone);
        }
        if let Some((from, r)) = self.resume_at {
            if raw_t > from + 1e-6 && raw_t < r - 1e-6 {
                return Some(Pic::Skip);
            }
            if raw_t >= r - 1e-6 {
                self.resume_at = None;
            }
        }
        None
    }

    /// Takes a decoded picture: counts it, signs it, and hands it to `emit` as a candidate
    /// when a tick may be due, a shot starts there, or it is the span's first.
    pub(super) fn picture(
        &mut self,
        frame: &mut ffmpeg::frame::Video,
        grey_sws: &mut Option<scaling::Context>,
        emit: &mut dyn FnMut(Piece) -> bool,
    ) -> Result<Pic, DecodeError> {
        let ts = frame.timestamp().or(frame.pts()).unwrap_or(0);
        let raw_t = (ts - self.start) as f64 * self.time_base;
        if let Some(pic) = self.place(raw_t) {
            return Ok(pic);
        }
        let t = raw_t.max(0.0);
        // Pictures decoded on the GPU come back to host memory (NV12) for the luma
        // signature and swscale.
        if frame.format() == Pixel::CUDA {
            self.end.gpu += 1;
            *frame = download(frame).map_err(failed_at(self.path, "copying a picture from the GPU"))?;
        }
        let end = &mut self.end;
        end.decoded += 1;
        end.last_time = end.last_time.max(t);
        let sig = signature(frame, grey_sws).map_err(failed_at(self.path, "reading luma"))?;
        let shot = end.last_sig.as_ref().map(|p| p.diff(&sig) >= self.opts.scene_threshold);
        let periodic = t + 1e-6 >= self.next_sample;
        if periodic {
            self.next_sample = grid_after(t, self.interval);
        }
        // The span's first picture goes to the sampler whatever it is: only the sampler
        // knows whether a tick is due or a shot starts there.
        let first = end.last_sig.is_none();
        end.last_sig = Some(sig.clone());
        if first || periodic || shot == Some(true) {
            let frame = std::mem::replace(frame, ffmpeg::frame::Video::empty());
            if !emit(Piece::Candidate(Box::new(Candidate { t, sig, shot, frame }))) {
                return Ok(Pic::Stop);
            }
        }
        Ok(Pic::Go)
    }
}
