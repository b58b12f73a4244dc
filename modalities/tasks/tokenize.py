"""Task ``tokenize``: a JSONL manifest or WebDataset tar shards of documents -> sharded token files.

``task.manifest`` is a JSONL file (one list of parts per line) or tar shards of interleaved documents
(``/data/docs-{00000..00099}.tar``, a glob, a list, ``pipe:`` commands; the member format is in
:mod:`modalities.data.interleaved`); see :mod:`modalities.shards` for the output. Documents are encoded
``task.batch_size`` at a time under ``task.precision``.

The tokenizer set is a saved :class:`MultimodalTokenizer` (``task.tokenizer``), pretrained models of other
libraries named by ``tokenizer/<group>`` configs (``task.external=[audio]`` with ``tokenizer/audio=encodec
tokenizer.audio.path=...``), or both: external tokenizers are appended to the saved set's vocabulary (existing
ids stay) or, under a name the set already has, replace that tokenizer in a new vocabulary. ``task.text_base=<HF
folder>`` replaces the text tokenizer with a pretrained LLM's (a new vocabulary laid on it, for ``task=lm_hf``).
The set used is saved next to the shards (``<out>/tokenizer``) so the ids can be decoded later.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig

from ..data.interleaved import is_tar_spec, shard_urls
from ..external import from_config, is_external
from ..multimodal import MultimodalTokenizer, read_manifest
from ..shards import pretokenize, pretokenize_tars
from ..text import TextTokenizer
from ..training.trainer import resolve_device


def tokenizer_set(cfg: DictConfig) -> MultimodalTokenizer:
    """``task.tokenizer`` (a saved set, optional) joined with the external tokenizers named in ``task.external``."""
    names = list(cfg.task.get("external") or [])
    text_base = cfg.task.get("text_base")
    if not cfg.task.tokenizer and not names:
        raise ValueError("task=tokenize needs task.tokenizer=<saved MultimodalTokenizer folder> and/or "
                         "task.external=[<tokenizer group>, ...] (e.g. tokenizer/audio=encodec tokenizer.audio.path=...)")
    base = MultimodalTokenizer.from_pretrained(cfg.task.tokenizer) if cfg.task.tokenizer else None
    parts = dict(base.tokenizers) if base is not None else {}
    for name in names:
        node = cfg.tokenizer.get(name)
        if node is None or not is_external(node):
            raise ValueError(f"task.external names {name!r}, but tokenizer/{name} is not a pretrained-model config "
                             f"(source: hf); pick one, e.g. tokenizer/{name}=encodec tokenizer.{name}.path=/my/model")
        parts[name] = from_config(node)
    if text_base:  # a base LLM's tokenizer replaces the text tokenizer: the vocabulary is laid on it anew
        parts["text"] = TextTokenizer.from_hf(text_base)
    keep = base is not None and all(n not in base.tokenizers for n in names) and not text_base
    return MultimodalTokenizer(parts, copy.deepcopy(base.registry) if keep else None)


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Writes this rank's shards (``RANK``/``WORLD_SIZE`` from ``torchrun``; on CUDA rank ``r`` of a node uses
    ``cuda:$LOCAL_RANK``) to ``task.out``; returns the manifest."""
    device = resolve_device(cfg.trainer.device)
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))  # under torchrun: one GPU per rank
    tok = tokenizer_set(cfg).to(device)
    spec = cfg.task.manifest
    spec = list(spec) if isinstance(spec, ListConfig) else spec
    target = Path(cfg.task.out) if Path(cfg.task.out).is_absolute() else out_dir / cfg.task.out
    rank = int(os.environ.get("RANK", 0))
    if (cfg.task.get("external") or cfg.task.get("text_base")) and rank == 0:
        tok.save_pretrained(out_dir / "tokenizer")
    common = {"rank": rank, "world_size": int(os.environ.get("WORLD_SIZE", 1)), "num_workers": cfg.task.num_workers,
              "show_progress": cfg.show_progress, "batch_size": cfg.task.batch_size, "precision": cfg.task.precision}
    if is_tar_spec(spec):
        result = pretokenize_tars(shard_urls(spec), tok, target, **common)
    else:
        result = pretokenize(list(read_manifest(spec)), tok, target, cfg.task.shard_docs, **common)
    keys = ("documents", "tokens", "skipped", "shards_written", "tokens_written", "tokens_per_s")
    return {"task": "tokenize", "out": str(target)} | {k: result[k] for k in keys if k in result} | {
        f"tokens_{k}": v for k, v in result.get("tokens_per_modality", {}).items()}
