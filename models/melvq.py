"""VQ autoencoder over log-mel spectrograms, with one code (per codebook) per time step.

The 2-D ResNet encoder and decoder of :mod:`models.vqae` run over the
``(mel, time)`` image and downsample both axes by ``f``; at the bottleneck the
``n_mels / f`` frequency rows are folded into channels and projected to the
quantiser's width, so each latent time step is one code (``K`` codes with
residual VQ). Codes are ``long[B, F / f]`` (``[B, F / f, K]``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from .quantizer import Quantizer, QuantizerConfig
from .vqae import Decoder, Encoder, VQAEConfig, VQModel, check_groups

__all__ = ["MelVQAutoencoder", "MelVQConfig"]


@dataclass
class MelVQConfig(VQAEConfig):
    """Shape of the spectrogram autoencoder (``in_channels`` is 1).

    Attributes:
        band_channels: channels per frequency row of the 2-D latent before folding.
        z_dim: width of the quantised vector of one time step.
    """

    in_channels: int = 1
    band_channels: int = 8


class FoldBands(nn.Module):
    """``[B, C, M, T] -> [B, C * M, T]`` (frequency rows into channels)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1, 2)


class UnfoldBands(nn.Module):
    """``[B, C * M, T] -> [B, C, M, T]``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(1, (self.channels, -1))


class MelVQAutoencoder(VQModel):
    """Normalised log-mel ``x[B, 1, n_mels, F]`` (``n_mels`` and ``F`` divisible by ``f``) -> codes ``[B, F / f]``."""

    def __init__(self, cfg: MelVQConfig, quantizer: QuantizerConfig, n_mels: int) -> None:
        super().__init__()
        check_groups(cfg.channels, cfg.groups)
        if cfg.in_channels != 1:
            raise ValueError(f"a spectrogram autoencoder has in_channels=1, got {cfg.in_channels}")
        self.cfg, self.n_mels = cfg, n_mels
        f = self.downsample
        if n_mels % f:
            raise ValueError(f"n_mels={n_mels} must be divisible by the downsample factor {f}")
        folded = cfg.band_channels * (n_mels // f)
        body = replace(cfg, z_dim=cfg.band_channels)
        self.encoder = nn.Sequential(Encoder(body), FoldBands(), nn.Conv1d(folded, cfg.z_dim, 1))
        self.quantizer = Quantizer(cfg.z_dim, quantizer)
        self.decoder = nn.Sequential(nn.Conv1d(cfg.z_dim, folded, 1), UnfoldBands(cfg.band_channels), Decoder(body))

    def _check(self, x: torch.Tensor) -> None:
        f = self.downsample
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != self.n_mels:
            raise ValueError(f"expected a log-mel batch [B, 1, {self.n_mels}, F], got {tuple(x.shape)}")
        if x.shape[-1] % f or x.shape[-1] == 0:
            raise ValueError(f"mel frames must be a positive multiple of the downsample factor {f}, got {x.shape[-1]}")
