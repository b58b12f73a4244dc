"""Perceptual loss from VGG16 features, loaded only from a local weights file (nothing is downloaded).

The distance is the mean squared difference of channel-normalised features
after relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 (the layers LPIPS uses,
without its learned per-channel weights).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = ["PerceptualLoss"]

_TAPS = (3, 8, 15, 22, 29)  # indices of relu1_2 ... relu5_3 in torchvision's vgg16().features
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class PerceptualLoss(nn.Module):
    """``loss(x, y)`` for images (or video ``[B, C, T, H, W]``, frame by frame) in [-1, 1]."""

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self.features = features.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1))

    @classmethod
    def from_file(cls, path: str | Path) -> PerceptualLoss:
        """Loads VGG16 weights from ``path``: safetensors or a torch state dict of ``vgg16()`` or its ``features``."""
        from torchvision.models import vgg16

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"perceptual loss weights not found: {path}")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k.removeprefix("features."): v for k, v in state.items() if not k.startswith("classifier.")}
        features = vgg16(weights=None).features[: _TAPS[-1] + 1]
        try:
            features.load_state_dict(state, strict=False)
            missing = [k for k in features.state_dict() if k not in state]
        except RuntimeError as e:
            raise ValueError(f"{path} does not hold VGG16 weights: {e}") from None
        if missing:
            raise ValueError(f"{path} does not hold VGG16 weights: missing {missing[:4]}")
        return cls(features)

    def _feats(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x + 1) / 2 - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _TAPS:
                out.append(x / (x.norm(dim=1, keepdim=True) + 1e-10))
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.ndim == 5:
            x, y = (t.transpose(1, 2).flatten(0, 1) for t in (x, y))
        return sum(((a - b) ** 2).sum(1).mean() for a, b in zip(self._feats(x), self._feats(y), strict=True))
