"""Image tokenizer training speed on 1 and N ranks (DDP under ``torchrun``): images/s and the scaling ratio.

Each rank count is one ``torchrun --standalone --nproc_per_node=N`` job running this script's ``--worker`` mode:
the ranks join the process group (gloo on CPU, NCCL with ``--device cuda``), build the VQ autoencoder inside it
(:class:`~modalities.training.trainer.VQTrainer`: DDP, the EMA codebook synchronised), and train on random crops
of the bundled images, each rank reading its slice of every global batch
(:func:`~modalities.data.datasets.infinite_batches`). The global batch is the same for every rank count
(``--global-batch``, split evenly), so the runs do the same work per step; ``--steps`` steps are timed after
``--warmup`` steps, between barriers. The baseline is the 1-rank run, measured in the same invocation. On the CPU
each rank gets ``--threads`` threads: 2 ranks x 1 thread use the cores 1 rank x 1 thread leaves idle.

    python benchmarks/train_scaling.py                                   # CPU: 1 and 2 ranks, tiny model
    python benchmarks/train_scaling.py --device cuda --size f8 --ranks 1 2 4 8 --global-batch 64 --crop 256
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
SIZES = {  # name -> (channels, z_dim, groups)
    "tiny": ([32, 32, 64, 64], 16, 8),  # tokenizer/image=tiny (experiment=image_debug)
    "f8": ([64, 128, 128, 256], 64, 16),  # tokenizer/image=f8 (the default)
}


def worker(args: argparse.Namespace) -> None:
    """One rank of the timed run; rank 0 writes the row to ``args.out``."""
    sys.path.insert(0, str(REPO))
    from modalities.data.datasets import ImageCrops, infinite_batches
    from modalities.data.io import IMAGE_SUFFIXES, list_media
    from modalities.data.samples import samples_root
    from modalities.training import distributed
    from modalities.training.trainer import TrainerConfig, VQTrainer, resolve_device
    from models.quantizer import QuantizerConfig
    from models.vqae import VQAEConfig, VQAutoencoder

    torch.set_num_threads(args.threads)
    device = distributed.local_device(resolve_device(args.device))
    with distributed.process_group(device), tempfile.TemporaryDirectory() as tmp:
        world, rank = distributed.world_size(), distributed.rank()
        channels, z_dim, groups = SIZES[args.size]
        torch.manual_seed(0)
        model = VQAutoencoder(VQAEConfig(channels=channels, z_dim=z_dim, groups=groups),
                              QuantizerConfig(kind="vq", codebook_size=256))
        cfg = TrainerConfig(max_steps=10**9, device=args.device, tensorboard=False, warmup_steps=1)
        trainer = VQTrainer(model, cfg, tmp)
        files = list_media(samples_root() / "images", IMAGE_SUFFIXES, "samples/images")
        data = ImageCrops(files, args.crop, samples_per_epoch=max(1024, args.global_batch))
        batches = infinite_batches(data, args.global_batch // world, args.workers, seed=0, rank=rank, world_size=world)
        for _ in range(args.warmup):
            trainer.train_step(next(batches))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        distributed.barrier()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            trainer.train_step(next(batches))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        distributed.barrier()
        seconds = time.perf_counter() - t0
        if rank == 0:
            row = {"ranks": world, "per_rank_batch": args.global_batch // world, "global_batch": args.global_batch,
                   "steps": args.steps, "seconds": seconds, "images_per_s": args.steps * args.global_batch / seconds,
                   "backend": "nccl" if device.type == "cuda" else "gloo" if world > 1 else "none"}
            Path(args.out).write_text(json.dumps(row))


def run_ranks(n: int, args: argparse.Namespace, tmp: Path) -> dict:
    """``torchrun --nproc_per_node=n`` of the worker; the row rank 0 wrote."""
    out = tmp / f"ranks{n}.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", __file__,
           "--worker", "--out", str(out), "--device", args.device, "--size", args.size, "--crop", str(args.crop),
           "--global-batch", str(args.global_batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--threads", str(args.threads), "--workers", str(args.workers)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    if proc.returncode:
        raise SystemExit(f"the {n}-rank run failed:\n{proc.stderr[-4000:]}")
    return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="rank counts; 1 (the baseline) is added")
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny")
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--global-batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers per rank")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/train_scaling.json"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    ranks = [1, *sorted(set(args.ranks) - {1})]
    for n in ranks:
        if n < 1 or args.global_batch % n:
            raise SystemExit(f"--global-batch {args.global_batch} is not divisible by {n} ranks; choose a global "
                             "batch that every rank count in --ranks divides")
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_ranks(n, args, Path(tmp)) for n in ranks]
    base = rows[0]["images_per_s"]
    for r in rows:
        r["ratio_vs_1_rank"] = r["images_per_s"] / base
        r["efficiency"] = r["ratio_vs_1_rank"] / r["ranks"]
    name = (torch.cuda.get_device_name() if args.device.startswith("cuda")
            else platform.processor() or platform.machine())
    print(f"image tokenizer training, size {args.size}, {args.crop}px crops, global batch {args.global_batch}, "
          f"{name}, {args.threads} thread(s) per rank")
    print(f"{'ranks':>5} {'batch/rank':>10} {'images/s':>10} {'vs 1 rank':>10} {'efficiency':>11}")
    for r in rows:
        print(f"{r['ranks']:>5} {r['per_rank_batch']:>10} {r['images_per_s']:>10.1f} {r['ratio_vs_1_rank']:>10.2f} "
              f"{r['efficiency']:>11.0%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "train_scaling", "device": name, "size": args.size,
                                    "crop": args.crop, "threads_per_rank": args.threads, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
