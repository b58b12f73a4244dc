"""Log-mel spectrogram front end and its Griffin-Lim inverse (torchaudio).

:class:`LogMel` maps a waveform to a log-mel image in [0, 1] (decibels between
``min_db`` and ``max_db``, clamped), the range the VQ autoencoders train on;
:meth:`LogMel.invert` goes back to a waveform with torchaudio's inverse mel
scale and Griffin-Lim. Framing: ``F`` frames cover ``F * hop_length`` samples
(the STFT is centred; the last, half-filled frame is dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

__all__ = ["LogMel", "MelConfig"]


@dataclass
class MelConfig:
    """Spectrogram settings.

    Attributes:
        sample_rate: Hz.
        n_fft: FFT size (also the window length).
        hop_length: samples between frames.
        n_mels: mel bands.
        f_min: lowest band edge in Hz.
        f_max: highest band edge in Hz (``None`` = Nyquist).
        min_db: decibels mapped to 0 (quieter is clamped).
        max_db: decibels mapped to 1 (louder is clamped).
        griffin_lim_iters: Griffin-Lim iterations of :meth:`LogMel.invert`.
    """

    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 160
    n_mels: int = 64
    f_min: float = 0.0
    f_max: Optional[float] = None  # noqa: UP045 (OmegaConf needs typing.Optional)
    min_db: float = -80.0
    max_db: float = 40.0
    griffin_lim_iters: int = 32


class LogMel(nn.Module):
    """``forward(wave[B, T]) -> float[B, 1, n_mels, T // hop]`` in [0, 1]; ``invert`` goes back."""

    def __init__(self, cfg: MelConfig) -> None:
        super().__init__()
        import torchaudio.transforms as AT

        if cfg.max_db <= cfg.min_db:
            raise ValueError(f"mel max_db ({cfg.max_db}) must be above min_db ({cfg.min_db})")
        if cfg.hop_length < 1 or cfg.hop_length > cfg.n_fft:
            raise ValueError(f"mel hop_length must be in [1, n_fft={cfg.n_fft}], got {cfg.hop_length}")
        self.cfg = cfg
        self.mel = AT.MelSpectrogram(cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, n_mels=cfg.n_mels,
                                     f_min=cfg.f_min, f_max=cfg.f_max, power=2.0)
        self.inverse_mel = AT.InverseMelScale(cfg.n_fft // 2 + 1, cfg.n_mels, cfg.sample_rate, cfg.f_min, cfg.f_max)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)

    @property
    def db_range(self) -> float:
        return self.cfg.max_db - self.cfg.min_db

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel ``float[B, 1, n_mels, T // hop]`` of ``wave[B, T]`` (``T`` a multiple of the hop)."""
        if wave.ndim != 2:
            raise ValueError(f"LogMel expects a waveform batch [B, T], got shape {tuple(wave.shape)}")
        power = self.mel(wave.float())[..., : wave.shape[-1] // self.cfg.hop_length]
        db = 10 * torch.log10(power.clamp_min(1e-10))
        return ((db - self.cfg.min_db) / self.db_range).clamp(0, 1)[:, None]

    def to_db(self, mel: torch.Tensor) -> torch.Tensor:
        """Decibels of a normalised log-mel."""
        return mel * self.db_range + self.cfg.min_db

    @torch.no_grad()
    def invert(self, mel: torch.Tensor) -> torch.Tensor:
        """Waveform ``float[B, F * hop]`` of a normalised log-mel ``[B, 1, n_mels, F]`` (Griffin-Lim, approximate)."""
        import torchaudio.functional as AF

        if mel.ndim == 4:
            mel = mel[:, 0]
        power = 10 ** (self.to_db(mel.float().clamp(0, 1)) / 10)
        # The frame dropped by forward is restored by repeating the last one, so the output length is F * hop.
        power = torch.cat([power, power[..., -1:]], dim=-1)
        linear = self.inverse_mel(power).clamp_min(0)
        return AF.griffinlim(linear, self.window, self.cfg.n_fft, self.cfg.hop_length, self.cfg.n_fft, power=2.0,
                             n_iter=self.cfg.griffin_lim_iters, momentum=0.99, length=mel.shape[-1] * self.cfg.hop_length,
                             rand_init=True)
