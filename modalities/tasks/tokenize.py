"""Task ``tokenize``: a JSONL manifest of documents -> sharded token files (see :mod:`modalities.shards`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from ..multimodal import MultimodalTokenizer, read_manifest
from ..shards import pretokenize
from ..training.trainer import resolve_device


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Writes this rank's shards (``RANK``/``WORLD_SIZE`` from ``torchrun``) to ``task.out``; returns the manifest."""
    tok = MultimodalTokenizer.from_pretrained(cfg.task.tokenizer).to(resolve_device(cfg.trainer.device))
    docs = list(read_manifest(cfg.task.manifest))
    target = Path(cfg.task.out) if Path(cfg.task.out).is_absolute() else out_dir / cfg.task.out
    result = pretokenize(docs, tok, target, cfg.task.shard_docs, rank=int(os.environ.get("RANK", 0)),
                         world_size=int(os.environ.get("WORLD_SIZE", 1)), num_workers=cfg.task.num_workers,
                         show_progress=cfg.show_progress)
    keys = ("documents", "tokens", "skipped", "shards_written", "tokens_written", "tokens_per_s")
    return {"task": "tokenize", "out": str(target)} | {k: result[k] for k in keys if k in result} | {
        f"tokens_{k}": v for k, v in result.get("tokens_per_modality", {}).items()}
