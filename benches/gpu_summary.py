"""The GPU check's verdict: reads gpu.json (`vidseek bench gpu`) and torch.json
(benches/gpu_torch_peer.py) from one run on one card and prints each target of the
CUDA-path issue next to the measured number.

    python3 benches/gpu_summary.py OUT_DIR
"""

import json
import sys
from pathlib import Path


def main() -> None:
    out = Path(sys.argv[1])
    gpu = json.loads((out / "gpu.json").read_text())
    torch = json.loads((out / "torch.json").read_text())
    peer = {r["batch"]: r["images_per_s"] for r in torch["runs"]}
    print(f"provider {gpu['provider']}, fp16 {gpu['fp16']}, model {gpu['model']}")
    for e in gpu["embed_only"]:
        b, dev, stream = e["batch"], e["device"]["images_per_s"], e["stream"]["images_per_s"]
        line = f"batch {b}: device input {dev:,.0f} img/s, stream {stream:,.0f} ({e['stream_vs_device']:.2f} of device, target >= 0.80)"
        line += f", plain host call {e['host']['images_per_s']:,.0f}"
        if b in peer:
            line += f"; PyTorch eager fp16 {peer[b]:,.0f} -> {dev / peer[b]:.2f}x (target >= 1.2x)"
        if b == 1024:
            line += f"; target >= 35,000 img/s: {'met' if dev >= 35000 else 'missed'}"
        print(line)
    for run in gpu["end_to_end"]:
        rate = run["video_seconds_per_s"]
        hw = "hwaccel" in run["decode"]
        nvdec = sum(d["decoder"] == "cuda" for d in run.get("decoders", []))
        # A hardware-decode figure counts only when NVDEC decoded every file.
        all_nvdec = hw and nvdec == run["files"]
        verdict = f" (target >= 1,000 with hardware decode: {'met' if rate >= 1000 else 'missed'})" if all_nvdec else ""
        if hw and not all_nvdec:
            verdict = f" (NOT a hardware-decode figure: {run['files'] - nvdec} of {run['files']} files fell back to software)"
        print(f"indexing, {run['decode']}, {nvdec} of {run['files']} files on NVDEC: {rate:,.0f} video-s per s, "
              f"{run['frames_per_s']:,.0f} frames/s, {len(run['failed'])} failed{verdict}")


if __name__ == "__main__":
    main()
