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
//! frames are not decoded while the next periodic sample is far away.

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
    /// Decoder threads (0: FFmpeg's choice).
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
    let (w, h, sar, codec) = unsafe {
        let p = params.as_ptr();
        let sar = (*p).sample_aspect_ratio;
        let name = ffmpeg::codec::Id::from((*p).codec_id).name().to_string();
        ((*p).width as u32, (*p).height as u32, sar, name)
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

/// Presentation times (seconds from `start`) of the keyframes the demuxer's index lists
/// for the stream, ascending (empty when the container has no index).
fn keyframe_times(stream: &ffmpeg::format::stream::Stream, start: i64, time_base: f64) -> Vec<f64> {
    // SAFETY: the stream of the open input is live; its entries are read, not kept.
    let mut keys: Vec<f64> = unsafe {
        let st = stream.as_ptr();
        let n = ffmpeg::ffi::avformat_index_get_entries_count(st);
        (0..n)
            .filter_map(|i| {
                let e = ffmpeg::ffi::avformat_index_get_entry(st as *mut _, i);
                // flags are the low 2 bits of the bitfield; AVINDEX_KEYFRAME = 1.
                (!e.is_null() && ((*e)._bitfield_1.get(0, 2) & 1) == 1)
                    .then(|| ((*e).timestamp - start) as f64 * time_base)
            })
            .collect()
    };
    keys.sort_by(f64::total_cmp);
    keys
}

/// Decodes `path`, handing each kept frame to `sink` in time order; `sink` returns
/// false to stop early (cancellation). Returns the stream facts and counters.
pub fn sample(
    path: &Path,
    opts: &SampleOptions,
    sink: &mut dyn FnMut(SampledFrame) -> bool,
) -> Result<(VideoInfo, SampleStats), DecodeError> {
    let Opened {
        mut input,
        index,
        time_base,
        start,
        info,
    } = open(path)?;
    let err_at = |what: &'static str| {
        move |e: ffmpeg::Error| DecodeError::Decode {
            path: path.to_path_buf(),
            reason: format!("{what}: {e}"),
        }
    };
    let err = err_at("decoding");
    let stream = input.stream(index).expect("stream index from open()");
    let mut ctx =
        ffmpeg::codec::context::Context::from_parameters(stream.parameters()).map_err(|e| DecodeError::Format {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let mut stats = SampleStats {
        hwaccel: "software".into(),
        ..SampleStats::default()
    };
    if opts.hwaccel {
        match attach_cuda(&mut ctx) {
            Ok(()) => stats.hwaccel = "cuda".into(),
            Err(reason) => {
                tracing::info!("{}: decoding in software: {reason}", path.display());
                stats.hwaccel = format!("software ({reason})");
            }
        }
    }
    ctx.set_threading(ffmpeg::codec::threading::Config {
        kind: ffmpeg::codec::threading::Type::Frame,
        count: opts.threads,
        ..Default::default()
    });
    let mut decoder = ctx.decoder().video().map_err(|e| DecodeError::Format {
        path: path.to_path_buf(),
        reason: format!("no decoder for {} ({e})", info.codec),
    })?;

    // Scaling target before rotation: the display geometry, swapped back for 90/270.
    let short = if opts.short_side == 0 {
        info.width.min(info.height)
    } else {
        opts.short_side
    };
    let (tw, th) = scaled_dims(info.width, info.height, short);
    let (sw, sh) = if info.rotation % 180 == 90 { (th, tw) } else { (tw, th) };
    let mut sws: Option<(scaling::Context, Pixel, u32, u32)> = None;
    let mut grey_sws = None;
    let mut thumbs = if opts.thumb_short_side > 0 {
        Some(Thumbnailer::new(tw, th, opts.thumb_short_side).map_err(err_at("opening the thumbnail encoder"))?)
    } else {
        None
    };

    let interval = if opts.fps > 0.0 { 1.0 / opts.fps } else { f64::INFINITY };
    let frame_dt = if info.fps > 0.0 { 1.0 / info.fps } else { 1.0 / 25.0 };
    let mut next_sample = 0.0f64;
    let mut prev_sig: Option<Signature> = None;
    // The last kept frame, held until the next kept frame (or the end) fixes its end.
    let mut pending: Option<(SampledFrame, Signature)> = None;
    let mut stopped = false;
    let mut skipping = false;
    let mut frame = ffmpeg::frame::Video::empty();

    let mut handle = |frame: &ffmpeg::frame::Video,
                      stats: &mut SampleStats,
                      pending: &mut Option<(SampledFrame, Signature)>,
                      next_sample: &mut f64,
                      prev_sig: &mut Option<Signature>|
     -> Result<bool, DecodeError> {
        let ts = frame.timestamp().or(frame.pts()).unwrap_or(0);
        let t = ((ts - start) as f64 * time_base).max(0.0);
        // Pictures decoded on the GPU come back to host memory (NV12) for the luma
        // signature and swscale.
        let downloaded;
        let frame = if frame.format() == Pixel::CUDA {
            downloaded = download(frame).map_err(err_at("copying a picture from the GPU"))?;
            &downloaded
        } else {
            frame
        };
        stats.decoded_frames += 1;
        stats.last_time = stats.last_time.max(t);
        let sig = signature(frame, &mut grey_sws).map_err(err_at("reading luma"))?;
        let shot = prev_sig.as_ref().is_some_and(|p| p.diff(&sig) >= opts.scene_threshold);
        *prev_sig = Some(sig.clone());
        let periodic = t + 1e-6 >= *next_sample;
        if !(periodic || shot) {
            return Ok(true);
        }
        if periodic {
            // Stay on the grid k/fps even when frames are skipped.
            while *next_sample <= t + 1e-6 {
                *next_sample += interval;
            }
        }
        stats.sampled += 1;
        if shot {
            stats.shot_changes += 1;
        }
        if let Some((_, psig)) = pending.as_ref()
            && !shot
            && psig.diff(&sig) < opts.dedup_threshold
        {
            return Ok(true); // collapsed into the pending frame
        }
        // Scale straight from the decoder's format to the target geometry.
        let (fmt, fw, fh) = (frame.format(), frame.width(), frame.height());
        if sws.as_ref().is_none_or(|(_, f, w, h)| (*f, *w, *h) != (fmt, fw, fh)) {
            let c = scaling::Context::get(fmt, fw, fh, Pixel::RGB24, sw, sh, scaling::Flags::BICUBIC)
                .map_err(err_at("setting up scaling"))?;
            sws = Some((c, fmt, fw, fh));
        }
        let mut rgb = ffmpeg::frame::Video::empty();
        sws.as_mut()
            .expect("just set")
            .0
            .run(frame, &mut rgb)
            .map_err(err_at("scaling"))?;
        let image = rotate(packed_rgb(&rgb), info.rotation);
        let thumbnail = match thumbs.as_mut() {
            Some(t) => t.encode(&image).map_err(err_at("making a thumbnail"))?,
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
        stats.kept += 1;
        if let Some((mut prev, _)) = pending.replace((kept, sig)) {
            prev.end = t.max(prev.start);
            if !sink(prev) {
                return Ok(false);
            }
        }
        Ok(true)
    };

    let keys = if opts.skip_to_keyframes && interval.is_finite() {
        keyframe_times(&stream, start, time_base)
    } else {
        Vec::new()
    };
    // Skipping to the next keyframe: latest presentation time sent to the decoder, and
    // the keyframe decoding resumed at (pictures before it, an open GOP's leading
    // frames whose references were skipped, are dropped).
    let mut sent_max = f64::NEG_INFINITY;
    let mut gop_skipped = false;
    // (latest time sent before the skip, the keyframe's time): pictures between the two
    // are leading pictures; earlier ones are still in the decoder's pipeline.
    let mut skipped_from = f64::NEG_INFINITY;
    let mut resume_at: Option<(f64, f64)> = None;
    'packets: for (s, packet) in input.packets() {
        if s.index() != index {
            continue;
        }
        let pt = packet.pts().or(packet.dts()).map(|p| (p - start) as f64 * time_base);
        if !keys.is_empty() {
            if packet.is_key() {
                if gop_skipped {
                    resume_at = pt.map(|t| (skipped_from, t));
                }
                gop_skipped = false;
            } else if gop_skipped {
                stats.skipped_packets += 1;
                continue;
            }
        }
        if let Some(t) = pt {
            sent_max = sent_max.max(t);
        }
        decoder.send_packet(&packet).map_err(err)?;
        if !keys.is_empty() && sent_max.is_finite() {
            // The next grid time after what was sent; nothing before the next keyframe
            // is needed when it falls at or after that keyframe.
            let next_grid = ((sent_max / interval + 1e-6).floor() + 1.0) * interval;
            let k = keys.partition_point(|t| *t <= sent_max + 1e-6);
            gop_skipped = keys.get(k).is_some_and(|key| next_grid >= *key - 1e-6);
            if gop_skipped {
                skipped_from = sent_max;
            }
        }
        while decoder.receive_frame(&mut frame).is_ok() {
            if let Some((from, r)) = resume_at {
                let ts = frame.timestamp().or(frame.pts()).unwrap_or(0);
                let t = (ts - start) as f64 * time_base;
                if t > from + 1e-6 && t < r - 1e-6 {
                    continue;
                }
                if t >= r - 1e-6 {
                    resume_at = None;
                }
            }
            if !handle(&frame, &mut stats, &mut pending, &mut next_sample, &mut prev_sig)? {
                stopped = true;
                break 'packets;
            }
            // Decode only reference frames while the next sample is far away.
            let far = next_sample - stats.last_time > 2.5 * frame_dt;
            if opts.skip_nonref && far != skipping {
                skipping = far;
                decoder.skip_frame(if far { Discard::NonReference } else { Discard::Default });
            }
        }
    }
    if !stopped {
        let _ = decoder.send_eof();
        while decoder.receive_frame(&mut frame).is_ok() {
            if !handle(&frame, &mut stats, &mut pending, &mut next_sample, &mut prev_sig)? {
                stopped = true;
                break;
            }
        }
    }
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

/// The pictures shown at `times` (seconds, ascending; the presentation times of frames
/// sampled earlier), scaled so the shorter display side is `short_side` and rotated for
/// display, as [`sample`] would give them. Used to re-embed stored frames with another
/// model without sampling again. A time past the last picture gets the last one.
pub fn frames_at(path: &Path, times: &[f64], short_side: u32, threads: usize) -> Result<Vec<RgbImage>, DecodeError> {
    let Opened {
        mut input,
        index,
        time_base,
        start,
        info,
    } = open(path)?;
    let err_at = |what: &'static str| {
        move |e: ffmpeg::Error| DecodeError::Decode {
            path: path.to_path_buf(),
            reason: format!("{what}: {e}"),
        }
    };
    let stream = input.stream(index).expect("stream index from open()");
    let mut ctx =
        ffmpeg::codec::context::Context::from_parameters(stream.parameters()).map_err(|e| DecodeError::Format {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    ctx.set_threading(ffmpeg::codec::threading::Config {
        kind: ffmpeg::codec::threading::Type::Frame,
        count: threads,
        ..Default::default()
    });
    let mut decoder = ctx.decoder().video().map_err(|e| DecodeError::Format {
        path: path.to_path_buf(),
        reason: format!("no decoder for {} ({e})", info.codec),
    })?;
    let (tw, th) = scaled_dims(info.width, info.height, short_side);
    let (sw, sh) = if info.rotation % 180 == 90 { (th, tw) } else { (tw, th) };
    let frame_dt = if info.fps > 0.0 { 1.0 / info.fps } else { 1.0 / 25.0 };
    let mut sws: Option<(scaling::Context, Pixel, u32, u32)> = None;
    let mut out: Vec<RgbImage> = Vec::with_capacity(times.len());
    let mut last: Option<RgbImage> = None;
    let mut frame = ffmpeg::frame::Video::empty();
    let mut skipping = false;
    // Scales one decoded picture the way `sample` does.
    let mut convert = |frame: &ffmpeg::frame::Video| -> Result<RgbImage, DecodeError> {
        let (fmt, fw, fh) = (frame.format(), frame.width(), frame.height());
        if sws.as_ref().is_none_or(|(_, f, w, h)| (*f, *w, *h) != (fmt, fw, fh)) {
            let c = scaling::Context::get(fmt, fw, fh, Pixel::RGB24, sw, sh, scaling::Flags::BICUBIC)
                .map_err(err_at("setting up scaling"))?;
            sws = Some((c, fmt, fw, fh));
        }
        let mut rgb = ffmpeg::frame::Video::empty();
        sws.as_mut()
            .expect("just set")
            .0
            .run(frame, &mut rgb)
            .map_err(err_at("scaling"))?;
        Ok(rotate(packed_rgb(&rgb), info.rotation))
    };
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
        decoder.send_packet(&packet).map_err(err_at("decoding"))?;
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
