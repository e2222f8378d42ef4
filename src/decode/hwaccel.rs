//! Hardware decoding: handing a decoder a CUDA device (FFmpeg's NVDEC hwaccel) and
//! copying its pictures back to host memory.
//!
//! Decides nothing: whether to ask for the GPU is the caller's option, and a decoder
//! without one decodes in software (the reason is reported, not raised).

use ffmpeg_next as ffmpeg;

/// Gives the decoder a CUDA device, so FFmpeg picks the NVDEC hwaccel for it (its
/// default format negotiation prefers the device's format and falls back to software
/// by itself when the stream's profile is not supported). Err: why not.
pub(super) fn attach_cuda(ctx: &mut ffmpeg::codec::context::Context) -> Result<(), String> {
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
pub(super) fn download(frame: &ffmpeg::frame::Video) -> Result<ffmpeg::frame::Video, ffmpeg::Error> {
    let mut host = ffmpeg::frame::Video::empty();
    // SAFETY: both frames are valid for the call; FFmpeg allocates the host buffers.
    let rc = unsafe { ffmpeg::ffi::av_hwframe_transfer_data(host.as_mut_ptr(), frame.as_ptr(), 0) };
    if rc < 0 {
        return Err(ffmpeg::Error::from(rc));
    }
    host.set_pts(frame.pts());
    Ok(host)
}
