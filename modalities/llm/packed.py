"""Packed training sequences for a Hugging Face causal LM, read from mmtok's pre-tokenised shards.

Documents (each ``<bos> ... <eos>`` as :mod:`modalities.shards` writes them) are laid
back to back in shard order and cut into sequences of ``seq_len`` ids; the last one
may be shorter, and nothing is dropped or repeated, so one epoch sees every id of
the shards exactly once. ``position_ids`` restart at every document start and at
every sequence start, which ``transformers`` turns into a block-diagonal causal mask
(no attention across documents) when the batch carries no ``attention_mask`` and the
forward pass keeps no cache (:class:`PackedCollator`, :func:`packed_loss`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..registry import VocabRegistry
from ..shards import ShardReader

__all__ = ["IGNORE", "PackedCollator", "PackedShards", "packed_loss"]

#: the label of a position that carries no loss (``transformers``' and PyTorch's ignore index)
IGNORE = -100


class PackedShards(torch.utils.data.Dataset):
    """``seq_len``-id training sequences over a pre-tokenised folder.

    Item ``i`` is a dict of LongTensors, each ``[L]`` with ``L = seq_len`` (shorter only for the last item):

    * ``input_ids``: global ids of the registry the shards were made with;
    * ``labels``: ``input_ids`` with :data:`IGNORE` at document starts (nothing precedes them to predict
      from) and wherever ``loss_on`` excludes the position's modality;
    * ``position_ids``: 0 at each document start and at the sequence start, counting up from there;
    * ``modality``: the registry index of each position's modality (0 for ``<bos>``/``<eos>``).

    Args:
        tokens_dir: a folder written by ``task=tokenize`` (``manifest.json``, ``registry.json``, shards).
        seq_len: ids per sequence (>= 2).
        loss_on: ``None`` for a loss on every position, or a modality name (``"text"``, ``"image"``...) or a
            list of them; ``"special"`` names the controls outside segments (``<bos>``, ``<eos>``). Structural
            tokens of a media segment (brackets, header, ``<eor>``) belong to that modality.
        registry: when given, the shards must have been made with exactly this layout (same fingerprint,
            which covers a base LLM's tokenizer), else ``ValueError`` naming both.
    """

    def __init__(self, tokens_dir: str | Path, seq_len: int, loss_on: str | Sequence[str] | None = None,
                 registry: VocabRegistry | None = None) -> None:
        if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 2:
            raise ValueError(f"seq_len must be an int >= 2, got {seq_len!r}")
        self.tokens_dir = Path(tokens_dir)
        reg_path = self.tokens_dir / "registry.json"
        if not reg_path.is_file():
            raise FileNotFoundError(f"{reg_path} is missing: not a finished pre-tokenised folder (python train.py "
                                    f"task=tokenize writes one)")
        self.registry = VocabRegistry.load(reg_path)
        if registry is not None and registry.fingerprint != self.registry.fingerprint:
            raise ValueError(f"{self.tokens_dir} was tokenised with vocabulary {self.registry.fingerprint} "
                             f"({_base_name(self.registry)}), not {registry.fingerprint} ({_base_name(registry)}): "
                             f"re-tokenise with this tokenizer (python train.py task=tokenize ...)")
        self.reader = ShardReader(self.tokens_dir, self.registry.fingerprint)
        self.seq_len = seq_len
        self.keep = self._keep_table(loss_on)
        self.loss_on = loss_on
        sizes = [len(ids) for ids in self.reader.ids]
        self._shard_starts = np.cumsum([0] + sizes)
        starts = [off[:-1] + s for off, s in zip(self.reader.offsets, self._shard_starts[:-1], strict=True)]
        self.doc_starts = np.concatenate(starts) if starts else np.zeros(0, np.int64)
        self.num_tokens = int(self._shard_starts[-1])

    def _keep_table(self, loss_on: str | Sequence[str] | None) -> torch.Tensor:
        """BoolTensor[num modalities + 1]: whether positions of each modality index carry loss."""
        n = len(self.registry.modalities) + 1
        if loss_on is None:
            return torch.ones(n, dtype=torch.bool)
        names = [loss_on] if isinstance(loss_on, str) else list(loss_on)
        keep = torch.zeros(n, dtype=torch.bool)
        for name in names:
            if name == "special":
                keep[0] = True
            elif name in self.registry:
                keep[self.registry.modality(name).index] = True
            else:
                raise ValueError(f"loss_on names {name!r}, which is not a modality of {self.tokens_dir} "
                                 f"(it has {[m.name for m in self.registry.modalities]} and 'special')")
        return keep

    def __len__(self) -> int:
        return -(-self.num_tokens // self.seq_len)

    def _flat(self, start: int, stop: int) -> np.ndarray:
        """Ids ``[start, stop)`` of the shards laid end to end."""
        parts = []
        s = int(np.searchsorted(self._shard_starts, start, side="right") - 1)
        while start < stop:
            base = int(self._shard_starts[s])
            end = min(stop, int(self._shard_starts[s + 1]))
            parts.append(np.asarray(self.reader.ids[s][start - base:end - base], dtype=np.int64))
            start, s = end, s + 1
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"sequence {i} out of range [0, {len(self)})")
        start = i * self.seq_len
        stop = min(start + self.seq_len, self.num_tokens)
        ids = torch.from_numpy(self._flat(start, stop))
        pos = torch.arange(start, stop)
        # the latest document start at or before each position, but never before the sequence start
        k = np.searchsorted(self.doc_starts, pos.numpy(), side="right") - 1
        origin = torch.from_numpy(np.maximum(self.doc_starts[np.maximum(k, 0)], start) if len(k) else k)
        position_ids = pos - origin
        modality = self.registry.modality_of(ids)
        labels = ids.masked_fill(~self.keep[modality] | (position_ids == 0), IGNORE)
        return {"input_ids": ids, "labels": labels, "position_ids": position_ids, "modality": modality}

    def __repr__(self) -> str:
        return (f"PackedShards({self.tokens_dir}, seq_len={self.seq_len}, {len(self)} sequences, "
                f"{self.num_tokens} tokens, loss_on={self.loss_on!r})")


def _base_name(reg: VocabRegistry) -> str:
    return "mmtok's own layout" if reg.base is None else f"base {reg.base.name or reg.base.sha256[:12]}"


class PackedCollator:
    """Batches :class:`PackedShards` items for ``transformers.Trainer`` without an attention mask.

    ``flatten=False`` (default): rows ``[B, max L]``, a short last item padded with ``pad_id``, label
    :data:`IGNORE` and positions that restart, so padding is its own masked-off document. ``flatten=True`` (as
    ``DataCollatorWithFlattening``): every item back to back in one row ``[1, sum L]``, for flash-attention
    kernels that read packed sequences from ``position_ids`` without a mask; with ``sdpa``/``eager`` attention
    ``transformers`` builds a dense mask over the whole flattened row, which costs ``(B L)^2`` instead of
    ``B L^2`` (12x slower at 8 x 512 on the CPU, ``benchmarks/llm_packed.py --flatten``). Either way the model
    sees ``position_ids`` that restart per document and no ``attention_mask``, and must run without a cache
    (``use_cache=False``) for ``transformers`` to derive the block-diagonal mask from them. The ``modality`` key
    is kept for :func:`packed_loss`; pop it before calling a model directly.
    """

    def __init__(self, pad_id: int, flatten: bool = False) -> None:
        self.pad_id, self.flatten = int(pad_id), flatten

    def __call__(self, items: Iterable[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        items = list(items)
        if not items:
            raise ValueError("PackedCollator got an empty batch")
        if self.flatten:
            return {k: torch.cat([it[k] for it in items])[None] for k in items[0]}
        n = max(len(it["input_ids"]) for it in items)
        fill = {"input_ids": self.pad_id, "labels": IGNORE, "modality": 0}
        out = {}
        for k in items[0]:
            rows = []
            for it in items:
                pad = n - len(it[k])
                tail = torch.arange(pad) if k == "position_ids" else torch.full((pad,), fill[k], dtype=torch.long)
                rows.append(torch.cat([it[k], tail]))
            out[k] = torch.stack(rows)
        return out


def packed_loss(logits: torch.Tensor, labels: torch.Tensor, modality: torch.Tensor
                ) -> tuple[torch.Tensor, dict[int, tuple[float, int]]]:
    """Next-token cross-entropy of a packed batch, overall and per modality.

    Args:
        logits: ``[B, T, V]``; labels, modality: ``[B, T]`` (position ``t`` of ``labels`` is the target predicted
            from position ``t - 1``, as ``transformers`` shifts them).

    Returns:
        the mean loss over positions whose label is not :data:`IGNORE`, and ``{modality index: (summed loss,
        count)}`` over the same positions, by the target's modality.
    """
    target = labels[:, 1:].reshape(-1)
    mods = modality[:, 1:].reshape(-1)
    per = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), target,
                                            ignore_index=IGNORE, reduction="none")
    valid = target != IGNORE
    count = int(valid.sum())
    loss = per.sum() / max(count, 1)
    stats = {}
    detached = per.detach()
    for m in torch.unique(mods[valid]).tolist():
        sel = valid & (mods == m)
        stats[int(m)] = (float(detached[sel].sum()), int(sel.sum()))
    return loss, stats
