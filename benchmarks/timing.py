"""Timing helper shared by the benchmark scripts."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def best_of(fn: Callable[[], object], repeat: int, cuda: bool) -> float:
    """Seconds of the fastest of ``repeat`` calls of ``fn`` after one warm-up call (synchronising CUDA)."""
    fn()  # warm-up (and k-means init of vq)
    best = float("inf")
    for _ in range(repeat):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best
