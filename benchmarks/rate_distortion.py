"""Rate–distortion of the small image tokenizers: f8 and f16 at 256…16384 codes against k-means, JPEG and WebP.

Trains one tokenizer per (downsample, codebook size) with that downsample's recipe (``experiment=image_demo``, the
f8 recipe for short runs, and ``experiment=image_f16``; ``--steps`` steps each, the same for all), then scores them
all in one ``task=evaluate`` call on the held-out sample photographs, where k-means on raw pixel patches (same patch
and codes, fitted on the training photographs) and JPEG and WebP at the nearest bits per pixel run beside them.
Each training run is its own ``train.py`` process with its own folder under ``--out``: a killed benchmark
skips the tokenizers already saved when it is started again (and ``trainer.resume`` picks up a half-trained one).

    python benchmarks/rate_distortion.py                                  # 8 tokenizers x 1500 steps, CPU
    python benchmarks/rate_distortion.py --steps 5000 --sizes 256 1024     # the full recipe, fewer sizes

Writes ``<out>/rate_distortion.md`` (the table), ``<out>/rate_distortion.json``, ``<out>/rate_distortion.png``
(PSNR against bits per pixel: a curve per downsample, k-means per patch size, JPEG and WebP near these rates)
and the evaluation's own rows and plots under ``<out>/evaluate/``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

from modalities.data.runlog import MetricsLog
from modalities.eval.rd import plot_rate_distortion

REPO = Path(__file__).resolve().parents[1]
RECIPES = {8: "image_demo", 16: "image_f16"}  # downsample -> experiment


def run_seconds(folder: Path) -> float | None:
    """The ``train_seconds`` a training run in ``folder`` logged last (``None`` when it logged none)."""
    return next((r["train_seconds"] for r in reversed(MetricsLog(folder).read()) if "train_seconds" in r), None)


def train(f: int, k: int, steps: int, folder: Path, extra: list[str]) -> float | None:
    """Trains one tokenizer into ``folder`` (skipped when it is saved there already); returns the run's training
    seconds, as it logged them (a saved run's too)."""
    if (folder / "tokenizer/image/config.json").is_file():
        print(f"f{f} k{k}: saved already in {folder}", flush=True)
        return run_seconds(folder)
    cmd = [sys.executable, str(REPO / "train.py"), f"experiment={RECIPES[f]}", f"quantizer.codebook_size={k}",
           f"trainer.max_steps={steps}", f"trainer.val_every={steps}",
           "task.baseline=false", f"trainer.resume={str((folder / 'checkpoints/last.pt').is_file()).lower()}",
           f"hydra.run.dir={folder}", *extra]
    print(f"f{f} k{k}: training {steps} steps ...", flush=True)
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return run_seconds(folder)


def summarise(rows: list[dict], pairs: list[tuple[int, int]], steps: int, seconds: dict[str, float]) -> list[dict]:
    """One line per tokenizer: its PSNR/SSIM and those of k-means, JPEG and WebP at (nearest) the same bits."""
    out = []
    for f, k in pairs:
        bpp = math.log2(k) / f**2
        tok = next((r for r in rows if r["kind"] == "tokenizer" and r["name"].startswith(f"f{f}_k{k}/")), {})
        km = next((r for r in rows if r["name"] == f"k-means {f}x{f} patches"
                   and abs(r["bits_per_pixel"] - bpp) < 1e-9), {})
        line = {"downsample": f, "codes": k, "bpp": bpp, "steps": steps, "train_seconds": seconds.get(f"f{f}_k{k}"),
                "tokenizer_psnr": tok.get("psnr"), "tokenizer_ssim": tok.get("ssim"),
                "codebook_usage": tok.get("codebook_usage"), "kmeans_psnr": km.get("psnr"),
                "kmeans_ssim": km.get("ssim")}
        for codec in ("JPEG", "WEBP"):
            # the codec's row for this target: task=evaluate keeps one row per file, so a target below the codec's
            # floor shares the row of the smallest target that gave that file (the nearest one at or below it)
            asked = [r for r in rows if r["name"] == codec and r.get("target_rate", 1e9) <= bpp + 1e-9]
            c = max(asked, key=lambda r: r["target_rate"], default={})
            line |= {f"{codec.lower()}_psnr": c.get("psnr"), f"{codec.lower()}_bpp": c.get("bits_per_pixel")}
        out.append(line)
    return out


def plot_points(rows: list[dict], pairs: list[tuple[int, int]]) -> list[dict]:
    """The evaluation's rows as curves: one per downsample for the tokenizers ("tokenizer f8"), k-means per patch
    size, and JPEG and WebP up to 1.5x the largest tokenizer rate (their lowest point always kept: the floor)."""
    top = 1.5 * max(math.log2(k) / f**2 for f, k in pairs)
    floors = {n: min(r["bits_per_pixel"] for r in rows if r["name"] == n) for n in ("JPEG", "WEBP")
              if any(r["name"] == n for r in rows)}
    points = []
    for r in rows:
        name = next((f"tokenizer f{f}" for f, k in pairs if r["name"].startswith(f"f{f}_k{k}/")), r["name"])
        if name in floors and r["bits_per_pixel"] > max(top, floors[name]):
            continue
        points.append({"name": name, "bits_per_pixel": r["bits_per_pixel"], "psnr": r.get("psnr")})
    return points


def markdown(lines: list[dict]) -> str:
    def f(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    head = ("| f | codes | bpp | tokenizer PSNR / SSIM | codes used | k-means PSNR / SSIM | JPEG PSNR @ bpp | "
            "WebP PSNR @ bpp |\n|---|---|---|---|---|---|---|---|")
    rows = [f"| {x['downsample']} | {x['codes']} | {x['bpp']:.4f} | {f(x['tokenizer_psnr'], '.2f')} / "
            f"{f(x['tokenizer_ssim'], '.3f')} | {f(x['codebook_usage'], '.0%')} | {f(x['kmeans_psnr'], '.2f')} / "
            f"{f(x['kmeans_ssim'], '.3f')} | {f(x['jpeg_psnr'], '.2f')} @ {f(x['jpeg_bpp'], '.3f')} | "
            f"{f(x['webp_psnr'], '.2f')} @ {f(x['webp_bpp'], '.3f')} |" for x in lines]
    return "\n".join([head, *rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1500, help="training steps per tokenizer (the recipe: 5000)")
    ap.add_argument("--downsample", type=int, nargs="+", default=[8, 16], choices=sorted(RECIPES))
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096, 16384])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/rate_distortion")
    ap.add_argument("--max-items", type=int, default=None, help="score only this many held-out images (a quick look)")
    ap.add_argument("overrides", nargs="*", help="more train.py overrides for every training run")
    args = ap.parse_args()
    bad = [k for k in args.sizes if k < 2 or k & (k - 1)]
    if bad:
        raise SystemExit(f"--sizes must be powers of two >= 2, got {bad}")
    args.out.mkdir(parents=True, exist_ok=True)
    pairs = [(f, k) for f in args.downsample for k in args.sizes]
    seconds = {f"f{f}_k{k}": train(f, k, args.steps, args.out / f"f{f}_k{k}", args.overrides) for f, k in pairs}
    folders = ",".join(str(args.out / f"f{f}_k{k}/tokenizer/image") for f, k in pairs)
    print("evaluating ...", flush=True)
    subprocess.run([sys.executable, str(REPO / "train.py"), "task=evaluate", f"task.tokenizers=[{folders}]",
                    f"hydra.run.dir={args.out / 'evaluate'}",
                    *([f"task.max_items={args.max_items}"] if args.max_items else [])], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    rows = json.loads((args.out / "evaluate/evaluation.json").read_text())["image"]
    lines = summarise(rows, pairs, args.steps, seconds)
    table = markdown(lines)
    (args.out / "rate_distortion.json").write_text(json.dumps(
        {"steps": args.steps, "threads": os.cpu_count(), "rows": lines}, indent=2) + "\n")
    (args.out / "rate_distortion.md").write_text(
        f"# Rate–distortion, {args.steps} steps per tokenizer (held-out sample photographs)\n\n{table}\n\n"
        f"Plot: `rate_distortion.png`. Every row of the evaluation: `evaluate/metrics.md`.\n")
    plot_rate_distortion(plot_points(rows, pairs), "bits_per_pixel", "psnr", args.out / "rate_distortion.png",
                         title=f"held-out photographs, {args.steps} steps per tokenizer")
    print(table)


if __name__ == "__main__":
    main()
