"""Plots for checking tokenizers by eye and by number (matplotlib; used by ``notebooks/reconstruction.ipynb``).

Every function returns a ``matplotlib.figure.Figure`` (shown inline in Jupyter,
``fig.savefig(path)`` from a script) and leaves the global pyplot state alone.

* :func:`show_reconstructions`: originals over reconstructions with PSNR/SSIM per sample;
* :func:`show_mels`: log-mel spectrograms of inputs beside their reconstructions;
* :func:`plot_codebook_usage`: how often each code is used, sorted, with usage and perplexity;
* :func:`plot_token_stream`: a packed sequence as a grid of cells coloured by modality.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from models.quantizer import check_range

from ..registry import VocabRegistry
from ..stream import TokenSequence
from .metrics import CodeStats, psnr, ssim

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["image_scores", "plot_codebook_usage", "plot_token_stream", "show_mels", "show_reconstructions"]


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


def show_reconstructions(originals: Sequence[torch.Tensor], reconstructions: Sequence[torch.Tensor],
                         titles: Sequence[str] | None = None) -> Figure:
    """Originals (top row) over reconstructions (bottom row), PSNR/SSIM above each reconstruction.

    Args:
        originals / reconstructions: images ``float[3, H, W]`` in [0, 1] (video frames likewise), pairwise
            of equal shape.
        titles: one caption per column (file names, frame numbers).
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
        for ax in axes[:, j]:
            ax.set_axis_off()
    return fig


def show_mels(originals: Sequence[torch.Tensor], reconstructions: Sequence[torch.Tensor],
              titles: Sequence[str] | None = None) -> Figure:
    """Log-mel spectrograms ``float[n_mels, F]`` (dB) of inputs (left) beside their reconstructions (right),
    one row per clip, with the mean absolute difference in dB."""
    if len(originals) != len(reconstructions) or not originals:
        raise ValueError(f"need as many reconstructions as originals (got {len(originals)} and "
                         f"{len(reconstructions)}), at least one")
    fig, axes = _figure(len(originals), 2, (4.5, 2.0))
    for i, (a, b) in enumerate(zip(originals, reconstructions, strict=True)):
        if a.ndim != 2 or b.ndim != 2:
            raise ValueError(f"clip {i}: mels must be float[n_mels, F], got {tuple(a.shape)} and {tuple(b.shape)}")
        n = min(a.shape[-1], b.shape[-1])
        a, b = a[:, :n].detach().float().cpu(), b[:, :n].detach().float().cpu()
        lo, hi = float(a.min()), float(a.max())
        for ax, m, label in ((axes[i, 0], a, "input"), (axes[i, 1], b, "reconstruction")):
            ax.imshow(m.numpy(), origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma")
            ax.set_title(f"{titles[i] if titles else f'clip {i}'}: {label}", fontsize=8)
            ax.set_xticks([])
        axes[i, 1].set_title(axes[i, 1].get_title() + f" (L1 {float((a - b).abs().mean()):.2f} dB)", fontsize=8)
    return fig


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
