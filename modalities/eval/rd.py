"""Rate-distortion plots: every tokenizer and classical baseline as a curve of quality against bits.

:func:`plot_rate_distortion` takes the flat rows an evaluation writes, one per
(method, rate) measurement, e.g.::

    [{"name": "vq-f8-1024", "bits_per_pixel": 0.156, "psnr": 24.1, "lpips": 0.21},
     {"name": "jpeg", "bits_per_pixel": 0.31, "psnr": 25.3, "lpips": "not computed (set eval.lpips_weights)"},
     {"name": "jpeg", "bits_per_pixel": 0.62, "psnr": 28.0, ...}]

and draws ``y`` against ``x``: one line per ``name`` through its points sorted by ``x``.
Rows whose ``x`` or ``y`` is missing or not a finite number (such as a metric
that was "not computed") are left out, and the legend says so for that name.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..data.fileio import atomic_path

__all__ = ["plot_rate_distortion"]

_LOWER_IS_BETTER = ("lpips", "fid", "distance", "error", "mel", "stft", "loss", "ciede", "shift")


def _number(v: Any) -> float | None:
    """``v`` as a finite float, or None (strings such as "not computed", None, nan, inf)."""
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
        return None
    return float(v)


def curves_of(points: Sequence[Mapping[str, Any]], x: str, y: str, who: str
              ) -> tuple[dict[str, list[tuple[float, float]]], dict[str, int]]:
    """``points`` grouped by ``name``: the ``(x, y)`` pairs of each name, and how many of its points had an ``x`` or
    ``y`` that is not a finite number (skipped). Raises ``ValueError`` (naming ``who``) on no points or a point
    without a name."""
    if not points:
        raise ValueError(f"{who}: no points")
    curves: dict[str, list[tuple[float, float]]] = {}
    skipped: dict[str, int] = {}
    for i, p in enumerate(points):
        if "name" not in p:
            raise ValueError(f"{who}: point {i} has no 'name': {dict(p)}")
        name = str(p["name"])
        curves.setdefault(name, [])
        xv, yv = _number(p.get(x)), _number(p.get(y))
        if xv is None or yv is None:
            skipped[name] = skipped.get(name, 0) + 1
        else:
            curves[name].append((xv, yv))
    return curves, skipped


def plot_rate_distortion(points: Sequence[Mapping[str, Any]], x: str, y: str, path: str | Path,
                         title: str | None = None, logx: bool = False) -> Path:
    """Writes a PNG of ``y`` against ``x`` for every ``name`` in ``points`` and returns its path.

    ``points``: dicts with a ``name`` (the label of a tokenizer or baseline),
    and ``x`` and ``y`` keys (e.g. ``bits_per_pixel`` and ``psnr``). Points of
    one name are joined by a line in order of ``x``; a name with a single point
    is a marker. Non-numeric or missing values are skipped and counted in the
    legend ("2 not computed"). ``logx`` puts the rate on a log scale. The axis
    label notes whether lower or higher ``y`` is better. The PNG is written
    atomically with matplotlib's Agg backend (no display needed).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves, skipped = curves_of(points, x, y, "plot_rate_distortion")

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, pts in curves.items():
        note = f" ({skipped[name]} not computed)" if name in skipped else ""
        if pts:
            pts.sort()
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o", ms=4, lw=1.4, label=name + note)
        else:
            ax.plot([], [], ls="none", marker="x", color="grey", label=f"{name}{note or ' (no data)'}")
    better = "lower is better" if any(k in y.lower() for k in _LOWER_IS_BETTER) else "higher is better"
    ax.set(xlabel=x, ylabel=f"{y} ({better})", title=title or f"{y} vs {x}")
    if logx:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
