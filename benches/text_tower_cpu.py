#!/usr/bin/env python3
"""The text tower on the CPU: plain fp32, fused-attention fp32 and dynamic int8, side by side.

Usage: python3 benches/text_tower_cpu.py PACKAGE_DIR [HEADS WIDTH]  (the text tower's
attention heads and width, default 8 and 512: ViT-B/32's; PACKAGE_DIR e.g. target/vit-b32-random, made by
`models/export_clip.py --random-init --optimize` and `models/quantize_text.py`).

The fused graph is made here from the package's textual.onnx with ONNX Runtime's transformer
optimizer (CLIP model type, CPU kernels: fused causal Attention, SkipLayerNormalization,
QuickGelu), into a temporary folder. Each variant runs one query at batch 1 at its true token
length, at 1 and 2 intra-op threads, in interleaved rounds (a round runs every variant
once per repetition, so drift of a shared machine falls on all alike); the medians and the
cosine of each variant's vectors to plain fp32 over a set of sentences are reported and
written to benches/results/text-tower-cpu.json. Needs onnx, onnxruntime, numpy, tokenizers,
sympy (the optimizer's import).
"""

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.transformers.optimizer import optimize_model
from tokenizers import Tokenizer

SENTENCES = [
    "a dog catching a frisbee on the beach",
    "a red circle",
    "two people walking along a river at sunset while it rains",
    "a photo of a car",
    "the blue square moving slowly across a yellow background",
    "fireworks over a city at night",
    "a close-up of a cat's face",
    "a crowded market street in the morning with many colourful stalls",
]
ROUNDS = 8
REPS = 10


def machine() -> str:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    kb = next(int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal"))
    return f"{model or platform.processor()}, {os.cpu_count()} cores, {kb // 2**20} GiB"


def main() -> None:
    pkg = Path(sys.argv[1] if len(sys.argv) > 1 else "target/vit-b32-random")
    manifest = json.loads((pkg / "model.json").read_text())
    text = manifest["text"]
    io = manifest.get("io", {})
    tok = Tokenizer.from_file(str(pkg / manifest.get("files", {}).get("tokenizer", "tokenizer.json")))
    # The text tower's attention heads and width (ViT-B/32's; model.json does not say).
    heads = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    width = int(sys.argv[3]) if len(sys.argv) > 3 else 512

    def ids_of(s: str) -> np.ndarray:
        ids = tok.encode(s).ids
        if text.get("start_id") is not None and (not ids or ids[0] != text["start_id"]):
            ids = [text["start_id"]] + ids
        if not ids or ids[-1] != text["end_id"]:
            ids = ids + [text["end_id"]]
        return np.array([ids[: text["context_length"]]], dtype=np.int64)

    with tempfile.TemporaryDirectory() as tmp:
        fused = Path(tmp) / "textual.fused-cpu.onnx"
        opt = optimize_model(
            str(pkg / "textual.onnx"), model_type="clip", num_heads=heads, hidden_size=width, opt_level=0, use_gpu=False
        )
        counts = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
        opt.save_model_to_file(str(fused))
        variants = {"fp32": pkg / "textual.onnx", "fused fp32": fused}
        if (pkg / "textual.int8.onnx").exists():
            variants["int8"] = pkg / "textual.int8.onnx"

        def session(path: Path, threads: int) -> ort.InferenceSession:
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

        input_name = io.get("text_input", "input_ids")
        output_name = io.get("text_output", "text_embeds")

        def embed(s: ort.InferenceSession, ids: np.ndarray) -> np.ndarray:
            feed = {input_name: ids}
            for i in s.get_inputs():
                if i.name not in feed:  # an attention mask
                    feed[i.name] = np.ones_like(ids)
            v = s.run([output_name], feed)[0][0]
            return v / np.linalg.norm(v)

        report = {"machine": machine(), "package": str(pkg), "fused_operators": counts, "threads": {}}
        query = ids_of(SENTENCES[0])
        for threads in (1, 2):
            sessions = {name: session(p, threads) for name, p in variants.items()}
            for s in sessions.values():
                for _ in range(3):
                    embed(s, query)
            times = {name: [] for name in sessions}
            for _ in range(ROUNDS):
                for name, s in sessions.items():
                    for _ in range(REPS):
                        t = time.perf_counter()
                        embed(s, query)
                        times[name].append((time.perf_counter() - t) * 1000)
            ref = [embed(sessions["fp32"], ids_of(x)) for x in SENTENCES]
            rows = {}
            for name, s in sessions.items():
                cos = min(float(np.dot(embed(s, ids_of(x)), r)) for x, r in zip(SENTENCES, ref))
                rows[name] = {"median_ms": statistics.median(times[name]), "min_cosine_to_fp32": cos}
            report["threads"][str(threads)] = rows
            del sessions

    print(f"machine: {report['machine']}\npackage: {pkg}; fused operators (CPU): {counts}")
    print(f"one query ({query.shape[1]} tokens), batch 1, median of {ROUNDS * REPS} runs in interleaved rounds\n")
    print("| variant | 1 thread (ms) | 2 threads (ms) | min cosine to fp32 |\n|---|---|---|---|")
    for name in variants:
        a, b = report["threads"]["1"][name], report["threads"]["2"][name]
        print(f"| {name} | {a['median_ms']:.2f} | {b['median_ms']:.2f} | {b['min_cosine_to_fp32']:.6f} |")
    out = Path(__file__).resolve().parent / "results" / "text-tower-cpu.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
