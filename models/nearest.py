"""Nearest centre of each row, in row chunks, and the mean update: the two Lloyd steps shared by k-means and the
codebook refit.

An ``N x K`` distance matrix at once does not fit for large codebooks (60 000 patches x 16 384 codes is 3.9 GB),
so the rows go through in chunks of about ``max_elements / K`` and only the minimum and its index are kept.
"""

from __future__ import annotations

import torch

__all__ = ["centre_means", "nearest", "sq_dists"]


def sq_dists(x: torch.Tensor, c: torch.Tensor, x2: torch.Tensor | None = None,
             c2: torch.Tensor | None = None) -> torch.Tensor:
    """Squared Euclidean distances ``[N, K]`` between rows of ``x[N, D]`` and ``c[K, D]`` (``x2``, ``c2``: their
    squared norms ``[N]`` and ``[K]`` when the caller has them already)."""
    x2 = (x * x).sum(1) if x2 is None else x2
    c2 = (c * c).sum(1) if c2 is None else c2
    return (x2[:, None] - 2 * x @ c.T + c2).clamp_min_(0)


def nearest(x: torch.Tensor, c: torch.Tensor, max_elements: int = 1 << 25) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared distance to the nearest row of ``c[K, D]`` and its index for each row of ``x[N, D]``:
    ``(float[N], long[N])``, never holding more than about ``max_elements`` distances at once."""
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1]:
        raise ValueError(f"nearest needs x[N, D] and c[K, D], got {tuple(x.shape)} and {tuple(c.shape)}")
    rows = max(1, max_elements // max(1, len(c)))
    c2 = (c * c).sum(1)
    dists, index = [], []
    for part in x.split(rows):
        d, i = sq_dists(part, c, c2=c2).min(1)
        dists.append(d)
        index.append(i)
    return torch.cat(dists), torch.cat(index)


def centre_means(x: torch.Tensor, assign: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's update: each centre of ``c[K, D]`` moved to the mean of the rows of ``x[N, D]`` assigned to it
    (``assign``: ``long[N]``); a centre no row chose stays where it is. Returns ``(centres[K, D], counts[K])``."""
    counts = torch.bincount(assign, minlength=len(c)).float()
    sums = torch.zeros_like(c).index_add_(0, assign, x)
    return torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], c), counts
