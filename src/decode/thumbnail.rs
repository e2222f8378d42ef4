//! JPEG thumbnails of kept frames, through FFmpeg's MJPEG encoder.
//!
//! Takes the RGB the sampler already made (no second decode or scale from the source).

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

use super::convert::scaled_dims;
use crate::image::RgbImage;

/// JPEG thumbnails through FFmpeg's MJPEG encoder.
pub(super) struct Thumbnailer {
    sws: scaling::Context,
    encoder: ffmpeg::encoder::Video,
    width: u32,
    height: u32,
    count: i64,
}

impl Thumbnailer {
    pub(super) fn new(src_w: u32, src_h: u32, short: u32) -> Result<Self, ffmpeg::Error> {
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

    pub(super) fn encode(&mut self, img: &RgbImage) -> Result<Vec<u8>, ffmpeg::Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnail_is_a_jpeg() {
        super::super::init();
        let mut t = Thumbnailer::new(398, 224, 120).unwrap();
        let img = RgbImage::filled(398, 224, [200, 30, 30]);
        let a = t.encode(&img).unwrap();
        let b = t.encode(&img).unwrap();
        assert_eq!(&a[..2], &[0xFF, 0xD8]);
        assert!(!b.is_empty());
    }
}
