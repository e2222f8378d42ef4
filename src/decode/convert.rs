//! Pictures to packed RGB: scaling from the decoder's pixel format to the sampling
//! geometry in one swscale pass, and rotation for display.
//!
//! Knows nothing of which pictures are wanted (the sampler and `frames_at` decide).

use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

use super::open::VideoInfo;
use super::{DecodeError, failed_at};
use crate::image::RgbImage;

/// Size of the picture after "scale the shorter side to `short`", keeping aspect.
pub(super) fn scaled_dims(w: u32, h: u32, short: u32) -> (u32, u32) {
    if w <= h {
        (short, ((short as f64 * h as f64 / w as f64) as u32).max(1))
    } else {
        (((short as f64 * w as f64 / h as f64) as u32).max(1), short)
    }
}

/// Decoded pictures to packed RGB at the sampling geometry, rotated for display: one
/// swscale pass from the decoder's own format.
pub(super) struct ToRgb {
    sws: Option<(scaling::Context, Pixel, u32, u32)>,
    /// The scaled size before rotation.
    pub(super) width: u32,
    pub(super) height: u32,
    rotation: u32,
}

impl ToRgb {
    /// For pictures of `info` whose shorter display side becomes `short` (0: kept).
    pub(super) fn new(info: &VideoInfo, short: u32) -> Self {
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

    pub(super) fn convert(&mut self, path: &Path, frame: &ffmpeg::frame::Video) -> Result<RgbImage, DecodeError> {
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
        Ok(packed_rgb(&rgb).rotate(self.rotation))
    }
}

/// Converts (and scales) a decoded frame to packed RGB in one swscale pass.
pub(super) fn to_rgb(
    frame: &ffmpeg::frame::Video,
    width: u32,
    height: u32,
    flags: scaling::Flags,
) -> Result<RgbImage, ffmpeg::Error> {
    let mut sws = scaling::Context::get(
        frame.format(),
        frame.width(),
        frame.height(),
        Pixel::RGB24,
        width,
        height,
        flags,
    )?;
    let mut rgb = ffmpeg::frame::Video::empty();
    sws.run(frame, &mut rgb)?;
    Ok(packed_rgb(&rgb))
}

/// Copies an RGB24 frame into a tightly packed buffer (frames have padded rows).
fn packed_rgb(rgb: &ffmpeg::frame::Video) -> RgbImage {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let stride = rgb.stride(0);
    let src = rgb.data(0);
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        data.extend_from_slice(&src[y * stride..y * stride + w * 3]);
    }
    RgbImage {
        width: w as u32,
        height: h as u32,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_dims_keep_the_shorter_side() {
        assert_eq!(scaled_dims(1920, 1080, 224), (398, 224));
        assert_eq!(scaled_dims(1080, 1920, 224), (224, 398));
        assert_eq!(scaled_dims(500, 500, 224), (224, 224));
    }
}
