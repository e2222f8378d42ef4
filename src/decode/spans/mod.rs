//! Spans: stretches of the stream between index keyframes, each decoded on its own,
//! and the [`SpanDecoder`] that decodes them into candidate pictures for the sampler.
//!
//! A span decoder only proposes pictures (a periodic tick may be due, a shot may start
//! there, or it is the span's first); which are kept is the sampler's decision, made in
//! time order across spans.
//!
//! `state` holds one span's decoding in progress: which packets are sent, which decoded
//! pictures are the span's, and which go to the sampler.

mod state;

use std::path::Path;

use ffmpeg::codec::discard::Discard;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

use super::DecodeError;
use super::open::{Opened, frame_dt, open, open_decoder, seek};
use super::sample::SampleOptions;
use super::signature::Signature;
use state::{Landing, Pic, SpanState};

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
    /// Of those, pictures that came from NVDEC (GPU memory).
    pub(super) gpu: u64,
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
        let mut state = SpanState::new(self, span);
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
}
