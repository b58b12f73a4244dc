"""2-D VQ autoencoder: convolutional ResNet encoder, a library quantiser, mirrored decoder.

Used for images (``[B, 3, H, W]``) and, with ``in_channels=1``, for spectrograms.
The downsample factor is ``2 ** (len(channels) - 1)``; ``forward`` returns a
:class:`VQAEOutput` dataclass with the reconstruction, the codes, the losses and
batch metrics. :class:`VQModel` holds what the 3-D causal variant shares.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .quantizer import Quantizer, QuantizerConfig, code_histogram, usage_and_perplexity

__all__ = ["VQAEConfig", "VQAEOutput", "VQAutoencoder", "VQModel", "reconstruction_loss"]


@dataclass
class VQAEConfig:
    """Shape of the autoencoder.

    Attributes:
        in_channels: input channels (3 for RGB, 1 for a spectrogram).
        channels: widths per resolution level; ``len(channels) - 1`` stride-2 downsamples.
        num_res_blocks: ResNet blocks per level.
        z_dim: channels of the latent that is quantised.
        attention: a self-attention block at the lowest resolution.
        groups: GroupNorm groups (must divide every width).
        norm: ``group``: GroupNorm, statistics over each group's channels *and every position of the image*
            (as VQGAN); ``pixel``: :class:`PixelNorm`, statistics over the channels of each position alone, so
            a patch decodes to the same colours whatever the rest of the image holds. With ``group`` a
            tokenizer's colours are relative to the image's own statistics: a flat green square inside a brown
            photograph can come back brown. ``none``: :class:`ChannelAffine`, no statistics at all (a per-channel
            scale and shift), so each position's magnitude, its brightness, reaches every layer; ``pixel``
            normalises it away at each position.
        mean_colour: when > 0, the last ``in_channels`` of the ``z_dim`` latent channels are not learned: they
            are each ``f x f`` patch's mean input value (its mean colour in the model's [-1, 1]) times this scale, and
            the encoder learns the other ``z_dim - in_channels``. The code lookup then separates patches by mean
            colour as pixel k-means does, so a saturated colour the photographs rarely show is not looked up as
            a familiar one (without it an f16 encoder put a saturated red 0.24 from brown, and no code decoded to
            anything redder than olive). The decoder adds its output to those means, upsampled, so it learns only
            the detail. 0: off.
    """

    in_channels: int = 3
    channels: list[int] = field(default_factory=lambda: [64, 128, 128, 256])
    num_res_blocks: int = 1
    z_dim: int = 64
    attention: bool = False
    groups: int = 16
    norm: str = "group"
    mean_colour: float = 0.0


@dataclass
class VQAEOutput:
    """Result of ``forward`` of the 2-D and 3-D autoencoders.

    Attributes:
        recon: reconstruction, same shape and range as the input.
        codes: long[B, *latent] (``[..., K]`` for residual VQ).
        losses: named scalar losses: ``recon`` (L1 or L2) and ``quant`` (commitment / entropy).
        metrics: named floats about the batch: ``perplexity`` and ``usage`` of the codes.
    """

    recon: torch.Tensor
    codes: torch.Tensor
    losses: dict[str, torch.Tensor]
    metrics: dict[str, float]

    @property
    def loss(self) -> torch.Tensor:
        """Sum of :attr:`losses`."""
        return sum(self.losses.values(), self.recon.new_zeros(()))


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Mean ``|recon - target|`` (``l1``) or squared error (``l2``)."""
    if kind == "l1":
        return F.l1_loss(recon, target)
    if kind == "l2":
        return F.mse_loss(recon, target)
    raise ValueError(f"unknown reconstruction loss {kind!r}; expected 'l1' or 'l2'")


def patch_mean_loss(recon: torch.Tensor, target: torch.Tensor, patch: int) -> torch.Tensor:
    """Mean squared error between the mean colours of each ``patch x patch`` tile of ``recon`` and ``target``
    (``[B, C, H, W]``, sides multiples of ``patch``): a token's share of the image's low frequencies, which a
    plain pixel loss weighs no more than any other detail."""
    if recon.ndim != 4 or recon.shape != target.shape:
        raise ValueError(f"patch_mean_loss needs two [B, C, H, W] images of one shape, got {tuple(recon.shape)} and "
                         f"{tuple(target.shape)}")
    return F.mse_loss(F.avg_pool2d(recon, patch), F.avg_pool2d(target, patch))


class PixelNorm(nn.Module):
    """Layer norm over the channels of each position of ``[B, C, *spatial]`` (no statistics across positions),
    with a per-channel scale and shift: the ``pixel`` norm of :class:`VQAEConfig`. Takes ``(groups, c)`` like
    ``nn.GroupNorm`` (``groups`` is unused) and has the same ``weight`` and ``bias`` parameters."""

    def __init__(self, groups: int, c: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c)), eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # F.layer_norm on channels-last: 4x faster than by hand
        return F.layer_norm(x.movedim(1, -1), (x.shape[1],), self.weight, self.bias, self.eps).movedim(-1, 1)


class ChannelAffine(nn.Module):
    """No normalisation: a per-channel scale and shift of ``[B, C, *spatial]``, the ``none`` norm of
    :class:`VQAEConfig`. Takes ``(groups, c)`` and has the ``weight`` and ``bias`` of the other norms, so
    every norm choice builds the same parameters."""

    def __init__(self, groups: int, c: int) -> None:
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.weight.view(shape) + self.bias.view(shape)


NORMS = {"group": nn.GroupNorm, "pixel": PixelNorm, "none": ChannelAffine}


def norm_layer(cfg: VQAEConfig):
    """The ``(groups, c) -> module`` factory of ``cfg.norm``; an unknown name is an error listing the choices."""
    if cfg.norm not in NORMS:
        raise ValueError(f"norm must be one of {sorted(NORMS)}, got {cfg.norm!r}")
    return NORMS[cfg.norm]


class ResBlock(nn.Module):
    """GroupNorm, SiLU, conv, twice, plus a skip (1x1 conv when the width changes).

    ``norm(groups, c)``, ``conv(cin, cout)`` (3x3) and ``skip(cin, cout)`` (1x1) build the layers, so the
    causal 3-D block of :mod:`models.vqae3d` is this one with other factories (and the same state-dict keys).
    """

    def __init__(self, cin: int, cout: int, groups: int, norm=nn.GroupNorm,
                 conv=lambda cin, cout: nn.Conv2d(cin, cout, 3, padding=1),
                 skip=lambda cin, cout: nn.Conv2d(cin, cout, 1)) -> None:
        super().__init__()
        self.body = nn.Sequential(norm(groups, cin), nn.SiLU(), conv(cin, cout),
                                  norm(groups, cout), nn.SiLU(), conv(cout, cout))
        self.skip = skip(cin, cout) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class AttnBlock(nn.Module):
    """Single-head self-attention over spatial positions (``F.scaled_dot_product_attention``)."""

    def __init__(self, c: int, groups: int, norm=nn.GroupNorm) -> None:
        super().__init__()
        self.norm = norm(groups, c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.out = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).chunk(3, dim=-1)
        y = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.out(y.transpose(1, 2).reshape(b, c, h, w))


def _mid(c: int, cfg: VQAEConfig) -> list[nn.Module]:
    norm = norm_layer(cfg)
    return [ResBlock(c, c, cfg.groups, norm), *([AttnBlock(c, cfg.groups, norm)] if cfg.attention else []),
            ResBlock(c, c, cfg.groups, norm)]


class Encoder(nn.Module):
    def __init__(self, cfg: VQAEConfig) -> None:
        super().__init__()
        ch = cfg.channels
        layers: list[nn.Module] = [nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)]
        norm = norm_layer(cfg)
        for i, c in enumerate(ch):
            cin = ch[max(0, i - 1)]
            for j in range(cfg.num_res_blocks):
                layers.append(ResBlock(cin if j == 0 else c, c, cfg.groups, norm))
            if i < len(ch) - 1:
                layers.append(nn.Conv2d(c, c, 4, stride=2, padding=1))
        learned = cfg.z_dim - (cfg.in_channels if cfg.mean_colour > 0 else 0)
        layers += [*_mid(ch[-1], cfg), norm(cfg.groups, ch[-1]), nn.SiLU(), nn.Conv2d(ch[-1], learned, 1)]
        self.net = nn.Sequential(*layers)
        self.mean_colour, self.f = cfg.mean_colour, 2 ** (len(ch) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x[B, C, H, W]`` -> ``z[B, z_dim, H/f, W/f]`` (the last C channels the patch means when ``mean_colour``)."""
        z = self.net(x)
        if self.mean_colour > 0:
            z = torch.cat([z, self.mean_colour * F.avg_pool2d(x, self.f)], dim=1)
        return z


class Decoder(nn.Module):
    def __init__(self, cfg: VQAEConfig) -> None:
        super().__init__()
        ch = list(reversed(cfg.channels))
        layers: list[nn.Module] = [nn.Conv2d(cfg.z_dim, ch[0], 3, padding=1), *_mid(ch[0], cfg)]
        norm = norm_layer(cfg)
        for i, c in enumerate(ch):
            cin = ch[max(0, i - 1)]
            for j in range(cfg.num_res_blocks):
                layers.append(ResBlock(cin if j == 0 else c, c, cfg.groups, norm))
            if i < len(ch) - 1:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1)]
        layers += [norm(cfg.groups, ch[-1]), nn.SiLU(), nn.Conv2d(ch[-1], cfg.in_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)
        self.mean_colour, self.f, self.c = cfg.mean_colour, 2 ** (len(ch) - 1), cfg.in_channels

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``z[B, z_dim, h, w]`` -> ``[B, C, h*f, w*f]``; with ``mean_colour`` the network adds detail to each patch's
        mean colour (the code's last C channels, unscaled), so a flat colour needs nothing learned to come back."""
        out = self.net(z)
        if self.mean_colour > 0:
            out = out + F.interpolate(z[:, -self.c:] / self.mean_colour, scale_factor=self.f, mode="nearest")
        return out


class VQModel(nn.Module):
    """Encoder -> quantiser -> decoder; subclasses build the two halves and check input shapes."""

    encoder: nn.Module
    decoder: nn.Module
    quantizer: Quantizer

    @property
    def downsample(self) -> int:
        """Spatial downsample factor."""
        return 2 ** (len(self.cfg.channels) - 1)

    def _check(self, x: torch.Tensor) -> None:
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``long[B, *latent]`` (``[..., K]`` for residual VQ) of a checked input."""
        self._check(x)
        return self.quantizer(self.encoder(x)).codes

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Reconstruction from codes (raises on codes out of range)."""
        return self.decoder(self.quantizer.decode_codes(codes))

    def forward(self, x: torch.Tensor, recon_loss: str = "l1") -> VQAEOutput:
        self._check(x)
        q = self.quantizer(self.encoder(x))
        recon = self.decoder(q.quantized)
        hist = code_histogram(q.codes, self.quantizer.codebook_size)
        usage, perplexity = usage_and_perplexity(hist)
        return VQAEOutput(recon, q.codes, {"recon": reconstruction_loss(recon, x, recon_loss), "quant": q.loss},
                          {"usage": usage, "perplexity": perplexity})


class VQAutoencoder(VQModel):
    """2-D VQ autoencoder.

    ``x[B, C, H, W]`` with H and W divisible by :attr:`downsample` gives codes
    ``[B, H/f, W/f]`` (``[..., K]`` for residual VQ).
    """

    def __init__(self, cfg: VQAEConfig, quantizer: QuantizerConfig) -> None:
        super().__init__()
        check_groups(cfg.channels, cfg.groups)
        if cfg.mean_colour < 0 or (cfg.mean_colour > 0 and cfg.z_dim <= cfg.in_channels):
            raise ValueError(f"mean_colour must be >= 0, and > 0 needs z_dim > in_channels (learned channels beside "
                             f"the {cfg.in_channels} patch means), got mean_colour={cfg.mean_colour}, "
                             f"z_dim={cfg.z_dim}")
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.quantizer = Quantizer(cfg.z_dim, quantizer)
        self.decoder = Decoder(cfg)

    def _check(self, x: torch.Tensor) -> None:
        f = self.downsample
        if x.ndim != 4 or x.shape[1] != self.cfg.in_channels:
            raise ValueError(f"expected input [B, {self.cfg.in_channels}, H, W], got {tuple(x.shape)}")
        if x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(f"height and width must be divisible by the downsample factor {f}, "
                             f"got {tuple(x.shape[-2:])}")


def check_groups(channels: list[int], groups: int) -> None:
    for c in channels:
        if c % groups:
            raise ValueError(f"every channel width must be divisible by groups={groups}, got {list(channels)}")
