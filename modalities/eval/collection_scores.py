"""Held-out scores per collection: one mean hides a kind of data that a tokenizer handles badly.

A media folder's metadata files split its files into *collections*
(:func:`modalities.data.sources.read_collections`: for the bundled speech ``transcripts``, the synthesised voices,
``recordings``, ``klettres`` and ``ktuberling``, three recording chains of real voices). The tasks that score held-out
clips report the mean over all of them and, beside it, the mean of each collection, from the same per-clip
scores; a folder with a single collection (or none) gets the overall mean only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

__all__ = ["by_collection", "collection_means"]

T = TypeVar("T")


def by_collection(items: Sequence[T], groups: Sequence[str] | None) -> dict[str, list[T]]:
    """``{collection: its items}`` in sorted order of names, ``groups`` naming each item's collection; ``{}``
    when ``groups`` is ``None`` or names fewer than two collections (nothing to tell apart)."""
    if groups is None:
        return {}
    if len(groups) != len(items):
        raise ValueError(f"got {len(groups)} collection names for {len(items)} items")
    names = sorted(set(groups))
    if len(names) < 2:
        return {}
    return {name: [x for x, g in zip(items, groups, strict=True) if g == name] for name in names}


def collection_means(rows: Sequence[Mapping[str, float]], groups: Sequence[str] | None, prefix: str,
                     ndigits: int | None = None) -> dict[str, float]:
    """Means of per-clip scores (``rows``, every row with the same keys): ``<prefix><key>`` over all rows and,
    per collection of :func:`by_collection`, ``<prefix><collection>_<key>`` with ``<prefix><collection>_clips``
    (how many rows it has). ``ndigits`` rounds the means."""
    if not rows:
        raise ValueError("no scores to average")

    def means(pre: str, part: Sequence[Mapping[str, float]]) -> dict[str, float]:
        out = {f"{pre}{k}": sum(r[k] for r in part) / len(part) for k in part[0]}
        return out if ndigits is None else {k: round(v, ndigits) for k, v in out.items()}

    result = means(prefix, rows)
    for name, part in by_collection(rows, groups).items():
        result[f"{prefix}{name}_clips"] = len(part)
        result |= means(f"{prefix}{name}_", part)
    return result
