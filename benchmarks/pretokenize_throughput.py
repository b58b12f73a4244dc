"""Pre-tokenisation speed on the sample documents: DataLoader workers decoding media (0 = baseline: decoding in
the main process), then batch size x workers, from the JSONL manifest and from WebDataset tar shards.

The documents are ``samples/documents.jsonl`` (captions + 256x256 PNGs resized to ``--image-size``,
transcripts + FLAC speech), repeated ``--copies`` times; the tokenizers are the demo's debug sizes with
untrained weights (speed does not depend on them). Each setting writes its own shards into a temporary folder.
``rows``: the worker sweep at batch size 1 from the manifest (baseline: 0 workers); ``grid``: every
``--batch-sizes`` x ``--workers`` x ``--inputs`` setting, each against batch size 1 with the same workers and
input (the manifest at batch size 1 is the worker sweep's run). The tar input is the manifest packed by ``task=pack`` code into shards of ``--tar-docs`` documents.

    python benchmarks/pretokenize_throughput.py                    # 108 documents x 2, workers 0 1 2, batch 1 32
    python benchmarks/pretokenize_throughput.py --copies 1 --workers 0 2 --out /tmp/pretok.json
    python benchmarks/pretokenize_throughput.py --device cuda --precision bf16 --batch-sizes 1 32 128
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from modalities import ImageTokenizer, MultimodalTokenizer, TextTokenizer
from modalities.audio import SpectrogramTokenizer
from modalities.data.samples import samples_root
from modalities.multimodal import read_manifest
from modalities.shards import pretokenize, pretokenize_tars
from modalities.tasks.pack import manifest_documents, write_tars
from models.melspec import MelConfig
from models.melvq import MelVQConfig
from models.quantizer import QuantizerConfig
from models.vqae import VQAEConfig


def tokenizer(image_size: int) -> MultimodalTokenizer:
    """Text BPE (1024) + tiny f8 image VQ (256) + tiny log-mel RVQ (2x256), as in the demo."""
    torch.manual_seed(0)
    text = TextTokenizer.train(samples_root() / "text/corpus/heldout.txt", vocab_size=1024, show_progress=False)
    image = ImageTokenizer.from_configs(VQAEConfig(channels=[32, 32, 64, 64], z_dim=16, groups=8),
                                        QuantizerConfig(kind="vq", codebook_size=256), "resize", image_size)
    audio = SpectrogramTokenizer.from_configs(MelVQConfig(channels=[16, 32, 32], z_dim=32, band_channels=4),
                                              QuantizerConfig(kind="rvq", codebook_size=256, num_quantizers=2),
                                              MelConfig())
    return MultimodalTokenizer({"text": text, "image": image, "audio": audio})


def _measure(fn, device: str) -> tuple[dict, float]:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    man = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return man, time.perf_counter() - t0


def _row(man: dict, seconds: float, **setting) -> dict:
    return setting | {"documents": man["documents"], "tokens": man["tokens"], "seconds": seconds,
                      "docs_per_s": man["documents"] / seconds, "tokens_per_s": man["tokens"] / seconds}


def run(workers: list[int], copies: int = 2, image_size: int = 128, shard_docs: int = 32,
        batch_sizes: tuple[int, ...] = (1, 32), inputs: tuple[str, ...] = ("jsonl", "tar"), device: str = "cpu",
        precision: str = "fp32", tar_docs: int = 27) -> dict:
    mm = tokenizer(image_size).to(device)
    manifest = samples_root() / "documents.jsonl"
    docs = list(read_manifest(manifest)) * copies
    for doc in docs[:4]:  # warm-up: one-time set-up (resamplers, mel filters, JIT) is not part of any setting
        mm.encode(doc)
    rows, grid = [], []
    with tempfile.TemporaryDirectory() as tmp:
        packed, _ = manifest_documents(manifest)
        for c in range(copies):  # the same documents again under other keys
            write_tars([type(d)(f"{d.key}c{c}", d.source, d.members) for d in packed], Path(tmp) / "tars",
                       tar_docs, prefix=f"copy{c}", show_progress=False)
        urls = sorted(str(p) for p in (Path(tmp) / "tars").glob("*.tar"))
        for n in workers:
            man, seconds = _measure(lambda n=n: pretokenize(docs, mm, Path(tmp) / f"w{n}", shard_docs, num_workers=n,
                                                            show_progress=False, precision=precision), device)
            rows.append(_row(man, seconds, workers=n))
        for source in inputs:
            for n in workers:
                for b in batch_sizes:
                    if source == "jsonl" and b == 1:  # measured above
                        grid.append(next(r for r in rows if r["workers"] == n) | {"input": source, "batch_size": 1})
                        continue
                    out = Path(tmp) / f"{source}-w{n}-b{b}"
                    if source == "tar":
                        fn = lambda n=n, b=b, out=out: pretokenize_tars(  # noqa: E731
                            urls, mm, out, num_workers=n, batch_size=b, precision=precision, show_progress=False)
                    else:
                        fn = lambda n=n, b=b, out=out: pretokenize(  # noqa: E731
                            docs, mm, out, shard_docs, num_workers=n, batch_size=b, precision=precision,
                            show_progress=False)
                    man, seconds = _measure(fn, device)
                    grid.append(_row(man, seconds, input=source, workers=n, batch_size=b))
    base = next((r for r in rows if r["workers"] == 0), rows[0])
    for r in rows:
        r["ratio_vs_baseline"] = r["tokens_per_s"] / base["tokens_per_s"]
    for r in grid:
        one = next((g for g in grid if g["input"] == r["input"] and g["workers"] == r["workers"]
                    and g["batch_size"] == min(batch_sizes)), r)
        r["ratio_vs_batch_1"] = r["tokens_per_s"] / one["tokens_per_s"]
        r["ratio_vs_baseline"] = r["tokens_per_s"] / base["tokens_per_s"]
    cpu = platform.processor() or platform.machine()
    return {"benchmark": "pretokenize_throughput",
            "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else cpu, "precision": precision,
            "threads": torch.get_num_threads(), "cpus": len(__import__("os").sched_getaffinity(0)),
            "image_size": image_size, "baseline_workers": base["workers"], "rows": rows, "grid": grid}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--inputs", nargs="+", choices=["jsonl", "tar"], default=["jsonl", "tar"])
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/pretokenize_throughput.json"))
    args = ap.parse_args()
    res = run(args.workers, args.copies, args.image_size, batch_sizes=tuple(args.batch_sizes),
              inputs=tuple(args.inputs), device=args.device, precision=args.precision)
    print(f"pre-tokenisation of {res['rows'][0]['documents']} documents ({res['rows'][0]['tokens']} tokens), "
          f"{res['device']} {res['precision']}, {res['cpus']} CPUs, {res['threads']} torch threads")
    print(f"{'workers':>8} {'docs/s':>10} {'tokens/s':>12} {'vs ' + str(res['baseline_workers']) + ' workers':>14}")
    for r in res["rows"]:
        print(f"{r['workers']:>8} {r['docs_per_s']:>10.1f} {r['tokens_per_s']:>12,.0f} {r['ratio_vs_baseline']:>14.2f}")
    print(f"{'input':>6} {'workers':>8} {'batch':>6} {'docs/s':>10} {'tokens/s':>12} {'vs batch 1':>11} {'vs baseline':>12}")
    for r in res["grid"]:
        print(f"{r['input']:>6} {r['workers']:>8} {r['batch_size']:>6} {r['docs_per_s']:>10.1f} {r['tokens_per_s']:>12,.0f}"
              f" {r['ratio_vs_batch_1']:>11.2f} {r['ratio_vs_baseline']:>12.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
