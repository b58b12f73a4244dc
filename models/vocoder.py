"""A small learned vocoder, log-mel -> waveform, in the Vocos style; and its optional discriminators.

Why: Griffin-Lim re-estimates the phase of a spectrogram it has to guess from
64 mel bands, which sounds metallic and scores low on PESQ/STOI. A Vocos-style
model (Siuzdenko 2023) predicts the STFT itself, magnitude and phase, at the mel
frame rate and turns it into samples with one inverse STFT: no upsampling
layers, so it is cheap enough to run many times faster than real time on a CPU.

Layout::

    mel [B, n_mels, F]  (normalised log-mel in [0, 1], exactly :class:`models.melspec.LogMel`'s output)
      -> repeat the last frame           [B, n_mels, F + 1]
      -> Conv1d embed (kernel 7)         [B, dim, F + 1]
      -> num_blocks x ConvNeXt-1D        [B, dim, F + 1]
      -> Linear head                     [B, n_fft + 2, F + 1]   (log-magnitude, phase angle per bin)
      -> istft(n_fft, hop, centred)      wave [B, F * hop]

``F`` mel frames cover ``F * hop`` samples (the same framing as :meth:`LogMel.invert`), so a vocoded
tokenizer decode is exactly as long as a Griffin-Lim one.

:class:`VocoderDiscriminator` (multi-period on the waveform, multi-resolution on STFT magnitudes, as in
HiFi-GAN and UnivNet/Vocos) is only used by the trainer when ``trainer.disc_start >= 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .melspec import MelConfig

__all__ = ["ConvNeXtBlock", "MelVocoder", "VocoderConfig", "VocoderDiscriminator", "VocoderOutput"]


@dataclass
class VocoderConfig:
    """Shape of :class:`MelVocoder` (the mel settings come from the tokenizer's :class:`MelConfig`).

    Attributes:
        dim: channels of the ConvNeXt trunk.
        intermediate_dim: hidden width of each block's pointwise MLP.
        num_blocks: ConvNeXt-1D blocks.
        kernel_size: depthwise (and embedding) convolution width in frames.
        n_fft: FFT size of the output inverse STFT (``None``: 4 x the mel hop); its hop is the mel hop.
        max_log_magnitude: the predicted log-magnitude is clamped to this (exp(7) ~ 1100) for stability.
    """

    dim: int = 192
    intermediate_dim: int = 576
    num_blocks: int = 6
    kernel_size: int = 7
    n_fft: Optional[int] = None  # noqa: UP045 (OmegaConf needs typing.Optional)
    max_log_magnitude: float = 7.0


@dataclass
class VocoderOutput:
    """What :meth:`MelVocoder.forward` returns: ``wave[B, F * hop]`` and the predicted ``spec`` (complex
    ``[B, n_fft // 2 + 1, F + 1]``)."""

    wave: torch.Tensor
    spec: torch.Tensor
    extra: dict = field(default_factory=dict)


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block over time: depthwise conv, LayerNorm, pointwise MLP (GELU), layer scale, residual.
    ``[B, dim, F] -> [B, dim, F]``."""

    def __init__(self, dim: int, intermediate_dim: int, kernel_size: int, layer_scale: float) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1 = nn.Linear(dim, intermediate_dim)
        self.pw2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x).transpose(1, 2)
        h = self.pw2(F.gelu(self.pw1(self.norm(h))))
        return x + (self.gamma * h).transpose(1, 2)


class MelVocoder(nn.Module):
    """``forward(mel[B, n_mels, F]) -> VocoderOutput(wave[B, F * hop])`` with ``mel`` the normalised log-mel
    in [0, 1] of ``mel_cfg`` (a ``[B, 1, n_mels, F]`` input, as :class:`LogMel` returns it, is accepted too).

    Args:
        cfg: the trunk's shape.
        mel_cfg: the mel front end the input comes from (its ``hop_length`` is the output hop; its sample rate
            is the output rate).
    """

    def __init__(self, cfg: VocoderConfig, mel_cfg: MelConfig) -> None:
        super().__init__()
        n_fft = cfg.n_fft or 4 * mel_cfg.hop_length
        if n_fft < mel_cfg.hop_length or n_fft % 2:
            raise ValueError(f"vocoder n_fft={n_fft} must be even and at least the mel hop_length "
                             f"{mel_cfg.hop_length}")
        for name in ("dim", "intermediate_dim", "num_blocks", "kernel_size"):
            if getattr(cfg, name) < 1:
                raise ValueError(f"vocoder {name} must be positive, got {getattr(cfg, name)}")
        if cfg.kernel_size % 2 == 0:
            raise ValueError(f"vocoder kernel_size must be odd, got {cfg.kernel_size}")
        self.cfg, self.mel_cfg = cfg, mel_cfg
        self.n_fft, self.hop_length, self.n_mels = n_fft, mel_cfg.hop_length, mel_cfg.n_mels
        self.embed = nn.Conv1d(mel_cfg.n_mels, cfg.dim, cfg.kernel_size, padding=cfg.kernel_size // 2)
        self.norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(cfg.dim, cfg.intermediate_dim, cfg.kernel_size,
                                                  1.0 / cfg.num_blocks) for _ in range(cfg.num_blocks))
        self.final_norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.head = nn.Linear(cfg.dim, n_fft + 2)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)

    @property
    def sample_rate(self) -> int:
        return self.mel_cfg.sample_rate

    def spectrum(self, mel: torch.Tensor) -> torch.Tensor:
        """Complex STFT ``[B, n_fft // 2 + 1, F + 1]`` predicted from ``mel[B, n_mels, F]``."""
        if mel.ndim == 4 and mel.shape[1] == 1:
            mel = mel[:, 0]
        if mel.ndim != 3 or mel.shape[1] != self.n_mels or mel.shape[-1] == 0:
            raise ValueError(f"vocoder expects a mel [B, {self.n_mels}, frames] with frames >= 1, "
                             f"got shape {tuple(mel.shape)}")
        x = torch.cat([mel, mel[..., -1:]], dim=-1) * 2 - 1  # the frame LogMel drops, as LogMel.invert does
        x = self.norm(self.embed(x).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        x = self.head(self.final_norm(x.transpose(1, 2))).transpose(1, 2).float()
        log_mag, phase = x.chunk(2, dim=1)
        mag = torch.exp(log_mag.clamp(max=self.cfg.max_log_magnitude))
        return torch.polar(mag, phase)

    def forward(self, mel: torch.Tensor) -> VocoderOutput:
        spec = self.spectrum(mel)
        frames = spec.shape[-1] - 1
        wave = torch.istft(spec, self.n_fft, self.hop_length, self.n_fft, self.window, center=True,
                           length=frames * self.hop_length)
        return VocoderOutput(wave=wave, spec=spec)


# ------------------------------------------------------------------ discriminators (training only)
class _PeriodDisc(nn.Module):
    """HiFi-GAN period discriminator: the waveform folded to ``[B, 1, T / p, p]``, 2-D convs along time."""

    def __init__(self, period: int, channels: int) -> None:
        super().__init__()
        self.period = period
        chans = [1, channels, channels * 2, channels * 4, channels * 4]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, (5, 1), (3 if i < 3 else 1, 1), padding=(2, 0))
                                   for i, (a, b) in enumerate(zip(chans[:-1], chans[1:], strict=True)))
        self.out = nn.Conv2d(chans[-1], 1, (3, 1), padding=(1, 0))

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = F.pad(wave, (0, -wave.shape[-1] % self.period), mode="reflect")[:, None]
        x = x.view(x.shape[0], 1, -1, self.period)
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            feats.append(x)
        return self.out(x), feats


class _ResolutionDisc(nn.Module):
    """UnivNet-style discriminator on one STFT magnitude ``[B, 1, frames, bins]``."""

    def __init__(self, n_fft: int, channels: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.convs = nn.ModuleList([nn.Conv2d(1, channels, (7, 5), (2, 2), padding=(3, 2)),
                                    nn.Conv2d(channels, channels, (5, 3), (2, 1), padding=(2, 1)),
                                    nn.Conv2d(channels, channels, (5, 3), (2, 2), padding=(2, 1)),
                                    nn.Conv2d(channels, channels, 3, padding=1)])
        self.out = nn.Conv2d(channels, 1, 3, padding=1)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(wave.float(), self.n_fft, self.n_fft // 4, window=self.window, return_complex=True)
        x = spec.abs().clamp_min(1e-5).log()[:, None].transpose(-1, -2)
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            feats.append(x)
        return self.out(x), feats


class VocoderDiscriminator(nn.Module):
    """Multi-period (waveform) plus multi-resolution (STFT) discriminators.

    ``forward(wave[B, T]) -> (logits, features)``: one logit map and one feature list per sub-discriminator.
    """

    def __init__(self, periods: tuple[int, ...] = (2, 3, 5, 7, 11), resolutions: tuple[int, ...] = (256, 512, 1024),
                 channels: int = 16) -> None:
        super().__init__()
        self.discs = nn.ModuleList([*(_PeriodDisc(p, channels) for p in periods),
                                    *(_ResolutionDisc(n, channels) for n in resolutions)])

    def forward(self, wave: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        outs = [d(wave) for d in self.discs]
        return [o[0] for o in outs], [o[1] for o in outs]


def gan_losses(kind: str, real: list[torch.Tensor] | None, fake: list[torch.Tensor]) -> torch.Tensor:
    """Discriminator loss (``real`` given) or generator loss (``real=None``), ``kind`` ``hinge`` or ``lsgan``,
    averaged over the sub-discriminators."""
    if kind not in ("hinge", "lsgan"):
        raise ValueError(f"unknown GAN loss {kind!r}; expected 'hinge' or 'lsgan'")
    total = fake[0].new_zeros(())
    for i, f in enumerate(fake):
        if real is None:
            total = total + (-f.mean() if kind == "hinge" else ((f - 1) ** 2).mean())
        elif kind == "hinge":
            total = total + F.relu(1 - real[i]).mean() + F.relu(1 + f).mean()
        else:
            total = total + ((real[i] - 1) ** 2).mean() + (f ** 2).mean()
    return total / len(fake)


def feature_matching(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """Mean L1 between the discriminators' features of real and generated audio."""
    pairs = [(r.detach(), f) for rs, fs in zip(real, fake, strict=True) for r, f in zip(rs, fs, strict=True)]
    return sum(F.l1_loss(f, r) for r, f in pairs) / len(pairs)
