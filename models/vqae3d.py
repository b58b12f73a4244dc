"""3-D causal VQ autoencoder for video: an image is a one-frame video.

Every convolution is causal in time (the past is padded by repeating the first
frame) and every normalisation works frame by frame, so latent frame ``i``
depends only on input frames ``<= i * temporal_downsample``. The first frame is
coded alone: ``T = 1 + k * temporal_downsample`` input frames give ``t = 1 + k``
latent frames, and a single frame gives one latent frame exactly as it would
inside a longer clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .quantizer import Quantizer, QuantizerConfig
from .vqae import AttnBlock, ResBlock, VQModel, check_groups

__all__ = ["CausalConv3d", "CausalVQAutoencoder", "VQAE3DConfig"]


@dataclass
class VQAE3DConfig:
    """Shape of the causal video autoencoder.

    Attributes:
        in_channels: input channels (3 for RGB).
        channels: widths per resolution level; ``len(channels) - 1`` spatial stride-2 downsamples.
        num_res_blocks: ResNet blocks per level.
        z_dim: channels of the latent that is quantised.
        attention: per-frame self-attention at the lowest resolution.
        groups: GroupNorm groups (must divide every width).
        temporal_downsample: 1, 2 or 4; the first ``log2`` downsamples also halve time.
    """

    in_channels: int = 3
    channels: list[int] = field(default_factory=lambda: [64, 128, 128, 256])
    num_res_blocks: int = 1
    z_dim: int = 64
    attention: bool = False
    groups: int = 16
    temporal_downsample: int = 4


class CausalConv3d(nn.Module):
    """``k x k x k`` convolution, causal in time, optionally strided in time and/or space.

    ``[B, C, T, H, W] -> [B, C', (T - 1) // st + 1, H / ss, W / ss]``.
    """

    def __init__(self, cin: int, cout: int, k: int = 3, time_stride: int = 1, space_stride: int = 1) -> None:
        super().__init__()
        self.k, self.space_stride = k, space_stride
        self.conv = nn.Conv3d(cin, cout, k, stride=(time_stride, space_stride, space_stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.k > 1:
            x = torch.cat([x[:, :, :1].expand(-1, -1, self.k - 1, -1, -1), x], dim=2)
            p = self.k // 2
            x = F.pad(x, (p, p, p, p) if self.space_stride == 1 else (0, p, 0, p))
        return self.conv(x)


class PerFrame(nn.Module):
    """Applies a 2-D module to every frame of ``[B, C, T, H, W]``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = self.module(x.transpose(1, 2).reshape(b * t, c, h, w))
        return y.reshape(b, t, *y.shape[1:]).transpose(1, 2)


class ResBlock3d(ResBlock):
    """:class:`models.vqae.ResBlock` with per-frame GroupNorm and causal 3-D convolutions."""

    def __init__(self, cin: int, cout: int, groups: int) -> None:
        super().__init__(cin, cout, groups, norm=lambda g, c: PerFrame(nn.GroupNorm(g, c)), conv=CausalConv3d,
                         skip=lambda cin, cout: nn.Conv3d(cin, cout, 1))


class Upsample3d(nn.Module):
    """Nearest x2 in space and, if ``time``, ``t -> 2t - 1`` frames (the first frame stays alone)."""

    def __init__(self, c: int, time: bool) -> None:
        super().__init__()
        self.time = time
        self.conv = CausalConv3d(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.time:
            x = x.repeat_interleave(2, dim=2)[:, :, 1:]
        return self.conv(x.repeat_interleave(2, dim=3).repeat_interleave(2, dim=4))


def _mid(c: int, cfg: VQAE3DConfig) -> list[nn.Module]:
    attn = [PerFrame(AttnBlock(c, cfg.groups))] if cfg.attention else []
    return [ResBlock3d(c, c, cfg.groups), *attn, ResBlock3d(c, c, cfg.groups)]


def _time_levels(cfg: VQAE3DConfig) -> int:
    n = int(math.log2(cfg.temporal_downsample)) if cfg.temporal_downsample >= 1 else -1
    if cfg.temporal_downsample not in (1, 2, 4, 8) or n > len(cfg.channels) - 1:
        raise ValueError(f"temporal_downsample must be 1, 2 or 4 (at most 2 ** {len(cfg.channels) - 1}), "
                         f"got {cfg.temporal_downsample}")
    return n


class Encoder3d(nn.Module):
    def __init__(self, cfg: VQAE3DConfig) -> None:
        super().__init__()
        ch, n_time = cfg.channels, _time_levels(cfg)
        layers: list[nn.Module] = [CausalConv3d(cfg.in_channels, ch[0])]
        for i, c in enumerate(ch):
            for j in range(cfg.num_res_blocks):
                layers.append(ResBlock3d(ch[max(0, i - 1)] if j == 0 else c, c, cfg.groups))
            if i < len(ch) - 1:
                layers.append(CausalConv3d(c, c, time_stride=2 if i < n_time else 1, space_stride=2))
        layers += [*_mid(ch[-1], cfg), PerFrame(nn.GroupNorm(cfg.groups, ch[-1])), nn.SiLU(),
                   nn.Conv3d(ch[-1], cfg.z_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder3d(nn.Module):
    def __init__(self, cfg: VQAE3DConfig) -> None:
        super().__init__()
        ch, n_time = list(reversed(cfg.channels)), _time_levels(cfg)
        n_up = len(ch) - 1
        layers: list[nn.Module] = [CausalConv3d(cfg.z_dim, ch[0]), *_mid(ch[0], cfg)]
        for i, c in enumerate(ch):
            for j in range(cfg.num_res_blocks):
                layers.append(ResBlock3d(ch[max(0, i - 1)] if j == 0 else c, c, cfg.groups))
            if i < n_up:
                layers.append(Upsample3d(c, time=i >= n_up - n_time))  # mirror: time comes back last
        layers += [PerFrame(nn.GroupNorm(cfg.groups, ch[-1])), nn.SiLU(), CausalConv3d(ch[-1], cfg.in_channels)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class CausalVQAutoencoder(VQModel):
    """Causal video VQ autoencoder.

    ``x[B, C, T, H, W]`` with ``T = 1 + k * temporal_downsample`` and H, W
    divisible by :attr:`downsample` gives codes ``[B, 1 + k, H/f, W/f]``
    (``[..., K]`` for residual VQ).
    """

    def __init__(self, cfg: VQAE3DConfig, quantizer: QuantizerConfig) -> None:
        super().__init__()
        check_groups(cfg.channels, cfg.groups)
        self.cfg = cfg
        self.encoder = Encoder3d(cfg)
        self.quantizer = Quantizer(cfg.z_dim, quantizer)
        self.decoder = Decoder3d(cfg)

    @property
    def temporal_downsample(self) -> int:
        return self.cfg.temporal_downsample

    def valid_frames(self, t: int) -> bool:
        """Whether ``t`` input frames is ``1 + k * temporal_downsample``."""
        return t >= 1 and (t - 1) % self.temporal_downsample == 0

    def _check(self, x: torch.Tensor) -> None:
        f, ft = self.downsample, self.temporal_downsample
        if x.ndim != 5 or x.shape[1] != self.cfg.in_channels:
            raise ValueError(f"expected input [B, {self.cfg.in_channels}, T, H, W], got {tuple(x.shape)}")
        if not self.valid_frames(x.shape[2]):
            raise ValueError(f"number of frames must be 1 + k * {ft} (first frame coded alone), got {x.shape[2]}")
        if x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(f"height and width must be divisible by the downsample factor {f}, "
                             f"got {tuple(x.shape[-2:])}")
