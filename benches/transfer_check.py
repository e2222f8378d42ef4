#!/usr/bin/env python3
"""Tag and probe checks on a rendered library (`vidseek sample-footage DIR`), through
the CLI, by the eval rule (same file; overlap of half the shorter span, or the peak
inside):

    python3 benches/transfer_check.py DIR      # DIR holds truth.json; VIDSEEK_DATA indexed it

- zero-shot tags with the 32 labels "a {colour} {shape}": precision over the moments
  `tag:"LABEL"` returns, recall over the scenes with a shape;
- few-shot probes: for every content (colour, shape, background) shown in two or more
  videos, one frame of it (`--like ID`): the share of its other videos found, and the
  share of the results that show it.
"""
import json
import os
import subprocess
import sys

V = os.environ.get("VIDSEEK", "target/release/vidseek")
COLOURS = ["red", "green", "blue", "yellow", "orange", "purple", "white", "black"]
SHAPES = ["circle", "square", "triangle", "star"]


def vs(*args):
    out = subprocess.run([V, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"vidseek {' '.join(args)}: {out.stderr}")
    return out.stdout


def search(*args):
    return json.loads(vs("search", "--json", *args))["results"]


def hits(r, path, start, end):
    if not (r["path"] == path or r["path"].endswith("/" + path)):
        return False
    overlap = min(r["end"], end) - max(r["start"], start)
    return overlap >= 0.5 * min(r["end"] - r["start"], end - start) or start <= r["peak"] < end


def main():
    folder = sys.argv[1]
    truth = json.load(open(os.path.join(folder, "truth.json")))
    scenes = []
    for v in truth:
        path = os.path.abspath(v["path"]) if os.path.exists(v["path"]) else os.path.join(folder, os.path.basename(v["path"]))
        for s in v["scenes"]:
            scenes.append((path, s["start"], s["end"], s["caption"]))
    labels = os.path.join(folder, "labels32.txt")
    with open(labels, "w") as f:
        f.write("".join(f"a {c} {s}\n" for s in SHAPES for c in COLOURS))
    vs("labels", "set", labels)
    label_of = lambda cap: None if cap.startswith("an empty") else " ".join(cap.split()[:3])
    right = returned = 0
    found = {}
    for s in SHAPES:
        for c in COLOURS:
            label = f"a {c} {s}"
            for r in search(f'tag:"{label}"', "--min-score", "off", "-k", "1000"):
                returned += 1
                inside = [sc for sc in scenes if hits(r, sc[0], sc[1], sc[2])]
                right += any(label_of(sc[3]) == label for sc in inside)
                for sc in inside:
                    if label_of(sc[3]) == label:
                        found[sc] = True
    shaped = [sc for sc in scenes if label_of(sc[3])]
    print(f"tags: precision {right / max(returned, 1):.3f} ({right}/{returned} moments), "
          f"recall {sum(1 for sc in shaped if sc in found) / len(shaped):.3f} ({sum(1 for sc in shaped if sc in found)}/{len(shaped)} scenes)")
    vs("labels", "set", "--default")

    by_content = {}
    for sc in scenes:
        by_content.setdefault(sc[3], []).append(sc)
    got = want = good = total = 0
    for cap, occ in sorted(by_content.items()):
        if cap.startswith("an empty") or len({o[0] for o in occ}) < 2:
            continue
        src = occ[0]
        r0 = [r for r in search(cap, "--min-score", "off", "-k", "50") if hits(r, src[0], src[1], src[2])]
        if not r0:
            continue
        res = search("--like", str(r0[0]["frame_id"]), "-k", "20")
        for o in occ[1:]:
            if o[0] == src[0]:
                continue
            want += 1
            ok = any(hits(r, o[0], o[1], o[2]) for r in res)
            got += ok
            if not ok:
                print(f"  miss: like frame {r0[0]['frame_id']} ({cap}, {os.path.basename(src[0])} at {src[1]:.1f} s) "
                      f"does not find {os.path.basename(o[0])} at {o[1]:.1f}-{o[2]:.1f} s")
        for r in res:
            total += 1
            ok = any(hits(r, o[0], o[1], o[2]) for o in occ)
            good += ok
            if not ok:
                print(f"  other: like {cap}: {os.path.basename(r['path'])} {r['start']:.1f}-{r['end']:.1f} s")
    print(f"probes: other videos found {got}/{want} ({got / max(want, 1):.3f}), results showing the content {good}/{total} ({good / max(total, 1):.3f})")


main()
