"""Train the tiny synthetic-domain CLIP and write the model package next to this file.

    python3 models/tiny-clip/train.py                 # full run: data, training, export
    python3 models/tiny-clip/train.py --steps 200     # quick smoke run

Seeded and CPU-only (PyTorch). Steps:
1. Data: clips rendered from the scene spec, encoded and decoded by the ffmpeg CLI
   (data.py), cached as uint8 224x224 frames under --data.
2. Training: CLIP's symmetric contrastive loss with a learned temperature. Captions are
   drawn per step from the canonical caption and its partial forms (attribute dropout);
   because several captions in a batch can describe the same image ("a red circle"),
   the targets of both cross-entropies spread over every caption/image that matches
   instead of only the diagonal.
3. Export: visual.onnx / textual.onnx (dynamic batch; dynamic sequence for text),
   model.json and tokenizer.json (models/clip_tokenizer.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import clip_tokenizer  # noqa: E402
import data  # noqa: E402
import scenes as sc  # noqa: E402
from model import CONTEXT_LENGTH, TinyClip  # noqa: E402

MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
# The image tower is a ViT on 224-px input with a 7x7 token grid (32-px patches). It is
# trained at half resolution (2x2 average-pooled input, 16-px patches) and exported
# with the 2x2 average pooling as its first operation, so the engine feeds it exactly
# the CLIP preprocessing it feeds ViT-B/32 and the network computes what it trained on.
DOWNSAMPLE = 2
CONFIG = {
    "image_size": 224,
    "patch": 32,
    "v_width": 128,
    "v_layers": 4,
    "v_heads": 4,
    "t_width": 128,
    "t_layers": 3,
    "t_heads": 4,
    "dim": 128,
}

# (template, weight). {c} colour, {s} shape, {b} background.
SHAPE_FORMS = [
    ("a {c} {s} on a {b} background", 0.30),
    ("a {c} {s}", 0.15),
    ("{c} {s}", 0.07),
    ("a {s} on a {b} background", 0.20),
    ("a {s}", 0.14),
    ("a {c} shape", 0.14),
]
EMPTY_FORM = "an empty {b} background"


def all_captions() -> list[str]:
    out = set()
    for c in sc.COLOURS:
        for s in sc.SHAPES:
            for b in sc.COLOURS:
                for form, _ in SHAPE_FORMS:
                    out.add(form.format(c=c, s=s, b=b))
        out.add(EMPTY_FORM.format(b=c))
    out |= {t + "." for t in out}
    return sorted(out)


# ---------------------------------------------------------------- data


def _clip_worker(seed: int):
    images, scenes = data.make_clip(seed)
    return downsample(images, DOWNSAMPLE), scenes


def build_dataset(cache: Path, n_clips: int, seed: int, workers: int):
    frames_path, meta_path = cache / "frames.u8", cache / "scenes.json"
    side = CONFIG["image_size"] // DOWNSAMPLE
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta["n_clips"] == n_clips and meta["seed"] == seed and meta.get("side") == side:
            n = len(meta["scenes"])
            frames = np.fromfile(frames_path, dtype=np.uint8).reshape(n, side, side, 3)
            print(f"data: {n} cached frames from {cache}", flush=True)
            return frames, [sc.Scene(**s) for s in meta["scenes"]]
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    images, scenes = [], []
    seeds = [seed * 1_000_003 + i for i in range(n_clips)]
    with Pool(workers, initializer=data.noise_bank) as pool:
        for i, (imgs, scs) in enumerate(pool.imap(_clip_worker, seeds, chunksize=4)):
            images.append(imgs)
            scenes.extend(scs)
            if (i + 1) % 200 == 0:
                print(f"data: {i + 1}/{n_clips} clips, {len(scenes)} frames, {time.time() - t0:.0f}s", flush=True)
    arr = np.concatenate(images)
    arr.tofile(frames_path)
    meta_path.write_text(json.dumps({"n_clips": n_clips, "seed": seed, "side": side, "scenes": [s.__dict__ for s in scenes]}))
    print(f"data: {len(scenes)} frames in {time.time() - t0:.0f}s", flush=True)
    return arr, scenes


# ---------------------------------------------------------------- captions


class Captions:
    """Samples a caption per image and knows which images each caption describes."""

    def __init__(self, tokenizer_path: Path):
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(tokenizer_path))
        self.cache: dict[str, list[int]] = {}
        self.forms = [f for f, _ in SHAPE_FORMS]
        w = np.array([w for _, w in SHAPE_FORMS])
        self.weights = w / w.sum()

    def ids(self, text: str) -> list[int]:
        if text not in self.cache:
            self.cache[text] = self.tok.encode(text).ids  # <sot> ... <eot>
        return self.cache[text]

    def sample(self, scenes: list[sc.Scene], rng: np.random.Generator):
        texts, attrs = [], []
        for s in scenes:
            if s.empty:
                texts.append(EMPTY_FORM.format(b=s.bg))
                attrs.append(("empty", None, None, s.bg))
                continue
            form = self.forms[rng.choice(len(self.forms), p=self.weights)]
            text = form.format(c=s.colour, s=s.shape, b=s.bg)
            attrs.append(
                (
                    "shape",
                    s.colour if "{c}" in form else None,
                    s.shape if "{s}" in form else None,
                    s.bg if "{b}" in form else None,
                )
            )
            texts.append(text + ("." if rng.random() < 0.15 else ""))
        return texts, attrs

    def batch_ids(self, texts: list[str]) -> torch.Tensor:
        seqs = [self.ids(t) for t in texts]
        n = max(len(s) for s in seqs)
        out = torch.zeros(len(seqs), n, dtype=torch.long)  # 0-padded, as OpenAI pads
        for i, s in enumerate(seqs):
            out[i, : len(s)] = torch.tensor(s)
        return out


COLOUR_ID = {c: i for i, c in enumerate(sc.COLOURS)}
SHAPE_ID = {c: i for i, c in enumerate(sc.SHAPES)}


def scene_codes(scenes: list[sc.Scene]) -> np.ndarray:
    """[n, 3] (colour, shape, background) ids; colour and shape are -1 for empty frames."""
    return np.array(
        [(-1 if s.empty else COLOUR_ID[s.colour], -1 if s.empty else SHAPE_ID[s.shape], COLOUR_ID[s.bg]) for s in scenes],
        dtype=np.int64,
    )


def match_matrix(codes: np.ndarray, attrs) -> torch.Tensor:
    """m[i, j] = 1 when caption j describes image i (codes from scene_codes)."""
    empty_cap = np.array([a[0] == "empty" for a in attrs])
    want = np.array(
        [
            (
                COLOUR_ID[c] if c is not None else -2,
                SHAPE_ID[s] if s is not None else -2,
                COLOUR_ID[b] if b is not None else -2,
            )
            for _, c, s, b in attrs
        ],
        dtype=np.int64,
    )  # -2: unspecified
    img_empty = codes[:, 0] < 0
    ok = np.ones((len(codes), len(attrs)), dtype=bool)
    for k in range(3):
        ok &= (want[None, :, k] == -2) | (want[None, :, k] == codes[:, None, k])
    ok &= np.where(empty_cap[None, :], img_empty[:, None], ~img_empty[:, None])
    return torch.from_numpy(ok.astype(np.float32))


def contrastive_loss(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor, match: torch.Tensor) -> torch.Tensor:
    logits = scale * img @ txt.t()
    t_i2t = match / match.sum(1, keepdim=True)
    t_t2i = (match / match.sum(0, keepdim=True)).t()
    loss_i = -(t_i2t * F.log_softmax(logits, dim=1)).sum(1).mean()
    loss_t = -(t_t2i * F.log_softmax(logits.t(), dim=1)).sum(1).mean()
    return (loss_i + loss_t) / 2


# ---------------------------------------------------------------- training


def downsample(frames: np.ndarray, factor: int) -> np.ndarray:
    """factor x factor average pooling of uint8 frames [n, h, w, 3] (rounded)."""
    out = []
    for i in range(0, len(frames), 1024):
        x = frames[i : i + 1024].astype(np.uint16)
        n, h, w, c = x.shape
        x = x.reshape(n, h // factor, factor, w // factor, factor, c).sum(axis=(2, 4))
        out.append(((x + factor * factor // 2) // (factor * factor)).astype(np.uint8))
    return np.concatenate(out)


def train_config() -> dict:
    return dict(CONFIG, image_size=CONFIG["image_size"] // DOWNSAMPLE, patch=CONFIG["patch"] // DOWNSAMPLE)


def batch_tensor(u8: np.ndarray, rng: np.random.Generator, augment: bool = True) -> torch.Tensor:
    """uint8 [b, h, w, 3] -> normalised [b, 3, h, w], with label-preserving jitter on top
    of the codec artefacts already in the data: horizontal flips (every shape is
    mirror-symmetric up to its allowed rotation) and a gain/offset per channel."""
    b = len(u8)
    if augment:
        flip = rng.random(b) < 0.5
        u8 = u8.copy()
        u8[flip] = u8[flip, :, ::-1]
    x = torch.from_numpy(np.ascontiguousarray(u8)).permute(0, 3, 1, 2).contiguous().float()
    gain = np.ones((b, 1, 1, 1), np.float32)
    bias = np.zeros((b, 3, 1, 1), np.float32)
    if augment:
        gain = rng.uniform(0.93, 1.07, size=(b, 1, 1, 1)).astype(np.float32)
        bias = rng.uniform(-0.03, 0.03, size=(b, 3, 1, 1)).astype(np.float32)
    mean = np.array(MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.array(STD, np.float32).reshape(1, 3, 1, 1)
    # ((x / 255) * gain + bias - mean) / std as one multiply-add.
    a = torch.from_numpy(gain / (255.0 * std))
    c = torch.from_numpy((bias - mean) / std)
    return x.mul_(a).add_(c)


class Sampler:
    """Batches whose first half is made of groups of four frames that share colour and
    background and differ only in shape, the rest random. Colour and background then no
    longer tell those frames apart, so the contrastive loss has to learn shape (which
    random batches teach slowly: most pairs already differ in colour)."""

    def __init__(self, codes: np.ndarray, rng: np.random.Generator):
        self.rng = rng
        self.n = len(codes)
        groups: dict[tuple[int, int], list[list[int]]] = {}
        for i, (c, s, b) in enumerate(codes):
            if c >= 0:
                groups.setdefault((int(c), int(b)), [[] for _ in sc.SHAPES])[s].append(i)
        self.groups = [g for g in groups.values() if all(g)]

    def batch(self, size: int) -> np.ndarray:
        idx = []
        for gi in self.rng.choice(len(self.groups), size=size // 8, replace=False):
            idx.extend(int(self.rng.choice(members)) for members in self.groups[gi])
        rest = self.rng.choice(self.n, size=size - len(idx), replace=False)
        return np.unique(np.concatenate([np.array(idx, dtype=np.int64), rest]))


def train(args) -> TinyClip:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    torch.set_num_threads(args.threads)
    frames, scenes = build_dataset(Path(args.data), args.clips, args.seed, args.threads)
    codes = scene_codes(scenes)
    caps = Captions(Path(args.tokenizer))
    vocab = sorted({i for t in all_captions() for i in caps.ids(t)})
    model = TinyClip(train_config(), vocab)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f}M parameters, {len(vocab)} domain tokens", flush=True)

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
    warmup = max(1, args.steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return args.lr * (step + 1) / warmup
        p = (step - warmup) / max(1, args.steps - warmup)
        return args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * p)))

    sampler = Sampler(codes[:-1000], rng)  # the last 1,000 frames are quick_eval's
    t0 = time.time()
    model.train()
    for step in range(args.steps):
        idx = sampler.batch(args.batch)
        batch_scenes = [scenes[i] for i in idx]
        x = batch_tensor(frames[idx], rng)
        texts, attrs = caps.sample(batch_scenes, rng)
        ids = caps.batch_ids(texts)
        match = match_matrix(codes[idx], attrs)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        img = model.encode_image(x)
        txt = model.encode_text(ids)
        loss = contrastive_loss(img, txt, model.logit_scale.exp().clamp(max=100), match)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == args.steps - 1:
            el = time.time() - t0
            print(f"step {step}/{args.steps} loss {loss.item():.4f} scale {model.logit_scale.exp().item():.1f} lr {lr_at(step):.2e} {el:.0f}s ({(step + 1) * args.batch / el:.0f} img/s)", flush=True)
        if (step + 1) % 400 == 0 or step == args.steps - 1:
            print(f"step {step + 1}: held-out zero-shot {quick_eval(model, frames, scenes, caps)}", flush=True)
            torch.save(model.state_dict(), Path(args.data) / "checkpoint.pt")
            model.train()
    return model


def quick_eval(model: TinyClip, frames: np.ndarray, scenes: list[sc.Scene], caps: "Captions") -> dict:
    """Zero-shot accuracy on the last 1,000 cached frames (a progress signal; the real
    measurement is evaluate.py on freshly rendered videos)."""
    model.eval()
    texts, labels = [], []
    for b in sc.COLOURS:
        texts.append(EMPTY_FORM.format(b=b))
        labels.append((None, None, b))
        for c in sc.COLOURS:
            for s in sc.SHAPES:
                if c != b:
                    texts.append(SHAPE_FORMS[0][0].format(c=c, s=s, b=b))
                    labels.append((c, s, b))
    with torch.no_grad():
        t = model.encode_text(caps.batch_ids(texts))
        idx = np.arange(len(scenes) - 1000, len(scenes))
        img = torch.cat([model.encode_image(batch_tensor(frames[idx[i : i + 250]], None, augment=False)) for i in range(0, 1000, 250)])
        pred = (img @ t.t()).argmax(1).numpy()
    got = [labels[p] for p in pred]
    want = [(scenes[i].colour, scenes[i].shape, scenes[i].bg) for i in idx]
    shaped = [k for k, w in enumerate(want) if w[0] is not None]
    return {
        "colour": round(float(np.mean([got[k][0] == want[k][0] for k in shaped])), 3),
        "shape": round(float(np.mean([got[k][1] == want[k][1] for k in shaped])), 3),
        "background": round(float(np.mean([g[2] == w[2] for g, w in zip(got, want)])), 3),
        "empty": round(float(np.mean([(g[0] is None) == (w[0] is None) for g, w in zip(got, want)])), 3),
    }


# ---------------------------------------------------------------- export


class _Visual(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, pixel_values):
        return self.m.visual(pixel_values)


class _Text(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids):
        return self.m.text(input_ids)


def full_resolution(model: TinyClip) -> TinyClip:
    """The trained model as a 224-px tower: the same weights behind a 2x2 average pool."""
    big = TinyClip(dict(CONFIG, pool=DOWNSAMPLE), [0])
    big.text = model.text
    big.load_state_dict(_shift_stem(model.state_dict()))
    big.eval()
    model.eval()
    with torch.no_grad():
        x = torch.randn(4, 3, CONFIG["image_size"], CONFIG["image_size"])
        a = big.visual(x)
        b = model.visual(F.avg_pool2d(x, DOWNSAMPLE))
        assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()
    return big


def _shift_stem(state: dict) -> dict:
    """Stem layer indices move up by one behind the pooling layer."""
    out = {}
    for k, v in state.items():
        if k.startswith("visual.conv1.net."):
            rest = k[len("visual.conv1.net.") :]
            i, tail = rest.split(".", 1)
            k = f"visual.conv1.net.{int(i) + 1}.{tail}"
        out[k] = v
    return out


def export(model: TinyClip, out: Path, tokenizer: Path) -> None:
    if model.cfg["image_size"] != CONFIG["image_size"]:
        model = full_resolution(model)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            _Visual(model),
            (torch.zeros(2, 3, 224, 224),),
            str(out / "visual.onnx"),
            input_names=["pixel_values"],
            output_names=["image_embeds"],
            dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        torch.onnx.export(
            _Text(model),
            (torch.tensor([[49406, 320, 736, 7117, 49407], [49406, 320, 7117, 49407, 0]]),),
            str(out / "textual.onnx"),
            input_names=["input_ids"],
            output_names=["text_embeds"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "text_embeds": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    if tokenizer.resolve() != (out / "tokenizer.json").resolve():
        (out / "tokenizer.json").write_bytes(tokenizer.read_bytes())
    manifest = {
        "format": 1,
        "name": "tiny-clip-synthetic",
        "description": "Tiny CLIP trained by vidseek on its synthetic scene domain (coloured shapes); not a general-purpose model.",
        "embedding_dim": CONFIG["dim"],
        "logit_scale": round(float(model.logit_scale.detach().exp().clamp(max=100)), 4),
        "image": {
            "size": 224,
            "mean": MEAN,
            "std": STD,
            "resize": "shortest_side",
            "crop": "center",
            "interpolation": "bicubic",
        },
        "text": {"context_length": CONTEXT_LENGTH, "dynamic_length": True, "start_id": 49406, "end_id": 49407, "pad_id": 0},
        "files": {"visual": "visual.onnx", "textual": "textual.onnx", "tokenizer": "tokenizer.json"},
        "io": {"image_input": "pixel_values", "image_output": "image_embeds", "text_input": "input_ids", "text_output": "text_embeds"},
    }
    (out / "model.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"export: wrote {out}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--data", default="/tmp/vidseek-tiny-clip-data")
    ap.add_argument("--tokenizer", default=None, help="tokenizer.json (built offline when absent)")
    ap.add_argument("--clips", type=int, default=1200, help="clips of 16 scenes x 2 frames")
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--batch", type=int, default=192)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    if args.tokenizer is None:
        args.tokenizer = str(Path(args.data) / "tokenizer.json")
        if not Path(args.tokenizer).exists():
            Path(args.data).mkdir(parents=True, exist_ok=True)
            clip_tokenizer.build(Path(args.tokenizer))
    t0 = time.time()
    model = train(args)
    torch.save(model.state_dict(), Path(args.data) / "checkpoint.pt")
    export(model, Path(args.out), Path(args.tokenizer))
    print(f"done in {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
