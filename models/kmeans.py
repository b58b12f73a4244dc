"""k-means in torch (CPU or GPU): k-means++ seeding, then full-batch Lloyd or mini-batch updates.

Used as the classic baseline for image and spectrogram tokenizers (k-means on
raw pixel patches or mel frames) and for semantic audio units (k-means on
frame features). Empty clusters are re-seeded with the points farthest from
their centre. Mini-batch updates follow Sculley (2010), "Web-scale k-means
clustering": each centre moves towards its points with step ``1 / count``.
"""

from __future__ import annotations

import torch
from torch import nn

from .nearest import centre_means, nearest, sq_dists
from .quantizer import check_range

__all__ = ["KMeans"]


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
    def fit(self, x: torch.Tensor, iters: int = 25, seed: int = 0, tol: float = 1e-4,
            batch_size: int | None = None) -> KMeans:
        """Fits the centroids to ``x[N, D]`` (``N >= k``) on ``x``'s device; returns self.

        Args:
            iters: Lloyd iterations, or with ``batch_size`` passes over the data.
            seed: seeds k-means++ and the mini-batch order.
            tol: Lloyd stops when the inertia improves by less than this fraction.
            batch_size: mini-batch k-means with batches of this many points (``None``: full batch).
        """
        x = self._check(x)
        if x.shape[0] < self.k:
            raise ValueError(f"k-means with k={self.k} needs at least {self.k} points, got {x.shape[0]}")
        g = torch.Generator(device="cpu").manual_seed(seed)
        c = self._seed(x, g)
        if batch_size is not None and batch_size < x.shape[0]:
            c = self._minibatch(x, c, iters, batch_size, g)
        else:
            c = self._lloyd(x, c, iters, tol)
        self.centroids.copy_(c)
        return self

    def _seed(self, x: torch.Tensor, g: torch.Generator, max_points: int = 65536,
              rounds: int = 256) -> torch.Tensor:
        """k-means++ on a sample of at most ``max_points`` rows: each new centre drawn with probability
        proportional to the squared distance to the nearest centre so far.

        Up to ``rounds`` centres come one at a time (exact k-means++); for larger ``k`` each round draws
        ``ceil(k / rounds)`` distinct centres from the same distances, so seeding 16384 codes costs 256 passes
        over the data rather than 16384 (the batched draw of k-means||, Bahmani et al. 2012)."""
        if x.shape[0] > max_points:
            x = x[torch.randperm(x.shape[0], generator=g)[:max_points].to(x.device)]
        x2 = (x * x).sum(1)
        per_round = -(-self.k // rounds)
        c = x.new_empty(self.k, x.shape[1])
        c[0] = x[int(torch.randint(x.shape[0], (1,), generator=g))]
        d = sq_dists(x, c[:1], x2).squeeze(1)
        n = 1
        while n < self.k:
            m = min(per_round, self.k - n)
            alive = int((d > 0).sum())  # points not yet a centre (duplicates of a centre have d == 0 too)
            if alive >= m:
                idx = torch.multinomial((d / d.sum()).cpu(), m, replacement=False, generator=g)
            else:  # fewer distinct points left than centres: take them all, then any points
                idx = torch.cat([d.nonzero().squeeze(1).cpu(), torch.randint(x.shape[0], (m - alive,), generator=g)])
            c[n:n + m] = x[idx.to(x.device)]
            d = torch.minimum(d, sq_dists(x, c[n:n + m], x2).min(1).values)
            n += m
        return c

    def _minibatch(self, x: torch.Tensor, c: torch.Tensor, epochs: int, batch_size: int,
                   g: torch.Generator) -> torch.Tensor:
        counts = torch.zeros(self.k, device=x.device)
        for _ in range(epochs):
            hit = torch.zeros(self.k, dtype=torch.bool, device=x.device)
            for idx in torch.randperm(x.shape[0], generator=g).to(x.device).split(batch_size):
                xb = x[idx]
                mind, assign = nearest(xb, c)
                n = torch.bincount(assign, minlength=self.k).float()
                sums = torch.zeros_like(c).index_add_(0, assign, xb)
                counts += n
                hit |= n > 0
                step = (n / counts.clamp_min(1))[:, None]  # per-centre learning rate 1 / count
                c = c + step * (sums / n.clamp_min(1)[:, None] - c)
            dead = ~hit
            if dead.any():  # re-seed centres no point chose during a whole pass
                mind, _ = nearest(x, c)
                c[dead] = x[mind.topk(int(dead.sum())).indices]
                counts[dead] = 0
        return c

    def _lloyd(self, x: torch.Tensor, c: torch.Tensor, iters: int, tol: float) -> torch.Tensor:
        prev = float("inf")
        for _ in range(iters):
            mind, assign = nearest(x, c)
            c, counts = centre_means(x, assign, c)
            empty = counts == 0
            if empty.any():  # re-seed empty clusters with the points farthest from their centre
                c[empty] = x[mind.topk(int(empty.sum())).indices]
            inertia = float(mind.mean())
            if prev - inertia <= tol * prev:
                break
            prev = inertia
        return c

    @torch.no_grad()
    def inertia(self, x: torch.Tensor) -> float:
        """Mean squared distance of the rows of ``x[N, D]`` to their nearest centroid."""
        return float(nearest(self._check(x), self.centroids)[0].mean())

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the nearest centroid, ``long[N]``."""
        return nearest(self._check(x), self.centroids)[1]

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """Centroids ``[..., D]`` for ids ``long[...]``; raises on ids out of range."""
        check_range(ids, self.k, "k-means id")
        return self.centroids[ids]
