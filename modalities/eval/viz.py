"""Plots for checking tokenizers by eye and by number (matplotlib; used by ``notebooks/reconstruction.ipynb``).

Every function returns a ``matplotlib.figure.Figure`` (shown inline in Jupyter,
``fig.savefig(path)`` from a script) and leaves the global pyplot state alone.

* :func:`show_reconstructions`: originals over reconstructions, rows labelled, PSNR/SSIM per image;
* :func:`show_mels`: log-mel spectrograms, "original" beside "reconstruction", time in seconds, frequency
  in Hz on a mel-scaled axis, a colour bar in dB;
* :func:`plot_rd`: rate-distortion curves with axis labels and units (:func:`axis_label`);
* :func:`plot_codebook_usage`: how often each code is used, sorted, with usage and perplexity;
* :func:`plot_token_stream`: a packed sequence as a grid of cells coloured by modality;
* :func:`save_figure`: a figure to a PNG, atomically (what the HTML report of :mod:`modalities.eval.report`
  inlines).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from models.quantizer import check_range

from ..registry import VocabRegistry
from ..stream import TokenSequence
from .metrics import CodeStats, psnr, ssim

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["axis_label", "image_scores", "mel_axes", "mel_band_ticks", "plot_codebook_usage", "plot_rd",
           "plot_token_stream", "save_figure", "show_mels", "show_reconstructions"]


def _figure(rows: int, cols: int, size: tuple[float, float]) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * cols, size[1] * rows), layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def _hwc(x: torch.Tensor, what: str) -> torch.Tensor:
    if x.ndim != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"{what}: expected an image float[3, H, W] (or [1, H, W]), got shape {tuple(x.shape)}")
    return x.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def image_scores(original: torch.Tensor, reconstruction: torch.Tensor) -> dict[str, float]:
    """PSNR (dB) and SSIM of one image (or video) ``[3, H, W]`` / ``[T, 3, H, W]`` in [0, 1]."""
    if original.shape != reconstruction.shape:
        raise ValueError(f"original {tuple(original.shape)} and reconstruction {tuple(reconstruction.shape)} differ "
                         "in shape")
    a = original[None] if original.ndim == 3 else original
    b = reconstruction[None] if reconstruction.ndim == 3 else reconstruction
    return {"psnr": psnr(b.cpu(), a.cpu()), "ssim": ssim(b.cpu(), a.cpu())}


def _label_only(ax: Any, ylabel: str | None = None) -> None:
    """An image panel without ticks or frame that keeps its y label (``set_axis_off`` would hide it)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if ylabel is not None:
        ax.set_ylabel(ylabel, fontsize=9)


def show_reconstructions(originals: Sequence[torch.Tensor], reconstructions: Sequence[torch.Tensor],
                         titles: Sequence[str] | None = None, row_labels: tuple[str, str] = ("original",
                                                                                               "reconstruction"),
                         ) -> Figure:
    """Originals (top row) over reconstructions (bottom row), PSNR/SSIM above each reconstruction.

    Args:
        originals / reconstructions: images ``float[3, H, W]`` in [0, 1] (video frames likewise), pairwise
            of equal shape.
        titles: one caption per column (file names, frame numbers).
        row_labels: the labels written left of the two rows.
    """
    if len(originals) != len(reconstructions) or not originals:
        raise ValueError(f"need as many reconstructions as originals (got {len(originals)} and "
                         f"{len(reconstructions)}), at least one")
    fig, axes = _figure(2, len(originals), (2.6, 2.8))
    for j, (a, b) in enumerate(zip(originals, reconstructions, strict=True)):
        axes[0, j].imshow(_hwc(a, f"original {j}"))
        axes[1, j].imshow(_hwc(b, f"reconstruction {j}"))
        s = image_scores(a, b)
        axes[0, j].set_title(titles[j] if titles else f"original {j}", fontsize=8)
        axes[1, j].set_title(f"{s['psnr']:.2f} dB, SSIM {s['ssim']:.3f}", fontsize=8)
        for i, ax in enumerate(axes[:, j]):
            _label_only(ax, row_labels[i] if j == 0 else None)
    return fig


# ------------------------------------------------------------------ spectrograms
def hz_to_mel(f: float | torch.Tensor) -> float | torch.Tensor:
    """The HTK mel scale of torchaudio's ``MelSpectrogram`` (the default ``mel_scale="htk"``)."""
    if isinstance(f, torch.Tensor):
        return 2595.0 * torch.log10(1.0 + f / 700.0)
    return 2595.0 * math.log10(1.0 + f / 700.0)


def mel_band_ticks(n_mels: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None
                   ) -> tuple[list[float], list[str]]:
    """Positions (in mel bands, ``0 .. n_mels``) and labels (Hz) of round frequencies on a mel-scaled axis.

    Band ``i``'s centre lies at ``mel(f_min) + (i + 1) * (mel(f_max) - mel(f_min)) / (n_mels + 1)``, as
    torchaudio lays out its triangular filters; the ticks are placed on the same scale."""
    f_max = sample_rate / 2 if f_max is None else f_max
    lo, hi = hz_to_mel(f_min), hz_to_mel(f_max)
    step = (hi - lo) / (n_mels + 1)
    positions, labels = [], []
    for f in (0, 125, 250, 500, 1000, 2000, 4000, 8000, 16000):
        if f_min <= f <= f_max:
            positions.append((hz_to_mel(float(f)) - lo) / step - 1)  # -1: band 0 is the first filter's centre
            labels.append(f"{f / 1000:g}k" if f >= 1000 else str(f))
    return positions, labels


def mel_axes(ax: Any, n_mels: int, frames: int, sample_rate: int | None = None, hop_length: int | None = None,
             f_min: float = 0.0, f_max: float | None = None) -> tuple[float, float, float, float]:
    """Labels ``ax`` for a mel spectrogram image of ``n_mels`` bands and ``frames`` frames and returns the
    ``extent`` to draw it with: time in seconds and frequency in Hz (ticks on the mel-scaled axis) when the
    ``sample_rate`` and ``hop_length`` are known, else frames and mel bands."""
    if sample_rate is None or hop_length is None:
        ax.set(xlabel="frame", ylabel="mel band")
        return (-0.5, frames - 0.5, -0.5, n_mels - 0.5)
    seconds = frames * hop_length / sample_rate
    positions, labels = mel_band_ticks(n_mels, sample_rate, f_min, f_max)
    ax.set_yticks(positions, labels)
    ax.set(xlabel="time (s)", ylabel="frequency (Hz, mel scale)")
    return (0.0, seconds, -0.5, n_mels - 0.5)


def show_mels(originals: Sequence[torch.Tensor], reconstructions: Sequence[torch.Tensor],
              titles: Sequence[str] | None = None, sample_rate: int | None = None, hop_length: int | None = None,
              f_min: float = 0.0, f_max: float | None = None) -> Figure:
    """Log-mel spectrograms ``float[n_mels, F]`` (dB) of inputs (left, titled "original") beside their
    reconstructions (right, "reconstruction", with the mean absolute difference in dB), one row per clip.

    With ``sample_rate`` and ``hop_length`` (and the mel filter bank's ``f_min``/``f_max``) the time axis is in
    seconds and the frequency axis in Hz on the mel scale; without them in frames and mel bands. Both panels of
    a row share one colour scale, shown by a colour bar in dB."""
    if len(originals) != len(reconstructions) or not originals:
        raise ValueError(f"need as many reconstructions as originals (got {len(originals)} and "
                         f"{len(reconstructions)}), at least one")
    fig, axes = _figure(len(originals), 2, (4.5, 2.4))
    for i, (a, b) in enumerate(zip(originals, reconstructions, strict=True)):
        if a.ndim != 2 or b.ndim != 2:
            raise ValueError(f"clip {i}: mels must be float[n_mels, F], got {tuple(a.shape)} and {tuple(b.shape)}")
        n = min(a.shape[-1], b.shape[-1])
        a, b = a[:, :n].detach().float().cpu(), b[:, :n].detach().float().cpu()
        lo, hi = float(a.min()), float(a.max())
        name = f" \N{EM DASH} {titles[i]}" if titles else (f" \N{EM DASH} clip {i}" if len(originals) > 1 else "")
        for ax, m, label in ((axes[i, 0], a, "original"), (axes[i, 1], b, "reconstruction")):
            extent = mel_axes(ax, m.shape[0], n, sample_rate, hop_length, f_min, f_max)
            im = ax.imshow(m.numpy(), origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma", extent=extent,
                           interpolation="nearest")
            ax.set_title(f"{label}{name}", fontsize=8)
            ax.tick_params(labelsize=7)
        axes[i, 1].set_title(axes[i, 1].get_title() + f" (L1 {float((a - b).abs().mean()):.2f} dB)", fontsize=8)
        axes[i, 1].set_ylabel("")
        fig.colorbar(im, ax=axes[i, :].tolist(), label="level (dB)", pad=0.01)
    return fig


# ----------------------------------------------------------- rate and distortion
UNITS = {"bits_per_pixel": "rate (bits per pixel)", "bits_per_second": "rate (bits per second)",
         "psnr": "PSNR (dB)", "ssim": "SSIM (0 to 1)", "lpips": "LPIPS", "rfid": "rFID", "pesq": "PESQ (MOS, 1 to 4.5)",
         "stoi": "STOI (0 to 1)", "si_sdr": "SI-SDR (dB)", "mel_distance": "mel distance (dB)",
         "stft_distance": "multi-resolution STFT distance", "temporal_error": "temporal error",
         "ciede2000": "mean CIEDE2000 (lower is better)", "colour_shift": "mean-colour shift (RGB distance, 0 to 1.73)"}


def axis_label(key: str) -> str:
    """A metric or rate key as an axis label with its unit (``psnr`` -> ``PSNR (dB)``); unknown keys as they are."""
    return UNITS.get(key, key.replace("_", " "))


def plot_rd(points: Sequence[Mapping[str, Any]], x: str, y: str, title: str | None = None, logx: bool = False
            ) -> Figure:
    """Quality ``y`` against rate ``x``: one line per ``name`` of ``points`` (the rows an evaluation writes,
    as :func:`modalities.eval.rd.plot_rate_distortion` takes them), axes labelled with units and which way is
    better; rows whose ``x`` or ``y`` is not a finite number are counted in the legend ("1 not computed")."""
    from .rd import _LOWER_IS_BETTER, curves_of

    curves, skipped = curves_of(points, x, y, "plot_rd")
    fig, axes = _figure(1, 1, (6.4, 4.4))
    ax = axes[0, 0]
    for name, pts in curves.items():
        note = f" ({skipped[name]} not computed)" if name in skipped else ""
        if pts:
            xs, ys = zip(*sorted(pts), strict=True)
            ax.plot(xs, ys, marker="o", ms=4, lw=1.4, label=name + note)
        else:
            ax.plot([], [], ls="none", marker="x", color="grey", label=f"{name}{note or ' (no data)'}")
    better = "lower is better" if any(k in y.lower() for k in _LOWER_IS_BETTER) else "higher is better"
    ax.set(xlabel=axis_label(x), ylabel=f"{axis_label(y)}, {better}", title=title or f"{y} vs {x}")
    if logx:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Writes ``fig`` as a PNG at ``path``, atomically (temporary name, then rename); returns the path."""
    from ..data.fileio import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path


def plot_codebook_usage(codes: torch.Tensor, codebook_size: int, title: str = "codebook usage") -> Figure:
    """Counts of each code in ``codes`` (any shape, values in ``[0, codebook_size)``), sorted, with the usage
    (fraction of codes seen) and perplexity in the title."""
    codes = torch.as_tensor(codes).flatten().cpu()
    check_range(codes, codebook_size, f"{title}: code")
    stats = CodeStats(codebook_size)
    stats.update(codes)
    counts = stats.hist.sort(descending=True).values
    r = stats.result()
    fig, axes = _figure(1, 1, (6.0, 2.6))
    ax = axes[0, 0]
    ax.bar(range(codebook_size), counts.numpy(), width=1.0)
    ax.set(xlabel="code (sorted by count)", ylabel="count",
           title=f"{title}: {r['usage']:.1%} of {codebook_size} codes used, perplexity {r['perplexity']:.1f}")
    return fig


def plot_token_stream(ids: TokenSequence | torch.Tensor | Sequence[int], registry: VocabRegistry, width: int = 64,
                      title: str = "token stream") -> Figure:
    """A packed sequence drawn ``width`` tokens per row, each cell coloured by modality, with a legend and counts.

    A :class:`~modalities.stream.TokenSequence` is coloured by the segment each position belongs to (an image's
    begin, header and row tokens count as image); bare ids by the range each id falls in (structure tokens
    count as special)."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    if isinstance(ids, TokenSequence):
        mod = ids.modality.flatten().cpu()
        ids = ids.ids.flatten().cpu()
    else:
        ids = torch.as_tensor(ids).flatten().cpu()
        mod = registry.modality_of(ids)  # 0: specials, i: the i-th modality (raises on out-of-range ids)
    n = len(ids)
    rows = -(-n // width)
    grid = torch.full((rows * width,), -1.0)
    grid[:n] = mod.float()
    names = ["special", *(m.name for m in registry.modalities)]
    colors = ["#444444", "#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3"]
    cmap = ListedColormap(["#ffffff", *colors[: len(names)]])
    fig, axes = _figure(1, 1, (7.0, 0.25 * rows + 1.2))
    ax = axes[0, 0]
    ax.imshow((grid + 1).view(rows, width).numpy(), cmap=cmap, vmin=-0.5, vmax=len(names) + 0.5,
              interpolation="nearest", aspect="auto")  # value k (0: padding) -> colour k
    ax.set(title=f"{title}: {n} tokens", xticks=[], yticks=[])
    present = sorted(set(mod.tolist()))
    ax.legend(handles=[Patch(color=colors[i], label=f"{names[i]} ({int((mod == i).sum())})") for i in present],
              loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=len(present), fontsize=8, frameon=False)
    return fig
