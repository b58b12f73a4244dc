"""``auraloss``' multi-resolution STFT loss without the phase spectra it computes and, at its default phase
weight of 0, never uses: the same values in less time (``torch.angle`` was about a tenth of a vocoder training
step on 2 CPU cores). The vocoder's training loss and :func:`modalities.eval.audio_metrics.stft_distance` use it.
"""

from __future__ import annotations

from typing import Any

import auraloss
import torch

__all__ = ["MagnitudeSTFTLoss", "multi_resolution_stft_loss"]


class MagnitudeSTFTLoss(auraloss.freq.STFTLoss):
    """:class:`auraloss.freq.STFTLoss` whose ``stft`` returns no phase when the phase weight is 0."""

    def stft(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Magnitude ``[B, fft_size // 2 + 1, frames]`` of ``x[B, T]`` (clamped as auraloss does), and ``None``."""
        if self.w_phs:
            return super().stft(x)
        s = torch.stft(x, self.fft_size, self.hop_size, self.win_length, self.window, return_complex=True)
        return torch.sqrt(torch.clamp(s.real**2 + s.imag**2, min=self.eps)), None


def multi_resolution_stft_loss(**kwargs: Any) -> auraloss.freq.MultiResolutionSTFTLoss:
    """``auraloss.freq.MultiResolutionSTFTLoss(**kwargs)`` with each resolution a :class:`MagnitudeSTFTLoss`
    (the same settings and values; inputs ``[B, 1, T]``)."""
    loss = auraloss.freq.MultiResolutionSTFTLoss(**kwargs)
    for part in loss.stft_losses:
        part.__class__ = MagnitudeSTFTLoss  # the same module and attributes; only its stft() changes
    return loss
