"""Text encode throughput: ``TextTokenizer`` versus Hugging Face ``tokenizers`` called directly.

Both use the same trained vocabulary and the same held-out text, in the same run,
so the ratio shows what mmtok's wrapper costs. Also reports bytes per token.

    python benchmarks/text_throughput.py                 # 8192 subwords, ~2 MB of text
    python benchmarks/text_throughput.py --mb 0.05 --out /tmp/text.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

from modalities import TextTokenizer
from modalities.data.samples import samples_root


def _best_of(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    """Fastest wall time of ``repeat`` calls, and the token count the call returned."""
    best, n = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        n = fn()
        best = min(best, time.perf_counter() - t0)
    return best, n


def run(vocab_size: int = 8192, mb: float = 2.0, repeat: int = 3) -> dict:
    root = samples_root()
    tok = TextTokenizer.train(root / "text/corpus/train.txt", vocab_size=vocab_size, show_progress=False)
    hf = tok.hf_tokenizer
    paragraphs = [p for p in (root / "text/corpus/heldout.txt").read_text(encoding="utf-8").split("\n\n") if p.strip()]
    heldout_bytes = sum(len(p.encode()) for p in paragraphs)
    texts: list[str] = []
    while sum(len(t.encode()) for t in texts) < mb * 1e6:
        texts += paragraphs
    nbytes = sum(len(t.encode()) for t in texts)
    fast = getattr(hf, "encode_batch_fast", hf.encode_batch)
    cases = {
        "single": (lambda: sum(len(tok.encode(t)) for t in texts),
                   lambda: sum(len(hf.encode(t, add_special_tokens=False).ids) for t in texts)),
        "batched": (lambda: sum(len(i) for i in tok.encode(texts)),
                    lambda: sum(len(e.ids) for e in fast(texts, add_special_tokens=False))),
    }
    rows = []
    for name, (ours, base) in cases.items():
        t_ours, n_ours = _best_of(ours, repeat)
        t_base, n_base = _best_of(base, repeat)
        assert n_ours == n_base, "wrapper and library disagree on the token count"
        rows.append({"mode": name, "mmtok_MB_s": nbytes / t_ours / 1e6, "hf_MB_s": nbytes / t_base / 1e6,
                     "mmtok_tok_s": n_ours / t_ours, "hf_tok_s": n_base / t_base, "ratio_vs_hf": t_base / t_ours})
    heldout_tokens = sum(len(i) for i in tok.encode(paragraphs))
    return {"benchmark": "text_throughput", "machine": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(), "vocab_size": tok.codebook_size, "text_MB": nbytes / 1e6,
            "bytes_per_token_heldout": heldout_bytes / heldout_tokens, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--mb", type=float, default=2.0, help="megabytes of text to encode per case")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/text_throughput.json"))
    args = ap.parse_args()
    res = run(args.vocab_size, args.mb, args.repeat)
    print(f"text encode, vocab {res['vocab_size']}, {res['text_MB']:.2f} MB, "
          f"held-out bytes/token {res['bytes_per_token_heldout']:.3f}")
    print(f"{'mode':<8} {'mmtok MB/s':>11} {'hf MB/s':>9} {'mmtok tok/s':>12} {'hf tok/s':>10} {'ratio':>6}")
    for r in res["rows"]:
        print(f"{r['mode']:<8} {r['mmtok_MB_s']:>11.2f} {r['hf_MB_s']:>9.2f} {r['mmtok_tok_s']:>12.0f} "
              f"{r['hf_tok_s']:>10.0f} {r['ratio_vs_hf']:>6.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
