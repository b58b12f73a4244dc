"""Reconstruction and codebook metrics shared by the image, video and audio tasks.

PSNR and SSIM come from ``torchmetrics``; codebook usage and perplexity are
accumulated over a whole validation set with :class:`CodeStats`.
"""

from __future__ import annotations

import torch

from models.quantizer import code_histogram, usage_and_perplexity

__all__ = ["CodeStats", "psnr", "ssim"]


def _as_images(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W]`` or video ``[B, C, T, H, W]`` -> ``[N, C, H, W]``."""
    return x.transpose(1, 2).flatten(0, 1) if x.ndim == 5 else x


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean PSNR in dB over images (or video frames) of two tensors in [0, 1]."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    p, t = _as_images(pred).float(), _as_images(target).float()
    return float(peak_signal_noise_ratio(p, t, data_range=1.0, reduction="none", dim=(1, 2, 3)).mean())


def ssim(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean SSIM over images (or video frames) of two tensors in [0, 1]."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    return float(structural_similarity_index_measure(_as_images(pred).float(), _as_images(target).float(),
                                                     data_range=1.0))


class CodeStats:
    """Accumulates a code histogram; ``usage`` is the fraction of codes seen, ``perplexity`` exp(entropy)."""

    def __init__(self, codebook_size: int) -> None:
        self.hist = torch.zeros(codebook_size, dtype=torch.long)

    def update(self, codes: torch.Tensor) -> None:
        self.hist += code_histogram(codes, len(self.hist)).cpu()

    def result(self) -> dict[str, float]:
        usage, perplexity = usage_and_perplexity(self.hist)
        return {"usage": usage, "perplexity": perplexity}
