"""PatchGAN discriminator (pix2pix / taming-transformers layout) and hinge losses.

The discriminator scores overlapping patches of an image ``[B, C, H, W]`` or,
frame by frame, of a video ``[B, C, T, H, W]``; the autoencoder trainer turns it
on after a configurable step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DiscriminatorConfig", "PatchDiscriminator", "hinge_d_loss", "hinge_g_loss"]


@dataclass
class DiscriminatorConfig:
    """Attributes:
    channels: width of the first layer (doubled per layer, capped at 8x).
    layers: stride-2 layers; the receptive field grows with each (3 layers: 70x70 patches).
    """

    channels: int = 64
    layers: int = 3


class PatchDiscriminator(nn.Module):
    """``x[B, C, H, W]`` (or ``[B, C, T, H, W]``) -> patch logits ``[B(*T), 1, h, w]``."""

    def __init__(self, in_channels: int = 3, cfg: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or DiscriminatorConfig()
        c = cfg.channels
        layers: list[nn.Module] = [nn.Conv2d(in_channels, c, 4, 2, 1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, cfg.layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < cfg.layers else 1
            layers += [nn.Conv2d(c * prev, c * mult, 4, stride, 1, bias=False),
                       nn.GroupNorm(min(32, c * mult // 4), c * mult), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(c * mult, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 5:  # video: score every frame
            x = x.transpose(1, 2).flatten(0, 1)
        return self.net(x)


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """``mean(relu(1 - D(x))) + mean(relu(1 + D(G(z))))``, halved."""
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


def hinge_g_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Generator side of the hinge loss: ``-mean(D(G(z)))``."""
    return -logits_fake.mean()
