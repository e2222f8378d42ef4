"""Frames of the synthetic domain as a video pipeline leaves them.

Each clip is a short video of several scenes at a random size and aspect ratio, encoded
by the ffmpeg command-line tool (H.264, HEVC or VP9 in 4:2:0 at a random quality) and
decoded back, so the model learns from compression artefacts and chroma subsampling, not
from clean renders. One frame per scene is kept and put through CLIP's preprocessing
geometry (shortest side to 224 with bicubic, centre crop): the uint8 224x224 image the
engine normalises.
"""

from __future__ import annotations

import os
import subprocess
import tempfile

import numpy as np
from PIL import Image

import scenes as sc

IMAGE_SIZE = 224
ASPECTS = [(16, 9), (4, 3), (9, 16), (1, 1), (3, 4), (21, 9), (3, 2)]


def clip_geometry(img: Image.Image, size: int = IMAGE_SIZE, resample=Image.BICUBIC) -> np.ndarray:
    """OpenAI CLIP's Resize(size, BICUBIC) + CenterCrop(size), as torchvision does it."""
    w, h = img.size
    if w <= h:
        nw, nh = size, int(size * h / w)
    else:
        nw, nh = int(size * w / h), size
    img = img.resize((nw, nh), resample)
    left = int(round((nw - size) / 2.0))
    top = int(round((nh - size) / 2.0))
    return np.asarray(img.crop((left, top, left + size, top + size)).convert("RGB"))


def random_size(rng: np.random.Generator, smin: int = 144, smax: int = 540) -> tuple[int, int]:
    aw, ah = ASPECTS[rng.integers(len(ASPECTS))]
    s = int(rng.integers(smin, smax + 1))
    if aw >= ah:
        h, w = s, s * aw / ah
    else:
        w, h = s, s * ah / aw
    return int(w) // 2 * 2, int(h) // 2 * 2


def encode_decode(frames: list[np.ndarray], codec: str, quality: int, fps: int = 25) -> list[np.ndarray]:
    """Encode RGB frames with the ffmpeg CLI and decode them back to RGB."""
    h, w, _ = frames[0].shape
    args = {
        "h264": ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(quality)],
        "hevc": ["-c:v", "libx265", "-preset", "ultrafast", "-crf", str(quality), "-x265-params", "log-level=none"],
        "vp9": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "0", "-crf", str(quality + 12)],
    }[codec]
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        path = os.path.join(tmp, "clip.mkv")
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-", *args, "-pix_fmt", "yuv420p", "-threads", "1", path],
            input=b"".join(f.tobytes() for f in frames),
            check=True,
        )
        out = subprocess.run(
            ["ffmpeg", "-v", "error", "-threads", "1", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
            check=True,
            capture_output=True,
        ).stdout
    n = len(out) // (w * h * 3)
    arr = np.frombuffer(out, dtype=np.uint8)[: n * w * h * 3].reshape(n, h, w, 3)
    return [arr[i] for i in range(n)]


_NOISE_BANK = None


def noise_bank() -> np.ndarray:
    global _NOISE_BANK
    if _NOISE_BANK is None:
        _NOISE_BANK = np.random.default_rng(12345).standard_normal(8_000_000, dtype=np.float32)
    return _NOISE_BANK


def make_clip(seed: int, n_scenes: int = 16, p_empty: float = 0.1, codecs=("h264", "h264", "h264", "hevc", "vp9")):
    """Returns (images uint8 [n, 224, 224, 3], scenes) for one encoded clip."""
    rng = np.random.default_rng(seed)
    w, h = random_size(rng, 144, 420)
    per_scene = int(rng.integers(2, 5))
    codec = codecs[rng.integers(len(codecs))]
    quality = int(rng.integers(18, 36))
    raw = rng.random() < 0.08
    noise_on_shape = rng.random() < 0.3
    frames, scenes = [], []
    for _ in range(n_scenes):
        scene = sc.random_scene(rng, p_empty)
        scenes.append(scene)
        for k in range(per_scene):
            frames.append(sc.render(sc.drifted(scene, rng, k / 25.0), w, h, rng, noise_on_shape, noise_bank()))
    decoded = frames if raw else encode_decode(frames, codec, quality)
    images, kept = [], []
    for i, scene in enumerate(scenes):
        # Two frames of each scene (fresh noise, drift, other frame types); now and then
        # the first frame of a scene, which encoders smear across the cut.
        for k in rng.choice(per_scene, size=min(2, per_scene), replace=False):
            frame = decoded[min(i * per_scene + int(k), len(decoded) - 1)]
            resample = Image.BICUBIC if rng.random() < 0.75 else [Image.BILINEAR, Image.LANCZOS, Image.HAMMING][rng.integers(3)]
            images.append(clip_geometry(Image.fromarray(frame), resample=resample))
            kept.append(scene)
    return np.stack(images), kept
