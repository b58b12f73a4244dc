"""Image and video encode/decode throughput per quantiser and batch size, against k-means on pixel patches.

The f8 image tokenizer and the causal f8 video tokenizer (4x in time) tokenize sample photographs (and clips
of ``--frames`` photographs) at ``--size``; k-means on 8x8 pixel patches at the same codebook size is the
baseline measured in the same run. Weights are untrained (speed does not depend on them). ``--device cuda``
measures a GPU (bf16 autocast). Peak memory per setting: allocated CUDA memory on a GPU, the growth of the
process's resident memory (sampled) on the CPU.

    python benchmarks/image_throughput.py                                  # vq, fsq, lfq; batches 1 16 64
    python benchmarks/image_throughput.py --kinds fsq --batches 2 --size 64 --frames 5 --out /tmp/img.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
from pathlib import Path

import torch
from timing import PeakResident, best_of

from modalities import ImageTokenizer
from modalities.data.datasets import center_crop_multiple
from modalities.data.io import load_image
from modalities.data.samples import samples_root
from modalities.eval.baselines import image_to_patches
from modalities.video import VideoTokenizer
from models.kmeans import KMeans
from models.quantizer import QuantizerConfig
from models.vqae import VQAEConfig
from models.vqae3d import VQAE3DConfig

QUANTIZERS = {"vq": QuantizerConfig(kind="vq", codebook_size=1024), "fsq": QuantizerConfig(kind="fsq"),
              "lfq": QuantizerConfig(kind="lfq", codebook_size=1024)}


def _timed(fn, repeat: int, cuda: bool) -> tuple[float, float | None]:
    """Best seconds of ``fn`` and its peak memory in MiB: allocated on CUDA, resident growth on the CPU."""
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        return best_of(fn, repeat, cuda), torch.cuda.max_memory_allocated() / 2**20
    with PeakResident() as mem:
        seconds = best_of(fn, repeat, cuda)
    return seconds, mem.mib


def measure(tok, x: torch.Tensor, km: KMeans, items: int, repeat: int, cuda: bool, amp) -> dict:
    """Encode/decode speed of ``tok`` on batch ``x`` (``items`` images or frames) and of k-means on its 8x8
    patches; the larger peak memory of encode and decode."""
    patches = x.flatten(0, 1) if x.ndim == 5 else x
    with amp, torch.inference_mode():
        codes = tok.encode(x)
        t_enc, m_enc = _timed(lambda: tok.encode(x), repeat, cuda)
        t_dec, m_dec = _timed(lambda: tok.decode(codes), repeat, cuda)
        t_km, _ = _timed(lambda: km.predict(image_to_patches(patches, 8)), repeat, cuda)
    return {"encode_per_s": items / t_enc, "decode_per_s": items / t_dec, "kmeans_encode_per_s": items / t_km,
            "encode_ratio_vs_kmeans": t_km / t_enc, "peak_mib": max(m_enc or 0, m_dec or 0) or None}


def run(kinds: list[str], batches: list[int], size: int = 256, frames: int = 9, repeat: int = 3,
        device: str = "cpu") -> dict:
    files = sorted((samples_root() / "images").glob("*.png"))
    pool = torch.stack([center_crop_multiple(load_image(files[i % len(files)]), 8, size)
                        for i in range(max(batches) * max(1, frames))]).to(device)
    cuda = device.startswith("cuda")
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    rows = []
    for kind in kinds:
        torch.manual_seed(0)
        image = ImageTokenizer.from_configs(VQAEConfig(), QUANTIZERS[kind]).to(device)
        video = VideoTokenizer.from_configs(VQAE3DConfig(), QUANTIZERS[kind]).to(device) if frames else None
        km = KMeans(image.codebook_size, 3 * 64).to(device)
        km.centroids.copy_(torch.rand_like(km.centroids))
        for b in batches:
            head = {"quantizer": kind, "codebook_size": image.codebook_size, "batch": b}
            rows.append({"what": "image", **head, **measure(image, pool[:b], km, b, repeat, cuda, amp)})
            if video is not None:
                clip = pool[: b * frames].view(b, frames, *pool.shape[1:])
                rows.append({"what": "video", **head, **measure(video, clip, km, b * frames, repeat, cuda, amp)})
    return {"benchmark": "image_throughput", "device": torch.cuda.get_device_name() if cuda else
            (platform.processor() or platform.machine()), "threads": torch.get_num_threads(), "batches": batches,
            "size": size, "frames": frames, "downsample": 8, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", nargs="+", default=list(QUANTIZERS), choices=list(QUANTIZERS))
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--frames", type=int, default=9, help="frames per video clip (0: images only)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/image_throughput.json"))
    args = ap.parse_args()
    res = run(args.kinds, args.batches, args.size, args.frames, args.repeat, args.device)
    print(f"f8 tokenizers at {res['size']}x{res['size']} (video: clips of {res['frames']} frames), {res['device']}, "
          f"{res['threads']} threads; per second = images or frames")
    print(f"{'what':<6} {'quantizer':<9} {'batch':>5} {'encode/s':>9} {'decode/s':>9} {'k-means/s':>10} "
          f"{'ratio':>6} {'peak MiB':>9}")
    for r in res["rows"]:
        peak = f"{r['peak_mib']:.0f}" if r["peak_mib"] else "-"
        print(f"{r['what']:<6} {r['quantizer']:<9} {r['batch']:>5} {r['encode_per_s']:>9.1f} {r['decode_per_s']:>9.1f} "
              f"{r['kmeans_encode_per_s']:>10.1f} {r['encode_ratio_vs_kmeans']:>6.3f} {peak:>9}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
