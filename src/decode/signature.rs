//! Shot-change signatures: a picture's 16x16 grid of mean luma (and chroma), read
//! straight from the decoder's planes, compared to find shot changes and near-duplicates.
//!
//! Owns no thresholds: the sampler decides what difference counts as a cut or a copy.

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

/// A picture's fingerprint for shot detection and near-duplicate collapse: the mean
/// luma of 16x16 cells and, for YUV pictures, the mean chroma (U and V) of the same
/// cells. Chroma matters: a red shape on a green background changes luma little (87 vs
/// 109) over a small area, and would collapse into the empty background by luma alone.
#[derive(Clone)]
pub(super) struct Signature {
    luma: [f32; 256],
    chroma: Option<Box<[f32; 512]>>,
}

impl Signature {
    /// Mean absolute difference in levels (0..255): the larger of luma's and chroma's.
    pub(super) fn diff(&self, other: &Signature) -> f32 {
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

pub(super) fn signature(
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
