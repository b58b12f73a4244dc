"""What the ``llm_*`` benchmarks share: the model options and a base model (a local folder, or a tiny random Llama
on a byte-level BPE trained here on the sample corpus)."""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def model_options(p: argparse.ArgumentParser) -> None:
    """``--model``, ``--device``, ``--hidden``, ``--layers``, ``--text-vocab``."""
    p.add_argument("--model", default=None, help="a local HF causal LM folder (default: a tiny random Llama)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--text-vocab", type=int, default=8000, help="the tiny model's byte-level BPE size")


def corpus() -> list[str]:
    return [s for s in (REPO / "samples/text/corpus/train.txt").read_text(encoding="utf-8").splitlines() if s]


def base_model(args: argparse.Namespace, work: Path) -> Path:
    """``args.model``, or a tiny random Llama of ``args.hidden`` x ``args.layers`` written under ``work``."""
    from modalities.llm import make_tiny_lm
    from modalities.llm.tiny import make_tiny_tokenizer

    if args.model:
        return Path(args.model)
    tok = make_tiny_tokenizer(work / "tok", corpus()[:20000], "byte_bpe", args.text_vocab)
    return make_tiny_lm(work / "lm", tok, "llama", hidden=args.hidden, layers=args.layers,
                        heads=max(1, args.hidden // 64))
