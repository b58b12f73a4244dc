"""The demo's report: loss curves as a PNG, a metrics table as Markdown, the last reconstruction samples."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..data.fileio import atomic_write_text
from ..data.runlog import MetricsLog

__all__ = ["copy_latest_samples", "metrics_table", "plot_losses"]


def training_rows(run_dir: Path) -> list[dict[str, Any]]:
    """Rows of ``run_dir/metrics.jsonl`` logged during training (a ``step`` and a ``loss``)."""
    return [r for r in MetricsLog(run_dir).read() if "step" in r and "loss" in r]


def plot_losses(panels: Mapping[str, tuple[Path, Sequence[str]]], path: Path) -> Path:
    """One panel per title: the keys (``loss``, ``loss_text``...) of a run's training rows against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (title, (run_dir, keys)) in zip(axes[0], panels.items(), strict=True):
        rows = training_rows(run_dir)
        for key in keys:
            pts = [(r["step"], r[key]) for r in rows if key in r]
            if pts:
                ax.plot(*zip(*pts, strict=True), label=key, lw=1.2, marker="." if len(pts) < 10 else None)
        ax.set(title=title, xlabel="step", ylabel="loss")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def copy_latest_samples(run_dir: Path, dest: Path, name: str) -> list[Path]:
    """Copies the last validation grid ``run_dir/samples/step_N.png`` to ``dest/<name>.png`` and the WAVs of
    ``run_dir/samples/step_N/`` (audio runs) to ``dest/<name>/``; returns what it wrote."""
    grids = sorted((run_dir / "samples").glob("step_*.png"))
    if not grids:
        return []
    dest.mkdir(parents=True, exist_ok=True)
    written = [Path(shutil.copyfile(grids[-1], dest / f"{name}.png"))]
    wavs = grids[-1].with_suffix("")
    if wavs.is_dir():
        shutil.copytree(wavs, dest / name, dirs_exist_ok=True)
        written.append(dest / name)
    return written


def metrics_table(metrics: Mapping[str, Any], path: Path) -> Path:
    """Writes ``metrics`` as a two-column Markdown table."""
    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| metric | value |", "|---|---|", *(f"| {k} | {fmt(v)} |" for k, v in metrics.items())]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
