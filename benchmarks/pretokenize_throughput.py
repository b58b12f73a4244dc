"""Pre-tokenisation speed on the sample documents with 0 (baseline: decoding in the main process), 1 and 2
DataLoader workers decoding media.

The documents are ``samples/documents.jsonl`` (captions + 256x256 PNGs resized to ``--image-size``,
transcripts + FLAC speech), repeated ``--copies`` times; the tokenizers are the demo's debug sizes with
untrained weights (speed does not depend on them). Each setting writes its own shards into a temporary folder.

    python benchmarks/pretokenize_throughput.py                    # 108 documents x 2, workers 0 1 2
    python benchmarks/pretokenize_throughput.py --copies 1 --workers 0 2 --out /tmp/pretok.json
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
from modalities.shards import pretokenize
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


def run(workers: list[int], copies: int = 2, image_size: int = 128, shard_docs: int = 32) -> dict:
    mm = tokenizer(image_size)
    docs = list(read_manifest(samples_root() / "documents.jsonl")) * copies
    rows = []
    for n in workers:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            man = pretokenize(docs, mm, tmp, shard_docs, num_workers=n, show_progress=False)
            seconds = time.perf_counter() - t0
        rows.append({"workers": n, "documents": man["documents"], "tokens": man["tokens"], "seconds": seconds,
                     "docs_per_s": man["documents"] / seconds, "tokens_per_s": man["tokens"] / seconds})
    base = next((r for r in rows if r["workers"] == 0), rows[0])
    for r in rows:
        r["ratio_vs_baseline"] = r["tokens_per_s"] / base["tokens_per_s"]
    return {"benchmark": "pretokenize_throughput", "device": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(), "cpus": len(__import__("os").sched_getaffinity(0)),
            "image_size": image_size, "baseline_workers": base["workers"], "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/pretokenize_throughput.json"))
    args = ap.parse_args()
    res = run(args.workers, args.copies, args.image_size)
    print(f"pre-tokenisation of {res['rows'][0]['documents']} documents ({res['rows'][0]['tokens']} tokens), "
          f"{res['device']}, {res['cpus']} CPUs, {res['threads']} torch threads")
    print(f"{'workers':>8} {'docs/s':>10} {'tokens/s':>12} {'vs ' + str(res['baseline_workers']) + ' workers':>14}")
    for r in res["rows"]:
        print(f"{r['workers']:>8} {r['docs_per_s']:>10.1f} {r['tokens_per_s']:>12,.0f} {r['ratio_vs_baseline']:>14.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
