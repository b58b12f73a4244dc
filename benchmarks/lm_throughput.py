"""Transformer training speed: tokens/s and model FLOPs utilisation (MFU) per precision and compile setting.

Each setting trains ``--steps`` AdamW steps on random ids (speed does not depend on the data) after
``--warmup`` steps (which absorb ``torch.compile``); the baseline is fp32 eager in the same run. MFU
counts ``6 N + 12 L T d`` FLOPs per token (:meth:`Transformer.flops_per_token`) against the device's
dense bf16 peak (:data:`modalities.tasks.lm.PEAK_BF16_TFLOPS`), so it is reported on CUDA only. The data
side is measured too: ``task=lm``'s loader (:func:`~modalities.tasks.lm.random_blocks` over a memory-mapped
10M-token stream, or ``--data`` pre-tokenised shards) in tokens/s, as a ratio to the fastest training setting:
above 1 the loader keeps up with the model.

    python benchmarks/lm_throughput.py                                        # CPU, the demo's tiny model
    python benchmarks/lm_throughput.py --device cuda --size 100m --settings fp32 bf16 bf16+compile
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from modalities.shards import ShardReader
from modalities.tasks.lm import peak_tflops, random_blocks, token_stream
from models.transformer import Transformer, TransformerConfig

SIZES = {  # name -> (dim, layers, heads, vocab, block, batch)
    "tiny": (128, 4, 4, 4096, 256, 8),
    "100m": (768, 12, 12, 32768, 1024, 16),
}


def measure(size: str, setting: str, device: torch.device, steps: int, warmup: int) -> dict:
    dim, layers, heads, vocab, block, batch = SIZES[size]
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(vocab_size=vocab, dim=dim, n_layers=layers, n_heads=heads,
                                          max_seq_len=block)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    net = torch.compile(model) if "compile" in setting else model
    bf16 = setting.startswith("bf16")
    ids = torch.randint(0, vocab, (batch, block + 1), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = net(ids[:, :-1], check_ids=False)  # ids are in range by construction
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), ids[:, 1:].flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    tokens_per_s = steps * batch * block / seconds
    peak = peak_tflops(device, None)
    return {"size": size, "setting": setting, "params": model.num_params(), "block": block, "batch": batch,
            "tokens_per_s": tokens_per_s,
            "mfu": model.flops_per_token(block) * tokens_per_s / (peak * 1e12) if peak else None,
            "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None}


def loader_tokens_per_s(size: str, data: Path | None, batches: int = 50) -> float:
    """Tokens/s of drawing training batches with ``random_blocks`` (what ``task=lm`` does before each step)."""
    _, _, _, vocab, block, batch = SIZES[size]
    stream = (token_stream(ShardReader(data)) if data else
              np.random.default_rng(0).integers(0, vocab, 10_000_000, dtype=np.int64))
    gen = torch.Generator().manual_seed(0)
    random_blocks(stream, block, batch, gen)
    t0 = time.perf_counter()
    for _ in range(batches):
        random_blocks(stream, block, batch, gen)
    return batches * batch * block / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny")
    ap.add_argument("--settings", nargs="+", default=["bf16", "bf16+compile"],
                    choices=["fp32", "fp32+compile", "bf16", "bf16+compile"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--data", type=Path, default=None, help="pre-tokenised folder for the loader (default: random)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/lm_throughput.json"))
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    settings = ["fp32", *(s for s in args.settings if s != "fp32")]  # the baseline first, once
    rows = [measure(args.size, s, device, args.steps, args.warmup) for s in settings]
    base = rows[0]["tokens_per_s"]
    for r in rows:
        r["ratio_vs_fp32_eager"] = r["tokens_per_s"] / base
    loader = loader_tokens_per_s(args.size, args.data)
    fastest = max(r["tokens_per_s"] for r in rows)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"transformer training, size {args.size} ({rows[0]['params'] / 1e6:.1f}M parameters, "
          f"{rows[0]['batch']}x{rows[0]['block']} tokens per step), {name}, {torch.get_num_threads()} threads")
    print(f"{'setting':<14} {'tokens/s':>12} {'MFU':>7} {'vs fp32 eager':>14}")
    for r in rows:
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
        print(f"{r['setting']:<14} {r['tokens_per_s']:>12,.0f} {mfu:>7} {r['ratio_vs_fp32_eager']:>14.2f}")
    print(f"data loader (random_blocks): {loader:,.0f} tokens/s = {loader / fastest:.1f}x the fastest training setting")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "lm_throughput", "device": name, "rows": rows,
                                    "loader_tokens_per_s": loader, "loader_ratio_vs_training": loader / fastest},
                                   indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
