"""Export OpenAI CLIP ViT-B/32 (or the same architecture with random weights) into a
vidseek model package.

    # real weights (needs internet once, for the weights only):
    python3 models/export_clip.py --source hf --out models/clip-vit-b32
    python3 models/export_clip.py --source open_clip --out models/clip-vit-b32
    # the exact ViT-B/32 graphs with random weights, no download (speed benchmarks):
    python3 models/export_clip.py --random-init --out /tmp/vit-b32-random

Writes model.json, visual.onnx, textual.onnx, tokenizer.json, templates.txt (the paper's
80 prompt templates) and, unless --no-fp16,
visual.fp16.onnx / textual.fp16.onnx: half-precision graphs with float32 inputs and
outputs (ONNX Runtime's converter; LayerNorm and Softmax accumulate in float32 inside
its kernels), checked against the fp32 graphs on the CPU EP (cosine >= 0.999) before
they are listed in the manifest. --optimize first runs ONNX Runtime's transformer
optimizer (CLIP model type) on a graph traced with eager attention, so attention,
LayerNorm(+residual) and QuickGelu become fused kernels, and writes the fused-operator
counts to optimize.json (ViT-B/32: 12 of 12 attentions in each tower; the text tower is
traced layer by layer with a causal mask the fusion recognises, checked equal to
transformers' own).

The text tower is exported with a dynamic sequence axis and pools at the end-of-text
token (argmax of the ids, as OpenAI's CLIP does), so the engine runs queries at their
true token length. The tokenizer is CLIP's BPE built offline (clip_tokenizer.py).
Needs: torch, transformers (hf / --random-init) or open_clip_torch (open_clip), onnx,
onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import clip_tokenizer  # noqa: E402

MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
# "a photo of a cat" and "a cat" padded after its end token: the trace example and the
# check that the fusable text tower equals transformers' own.
SAMPLE_IDS = [[49406, 320, 1125, 539, 320, 2368, 49407], [49406, 320, 2368, 49407, 0, 0, 0]]


def projected(out):
    """transformers < 5 returns the projected embedding; 5.x returns a model output
    whose pooler_output is that embedding (last_hidden_state is the token sequence)."""
    return out if torch.is_tensor(out) else out.pooler_output


class HfVisual(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, pixel_values):
        return projected(self.m.get_image_features(pixel_values=pixel_values))


class HfText(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, input_ids):
        return projected(self.m.get_text_features(input_ids=input_ids))


class HfTextCausal(torch.nn.Module):
    """The Hugging Face text tower, layer by layer, with its causal mask built as
    Less -> Where -> Unsqueeze -> Unsqueeze -> Expand: the subgraph ONNX Runtime's CLIP
    attention fusion recognises, so every text attention becomes one fused causal
    Attention (--optimize). transformers 5 builds the mask through its masking utilities,
    which the fusion does not match. No padding mask: rows are padded after their end
    token and pooled there, and causal attention never lets the end token see padding.
    Equal to HfText (export checks the cosine)."""

    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, input_ids):
        t = self.m.text_model
        x = t.embeddings(input_ids=input_ids)
        n = input_ids.shape[1]
        pos = torch.arange(n, device=input_ids.device)
        allowed = pos[None, :] < pos[:, None] + 1
        mask = torch.where(allowed, 0.0, torch.finfo(x.dtype).min)
        mask = mask.unsqueeze(0).unsqueeze(0).expand(input_ids.shape[0], 1, n, n)
        for layer in t.encoder.layers:
            x = layer(x, mask)
            x = x[0] if isinstance(x, tuple) else x
        x = t.final_layer_norm(x)
        ids = input_ids.to(torch.int)
        end = ids.argmax(dim=-1) if t.eos_token_id == 2 else (ids == t.eos_token_id).int().argmax(dim=-1)
        pooled = x[torch.arange(x.shape[0], device=x.device), end]
        return self.m.text_projection(pooled)


class OcVisual(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, pixel_values):
        return self.m.encode_image(pixel_values)


class OcText(torch.nn.Module):
    """open_clip's text tower at any length up to 77: positions and mask sliced."""

    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, input_ids):
        m = self.m
        n = input_ids.shape[1]
        x = m.token_embedding(input_ids) + m.positional_embedding[:n]
        x = m.transformer(x, attn_mask=m.attn_mask[:n, :n])
        x = m.ln_final(x)
        x = x[torch.arange(x.shape[0]), input_ids.argmax(dim=-1)]
        return x @ m.text_projection


def load(source: str, random_init: bool, eager_attention: bool = False):
    """eager_attention: trace attention as MatMul/Softmax/MatMul instead of the fused
    scaled_dot_product_attention call, the pattern ONNX Runtime's CLIP attention fusion
    recognises (--optimize)."""
    if random_init or source == "hf":
        from transformers import CLIPConfig, CLIPModel

        attn = "eager" if eager_attention else "sdpa"
        if random_init:
            torch.manual_seed(0)
            # transformers' CLIPConfig defaults are ViT-B/32: vision 768 wide, 12 layers,
            # 12 heads, 32-px patches on 224 px; text 512 wide, 12 layers, 8 heads, 77
            # tokens; shared space 512.
            config = CLIPConfig()
            config._attn_implementation = attn
            config.vision_config._attn_implementation = attn
            config.text_config._attn_implementation = attn
            model = CLIPModel(config)
            name = "clip-vit-b32-random-init"
        else:
            model = CLIPModel.from_pretrained("openai/clip-vit-base-patch32", attn_implementation=attn)
            name = "clip-vit-b32"
        model.eval()
        heads = (model.config.vision_config.num_attention_heads, model.config.text_config.num_attention_heads)
        widths = (model.config.vision_config.hidden_size, model.config.text_config.hidden_size)
        text = HfTextCausal(model) if eager_attention else HfText(model)
        return HfVisual(model), text, name, model.config.projection_dim, float(model.logit_scale.exp().detach()), heads, widths
    import open_clip

    model, _, _ = open_clip.create_model_and_transforms("ViT-B-32", pretrained="openai")
    model.eval()
    heads = (model.visual.transformer.resblocks[0].attn.num_heads, model.transformer.resblocks[0].attn.num_heads)
    widths = (model.visual.transformer.width, model.transformer.width)
    return OcVisual(model), OcText(model), "clip-vit-b32", model.text_projection.shape[1], float(model.logit_scale.exp().detach()), heads, widths


def export_onnx(visual, text, out: Path):
    with torch.no_grad():
        torch.onnx.export(
            visual,
            (torch.randn(2, 3, 224, 224),),
            str(out / "visual.onnx"),
            input_names=["pixel_values"],
            output_names=["image_embeds"],
            dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        torch.onnx.export(
            text,
            (torch.tensor(SAMPLE_IDS),),
            str(out / "textual.onnx"),
            input_names=["input_ids"],
            output_names=["text_embeds"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "text_embeds": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def to_fp16(src: Path, dst: Path) -> None:
    """fp16 weights and activations, float32 graph inputs and outputs, through ONNX
    Runtime's converter: ops without fp16 kernels (ArgMax, ...) stay in float32 behind
    Cast nodes, and LayerNormalization / Softmax run on fp16 tensors with float32
    accumulation inside ONNX Runtime's kernels (CPU and CUDA), so they do not overflow."""
    import onnx
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(onnx.load(str(src)))
    model.convert_float_to_float16(keep_io_types=True)
    model.save_model_to_file(str(dst))


def optimize_fp16(src: Path, dst_fp32: Path, dst_fp16: Path, heads: int, width: int) -> dict:
    """ONNX Runtime's transformer optimizer (CLIP model type): fuses attention,
    LayerNorm(+residual) and QuickGelu, then converts to fp16 with float32 inputs and
    outputs and LayerNormalization kept in float32. Writes the fused fp32 graph too (its
    parity with the plain graph checks the fusion itself on any machine). Returns the
    fused-operator counts."""
    from onnxruntime.transformers.optimizer import optimize_model

    opt = optimize_model(str(src), model_type="clip", num_heads=heads, hidden_size=width, opt_level=0, use_gpu=True)
    counts = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    opt.save_model_to_file(str(dst_fp32))
    opt.convert_float_to_float16(keep_io_types=True)
    opt.save_model_to_file(str(dst_fp16))
    return counts


def cosine_check(a_path: Path, b_path: Path, feeds: dict, provider: str = "CPUExecutionProvider") -> float:
    import onnxruntime as ort

    a = ort.InferenceSession(str(a_path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    b = ort.InferenceSession(str(b_path), providers=[provider]).run(None, feeds)[0]
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(1).min())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--source", choices=["hf", "open_clip"], default="hf")
    ap.add_argument("--random-init", action="store_true", help="same graphs, random weights, no download")
    ap.add_argument("--no-fp16", action="store_true")
    ap.add_argument("--tokenizer", default=None, help="copy this tokenizer.json instead of building it (machines without the open_clip / clip-anytorch wheels)")
    ap.add_argument(
        "--optimize",
        action="store_true",
        help="fp16 graphs from ONNX Runtime's transformer optimizer (fused attention; Hugging Face source)",
    )
    args = ap.parse_args()
    if args.optimize and args.no_fp16:
        ap.error("--optimize writes the fp16 graphs; drop --no-fp16")
    if args.optimize and args.source == "open_clip" and not args.random_init:
        ap.error("--optimize needs --source hf (open_clip's attention is not a pattern the optimizer fuses)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    visual, text, name, dim, logit_scale, heads, widths = load(args.source, args.random_init, args.optimize)
    if isinstance(text, HfTextCausal):
        # The layer-by-layer tower must equal the library's, padded rows included.
        ids = torch.tensor(SAMPLE_IDS)
        with torch.no_grad():
            a, b = text(ids), HfText(text.m)(ids)
        worst = float(torch.nn.functional.cosine_similarity(a, b).min())
        print(f"textual: causal-mask tower vs transformers' own: cosine {worst:.7f}")
        if worst < 0.99999:
            sys.exit(f"the fusable text tower differs from transformers' (cosine {worst}); export without --optimize")
    export_onnx(visual, text, out)
    if args.tokenizer:
        shutil.copyfile(args.tokenizer, out / "tokenizer.json")
    else:
        clip_tokenizer.build(out / "tokenizer.json")
    shutil.copyfile(HERE / "openai-templates.txt", out / "templates.txt")
    manifest = {
        "format": 1,
        "name": name,
        "description": "OpenAI CLIP ViT-B/32" + (" architecture with RANDOM weights (speed tests only)" if args.random_init else ""),
        "embedding_dim": dim,
        "logit_scale": round(logit_scale, 4),
        "image": {"size": 224, "mean": MEAN, "std": STD, "resize": "shortest_side", "crop": "center", "interpolation": "bicubic"},
        "text": {"context_length": 77, "dynamic_length": True, "start_id": 49406, "end_id": 49407, "pad_id": 0},
        # The CLIP paper's 80 prompt templates: short queries and tag labels are embedded
        # through their ensemble.
        "files": {"visual": "visual.onnx", "textual": "textual.onnx", "tokenizer": "tokenizer.json", "templates": "templates.txt"},
        "io": {"image_input": "pixel_values", "image_output": "image_embeds", "text_input": "input_ids", "text_output": "text_embeds"},
    }
    if not args.no_fp16:
        rng = np.random.default_rng(0)
        # Real-ish inputs: smooth images in the normalised range, real token ids.
        img = rng.normal(0, 1, size=(4, 3, 7, 7)).astype(np.float32).repeat(32, 2).repeat(32, 3)
        ids = np.array([[49406, 320, 1125, 539, 320, 2368, 49407]], dtype=np.int64)
        feeds = {"visual": {"pixel_values": img}, "textual": {"input_ids": ids}}
        report: dict = {}
        cos = {}
        for i, tower in enumerate(["visual", "textual"]):
            src, half = out / f"{tower}.onnx", out / f"{tower}.fp16.onnx"
            if args.optimize:
                fused = out / f"{tower}.fused.onnx"
                counts = optimize_fp16(src, fused, half, heads[i], widths[i])
                parity = cosine_check(src, fused, feeds[tower])
                report[tower] = {"fused_operators": counts, "fused_fp32_vs_fp32_cosine": parity}
                print(f"{tower}: fused operators {counts}; fused fp32 vs fp32 cosine {parity:.6f}")
                fused.unlink()
            else:
                to_fp16(src, half)
            try:
                cos[tower] = cosine_check(src, half, feeds[tower])
            except Exception as e:  # noqa: BLE001 - fused fp16 kernels may be CUDA-only
                first = str(e).splitlines()[0]
                print(f"{tower}: the fp16 graph does not run on the CPU EP here ({first}); check it on CUDA")
                report.setdefault(tower, {})["fp16_cpu"] = first
                cos[tower] = None
            report.setdefault(tower, {})["fp16_vs_fp32_cosine_cpu"] = cos[tower]
        print(f"fp16 vs fp32 cosine (CPU EP): visual {cos['visual']}, text {cos['textual']}")
        if args.optimize:
            (out / "optimize.json").write_text(json.dumps(report, indent=2) + "\n")
        checked = [c for c in cos.values() if c is not None]
        if all(c >= 0.999 for c in checked):
            manifest["fp16"] = {"visual": "visual.fp16.onnx", "textual": "textual.fp16.onnx"}
        else:
            print("fp16 graphs differ too much from fp32: not listed in model.json")
    (out / "model.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {out} in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
