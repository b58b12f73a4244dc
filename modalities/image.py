"""Images to VQ codes and back: ``ImageTokenizer`` over :class:`models.vqae.VQAutoencoder`.

Accepts float tensors in [0, 1], uint8 tensors, PIL images and file paths;
grayscale, RGBA and 16-bit inputs are converted to RGB. Height and width must
be divisible by the downsample factor: by default other sizes are refused;
a size policy (pad, center_crop, resize; see :mod:`modalities.data.sizing`) chosen
when the tokenizer is built, and saved with it, changes that.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import torch
from PIL import Image

from models.quantizer import QuantizerConfig
from models.vqae import VQAEConfig, VQAutoencoder

from .base import TokenizerLoadError, VQTokenizer, batched_codes, load_model, save_weights
from .data.io import load_image, pil_to_tensor, tensor_to_rgb
from .data.sizing import check_policy, fit_size

__all__ = ["ImageTokenizer", "load_image"]

class ImageTokenizer(VQTokenizer):
    """VQ image tokenizer: ``encode(images) -> LongTensor[B, h, w]``, ``decode(codes) -> float[B, 3, H, W]``.

    Residual VQ gives ``[B, h, w, K]`` codes. ``h = H / downsample``.
    """

    kind: ClassVar[str] = "image"

    def __init__(self, model: VQAutoencoder, size_policy: str = "refuse", size: int | None = None) -> None:
        if model.cfg.in_channels != 3:
            raise ValueError(f"an image tokenizer needs a 3-channel model, got in_channels={model.cfg.in_channels}")
        check_policy(size_policy, size, model.downsample)
        self.model = model.eval()
        self.size_policy, self.size = size_policy, size

    @classmethod
    def from_configs(cls, ae: VQAEConfig, quantizer: QuantizerConfig, size_policy: str = "refuse",
                     size: int | None = None) -> ImageTokenizer:
        """A new, untrained tokenizer (``size_policy``: see :mod:`modalities.data.sizing`)."""
        return cls(VQAutoencoder(ae, quantizer), size_policy, size)

    # -------------------------------------------------------------- inputs
    def to_batch(self, images: Any) -> torch.Tensor:
        """Any accepted input -> float[B, 3, H, W] in [0, 1] on the model's device, checked."""
        if isinstance(images, (str, Path, Image.Image)):
            images = [images]
        if isinstance(images, (list, tuple)):
            if not images:
                raise ValueError("encode got an empty list of images")
            items = [self._fit(load_image(x) if isinstance(x, (str, Path)) else pil_to_tensor(x)
                               if isinstance(x, Image.Image) else tensor_to_rgb(x, f"image {i}", ndim=3), f"image {i}")
                     for i, x in enumerate(images)]
            shapes = {tuple(t.shape) for t in items}
            if len(shapes) > 1:
                raise ValueError(f"images in one batch must share a size, got {sorted(shapes)}; resize them first")
            x = torch.stack(items)
        elif isinstance(images, torch.Tensor):
            x = images[None] if images.ndim == 3 else images
            if x.ndim != 4:
                raise ValueError(f"images must be [B, C, H, W] or [C, H, W], got shape {tuple(images.shape)}")
            if x.shape[0] == 0:
                raise ValueError(f"empty image batch of shape {tuple(x.shape)}")
            x = torch.stack([self._fit(tensor_to_rgb(t, f"image {i}", ndim=3), f"image {i}") for i, t in enumerate(x)])
        else:
            raise TypeError(f"cannot encode a {type(images).__name__}; pass tensors, PIL images or paths")
        if x.numel() == 0:
            raise ValueError(f"empty image batch of shape {tuple(x.shape)}")
        return x.to(self.device)

    def _fit(self, x: torch.Tensor, what: str) -> torch.Tensor:
        return fit_size(x, self.downsample, self.size_policy, self.size, what)

    # ------------------------------------------------------- encode/decode
    @torch.inference_mode()
    def encode(self, images: Any) -> torch.Tensor:
        """Codes ``long[B, h, w]`` (``[B, h, w, K]`` for rvq) for images, PIL images or paths."""
        x = self.to_batch(images)
        return self.model.encode(x * 2 - 1)

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Images ``float[B, 3, H, W]`` in [0, 1]; raises on codes outside ``[0, codebook_size)``."""
        codes = batched_codes(codes, "h, w", self.num_codebooks)
        return ((self.model.decode(codes.to(self.device)) + 1) / 2).clamp(0, 1)

    # ----------------------------------------------------------- save/load
    def settings(self) -> dict[str, Any]:
        return {"autoencoder": asdict(self.model.cfg), "quantizer": asdict(self.model.quantizer.cfg),
                "downsample": self.downsample, "size_policy": self.size_policy, "size": self.size}

    def _save_files(self, directory: Path) -> None:
        save_weights(self.model, directory)

    @classmethod
    def _load_files(cls, directory: Path, settings: dict[str, Any]) -> ImageTokenizer:
        model = load_model(lambda: VQAutoencoder(VQAEConfig(**settings["autoencoder"]),
                                                 QuantizerConfig(**settings["quantizer"])), directory, "image tokenizer")
        try:
            return cls(model, settings.get("size_policy", "refuse"), settings.get("size"))
        except (TypeError, ValueError) as e:
            raise TokenizerLoadError(f"{directory}/config.json: bad image tokenizer settings ({e})") from None

    def __repr__(self) -> str:
        return (f"ImageTokenizer({self.model.quantizer.cfg.kind}, codebook_size={self.codebook_size}, "
                f"downsample={self.downsample})")
