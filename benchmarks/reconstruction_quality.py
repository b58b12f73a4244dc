"""Reconstruction quality per quantiser on the held-out sample images, against k-means on pixel patches and
Pillow JPEG at the nearest bits per pixel, all measured in the same run on the same images.

Each quantiser is trained as ``python train.py experiment=image_debug quantizer=<kind>`` (tiny f8 model,
256 codes = 0.125 bits per pixel; about 4 minutes on 2 CPU cores at the default 2000 steps) into
``--runs/<kind>``, or reused from there when that run finished before.

    python benchmarks/reconstruction_quality.py                              # vq, fsq, lfq at 2000 steps
    python benchmarks/reconstruction_quality.py --kinds vq --steps 20 --runs /tmp/rq --out /tmp/rq.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hydra import compose, initialize_config_dir

from modalities.config import register_configs
from modalities.data.datasets import center_crop_multiple
from modalities.data.io import IMAGE_SUFFIXES, load_image
from modalities.eval.codecs import image_codec_baseline
from modalities.tasks.demo import run_stage
from modalities.tasks.vq import media_split

REPO = Path(__file__).resolve().parents[1]
KINDS = {"vq": [], "fsq": ["quantizer.levels=[8,8,4]"], "lfq": ["quantizer.codebook_size=256"]}


def run(kinds: list[str], steps: int, runs: Path) -> dict:
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        base = compose(config_name="config", overrides=["experiment=image_debug", "show_progress=false"])
    _, _, val_files = media_split(base, "images", "images", IMAGE_SUFFIXES)
    rows, baseline = [], None
    for kind in kinds:
        m = run_stage(base, runs, kind, ["experiment=image_debug", f"quantizer={kind}", *KINDS[kind],
                                         f"trainer.max_steps={steps}", "task.baseline=true"])
        f = m["downsample"]
        rows.append({"method": f"{kind} ({m['codebook_size']} codes)", "bpp": m["bits_per_pixel"],
                     "psnr": m["val_psnr"], "ssim": m["val_ssim"], "usage": m["val_usage"], "steps": m["steps"]})
        baseline = baseline or {"method": f"k-means on {f}x{f} pixel patches ({m['codebook_size']} codes)",
                                "bpp": m["baseline_bpp"], "psnr": m["baseline_psnr"], "ssim": m["baseline_ssim"]}
    val = [center_crop_multiple(load_image(p), f, base.task.val_size) for p in val_files]
    jpeg = image_codec_baseline(val, rows[0]["bpp"], "jpeg")
    rows += [baseline, {"method": f"Pillow JPEG (quality {jpeg['quality']:.1f}, nearest size)",
                        "bpp": jpeg["bits_per_pixel"], "psnr": jpeg["psnr"], "ssim": jpeg["ssim"]}]
    for r in rows:
        r["psnr_minus_kmeans_db"] = r["psnr"] - baseline["psnr"]
        r["ssim_ratio_vs_kmeans"] = r["ssim"] / baseline["ssim"]
    return {"benchmark": "reconstruction_quality", "val_images": [p.name for p in val_files],
            "val_size": base.task.val_size, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", nargs="+", choices=sorted(KINDS), default=["vq", "fsq", "lfq"])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--runs", type=Path, default=Path("benchmarks/results/quality_runs"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/reconstruction_quality.json"))
    args = ap.parse_args()
    res = run(args.kinds, args.steps, args.runs)
    print(f"held-out images ({', '.join(res['val_images'])}), centre {res['val_size']} px")
    print(f"{'method':<52} {'bpp':>6} {'PSNR dB':>8} {'SSIM':>6} {'usage':>6} {'vs k-means dB':>14} {'SSIM ratio':>10}")
    for r in res["rows"]:
        usage = f"{r['usage']:.1%}" if "usage" in r else "-"
        print(f"{r['method']:<52} {r['bpp']:>6.3f} {r['psnr']:>8.2f} {r['ssim']:>6.3f} {usage:>6} "
              f"{r['psnr_minus_kmeans_db']:>+14.2f} {r['ssim_ratio_vs_kmeans']:>10.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
