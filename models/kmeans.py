"""Batched k-means in torch: k-means++ seeding, Lloyd iterations, empty clusters re-seeded.

Used as the classic baseline for image tokenizers (k-means on raw pixel
patches) and for semantic audio units (k-means on frame features).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["KMeans"]


def _sq_dists(x: torch.Tensor, c: torch.Tensor, chunk: int = 16384) -> torch.Tensor:
    """Squared distances ``[N, K]`` between rows of ``x[N, D]`` and ``c[K, D]``, in chunks."""
    c2 = (c * c).sum(1)
    out = [((xb * xb).sum(1, keepdim=True) - 2 * xb @ c.T + c2).clamp_min_(0) for xb in x.split(chunk)]
    return torch.cat(out)


class KMeans(nn.Module):
    """k-means codebook: ``fit(x[N, D])``, ``predict(x[N, D]) -> long[N]``, ``centroids[K, D]``."""

    def __init__(self, k: int, dim: int) -> None:
        super().__init__()
        if k < 1 or dim < 1:
            raise ValueError(f"k-means needs k >= 1 and dim >= 1, got k={k}, dim={dim}")
        self.k, self.dim = k, dim
        self.register_buffer("centroids", torch.zeros(k, dim))

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"k-means expects [N, {self.dim}] features, got shape {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("k-means features contain NaN or inf values")
        return x.float()

    @torch.no_grad()
    def fit(self, x: torch.Tensor, iters: int = 25, seed: int = 0, tol: float = 1e-4) -> KMeans:
        """Fits the centroids to ``x[N, D]`` (``N >= k``); returns self."""
        x = self._check(x)
        if x.shape[0] < self.k:
            raise ValueError(f"k-means with k={self.k} needs at least {self.k} points, got {x.shape[0]}")
        g = torch.Generator(device="cpu").manual_seed(seed)
        # k-means++ seeding: each new centre drawn with probability proportional to squared distance.
        c = x[torch.randint(x.shape[0], (1,), generator=g)]
        d = _sq_dists(x, c).squeeze(1)
        for _ in range(1, self.k):
            p = d / d.sum() if d.sum() > 0 else torch.full_like(d, 1.0 / len(d))
            nxt = x[torch.multinomial(p.cpu(), 1, generator=g).to(x.device)]
            c = torch.cat([c, nxt])
            d = torch.minimum(d, _sq_dists(x, nxt).squeeze(1))
        prev = float("inf")
        for _ in range(iters):
            dist = _sq_dists(x, c)
            mind, assign = dist.min(1)
            counts = torch.bincount(assign, minlength=self.k).float()
            sums = torch.zeros_like(c).index_add_(0, assign, x)
            empty = counts == 0
            c = torch.where(empty[:, None], c, sums / counts.clamp_min(1)[:, None])
            if empty.any():  # re-seed empty clusters with the points farthest from their centre
                c[empty] = x[mind.topk(int(empty.sum())).indices]
            inertia = float(mind.mean())
            if prev - inertia <= tol * prev:
                break
            prev = inertia
        self.centroids.copy_(c)
        return self

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the nearest centroid, ``long[N]``."""
        return _sq_dists(self._check(x), self.centroids).argmin(1)

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """Centroids ``[..., D]`` for ids ``long[...]``; raises on ids out of range."""
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.k):
            raise ValueError(f"k-means ids must be in [0, {self.k}), got [{int(ids.min())}, {int(ids.max())}]")
        return self.centroids[ids]
