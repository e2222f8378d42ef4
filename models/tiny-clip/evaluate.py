"""Measure the tiny CLIP package on frames its training never saw.

    python3 models/tiny-clip/evaluate.py [--model models/tiny-clip] [--json out.json]

Held-out frames are rendered with seeds outside the training range, encoded as H.264
(yuv420p, CRF 20-30) at 16:9, 4:3, 9:16 and 1:1 sizes by the ffmpeg CLI, decoded,
and preprocessed exactly like OpenAI CLIP (PIL bicubic shortest side, centre crop,
mean/std). Embeddings come from the ONNX files through Python onnxruntime.

Reports: zero-shot accuracy of colour, shape and background from the best-matching
canonical caption; empty-frame detection; text->frame recall@1 and precision@10 for each
partial query form.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import data  # noqa: E402
import scenes as sc  # noqa: E402

SIZES = [(640, 360), (1280, 720), (640, 480), (360, 640), (480, 480), (320, 240)]
FORMS = {
    "a {c} {s} on a {b} background": ("c", "s", "b"),
    "a {c} {s}": ("c", "s"),
    "{c} {s}": ("c", "s"),
    "a {s} on a {b} background": ("s", "b"),
    "a {s}": ("s",),
    "a {c} shape": ("c",),
}


def heldout(n_clips: int, seed: int = 10**9):
    """Frames (uint8 224x224) and their scenes; one frame from the middle of each scene."""
    from PIL import Image

    images, scenes = [], []
    for k in range(n_clips):
        rng = np.random.default_rng(seed + k)
        w, h = SIZES[k % len(SIZES)]
        frames, kept = [], []
        for _ in range(6):
            scene = sc.random_scene(rng, p_empty=0.1)
            kept.append(scene)
            for t in range(5):
                frames.append(sc.render(sc.drifted(scene, rng, t / 25), w, h, rng))
        decoded = data.encode_decode(frames, "h264", int(rng.integers(20, 31)))
        for i, scene in enumerate(kept):
            images.append(data.clip_geometry(Image.fromarray(decoded[i * 5 + 2])))
            scenes.append(scene)
    return np.stack(images), scenes


class Onnx:
    def __init__(self, package: Path):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.manifest = json.loads((package / "model.json").read_text())
        files = self.manifest["files"]
        opts = ort.SessionOptions()
        self.visual = ort.InferenceSession(str(package / files["visual"]), opts, providers=["CPUExecutionProvider"])
        self.text = ort.InferenceSession(str(package / files["textual"]), opts, providers=["CPUExecutionProvider"])
        self.tok = Tokenizer.from_file(str(package / files["tokenizer"]))

    def images(self, u8: np.ndarray) -> np.ndarray:
        img = self.manifest["image"]
        x = u8.astype(np.float32) / 255.0
        x = (x - np.array(img["mean"], np.float32)) / np.array(img["std"], np.float32)
        x = x.transpose(0, 3, 1, 2)
        out = np.concatenate([self.visual.run(None, {"pixel_values": x[i : i + 64]})[0] for i in range(0, len(x), 64)])
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def texts(self, texts: list[str]) -> np.ndarray:
        out = []
        for t in texts:
            ids = np.array([self.tok.encode(t).ids], dtype=np.int64)
            out.append(self.text.run(None, {"input_ids": ids})[0][0])
        out = np.stack(out)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def canonical_captions():
    caps, attrs = [], []
    for b in sc.COLOURS:
        caps.append(f"an empty {b} background")
        attrs.append((None, None, b))
        for c in sc.COLOURS:
            if c == b:
                continue
            for s in sc.SHAPES:
                caps.append(f"a {c} {s} on a {b} background")
                attrs.append((c, s, b))
    return caps, attrs


def evaluate(model: Onnx, images: np.ndarray, scenes: list[sc.Scene]) -> dict:
    img = model.images(images)
    caps, attrs = canonical_captions()
    txt = model.texts(caps)
    pred = (img @ txt.T).argmax(1)
    shaped = [i for i, s in enumerate(scenes) if not s.empty]
    res = {
        "frames": len(scenes),
        "empty_frames": len(scenes) - len(shaped),
        "zero_shot": {
            "colour": float(np.mean([attrs[pred[i]][0] == scenes[i].colour for i in shaped])),
            "shape": float(np.mean([attrs[pred[i]][1] == scenes[i].shape for i in shaped])),
            "background": float(np.mean([attrs[pred[i]][2] == scenes[i].bg for i in range(len(scenes))])),
            "all_three": float(np.mean([attrs[pred[i]] == (scenes[i].colour, scenes[i].shape, scenes[i].bg) for i in range(len(scenes))])),
            "empty_detection": float(np.mean([(attrs[pred[i]][0] is None) == scenes[i].empty for i in range(len(scenes))])),
        },
        "queries": {},
    }
    value = {"c": lambda s: s.colour, "s": lambda s: s.shape, "b": lambda s: s.bg}
    for form, keys in FORMS.items():
        # Every query of this form that describes at least one held-out frame.
        wanted = defaultdict(list)
        for i, s in enumerate(scenes):
            if not s.empty:
                wanted[tuple(value[k](s) for k in keys)].append(i)
        queries = sorted(wanted)
        q = model.texts([form.format(**dict(zip(keys, v))) for v in queries])
        sim = q @ img.T
        r1, p10 = [], []
        for qi, v in enumerate(queries):
            order = np.argsort(-sim[qi])
            good = set(wanted[v])
            r1.append(order[0] in good)
            k = min(10, len(good))
            p10.append(len(good & set(order[:k].tolist())) / k)
        res["queries"][form] = {"queries": len(queries), "recall_at_1": float(np.mean(r1)), "precision_at_10": float(np.mean(p10))}
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(HERE))
    ap.add_argument("--clips", type=int, default=240, help="held-out clips of 6 scenes")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    images, scenes = heldout(args.clips)
    res = evaluate(Onnx(Path(args.model)), images, scenes)
    text = json.dumps(res, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
