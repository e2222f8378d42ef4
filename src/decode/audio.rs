//! A file's sound for speech recognition: one audio stream decoded and resampled by
//! FFmpeg's swresample to 16 kHz mono `f32` (any sample format, rate or channel layout
//! in: 8-bit, 96 kHz and 7.1 are downmixed and resampled the same way). Which stream:
//! the one asked for (`--audio-stream N`, counted among the audio streams from 0), else
//! FFmpeg's best. Packets that cannot be decoded are skipped (counted, the first
//! reason kept); frames are placed by their timestamps, so a gap left by skipped packets
//! stays silence and later speech keeps its time. Times: sample 0 is at `offset` seconds
//! of the file's timeline (the first audio frame's time from the container's start).

use std::path::Path;

use ffmpeg::media::Type;
use ffmpeg::software::resampling;
use ffmpeg::util::channel_layout::ChannelLayout;
use ffmpeg::util::format::sample::{Sample, Type as Planarity};
use ffmpeg::util::frame;
use ffmpeg_next as ffmpeg;

use super::{DecodeError, init, readable};

/// One decoded audio track.
#[derive(Clone, Debug, Default)]
pub struct AudioTrack {
    /// 16 kHz mono samples.
    pub samples: Vec<f32>,
    /// Where sample 0 is, in seconds of the file's timeline.
    pub offset: f64,
    /// Which audio stream (0 = the file's first audio stream).
    pub stream: usize,
    /// How many audio streams the file has.
    pub streams: usize,
    /// What the stream was: codec, rate, channels, sample format.
    pub source: String,
    /// What could not be decoded, when something could not (the rest is kept).
    pub damaged: Option<String>,
}

/// Samples per second of [`AudioTrack::samples`].
pub const AUDIO_RATE: u32 = 16_000;

fn fail(path: &Path, reason: impl Into<String>) -> DecodeError {
    DecodeError::Audio {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Decodes audio stream `stream` of `path` (None: the best one) to 16 kHz mono.
pub fn audio(path: &Path, stream: Option<usize>) -> Result<AudioTrack, DecodeError> {
    init();
    readable(path)?;
    let mut input = ffmpeg::format::input(path).map_err(|e| DecodeError::Format {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let (index, audio_streams) = choose(&input, path, stream)?;
    let st = input.stream(index).expect("listed above");
    let tb = st.time_base();
    let tb = tb.numerator() as f64 / tb.denominator().max(1) as f64;
    let ctx =
        ffmpeg::codec::context::Context::from_parameters(st.parameters()).map_err(|e| fail(path, e.to_string()))?;
    let mut dec = ctx
        .decoder()
        .audio()
        .map_err(|e| fail(path, format!("no decoder ({e})")))?;
    // SAFETY: a field of the open input, read and not kept.
    let container_start = match unsafe { (*input.as_ptr()).start_time } {
        t if t == ffmpeg::ffi::AV_NOPTS_VALUE => 0.0,
        t => t as f64 / ffmpeg::ffi::AV_TIME_BASE as f64,
    };
    let mut track = AudioTrack {
        stream: audio_streams.iter().position(|&i| i == index).unwrap_or(0),
        streams: audio_streams.len(),
        source: format!(
            "{} {} Hz, {} channel(s), {}",
            dec.id().name(),
            dec.rate(),
            dec.channels(),
            dec.format().name()
        ),
        ..Default::default()
    };
    let mut conv = Converter {
        tb,
        start: container_start,
        ..Default::default()
    };
    let (mut bad, mut first_bad) = (0usize, None);
    for (s, packet) in input.packets() {
        if s.index() != index {
            continue;
        }
        let sent = dec.send_packet(&packet);
        if let Err(e) = sent.and_then(|_| conv.drain(&mut dec, &mut track)) {
            bad += 1;
            let at = track.samples.len() as f64 / AUDIO_RATE as f64;
            first_bad.get_or_insert_with(|| format!("{at:.1} s ({e})"));
        }
    }
    let _ = dec.send_eof();
    let _ = conv.drain(&mut dec, &mut track);
    conv.flush(&mut track);
    if let Some(at) = first_bad {
        track.damaged = Some(format!("{bad} audio packet(s) could not be decoded, the first at {at}"));
    }
    Ok(track)
}

/// The stream index to decode and the indices of every audio stream, or why none.
fn choose(
    input: &ffmpeg::format::context::Input,
    path: &Path,
    stream: Option<usize>,
) -> Result<(usize, Vec<usize>), DecodeError> {
    let audio_streams: Vec<usize> = input
        .streams()
        .filter(|s| s.parameters().medium() == Type::Audio)
        .map(|s| s.index())
        .collect();
    if audio_streams.is_empty() {
        return Err(DecodeError::NoAudio {
            path: path.to_path_buf(),
        });
    }
    let index = match stream {
        Some(n) => *audio_streams.get(n).ok_or_else(|| {
            fail(
                path,
                format!(
                    "--audio-stream {n}: the file has {} audio stream(s), numbered from 0",
                    audio_streams.len()
                ),
            )
        })?,
        None => input
            .streams()
            .best(Type::Audio)
            .map(|s| s.index())
            .unwrap_or(audio_streams[0]),
    };
    Ok((index, audio_streams))
}

/// The resampler, made for the first frame's format and remade when it changes; the
/// stream's time base and the container's start, to place frames by their time.
#[derive(Default)]
struct Converter {
    swr: Option<(resampling::Context, (Sample, ChannelLayout, u32))>,
    tb: f64,
    start: f64,
    started: bool,
}

impl Converter {
    fn drain(&mut self, dec: &mut ffmpeg::decoder::Audio, track: &mut AudioTrack) -> Result<(), ffmpeg::Error> {
        let mut f = frame::Audio::empty();
        loop {
            match dec.receive_frame(&mut f) {
                Ok(()) => {}
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => return Ok(()),
                Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(e) => return Err(e),
            }
            let at = f.pts().map(|pts| pts as f64 * self.tb - self.start);
            if !self.started {
                self.started = true;
                track.offset = at.unwrap_or(0.0).max(0.0);
            } else if let Some(at) = at {
                // A gap (skipped packets): silence up to the frame's time.
                let want = ((at - track.offset) * AUDIO_RATE as f64) as usize;
                if want > track.samples.len() + AUDIO_RATE as usize / 10 {
                    track.samples.resize(want, 0.0);
                }
            }
            if f.channel_layout().is_empty() {
                f.set_channel_layout(ChannelLayout::default(f.channels() as i32));
            }
            self.run(&f, track)?;
        }
    }

    fn run(&mut self, f: &frame::Audio, track: &mut AudioTrack) -> Result<(), ffmpeg::Error> {
        let key = (f.format(), f.channel_layout(), f.rate());
        if self.swr.as_ref().is_none_or(|(_, k)| *k != key) {
            self.flush(track);
            let swr = resampling::Context::get(
                key.0,
                key.1,
                key.2,
                Sample::F32(Planarity::Packed),
                ChannelLayout::MONO,
                AUDIO_RATE,
            )?;
            self.swr = Some((swr, key));
        }
        let (swr, _) = self.swr.as_mut().expect("made above");
        let room = f.samples() * AUDIO_RATE as usize / key.2.max(1) as usize + 64;
        let mut out = frame::Audio::new(Sample::F32(Planarity::Packed), room, ChannelLayout::MONO);
        swr.run(f, &mut out)?;
        take(&out, track);
        Ok(())
    }

    fn flush(&mut self, track: &mut AudioTrack) {
        if let Some((swr, _)) = self.swr.as_mut() {
            let mut out = frame::Audio::new(Sample::F32(Planarity::Packed), 4096, ChannelLayout::MONO);
            if swr.flush(&mut out).is_ok() {
                take(&out, track);
            }
        }
    }
}

fn take(out: &frame::Audio, track: &mut AudioTrack) {
    let n = out.samples();
    let bytes = &out.data(0)[..n * 4];
    track.samples.extend(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]])),
    );
}
