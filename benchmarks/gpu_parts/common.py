"""What every part of the GPU suite shares: the run's context, timing in alternation (best of N, so machine noise
hits a figure and its baseline alike), the device's name, peak memory, MFU maths and the table row format."""

from __future__ import annotations

import gc
import math
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from timing import PeakResident, timed

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Context:
    """One run of the suite.

    Attributes:
        device: where the models run (``cuda`` for the real run, ``cpu`` for ``--smoke``).
        smoke: toy sizes, so the whole suite runs on a CPU in about a minute.
        work: a temporary folder the parts may write into.
        rounds: timed rounds of each alternated setting (the best counts).
    """

    device: torch.device
    smoke: bool
    work: Path
    rounds: int = 3

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def compile_backend(self) -> str:
        """``inductor`` (``torch.compile``'s default) on CUDA; ``eager`` in the CPU smoke run, which traces the
        model with dynamo like the real thing but skips inductor's code generation (minutes per model on 2 cores)."""
        return "inductor" if self.cuda else "eager"


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's (``platform.processor()``, else the machine type)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free_memory() -> None:
    """Drop what the last part left behind (models, compiled graphs, cached CUDA blocks)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    torch._dynamo.reset()


def alternate(fns: dict[str, Callable[[], object]], device: torch.device, rounds: int,
              warmup: int = 1) -> dict[str, float]:
    """Best seconds of each of ``fns`` over ``rounds`` rounds in which each is called once in turn, after
    ``warmup`` untimed calls of each (which absorb ``torch.compile``, k-means initialisation, caches)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    best = dict.fromkeys(fns, math.inf)
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], timed(fn, device.type == "cuda"))
    return best


class PeakMemory:
    """Peak memory of the ``with`` block above what was live when it began, in MiB (``mib``).

    On CUDA: ``torch.cuda.max_memory_allocated`` (reset at entry) minus the allocated memory at entry, so a
    setting built and run inside the block counts its weights, gradients, optimiser state and activations, and
    nothing built before it. On the CPU: the growth of resident memory, sampled (a rough figure: the allocator
    keeps freed pages)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.mib = device, None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            self._cpu = PeakResident().__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            sync(self.device)
            self.mib = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
        else:
            self._cpu.__exit__(*exc)
            self.mib = self._cpu.mib


def train_flops_per_token(model: torch.nn.Module, layers: int, dim: int, seq_len: int,
                          embedding: torch.nn.Module | None = None) -> float:
    """Training FLOPs per token (forward + backward) of a decoder-only transformer, as in the PaLM appendix:
    ``6 N`` for the matrix weights plus ``12 L T d`` for attention scores and values. ``N`` counts every
    parameter once (a tied embedding counts as the output head); an untied input ``embedding`` (a lookup, no
    FLOPs) is left out. The same formula as :meth:`models.transformer.Transformer.flops_per_token`."""
    n = sum(p.numel() for p in model.parameters())
    if embedding is not None:
        n -= embedding.weight.numel()
    return 6.0 * n + 12.0 * layers * seq_len * dim


def mfu(flops_per_token: float, tokens_per_s: float, device: torch.device) -> float | None:
    """Model FLOPs utilisation: achieved FLOP/s over the device's dense bf16 peak
    (:func:`modalities.tasks.lm.peak_tflops`); None on the CPU or an unknown GPU."""
    from modalities.tasks.lm import peak_tflops

    peak = peak_tflops(device, None)
    return flops_per_token * tokens_per_s / (peak * 1e12) if peak else None


def row(measure: str, setting: str, rate: float, unit: str, baseline: str | None = None,
        ratio: float | None = None, **notes: object) -> dict:
    """One line of the report's table: ``rate`` ``unit`` of ``measure`` under ``setting``, and its ``ratio`` to
    ``baseline`` (another setting of the same measure in the same run; higher is better unless the unit says
    otherwise). ``notes`` (peak memory, MFU...) go in the last column."""
    return {"measure": measure, "setting": setting, "rate": float(rate), "unit": unit, "baseline": baseline,
            "ratio": None if ratio is None else float(ratio), "notes": {k: v for k, v in notes.items() if v is not None}}


def check(name: str, passed: bool, detail: str, applies: bool = True) -> dict:
    """A pass/fail line of the report. ``applies=False``: recorded but not a goal in this run (a GPU aim
    measured on the CPU smoke run)."""
    return {"name": name, "passed": bool(passed), "detail": detail, "applies": applies}
