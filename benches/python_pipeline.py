"""The straightforward Python peer of vidseek's indexing pipeline, for side-by-side
benchmarks (benches/pipeline.rs runs it in the same process tree and the same run).

    python3 benches/python_pipeline.py VIDEO MODEL_DIR FPS BATCH

ffmpeg CLI decodes and samples (`-vf fps=FPS`) and writes raw RGB frames to a pipe;
numpy/PIL do CLIP's preprocessing (bicubic shortest side, centre crop, mean/std);
Python onnxruntime runs the same visual.onnx on the CPU in batches. Prints one JSON line:
{"frames": N, "seconds": wall time, "frames_per_second": ...}.
Needs numpy, Pillow, onnxruntime.
"""

import json
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image


def main():
    video, model_dir, fps, batch = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    manifest = json.load(open(f"{model_dir}/model.json"))
    size = manifest["image"]["size"]
    mean = np.array(manifest["image"]["mean"], np.float32)
    std = np.array(manifest["image"]["std"], np.float32)
    sess = ort.InferenceSession(f"{model_dir}/{manifest['files']['visual']}", providers=["CPUExecutionProvider"])
    inp = manifest["io"]["image_input"]
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "csv=p=0", video],
        capture_output=True, text=True, check=True,
    ).stdout.strip().split(",")
    w, h = int(probe[0]), int(probe[1])
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-i", video, "-vf", f"fps={fps}", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        stdout=subprocess.PIPE,
    )
    frame_bytes = w * h * 3
    pending, n = [], 0

    def flush():
        x = np.stack(pending)
        sess.run(None, {inp: x})
        pending.clear()

    while True:
        raw = proc.stdout.read(frame_bytes)
        if len(raw) < frame_bytes:
            break
        img = Image.frombuffer("RGB", (w, h), raw, "raw", "RGB", 0, 1)
        if w <= h:
            nw, nh = size, int(size * h / w)
        else:
            nw, nh = int(size * w / h), size
        img = img.resize((nw, nh), Image.BICUBIC)
        left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
        img = img.crop((left, top, left + size, top + size))
        x = (np.asarray(img, dtype=np.float32) / 255.0 - mean) / std
        pending.append(x.transpose(2, 0, 1))
        n += 1
        if len(pending) == batch:
            flush()
    if pending:
        flush()
    proc.wait()
    dt = time.perf_counter() - t0
    print(json.dumps({"frames": n, "seconds": dt, "frames_per_second": n / dt}))


if __name__ == "__main__":
    main()
