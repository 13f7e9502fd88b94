"""Mean PSNR and SSIM over frames 2..T of a reconstruction directory, and its frames per second.

Reads DIR/frames.csv and DIR/summary.json (sequence strategies) or DIR/metrics.json (per-frame
methods), prints "psnr,ssim,frames_per_second" for the bench scripts' CSV rows (frame 1 is cold
for every strategy, so it is left out).

    python3 bench/frames_mean.py DIR
"""
import csv
import json
import os
import sys

d = sys.argv[1]
if os.path.exists(f"{d}/frames.csv"):
    rows = list(csv.DictReader(open(f"{d}/frames.csv")))[1:]
    psnr = sum(float(r["psnr"]) for r in rows) / len(rows)
    ssim = sum(float(r["ssim"]) for r in rows) / len(rows)
    fps = json.load(open(f"{d}/summary.json"))["frames_per_second"]
else:
    m = json.load(open(f"{d}/metrics.json"))
    frames = m["frames"][1:]
    psnr = sum(f["psnr"] for f in frames) / len(frames)
    ssim = sum(f["ssim"] for f in frames) / len(frames)
    fps = 1.0 / max(m.get("seconds_per_frame", 0.0), 1e-9)
print(f"{psnr:.3f},{ssim:.4f},{fps:.3f}")
