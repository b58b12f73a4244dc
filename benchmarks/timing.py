"""Timing and memory helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import torch


def timed(fn: Callable[[], object], cuda: bool) -> float:
    """Seconds of one call of ``fn`` (synchronising CUDA before and after)."""
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def best_of(fn: Callable[[], object], repeat: int, cuda: bool) -> float:
    """Seconds of the fastest of ``repeat`` calls of ``fn`` after one warm-up call (synchronising CUDA)."""
    fn()  # warm-up (and k-means init of vq)
    return min(timed(fn, cuda) for _ in range(repeat))


def resident_bytes() -> int | None:
    """This process's resident memory in bytes (Linux ``/proc``), or None where that cannot be read."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class PeakResident:
    """Peak growth of resident memory while the ``with`` block runs, sampled every ``interval`` seconds.

    CPU counterpart of ``torch.cuda.max_memory_allocated``: ``mib`` is the highest resident size seen
    minus the size at entry, in MiB (None off Linux). Sampling can miss a spike shorter than ``interval``.
    """

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.base = self.peak = None
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, resident_bytes() or 0)

    def __enter__(self) -> PeakResident:
        self.base = self.peak = resident_bytes()
        if self.base is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.base is not None:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, resident_bytes() or 0)

    @property
    def mib(self) -> float | None:
        return None if self.base is None else (self.peak - self.base) / 2**20
