"""Add an int8 text tower to a vidseek model package (ONNX Runtime dynamic quantisation).

    python3 models/quantize_text.py models/clip-vit-b32

Writes textual.int8.onnx beside the package's textual graph: the MatMul/Gemm weights in
int8 (per channel), activations quantised on the fly (ONNX Runtime's quantize_dynamic),
same inputs and outputs. Before it is listed in model.json (`files.textual_int8`, used
with `vidseek --text-int8` on the CPU) it is checked against the fp32 tower on a set of
sentences, tokenized as the engine does: every cosine must be >= 0.99 (the numbers go to
int8.json). Needs: onnx, onnxruntime, tokenizers, numpy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic
from tokenizers import Tokenizer

SENTENCES = [
    "a dog catching a frisbee on the beach",
    "a red circle",
    "two people talking in a kitchen at night",
    "a car driving through snow",
    "a blue star on a white background",
    "an empty street in the rain",
    "a crowd cheering at a football match",
    "a close-up of a cat's face",
    "fireworks over a river",
    "a person riding a bicycle down a hill",
    "a yellow triangle",
    "sunset over the mountains, seen from a plane window",
    "a chef slicing vegetables",
    "a green square on a black background",
    "children playing in a park",
    "an orange",
]


def embed(sess: ort.InferenceSession, ids: list[list[int]], io: dict, dtype) -> np.ndarray:
    out = []
    for row in ids:
        feeds = {io.get("text_input", "input_ids"): np.array([row], dtype=dtype)}
        if io.get("text_mask"):
            feeds[io["text_mask"]] = np.ones((1, len(row)), dtype=dtype)
        v = sess.run([io.get("text_output", "text_embeds")], feeds)[0][0].astype(np.float64)
        out.append(v / np.linalg.norm(v))
    return np.array(out)


def token_rows(pkg: Path, m: dict, sentences: list[str] = SENTENCES) -> list[list[int]]:
    """The sentences' token ids as the engine makes them: start, body, end, no padding."""
    text = m["text"]
    tok = Tokenizer.from_file(str(pkg / m["files"]["tokenizer"]))
    ctx = int(text.get("context_length", 77))
    start, end = text.get("start_id"), text.get("end_id")
    rows = []
    for s in sentences:
        body = tok.encode(s, add_special_tokens=False).ids[: ctx - 2]
        rows.append(([start] if start is not None else []) + body + ([end] if end is not None else []))
    return rows


def id_type(sess: ort.InferenceSession, io: dict):
    """The integer type the graph takes its token ids in."""
    name = io.get("text_input", "input_ids")
    kind = next(i.type for i in sess.get_inputs() if i.name == name)
    return np.int32 if "int32" in kind else np.int64


def read_package(folder: str) -> tuple[Path, Path, dict]:
    """The package folder, its model.json and the manifest read from it."""
    pkg = Path(folder)
    manifest_path = pkg / "model.json"
    return pkg, manifest_path, json.loads(manifest_path.read_text())


def list_graph(manifest_path: Path, m: dict, key: str, graph: Path) -> None:
    """Names `graph` as `files.<key>` in the manifest and writes it back."""
    m["files"][key] = graph.name
    manifest_path.write_text(json.dumps(m, indent=2) + "\n")
    print(f"listed {graph.name} in {manifest_path}", file=sys.stderr)


def reject_graph(manifest_path: Path, m: dict, key: str, graph: Path, why: str) -> int:
    """Removes `graph` and any listing of it (a run before may have listed it); returns 1."""
    graph.unlink()
    if m["files"].pop(key, None) is not None:
        manifest_path.write_text(json.dumps(m, indent=2) + "\n")
    print(f"{graph.name} rejected: {why}", file=sys.stderr)
    return 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("package", help="model package folder (holds model.json)")
    ap.add_argument("--min-cosine", type=float, default=0.99)
    args = ap.parse_args()
    pkg, manifest_path, m = read_package(args.package)
    files, io = m["files"], m.get("io", {})
    src = pkg / files["textual"]
    dst = pkg / (Path(files["textual"]).stem + ".int8.onnx")
    t = time.time()
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True)
    print(f"quantised {src.name} -> {dst.name} in {time.time() - t:.1f} s", file=sys.stderr)

    ids = token_rows(pkg, m)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    fp32 = ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
    int8 = ort.InferenceSession(str(dst), so, providers=["CPUExecutionProvider"])
    dtype = id_type(fp32, io)
    a, b = embed(fp32, ids, io, dtype), embed(int8, ids, io, dtype)
    cos = (a * b).sum(axis=1)
    # Retrieval among the sentences themselves: each int8 vector's nearest fp32 vector.
    same_top1 = float(np.mean(np.argmax(b @ a.T, axis=1) == np.arange(len(a))))
    report = {
        "min_cosine": float(cos.min()),
        "mean_cosine": float(cos.mean()),
        "top1_agreement": same_top1,
        "sentences": len(SENTENCES),
        "fp32_bytes": src.stat().st_size,
        "int8_bytes": dst.stat().st_size,
    }
    (pkg / "int8.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report), file=sys.stderr)
    if cos.min() < args.min_cosine:
        return reject_graph(manifest_path, m, "textual_int8", dst, f"cosine {cos.min():.4f} < {args.min_cosine}")
    list_graph(manifest_path, m, "textual_int8", dst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
