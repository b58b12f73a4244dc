"""Task ``text``: train the subword tokenizer on the corpus and measure it on held-out text."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from ..data.runlog import MetricsLog
from ..data.samples import data_root, resolve_files
from ..text import TextTokenizer


def heldout_stats(tok: TextTokenizer, texts: list[str]) -> dict[str, float]:
    """Bytes per token and exact round-trip rate of ``tok`` on held-out strings."""
    ids = tok.encode(texts)
    n_tokens = sum(len(i) for i in ids)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    exact = sum(tok.decode(i) == t for i, t in zip(ids, texts, strict=True))
    return {"heldout_bytes": n_bytes, "heldout_tokens": n_tokens,
            "bytes_per_token": n_bytes / max(1, n_tokens), "roundtrip_exact": exact / max(1, len(texts))}


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Trains :class:`TextTokenizer`, saves it to ``out_dir/tokenizer/text``, returns metrics."""
    root = data_root(cfg.data.root)
    train_files = resolve_files(root, cfg.data.text_train, "data.text_train")
    heldout_files = resolve_files(root, cfg.data.text_heldout, "data.text_heldout")
    overlap = set(train_files) & set(heldout_files)
    if overlap:
        raise ValueError(f"held-out text overlaps the training corpus: {sorted(map(str, overlap))}")
    t0 = time.perf_counter()
    tok = TextTokenizer.train(train_files, vocab_size=cfg.tokenizer.text.vocab_size,
                              min_frequency=cfg.tokenizer.text.min_frequency, show_progress=cfg.show_progress)
    train_s = time.perf_counter() - t0
    path = tok.save_pretrained(out_dir / "tokenizer" / "text")
    paragraphs = [p for f in heldout_files for p in f.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    metrics = {"task": "text", "vocab_size": tok.codebook_size, "train_bytes": sum(f.stat().st_size for f in train_files),
               "train_seconds": round(train_s, 3), **heldout_stats(tok, paragraphs), "saved_to": str(path)}
    MetricsLog(out_dir).write(**metrics)
    return metrics
