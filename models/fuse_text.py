"""Add a fused text tower to a vidseek model package (ONNX Runtime's transformer optimizer).

    python3 models/fuse_text.py models/clip-vit-b32 [--heads 8 --width 512]

Writes textual.fused.onnx beside the package's text graph: the same tower with attention,
LayerNorm(+residual) and GELU fused into ONNX Runtime's CPU kernels (the optimizer's CLIP
model type; --heads and --width are the text tower's, ViT-B/32's by default). Same
inputs and outputs, and the same numbers: before it is listed in model.json
(`files.textual_fused`, which the engine then runs on the CPU in place of
`files.textual`), every sentence's vector from it must have cosine >= 0.9999 to the
plain graph's, each sentence alone at its true length and all of them as one batch
padded as the engine pads (the cosines and the fused-operator counts go to fused.json).
A graph the optimizer fuses nothing in is not listed. Its speed against the plain graph:
benches/text_tower_cpu.py. Needs: onnx, onnxruntime, sympy, tokenizers, numpy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quantize_text import SENTENCES, embed, id_type, list_graph, read_package, reject_graph, token_rows  # noqa: E402


def batch(sess: ort.InferenceSession, rows: list[list[int]], io: dict, pad: int, dtype) -> np.ndarray:
    """All rows in one run, padded after their end token to the longest (as the engine does)."""
    n = max(map(len, rows))
    ids = np.array([r + [pad] * (n - len(r)) for r in rows], dtype=dtype)
    feeds = {io.get("text_input", "input_ids"): ids}
    if io.get("text_mask"):
        feeds[io["text_mask"]] = (np.arange(n)[None, :] < np.array([len(r) for r in rows])[:, None]).astype(dtype)
    v = sess.run([io.get("text_output", "text_embeds")], feeds)[0].astype(np.float64)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("package", help="model package folder (holds model.json)")
    ap.add_argument("--heads", type=int, default=8, help="the text tower's attention heads")
    ap.add_argument("--width", type=int, default=512, help="the text tower's width")
    ap.add_argument("--min-cosine", type=float, default=0.9999)
    args = ap.parse_args()
    from onnxruntime.transformers.optimizer import optimize_model

    pkg, manifest_path, m = read_package(args.package)
    files, io = m["files"], m.get("io", {})
    src = pkg / files["textual"]
    dst = pkg / (Path(files["textual"]).stem + ".fused.onnx")
    t = time.time()
    opt = optimize_model(
        str(src), model_type="clip", num_heads=args.heads, hidden_size=args.width, opt_level=0, use_gpu=False
    )
    counts = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    if not counts:
        print(f"the optimizer fused nothing in {src.name}: no fused graph", file=sys.stderr)
        return 1
    opt.save_model_to_file(str(dst))
    print(f"fused {src.name} -> {dst.name} in {time.time() - t:.1f} s: {counts}", file=sys.stderr)

    rows = token_rows(pkg, m)
    pad = int(m["text"].get("pad_id", 0))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    plain, fused = (ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"]) for p in (src, dst))
    dtype = id_type(plain, io)
    alone = (embed(plain, rows, io, dtype) * embed(fused, rows, io, dtype)).sum(axis=1)
    padded = (batch(plain, rows, io, pad, dtype) * batch(fused, rows, io, pad, dtype)).sum(axis=1)
    report = {
        "fused_operators": counts,
        "min_cosine_alone": float(alone.min()),
        "min_cosine_padded_batch": float(padded.min()),
        "sentences": len(SENTENCES),
    }
    (pkg / "fused.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report), file=sys.stderr)
    worst = min(alone.min(), padded.min())
    if worst < args.min_cosine:
        return reject_graph(manifest_path, m, "textual_fused", dst, f"cosine {worst:.6f} < {args.min_cosine}")
    list_graph(manifest_path, m, "textual_fused", dst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
