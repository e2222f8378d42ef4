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
    path: &'a Path,
    opened: Opened,
    decoder: ffmpeg::decoder::Video,
    /// Keyframe times, seconds from the stream start.
    keys: &'a [f64],
    opts: &'a SampleOptions,
    /// Reopens the file for every span (seeking failed once).
    rewind: bool,
    /// How far before the latest picture sent a picture still to be sent may be shown
    /// (B pictures), seconds: see [`reorder_depth`].
    reorder: f64,
    grey_sws: Option<scaling::Context>,
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

impl<'a> SpanDecoder<'a> {
    /// A decoder for spans of the open input `opened`, whose decoder is `decoder`.
    pub(super) fn new(
        path: &'a Path,
        (opened, decoder): (Opened, ffmpeg::decoder::Video),
        keys: &'a [f64],
        opts: &'a SampleOptions,
        reorder: f64,
    ) -> Self {
        Self {
            path,
            opened,
            decoder,
            keys,
            opts,
            rewind: false,
            reorder,
            grey_sws: None,
        }
    }

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
        let mut state = self.state(span);
        let decoder = &mut self.decoder;
        let grey_sws = &mut self.grey_sws;
        decoder.skip_frame(Discard::Default);
        let mut frame = ffmpeg::frame::Video::empty();
        let mut packets = self.opened.input.packets();
        let mut done = false;
        'packets: while let Some((s, packet)) = packets.next() {
            if s.index() != state.index {
                continue;
            }
            let pt = state.secs(packet.pts().or(packet.dts()));
            match state.land(&packet, pt) {
                Landing::Missed => return Ok(None),
                Landing::Before => continue,
                Landing::In => {}
            }
            if state.is_next_span_key(&packet) {
                if !state.enter_next_span(&packet, pt, &mut packets, decoder)? {
                    break 'packets;
                }
            } else if state.passes_over(&packet, pt) {
                continue;
            } else {
                state.send(&packet, pt, decoder)?;
            }
            while decoder.receive_frame(&mut frame).is_ok() {
                match state.picture(&mut frame, grey_sws, emit)? {
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
                match state.picture(&mut frame, grey_sws, emit)? {
                    Pic::SpanDone => break,
                    Pic::Stop => return Ok(Some(false)),
                    Pic::Skip | Pic::Go => {}
                }
            }
        }
        Ok(Some(emit(Piece::End(Box::new(state.end)))))
    }

    /// The state of decoding `span` from the input's position.
    fn state(&self, span: Span) -> SpanState<'a> {
        let frame_dt = frame_dt(self.opened.info.fps);
        SpanState {
            path: self.path,
            opts: self.opts,
            keys: self.keys,
            span,
            index: self.opened.index,
            start: self.opened.start,
            time_base: self.opened.time_base,
            interval: self.opts.interval(),
            frame_dt,
            reorder: self.reorder,
            check_landing: span.from.is_some() && !self.rewind,
            // How long after its index time a keyframe is shown: MP4 indexes decoding
            // times, and with B pictures a keyframe is shown a few frames later (its own
            // packets say by how much). Skipping to it early would lose the samples
            // before it.
            key_lag: self.opened.video_delay as f64 * frame_dt,
            next_key: None,
            end: SpanEnd {
                decoded: 0,
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
}

/// Where a packet lies against the span's keyframe, while that keyframe is not yet read.
enum Landing {
    /// The input starts after the keyframe: a seek missed it.
    Missed,
    /// Before the keyframe (a seek that landed early, or the file read from the start).
    Before,
    /// At the keyframe, or the keyframe was read already.
    In,
}

/// One span's decoding in progress: where the span begins and ends in presentation time,
/// which packets need no decoding, and the span's own counters.
struct SpanState<'a> {
    path: &'a Path,
    opts: &'a SampleOptions,
    /// Keyframe times, seconds from the stream start.
    keys: &'a [f64],
    span: Span,
    index: usize,
    start: i64,
    time_base: f64,
    interval: f64,
    frame_dt: f64,
    reorder: f64,
    /// A packet after the span's keyframe means the seek missed it.
    check_landing: bool,
    /// How long after its index time a keyframe is shown (see [`SpanDecoder::state`]).
    key_lag: f64,
    /// The index's next keyframe after the latest one read (seconds).
    next_key: Option<f64>,
    end: SpanEnd,
    /// Local sampling state (the sampler keeps its own): the next periodic sample due.
    next_sample: f64,
    /// Non-reference pictures are being discarded.
    skipping: bool,
    /// Presentation times of the span's keyframe and of the next span's, once their
    /// packets are read: pictures before `from_t` belong to the previous span (an open
    /// GOP's leading pictures), pictures from `to_t` on to the next.
    from_t: Option<f64>,
    to_t: Option<f64>,
    /// Skipping to the next keyframe: latest presentation time sent to the decoder, and
    /// the keyframe decoding resumed at (pictures before it, an open GOP's leading frames
    /// whose references were skipped, are dropped).
    sent_max: f64,
    /// The first grid time whose sample may not be sent yet.
    due: f64,
    /// The packets up to the next keyframe are passed over.
    gop_skipped: bool,
    /// (latest time sent before the skip, the keyframe's time): pictures between the two
    /// are leading pictures; earlier ones are still in the decoder's pipeline.
    skipped_from: f64,
    resume_at: Option<(f64, f64)>,
    /// Past the next span's keyframe, for an open GOP's leading pictures.
    overrun: bool,
}

// A packet's place against index times: its decoding time where there is one (MP4
// indexes those), or its presentation time (Matroska's cues).
fn latest(p: &ffmpeg::Packet) -> i64 {
    p.dts().unwrap_or(i64::MIN).max(p.pts().unwrap_or(i64::MIN))
}

fn earliest(p: &ffmpeg::Packet) -> i64 {
    p.dts().or(p.pts()).unwrap_or(i64::MIN).min(p.pts().unwrap_or(i64::MAX))
}

impl SpanState<'_> {
    /// Seconds from the stream start of a raw timestamp.
    fn secs(&self, p: Option<i64>) -> Option<f64> {
        p.map(|p| (p - self.start) as f64 * self.time_base)
    }

    /// Until the span's keyframe is read: where `packet` (shown at `pt`) lies against it.
    /// At the keyframe, the span starts there.
    fn land(&mut self, packet: &ffmpeg::Packet, pt: Option<f64>) -> Landing {
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
    fn is_next_span_key(&self, packet: &ffmpeg::Packet) -> bool {
        self.span
            .to
            .is_some_and(|key| self.to_t.is_none() && packet.is_key() && latest(packet) >= key)
    }

    /// At the next span's keyframe `packet` (shown at `pt`): its pictures are the next
    /// span's. Pictures before it in presentation order that follow it in the stream (an
    /// open GOP's leading pictures) need it, and both are sent; otherwise (false) the
    /// decoder is to be drained here.
    fn enter_next_span(
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
    fn passes_over(&mut self, packet: &ffmpeg::Packet, pt: Option<f64>) -> bool {
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
    fn send(
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
    fn picture(
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
