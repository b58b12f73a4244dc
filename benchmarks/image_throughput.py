"""Image encode/decode throughput: ``ImageTokenizer`` (f8) versus k-means on pixel patches at the same bits.

Both tokenize the same 256x256 sample photographs in the same run; weights are
untrained (speed does not depend on them). ``--device cuda`` measures a GPU
(bf16 autocast), else the CPU.

    python benchmarks/image_throughput.py                      # vq, fsq, lfq at f8, batch 16
    python benchmarks/image_throughput.py --kinds fsq --batch 2 --size 64 --out /tmp/img.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
from pathlib import Path

import torch
from timing import best_of

from modalities import ImageTokenizer
from modalities.baselines import image_to_patches
from modalities.datasets import center_crop_multiple
from modalities.io import load_image
from modalities.samples import samples_root
from models.kmeans import KMeans
from models.quantizer import QuantizerConfig
from models.vqae import VQAEConfig

QUANTIZERS = {"vq": QuantizerConfig(kind="vq", codebook_size=1024), "fsq": QuantizerConfig(kind="fsq"),
              "lfq": QuantizerConfig(kind="lfq", codebook_size=1024)}


def run(kinds: list[str], batch: int = 16, size: int = 256, repeat: int = 3, device: str = "cpu") -> dict:
    files = sorted((samples_root() / "images").glob("*.png"))
    imgs = torch.stack([center_crop_multiple(load_image(files[i % len(files)]), 8, size) for i in range(batch)])
    imgs = imgs.to(device)
    cuda = device.startswith("cuda")
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    rows = []
    for kind in kinds:
        torch.manual_seed(0)
        tok = ImageTokenizer.from_configs(VQAEConfig(), QUANTIZERS[kind]).to(device)
        with amp:
            codes = tok.encode(imgs)
            t_enc = best_of(lambda tok=tok: tok.encode(imgs), repeat, cuda)
            t_dec = best_of(lambda tok=tok, codes=codes: tok.decode(codes), repeat, cuda)
        km = KMeans(tok.codebook_size, 3 * 64).to(device)
        km.centroids.copy_(torch.rand_like(km.centroids))
        t_km = best_of(lambda km=km: km.predict(image_to_patches(imgs, 8)), repeat, cuda)
        rows.append({"quantizer": kind, "codebook_size": tok.codebook_size, "encode_img_s": batch / t_enc,
                     "decode_img_s": batch / t_dec, "kmeans_encode_img_s": batch / t_km,
                     "encode_ratio_vs_kmeans": t_km / t_enc})
    return {"benchmark": "image_throughput", "device": torch.cuda.get_device_name() if cuda else
            (platform.processor() or platform.machine()), "threads": torch.get_num_threads(), "batch": batch,
            "size": size, "downsample": 8, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", nargs="+", default=list(QUANTIZERS), choices=list(QUANTIZERS))
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/image_throughput.json"))
    args = ap.parse_args()
    res = run(args.kinds, args.batch, args.size, args.repeat, args.device)
    print(f"image tokenizer f8, {res['size']}x{res['size']}, batch {res['batch']}, {res['device']}")
    print(f"{'quantizer':<10} {'encode img/s':>13} {'decode img/s':>13} {'k-means img/s':>14} {'ratio':>6}")
    for r in res["rows"]:
        print(f"{r['quantizer']:<10} {r['encode_img_s']:>13.1f} {r['decode_img_s']:>13.1f} "
              f"{r['kmeans_encode_img_s']:>14.1f} {r['encode_ratio_vs_kmeans']:>6.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
