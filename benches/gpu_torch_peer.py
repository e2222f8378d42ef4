"""The PyTorch peer of `vidseek bench gpu`: the same ViT-B/32 image tower (transformers'
CLIP defaults, random weights) in PyTorch eager fp16 on the same card, device-resident
input, images/s at each batch size. Prints JSON.

    python3 benches/gpu_torch_peer.py [--batches 256 1024] [--reps 5]
"""

import argparse
import json
import time

import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    torch.manual_seed(0)
    dev = torch.device("cuda")
    model = CLIPVisionModelWithProjection(CLIPVisionConfig(projection_dim=512)).eval().half().to(dev)
    out = {"peer": "pytorch eager fp16", "torch": torch.__version__, "device": torch.cuda.get_device_name(0), "runs": []}
    with torch.inference_mode():
        for b in args.batches:
            # Smooth images in the normalised range, already on the GPU.
            x = torch.randn(b, 3, 7, 7, device=dev).repeat_interleave(32, 2).repeat_interleave(32, 3).half()
            model(pixel_values=x)
            torch.cuda.synchronize()
            secs = []
            for _ in range(args.reps):
                t = time.perf_counter()
                model(pixel_values=x).image_embeds.float().cpu()
                torch.cuda.synchronize()
                secs.append(time.perf_counter() - t)
            s = sorted(secs)[len(secs) // 2]
            out["runs"].append({"batch": b, "input": "device", "median_s": s, "images_per_s": b / s})
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
