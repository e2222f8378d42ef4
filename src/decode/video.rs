//! Video: stream facts, and the sampler that turns a file into the frames worth
//! embedding, each with the exact time range it stands for.
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

use ffmpeg::codec::discard::Discard;
use ffmpeg::format::Pixel;
use ffmpeg::media::Type;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

use super::{DecodeError, init, packed_rgb};
use crate::image::RgbImage;

/// Stream facts of a video file.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct VideoInfo {
    /// Seconds.
    pub duration: f64,
    /// Average frame rate.
    pub fps: f64,
    /// Display size (after rotation and pixel aspect ratio).
    pub width: u32,
    /// Display height.
    pub height: u32,
    /// FFmpeg's codec name.
    pub codec: String,
    /// Clockwise rotation applied for display: 0, 90, 180 or 270.
    pub rotation: u32,
    /// Subtitle streams in the container.
    pub subtitle_streams: usize,
    /// The container's title tag, when set.
    pub title: Option<String>,
}

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
    fn interval(&self) -> f64 {
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
    /// Packets not decoded at all (no sample was due before the next keyframe).
    pub skipped_packets: u64,
    /// Stretches between keyframes decoded on their own (1: the stream in one piece).
    pub spans: u64,
    pub sampled: u64,
    pub kept: u64,
    pub shot_changes: u64,
    /// Last decoded presentation time (seconds).
    pub last_time: f64,
    /// How the pictures were decoded: "software", "cuda", or "software (REASON)" when
    /// the hwaccel was asked for and could not be used.
    pub hwaccel: String,
}

struct Opened {
    input: ffmpeg::format::context::Input,
    index: usize,
    time_base: f64,
    start: i64,
    /// Pictures a decoder holds back for reordering (B pictures): a keyframe is shown
    /// up to this many frames after its decoding time.
    video_delay: u32,
    info: VideoInfo,
}

fn open(path: &Path) -> Result<Opened, DecodeError> {
    init();
    if let Err(e) = std::fs::File::open(path) {
        return Err(DecodeError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        });
    }
    let input = ffmpeg::format::input(path).map_err(|e| DecodeError::Format {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let stream = input.streams().best(Type::Video).ok_or_else(|| DecodeError::NoVideo {
        path: path.to_path_buf(),
    })?;
    let index = stream.index();
    let tb = stream.time_base();
    let time_base = tb.numerator() as f64 / tb.denominator().max(1) as f64;
    let start = if stream.start_time() == ffmpeg::ffi::AV_NOPTS_VALUE {
        0
    } else {
        stream.start_time()
    };
    let params = stream.parameters();
    let (w, h, sar, codec, video_delay) = unsafe {
        let p = params.as_ptr();
        let sar = (*p).sample_aspect_ratio;
        let name = ffmpeg::codec::Id::from((*p).codec_id).name().to_string();
        (
            (*p).width as u32,
            (*p).height as u32,
            sar,
            name,
            (*p).video_delay.max(0) as u32,
        )
    };
    if w < 16 || h < 16 || w > 16384 || h > 16384 {
        return Err(DecodeError::Unsupported {
            path: path.to_path_buf(),
            reason: format!("a {w}x{h} picture is outside the supported 16..16384 pixels per side"),
        });
    }
    let rotation = rotation_of(&stream);
    let display_w = if sar.num > 0 && sar.den > 0 && sar.num != sar.den {
        ((w as f64 * sar.num as f64 / sar.den as f64).round() as u32).max(1)
    } else {
        w
    };
    let (dw, dh) = if rotation % 180 == 90 {
        (h, display_w)
    } else {
        (display_w, h)
    };
    let avg = stream.avg_frame_rate();
    let fps = if avg.denominator() > 0 && avg.numerator() > 0 {
        avg.numerator() as f64 / avg.denominator() as f64
    } else {
        let r = stream.rate();
        if r.denominator() > 0 {
            r.numerator() as f64 / r.denominator() as f64
        } else {
            0.0
        }
    };
    let duration = if stream.duration() > 0 {
        stream.duration() as f64 * time_base
    } else if input.duration() > 0 {
        input.duration() as f64 / ffmpeg::ffi::AV_TIME_BASE as f64
    } else {
        0.0
    };
    let subtitle_streams = input
        .streams()
        .filter(|s| s.parameters().medium() == Type::Subtitle)
        .count();
    let title = input
        .metadata()
        .get("title")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    Ok(Opened {
        info: VideoInfo {
            duration,
            fps,
            width: dw,
            height: dh,
            codec,
            rotation,
            subtitle_streams,
            title,
        },
        input,
        index,
        time_base,
        start,
        video_delay,
    })
}

/// Clockwise display rotation from the stream's display matrix.
fn rotation_of(stream: &ffmpeg::format::stream::Stream) -> u32 {
    for sd in stream.side_data() {
        if sd.kind() == ffmpeg::codec::packet::side_data::Type::DisplayMatrix && sd.data().len() >= 36 {
            // av_display_rotation_get: counter-clockwise degrees.
            let ccw = unsafe { ffmpeg::ffi::av_display_rotation_get(sd.data().as_ptr() as *const i32) };
            if ccw.is_nan() {
                return 0;
            }
            let cw = (-ccw.round() as i64).rem_euclid(360);
            return (((cw + 45) / 90 * 90) % 360) as u32;
        }
    }
    0
}

/// Reads the stream facts without decoding pictures.
pub fn probe(path: &Path) -> Result<VideoInfo, DecodeError> {
    Ok(open(path)?.info)
}

/// Size of the picture after "scale the shorter side to `short`", keeping aspect.
pub fn scaled_dims(w: u32, h: u32, short: u32) -> (u32, u32) {
    if w <= h {
        (short, ((short as f64 * h as f64 / w as f64) as u32).max(1))
    } else {
        (((short as f64 * w as f64 / h as f64) as u32).max(1), short)
    }
}

/// Gives the decoder a CUDA device, so FFmpeg picks the NVDEC hwaccel for it (its
/// default format negotiation prefers the device's format and falls back to software
/// by itself when the stream's profile is not supported). Err: why not.
fn attach_cuda(ctx: &mut ffmpeg::codec::context::Context) -> Result<(), String> {
    use ffmpeg::ffi;
    // SAFETY: plain FFmpeg C calls on a context this function borrows mutably; the device
    // reference is either handed to the context (which unrefs it when freed) or unref'd.
    unsafe {
        let codec = ffi::avcodec_find_decoder((*ctx.as_ptr()).codec_id);
        if codec.is_null() {
            return Err("FFmpeg has no decoder for this codec".into());
        }
        let mut supported = false;
        for i in 0.. {
            let cfg = ffi::avcodec_get_hw_config(codec, i);
            if cfg.is_null() {
                break;
            }
            if (*cfg).device_type == ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_CUDA
                && (*cfg).methods & ffi::AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX as i32 != 0
            {
                supported = true;
                break;
            }
        }
        if !supported {
            let name = std::ffi::CStr::from_ptr((*codec).name).to_string_lossy();
            return Err(format!("FFmpeg's {name} decoder has no CUDA hwaccel"));
        }
        let mut device: *mut ffi::AVBufferRef = std::ptr::null_mut();
        let rc = ffi::av_hwdevice_ctx_create(
            &mut device,
            ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_CUDA,
            std::ptr::null(),
            std::ptr::null_mut(),
            0,
        );
        if rc < 0 {
            return Err(format!(
                "no CUDA device for FFmpeg ({}): no NVIDIA GPU, driver or libcuda here",
                ffmpeg::Error::from(rc)
            ));
        }
        (*ctx.as_mut_ptr()).hw_device_ctx = device;
    }
    Ok(())
}

/// A GPU picture copied to host memory, with its timing.
fn download(frame: &ffmpeg::frame::Video) -> Result<ffmpeg::frame::Video, ffmpeg::Error> {
    let mut host = ffmpeg::frame::Video::empty();
    // SAFETY: both frames are valid for the call; FFmpeg allocates the host buffers.
    let rc = unsafe { ffmpeg::ffi::av_hwframe_transfer_data(host.as_mut_ptr(), frame.as_ptr(), 0) };
    if rc < 0 {
        return Err(ffmpeg::Error::from(rc));
    }
    host.set_pts(frame.pts());
    Ok(host)
}

/// A picture's fingerprint for shot detection and near-duplicate collapse: the mean
/// luma of 16x16 cells and, for YUV pictures, the mean chroma (U and V) of the same
/// cells. Chroma matters: a red shape on a green background changes luma little (87 vs
/// 109) over a small area, and would collapse into the empty background by luma alone.
#[derive(Clone)]
struct Signature {
    luma: [f32; 256],
    chroma: Option<Box<[f32; 512]>>,
}

impl Signature {
    /// Mean absolute difference in levels (0..255): the larger of luma's and chroma's.
    fn diff(&self, other: &Signature) -> f32 {
        let mean = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
        let l = mean(&self.luma, &other.luma);
        match (&self.chroma, &other.chroma) {
            (Some(a), Some(b)) => l.max(mean(&a[..], &b[..])),
            _ => l,
        }
    }
}

/// Luma planes the signature can read directly (8-bit and little-endian 16-bit).
fn luma_depth(fmt: Pixel) -> Option<u32> {
    use Pixel::*;
    match fmt {
        YUV420P | YUVJ420P | YUV422P | YUVJ422P | YUV444P | YUVJ444P | YUV440P | YUVJ440P | YUV411P | YUV410P
        | NV12 | NV21 | NV16 | GRAY8 | YUVA420P => Some(8),
        YUV420P10LE | YUV422P10LE | YUV444P10LE => Some(10),
        YUV420P12LE | YUV422P12LE | YUV444P12LE => Some(12),
        _ => Option::None,
    }
}

/// How a format keeps its chroma: planar U and V, or U and V interleaved in plane 1
/// (`swap`: V first, NV21).
enum ChromaLayout {
    None,
    Planar,
    Interleaved { swap: bool },
}

fn chroma_layout(fmt: Pixel) -> ChromaLayout {
    use Pixel::*;
    match fmt {
        GRAY8 => ChromaLayout::None,
        NV12 | NV16 => ChromaLayout::Interleaved { swap: false },
        NV21 => ChromaLayout::Interleaved { swap: true },
        _ => ChromaLayout::Planar,
    }
}

/// The 16x16 cell means of one plane: a 4x4 block of samples around each cell centre.
/// `step` and `offset` pick samples of an interleaved plane (in samples); `bytes` is 1 or
/// 2 (little-endian, shifted down by `shift`).
#[allow(clippy::too_many_arguments)]
fn cells(
    data: &[u8],
    stride: usize,
    w: usize,
    h: usize,
    step: usize,
    offset: usize,
    bytes: usize,
    shift: u32,
) -> [f32; 256] {
    let mut out = [0f32; 256];
    for gy in 0..16 {
        for gx in 0..16 {
            let cy = (gy * h + h / 2) / 16;
            let cx = (gx * w + w / 2) / 16;
            let mut acc = 0u32;
            for y in cy.saturating_sub(2)..(cy + 2).min(h) {
                for x in cx.saturating_sub(2)..(cx + 2).min(w) {
                    let i = y * stride + (x * step + offset) * bytes;
                    acc += if bytes == 1 {
                        data[i] as u32
                    } else {
                        (u16::from_le_bytes([data[i], data[i + 1]]) >> shift) as u32
                    };
                }
            }
            let n = ((cy + 2).min(h) - cy.saturating_sub(2)) * ((cx + 2).min(w) - cx.saturating_sub(2));
            out[gy * 16 + gx] = acc as f32 / n.max(1) as f32;
        }
    }
    out
}

fn signature(
    frame: &ffmpeg::frame::Video,
    fallback: &mut Option<scaling::Context>,
) -> Result<Signature, ffmpeg::Error> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    if let Some(depth) = luma_depth(frame.format()) {
        let bytes = if depth == 8 { 1 } else { 2 };
        let shift = depth - 8;
        let luma = cells(frame.data(0), frame.stride(0), w, h, 1, 0, bytes, shift);
        let chroma = match chroma_layout(frame.format()) {
            ChromaLayout::None => None,
            ChromaLayout::Planar if frame.planes() >= 3 => {
                let (cw, ch) = (frame.plane_width(1) as usize, frame.plane_height(1) as usize);
                let u = cells(frame.data(1), frame.stride(1), cw, ch, 1, 0, bytes, shift);
                let v = cells(frame.data(2), frame.stride(2), cw, ch, 1, 0, bytes, shift);
                Some(Box::new(concat(&u, &v)))
            }
            ChromaLayout::Interleaved { swap } if frame.planes() >= 2 => {
                let (cw, ch) = (frame.plane_width(1) as usize, frame.plane_height(1) as usize);
                let a = cells(frame.data(1), frame.stride(1), cw, ch, 2, 0, bytes, shift);
                let b = cells(frame.data(1), frame.stride(1), cw, ch, 2, 1, bytes, shift);
                Some(Box::new(if swap { concat(&b, &a) } else { concat(&a, &b) }))
            }
            _ => None,
        };
        return Ok(Signature { luma, chroma });
    }
    // Other formats (RGB, palette, ...): let swscale make a 16x16 YUV picture.
    let ctx = match fallback {
        Some(c) => c,
        None => fallback.insert(scaling::Context::get(
            frame.format(),
            frame.width(),
            frame.height(),
            Pixel::YUV444P,
            16,
            16,
            scaling::Flags::AREA,
        )?),
    };
    let mut small = ffmpeg::frame::Video::empty();
    ctx.run(frame, &mut small)?;
    let plane = |p: usize| {
        let mut out = [0f32; 256];
        for y in 0..16 {
            for x in 0..16 {
                out[y * 16 + x] = small.data(p)[y * small.stride(p) + x] as f32;
            }
        }
        out
    };
    Ok(Signature {
        luma: plane(0),
        chroma: Some(Box::new(concat(&plane(1), &plane(2)))),
    })
}

fn concat(a: &[f32; 256], b: &[f32; 256]) -> [f32; 512] {
    let mut out = [0f32; 512];
    out[..256].copy_from_slice(a);
    out[256..].copy_from_slice(b);
    out
}

/// Rotates packed RGB clockwise by 90, 180 or 270 degrees.
pub fn rotate(img: RgbImage, cw: u32) -> RgbImage {
    let (w, h) = (img.width as usize, img.height as usize);
    if cw == 0 {
        return img;
    }
    let (nw, nh) = if cw == 180 { (w, h) } else { (h, w) };
    let mut out = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let (nx, ny) = match cw {
                90 => (h - 1 - y, x),
                180 => (w - 1 - x, h - 1 - y),
                _ => (y, w - 1 - x), // 270
            };
            let s = (y * w + x) * 3;
            let d = (ny * nw + nx) * 3;
            out[d..d + 3].copy_from_slice(&img.data[s..s + 3]);
        }
    }
    RgbImage {
        width: nw as u32,
        height: nh as u32,
        data: out,
    }
}

/// JPEG thumbnails through FFmpeg's MJPEG encoder.
struct Thumbnailer {
    sws: scaling::Context,
    encoder: ffmpeg::encoder::Video,
    width: u32,
    height: u32,
    count: i64,
}

impl Thumbnailer {
    fn new(src_w: u32, src_h: u32, short: u32) -> Result<Self, ffmpeg::Error> {
        let (mut w, mut h) = scaled_dims(src_w, src_h, short.min(src_w.min(src_h)));
        w &= !1;
        h &= !1;
        let (w, h) = (w.max(2), h.max(2));
        let sws = scaling::Context::get(Pixel::RGB24, src_w, src_h, Pixel::YUVJ420P, w, h, scaling::Flags::AREA)?;
        let codec = ffmpeg::encoder::find(ffmpeg::codec::Id::MJPEG).ok_or(ffmpeg::Error::EncoderNotFound)?;
        let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()?;
        enc.set_width(w);
        enc.set_height(h);
        enc.set_format(Pixel::YUVJ420P);
        enc.set_time_base((1, 25));
        unsafe {
            // Constant quality (qscale 5 of 2..31), like `-q:v 5`.
            let ctx = enc.as_mut_ptr();
            (*ctx).flags |= ffmpeg::ffi::AV_CODEC_FLAG_QSCALE as i32;
            (*ctx).global_quality = 5 * ffmpeg::ffi::FF_QP2LAMBDA;
        }
        let encoder = enc.open_as(codec)?;
        Ok(Self {
            sws,
            encoder,
            width: src_w,
            height: src_h,
            count: 0,
        })
    }

    fn encode(&mut self, img: &RgbImage) -> Result<Vec<u8>, ffmpeg::Error> {
        let mut src = ffmpeg::frame::Video::new(Pixel::RGB24, self.width, self.height);
        let stride = src.stride(0);
        let row = self.width as usize * 3;
        for y in 0..self.height as usize {
            src.data_mut(0)[y * stride..y * stride + row].copy_from_slice(&img.data[y * row..(y + 1) * row]);
        }
        let mut yuv = ffmpeg::frame::Video::empty();
        self.sws.run(&src, &mut yuv)?;
        // The encoder wants increasing timestamps, even for single pictures.
        self.count += 1;
        yuv.set_pts(Some(self.count));
        unsafe {
            (*yuv.as_mut_ptr()).quality = 5 * ffmpeg::ffi::FF_QP2LAMBDA;
        }
        self.encoder.send_frame(&yuv)?;
        let mut packet = ffmpeg::Packet::empty();
        self.encoder.receive_packet(&mut packet)?;
        Ok(packet.data().map(<[u8]>::to_vec).unwrap_or_default())
    }
}

/// Seconds per frame at `fps` (25 fps where the stream does not say).
fn frame_dt(fps: f64) -> f64 {
    if fps > 0.0 { 1.0 / fps } else { 1.0 / 25.0 }
}

/// Turns an FFmpeg error while `what` into the file's decode error.
fn failed_at<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(ffmpeg::Error) -> DecodeError + 'a {
    move |e| DecodeError::Decode {
        path: path.to_path_buf(),
        reason: format!("{what}: {e}"),
    }
}

/// Seeks the input to the last keyframe at or before `ts` (the video stream's own
/// timestamps); false when the demuxer cannot.
fn seek(opened: &mut Opened, ts: i64) -> bool {
    // SAFETY: the input is open; the timestamps are the stream's own.
    unsafe { ffmpeg::ffi::avformat_seek_file(opened.input.as_mut_ptr(), opened.index as i32, i64::MIN, ts, ts, 0) >= 0 }
}

/// The demuxer's index entries flagged as keyframes for the stream: their raw timestamps
/// (the index's own, stream time base), ascending and distinct (empty when the container
/// has no index).
fn keyframe_index(stream: &ffmpeg::format::stream::Stream) -> Vec<i64> {
    // SAFETY: the stream of the open input is live; its entries are read, not kept.
    let mut keys: Vec<i64> = unsafe {
        let st = stream.as_ptr();
        let n = ffmpeg::ffi::avformat_index_get_entries_count(st);
        (0..n)
            .filter_map(|i| {
                let e = ffmpeg::ffi::avformat_index_get_entry(st as *mut _, i);
                // flags are the low 2 bits of the bitfield; AVINDEX_KEYFRAME = 1.
                (!e.is_null() && ((*e)._bitfield_1.get(0, 2) & 1) == 1).then(|| (*e).timestamp)
            })
            .collect()
    };
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The video decoder of an open input: `threads` frame threads (0: FFmpeg's choice), on
/// the GPU (NVDEC) when `hwaccel` and the machine allow it. Also says how it decodes:
/// "software", "cuda", or "software (REASON)".
fn open_decoder(
    path: &Path,
    opened: &Opened,
    threads: usize,
    hwaccel: bool,
) -> Result<(ffmpeg::decoder::Video, String), DecodeError> {
    let stream = opened.input.stream(opened.index).expect("stream index from open()");
    let mut ctx =
        ffmpeg::codec::context::Context::from_parameters(stream.parameters()).map_err(|e| DecodeError::Format {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let mut how = "software".to_string();
    if hwaccel {
        match attach_cuda(&mut ctx) {
            Ok(()) => how = "cuda".into(),
            Err(reason) => {
                tracing::info!("{}: decoding in software: {reason}", path.display());
                how = format!("software ({reason})");
            }
        }
    }
    ctx.set_threading(ffmpeg::codec::threading::Config {
        kind: ffmpeg::codec::threading::Type::Frame,
        count: threads,
        ..Default::default()
    });
    let decoder = ctx.decoder().video().map_err(|e| DecodeError::Format {
        path: path.to_path_buf(),
        reason: format!("no decoder for {} ({e})", opened.info.codec),
    })?;
    Ok((decoder, how))
}

/// Decoded pictures to packed RGB at the sampling geometry, rotated for display: one
/// swscale pass from the decoder's own format.
struct ToRgb {
    sws: Option<(scaling::Context, Pixel, u32, u32)>,
    /// The scaled size before rotation.
    width: u32,
    height: u32,
    rotation: u32,
}

impl ToRgb {
    /// For pictures of `info` whose shorter display side becomes `short` (0: kept).
    fn new(info: &VideoInfo, short: u32) -> Self {
        let short = if short == 0 { info.width.min(info.height) } else { short };
        let (tw, th) = scaled_dims(info.width, info.height, short);
        // Scaling target before rotation: the display geometry, swapped back for 90/270.
        let (width, height) = if info.rotation % 180 == 90 { (th, tw) } else { (tw, th) };
        Self {
            sws: None,
            width,
            height,
            rotation: info.rotation,
        }
    }

    fn convert(&mut self, path: &Path, frame: &ffmpeg::frame::Video) -> Result<RgbImage, DecodeError> {
        let (fmt, fw, fh) = (frame.format(), frame.width(), frame.height());
        if self
            .sws
            .as_ref()
            .is_none_or(|(_, f, w, h)| (*f, *w, *h) != (fmt, fw, fh))
        {
            let c = scaling::Context::get(
                fmt,
                fw,
                fh,
                Pixel::RGB24,
                self.width,
                self.height,
                scaling::Flags::BICUBIC,
            )
            .map_err(failed_at(path, "setting up scaling"))?;
            self.sws = Some((c, fmt, fw, fh));
        }
        let mut rgb = ffmpeg::frame::Video::empty();
        self.sws
            .as_mut()
            .expect("just set")
            .0
            .run(frame, &mut rgb)
            .map_err(failed_at(path, "scaling"))?;
        Ok(rotate(packed_rgb(&rgb), self.rotation))
    }
}

/// The first grid time `k * interval` after `t` (the next periodic sample is due then).
fn grid_after(t: f64, interval: f64) -> f64 {
    if !interval.is_finite() {
        return f64::INFINITY;
    }
    (((t + 1e-6) / interval).floor() + 1.0) * interval
}

/// A stretch of the stream decoded on its own: from a keyframe (None: the start of the
/// file) up to the next span's keyframe (None: the end). Raw index timestamps.
#[derive(Clone, Copy, Debug)]
struct Span {
    from: Option<i64>,
    to: Option<i64>,
}

/// Spans of at least `min_seconds` that start at keyframes; one span (the whole stream)
/// when the index lists too few keyframes.
fn plan_spans(keys: &[i64], secs: impl Fn(i64) -> f64, min_seconds: f64) -> Vec<Span> {
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

/// A decoded picture the sampler may keep: a periodic tick may be due, or it starts a
/// shot, or it is the first of its span.
struct Candidate {
    t: f64,
    sig: Signature,
    /// A shot change against the span's previous decoded picture; None for a span's
    /// first picture (the sampler compares it with the previous span's last).
    shot: Option<bool>,
    /// The decoder's picture (a reference, not a copy), scaled only if it is kept.
    frame: ffmpeg::frame::Video,
}

/// What a span's decoding tells the sampler, in order.
enum Piece {
    // Boxed: a channel per span holds a few of these, so they stay small.
    Candidate(Box<Candidate>),
    End(Box<SpanEnd>),
    Failed(DecodeError),
}

/// A finished span.
struct SpanEnd {
    decoded: u64,
    skipped: u64,
    last_time: f64,
    /// The last decoded picture's signature (the next span's first is compared with it).
    last_sig: Option<Signature>,
}

/// One input and decoder, decoding spans (one after another) into pieces.
struct SpanDecoder<'a> {
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
fn reorder_depth(opened: &mut Opened) -> f64 {
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
    fn run(&mut self, span: Span, emit: &mut dyn FnMut(Piece) -> bool) -> Result<bool, DecodeError> {
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

/// The sampler proper: takes the spans' candidates in time order and keeps the frames
/// worth embedding (periodic ticks, shot changes, minus near-duplicates), each with the
/// time range it stands for.
struct Sampler<'a> {
    path: &'a Path,
    opts: &'a SampleOptions,
    interval: f64,
    to_rgb: ToRgb,
    thumbs: Option<Thumbnailer>,
    next_sample: f64,
    prev_sig: Option<Signature>,
    // The last kept frame, held until the next kept frame (or the end) fixes its end.
    pending: Option<(SampledFrame, Signature)>,
    stats: SampleStats,
    sink: &'a mut dyn FnMut(SampledFrame) -> bool,
}

impl Sampler<'_> {
    /// Takes one piece; false once the sink wants no more.
    fn take(&mut self, piece: Piece) -> Result<bool, DecodeError> {
        let c = match piece {
            Piece::Failed(e) => return Err(e),
            Piece::End(end) => {
                self.stats.decoded_frames += end.decoded;
                self.stats.skipped_packets += end.skipped;
                self.stats.spans += 1;
                self.stats.last_time = self.stats.last_time.max(end.last_time);
                if end.last_sig.is_some() {
                    self.prev_sig = end.last_sig;
                }
                return Ok(true);
            }
            Piece::Candidate(c) => c,
        };
        let opts = self.opts;
        let shot = c.shot.unwrap_or_else(|| {
            self.prev_sig
                .as_ref()
                .is_some_and(|p| p.diff(&c.sig) >= opts.scene_threshold)
        });
        let t = c.t;
        let periodic = t + 1e-6 >= self.next_sample;
        if !(periodic || shot) {
            return Ok(true);
        }
        if periodic {
            // Stay on the grid k/fps even when frames are skipped.
            self.next_sample = grid_after(t, self.interval);
        }
        self.stats.sampled += 1;
        if shot {
            self.stats.shot_changes += 1;
        }
        if let Some((_, psig)) = self.pending.as_ref()
            && !shot
            && psig.diff(&c.sig) < opts.dedup_threshold
        {
            return Ok(true); // collapsed into the pending frame
        }
        let image = self.to_rgb.convert(self.path, &c.frame)?;
        let thumbnail = match self.thumbs.as_mut() {
            Some(th) => th.encode(&image).map_err(failed_at(self.path, "making a thumbnail"))?,
            None => Vec::new(),
        };
        let kept = SampledFrame {
            start: t,
            end: t,
            peak: t,
            image,
            thumbnail,
            reason: if shot {
                SampleReason::ShotChange
            } else {
                SampleReason::Periodic
            },
        };
        self.stats.kept += 1;
        if let Some((mut prev, _)) = self.pending.replace((kept, c.sig)) {
            prev.end = t.max(prev.start);
            if !(self.sink)(prev) {
                return Ok(false);
            }
        }
        Ok(true)
    }
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
    let mut opened = open(path)?;
    // Matroska reads its cues (the keyframe index) at the first seek: one to the start
    // (a failed seek leaves the index as it was).
    let start = opened.start;
    seek(&mut opened, start);
    let raw_keys = keyframe_index(&opened.input.stream(opened.index).expect("stream index from open()"));
    let reorder = reorder_depth(&mut opened);
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
    let thumbs = match opts.thumb_short_side {
        0 => None,
        short => {
            let ToRgb { width, height, .. } = ToRgb::new(&info, opts.short_side);
            let (w, h) = if info.rotation % 180 == 90 {
                (height, width)
            } else {
                (width, height)
            };
            Some(Thumbnailer::new(w, h, short).map_err(failed_at(path, "opening the thumbnail encoder"))?)
        }
    };
    let mut sampler = Sampler {
        path,
        opts,
        interval,
        to_rgb: ToRgb::new(&info, opts.short_side),
        thumbs,
        next_sample: 0.0,
        prev_sig: None,
        pending: None,
        stats: SampleStats {
            hwaccel: "software".into(),
            ..SampleStats::default()
        },
        sink,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = if opts.threads == 0 { cores } else { opts.threads }.min(8);
    let spans = plan_spans(&raw_keys, secs, SPAN_SECONDS);
    let stopped = if opts.hwaccel || workers < 2 || spans.len() < 2 {
        let (decoder, how) = open_decoder(path, &opened, opts.threads, opts.hwaccel)?;
        sampler.stats.hwaccel = how;
        let mut dec = SpanDecoder {
            path,
            opened,
            decoder,
            keys: &keys,
            opts,
            rewind: false,
            reorder,
            grey_sws: None,
        };
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
        !go
    } else {
        drop(opened);
        let workers = workers.min(spans.len());
        // A channel per span: the threads take spans in order as they come free, and a
        // thread runs ahead of the sampler by at most its one span (4 pieces buffered).
        let (txs, rxs): (Vec<_>, Vec<_>) = spans.iter().map(|_| std::sync::mpsc::sync_channel::<Piece>(4)).unzip();
        let txs: Vec<_> = txs.into_iter().map(|tx| std::sync::Mutex::new(Some(tx))).collect();
        let next_span = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| -> Result<bool, DecodeError> {
            for _ in 0..workers {
                let (spans, keys, txs, next_span) = (&spans, &keys, &txs, &next_span);
                scope.spawn(move || {
                    let mut dec: Option<SpanDecoder> = None;
                    loop {
                        let i = next_span.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        // Taken out, so the sampler hears of a thread that ends early.
                        let Some(tx) = txs.get(i).and_then(|t| t.lock().expect("unpoisoned").take()) else {
                            return;
                        };
                        let dec = match dec.as_mut() {
                            Some(d) => d,
                            None => {
                                let opened = open(path).and_then(|opened| {
                                    let (decoder, _) = open_decoder(path, &opened, 1, false)?;
                                    Ok((opened, decoder))
                                });
                                match opened {
                                    Ok((opened, decoder)) => dec.insert(SpanDecoder {
                                        path,
                                        opened,
                                        decoder,
                                        keys,
                                        opts,
                                        rewind: false,
                                        reorder,
                                        grey_sws: None,
                                    }),
                                    Err(e) => {
                                        let _ = tx.send(Piece::Failed(e));
                                        return;
                                    }
                                }
                            }
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
                });
            }
            // The spans in order: each one's pieces, then its end.
            for rx in rxs {
                loop {
                    let piece = rx.recv().map_err(|_| DecodeError::Decode {
                        path: path.to_path_buf(),
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
        })?
    };
    let Sampler {
        stats,
        mut pending,
        sink,
        ..
    } = sampler;
    let frame_dt = frame_dt(info.fps);
    if stats.decoded_frames == 0 {
        return Err(DecodeError::NoFrame {
            path: path.to_path_buf(),
            reason: "the video stream holds no decodable picture".into(),
        });
    }
    // A stream that ends well before its declared duration was cut short.
    if !stopped && info.duration > 2.0 && stats.last_time + frame_dt < 0.9 * info.duration - 1.0 {
        return Err(DecodeError::Truncated {
            path: path.to_path_buf(),
            decoded: stats.last_time,
            declared: info.duration,
        });
    }
    if let Some((mut last, _)) = pending.take()
        && !stopped
    {
        // The last frame stands until the end of the stream (the declared duration when
        // it is plausible, else one frame past the last picture).
        let past_last = stats.last_time + frame_dt;
        let declared_ok = info.duration >= past_last && info.duration <= past_last + interval;
        last.end = if declared_ok { info.duration } else { past_last }.max(last.start + frame_dt);
        sink(last);
    }
    Ok((info, stats))
}

/// The shortest span decoded on its own thread: long enough that the keyframe decoded
/// twice at each span's end (to find where it ends) and the seek are small beside it.
const SPAN_SECONDS: f64 = 4.0;

/// The pictures shown at `times` (seconds, ascending; the presentation times of frames
/// sampled earlier), scaled so the shorter display side is `short_side` and rotated for
/// display, as [`sample`] would give them. Used to re-embed stored frames with another
/// model without sampling again. A time past the last picture gets the last one.
pub fn frames_at(path: &Path, times: &[f64], short_side: u32, threads: usize) -> Result<Vec<RgbImage>, DecodeError> {
    let mut opened = open(path)?;
    let (mut decoder, _) = open_decoder(path, &opened, threads, false)?;
    let Opened {
        ref mut input,
        index,
        time_base,
        start,
        ref info,
        ..
    } = opened;
    let frame_dt = frame_dt(info.fps);
    let mut to_rgb = ToRgb::new(info, short_side);
    let mut out: Vec<RgbImage> = Vec::with_capacity(times.len());
    let mut last: Option<RgbImage> = None;
    let mut frame = ffmpeg::frame::Video::empty();
    let mut skipping = false;
    // Scales one decoded picture the way `sample` does.
    let mut convert = |frame: &ffmpeg::frame::Video| to_rgb.convert(path, frame);
    let mut take = |frame: &ffmpeg::frame::Video,
                    out: &mut Vec<RgbImage>,
                    last: &mut Option<RgbImage>|
     -> Result<(), DecodeError> {
        let ts = frame.timestamp().or(frame.pts()).unwrap_or(0);
        let t = ((ts - start) as f64 * time_base).max(0.0);
        let eps = 0.25 * frame_dt;
        if out.len() < times.len() && times[out.len()] <= t + eps {
            let img = convert(frame)?;
            while out.len() < times.len() && times[out.len()] <= t + eps {
                if times[out.len()] < t - eps {
                    // Passed without a picture at that time: the one before was shown.
                    out.push(last.clone().unwrap_or_else(|| img.clone()));
                } else {
                    out.push(img.clone());
                }
            }
            *last = Some(img);
        } else if out.len() < times.len() && times[out.len()] - t < 3.0 * frame_dt {
            // Just before a wanted time: this picture is shown then if none starts at it.
            *last = Some(convert(frame)?);
        }
        Ok(())
    };
    'packets: for (s, packet) in input.packets() {
        if s.index() != index {
            continue;
        }
        decoder.send_packet(&packet).map_err(failed_at(path, "decoding"))?;
        while decoder.receive_frame(&mut frame).is_ok() {
            take(&frame, &mut out, &mut last)?;
            if out.len() == times.len() {
                break 'packets;
            }
            let ts = frame.timestamp().or(frame.pts()).unwrap_or(0);
            let t = ((ts - start) as f64 * time_base).max(0.0);
            // Only reference frames while the next wanted time is far away.
            let far = times[out.len()] - t > 2.5 * frame_dt;
            if far != skipping {
                skipping = far;
                decoder.skip_frame(if far { Discard::NonReference } else { Discard::Default });
            }
        }
    }
    if out.len() < times.len() {
        let _ = decoder.send_eof();
        while decoder.receive_frame(&mut frame).is_ok() && out.len() < times.len() {
            take(&frame, &mut out, &mut last)?;
        }
    }
    // Times past the last picture (its frame stood until the end).
    while out.len() < times.len() {
        match last.clone() {
            Some(img) => out.push(img),
            None => {
                return Err(DecodeError::NoFrame {
                    path: path.to_path_buf(),
                    reason: "the video stream holds no decodable picture".into(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_moves_corners_clockwise() {
        // 2x1 image: red, green.
        let img = RgbImage::from_raw(2, 1, vec![255, 0, 0, 0, 255, 0]).unwrap();
        let r90 = rotate(img.clone(), 90);
        assert_eq!((r90.width, r90.height), (1, 2));
        assert_eq!(r90.pixel(0, 0), [255, 0, 0]);
        assert_eq!(r90.pixel(0, 1), [0, 255, 0]);
        let r270 = rotate(img.clone(), 270);
        assert_eq!(r270.pixel(0, 0), [0, 255, 0]);
        let r180 = rotate(img, 180);
        assert_eq!(r180.pixel(0, 0), [0, 255, 0]);
    }

    #[test]
    fn scaled_dims_keep_the_shorter_side() {
        assert_eq!(scaled_dims(1920, 1080, 224), (398, 224));
        assert_eq!(scaled_dims(1080, 1920, 224), (224, 398));
        assert_eq!(scaled_dims(500, 500, 224), (224, 224));
    }

    #[test]
    fn thumbnail_is_a_jpeg() {
        init();
        let mut t = Thumbnailer::new(398, 224, 120).unwrap();
        let img = RgbImage::filled(398, 224, [200, 30, 30]);
        let a = t.encode(&img).unwrap();
        let b = t.encode(&img).unwrap();
        assert_eq!(&a[..2], &[0xFF, 0xD8]);
        assert!(!b.is_empty());
    }
}
