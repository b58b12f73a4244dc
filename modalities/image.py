"""Images to VQ codes and back: ``ImageTokenizer`` over :class:`models.vqae.VQAutoencoder`.

Accepts float tensors in [0, 1], uint8 tensors, PIL images and file paths;
grayscale, RGBA and 16-bit inputs are converted to RGB. Height and width must
be divisible by the downsample factor: inputs that are not are refused (no
silent padding or cropping), and resizing is the caller's or the data
pipeline's choice.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from models.quantizer import QuantizerConfig
from models.vqae import VQAEConfig, VQAutoencoder

from .base import Tokenizer, TokenizerLoadError
from .fileio import atomic_path

__all__ = ["ImageTokenizer", "load_image"]

WEIGHTS = "model.safetensors"


def load_image(path: str | Path) -> torch.Tensor:
    """Reads an image file as float[3, H, W] in [0, 1] (grayscale, RGBA, 16-bit converted)."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            return pil_to_tensor(im)
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"cannot read image {path}: {e}") from None


def pil_to_tensor(im: Image.Image) -> torch.Tensor:
    """PIL image -> float[3, H, W] in [0, 1]."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float32) / 65535.0  # 16-bit PNGs open as I;16 or I
        return torch.from_numpy(arr.copy())[None].expand(3, -1, -1).clamp(0, 1).contiguous()
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))  # composite transparency on white
        im = Image.alpha_composite(bg, im)
    arr = np.array(im.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr).permute(2, 0, 1).float() / 255.0


class ImageTokenizer(Tokenizer):
    """VQ image tokenizer: ``encode(images) -> LongTensor[B, h, w]``, ``decode(codes) -> float[B, 3, H, W]``.

    Residual VQ gives ``[B, h, w, K]`` codes. ``h = H / downsample``.
    """

    kind: ClassVar[str] = "image"

    def __init__(self, model: VQAutoencoder) -> None:
        if model.cfg.in_channels != 3:
            raise ValueError(f"an image tokenizer needs a 3-channel model, got in_channels={model.cfg.in_channels}")
        self.model = model.eval()

    @classmethod
    def from_configs(cls, ae: VQAEConfig, quantizer: QuantizerConfig) -> ImageTokenizer:
        """A new, untrained tokenizer."""
        return cls(VQAutoencoder(ae, quantizer))

    # ------------------------------------------------------------ geometry
    @property
    def codebook_size(self) -> int:
        return self.model.quantizer.codebook_size

    @property
    def num_codebooks(self) -> int:
        return self.model.quantizer.num_codebooks

    @property
    def downsample(self) -> int:
        return self.model.downsample

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: torch.device | str) -> ImageTokenizer:
        self.model.to(device)
        return self

    # -------------------------------------------------------------- inputs
    def to_batch(self, images: Any) -> torch.Tensor:
        """Any accepted input -> float[B, 3, H, W] in [0, 1] on the model's device, checked."""
        if isinstance(images, (str, Path, Image.Image)):
            images = [images]
        if isinstance(images, (list, tuple)):
            if not images:
                raise ValueError("encode got an empty list of images")
            items = [load_image(x) if isinstance(x, (str, Path)) else pil_to_tensor(x) if isinstance(x, Image.Image)
                     else self._tensor_image(x, f"image {i}") for i, x in enumerate(images)]
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
            x = torch.stack([self._tensor_image(t, f"image {i}") for i, t in enumerate(x)])
        else:
            raise TypeError(f"cannot encode a {type(images).__name__}; pass tensors, PIL images or paths")
        if x.numel() == 0:
            raise ValueError(f"empty image batch of shape {tuple(x.shape)}")
        f = self.downsample
        if x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(f"image size {tuple(x.shape[-2:])} is not divisible by the downsample factor {f}; "
                             f"resize or crop to a multiple of {f}")
        return x.to(self.device)

    @staticmethod
    def _tensor_image(t: torch.Tensor, what: str) -> torch.Tensor:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{what}: expected a tensor, PIL image or path, got {type(t).__name__}")
        if t.ndim != 3 or t.shape[0] not in (1, 3, 4):
            raise ValueError(f"{what}: expected [C, H, W] with C in 1/3/4, got shape {tuple(t.shape)}")
        if t.dtype == torch.uint8:
            t = t.float() / 255.0
        elif t.dtype == torch.uint16 or t.dtype == torch.int32:
            t = t.float() / 65535.0
        elif not t.dtype.is_floating_point:
            raise ValueError(f"{what}: unsupported dtype {t.dtype}; use uint8, uint16 or float in [0, 1]")
        if not torch.isfinite(t).all():
            raise ValueError(f"{what}: contains NaN or inf values")
        if t.min() < -1e-3 or t.max() > 1 + 1e-3:
            raise ValueError(f"{what}: float values must be in [0, 1], got [{float(t.min()):.3g}, {float(t.max()):.3g}]")
        if t.shape[0] == 1:
            t = t.expand(3, -1, -1)
        elif t.shape[0] == 4:
            t = t[:3] * t[3:] + (1 - t[3:])  # alpha over white
        return t.float().clamp(0, 1)

    # ------------------------------------------------------- encode/decode
    @torch.inference_mode()
    def encode(self, images: Any) -> torch.Tensor:
        """Codes ``long[B, h, w]`` (``[B, h, w, K]`` for rvq) for images, PIL images or paths."""
        x = self.to_batch(images)
        return self.model.encode(x * 2 - 1)

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Images ``float[B, 3, H, W]`` in [0, 1]; raises on codes outside ``[0, codebook_size)``."""
        if not isinstance(codes, torch.Tensor) or codes.dtype.is_floating_point:
            raise ValueError("codes must be an integer tensor")
        want = 4 if self.num_codebooks > 1 else 3
        if codes.ndim == want - 1:
            codes = codes[None]
        if codes.ndim != want:
            raise ValueError(f"codes must be [B, h, w{', K' if want == 4 else ''}], got shape {tuple(codes.shape)}")
        return ((self.model.decode(codes.long().to(self.device)) + 1) / 2).clamp(0, 1)

    # ----------------------------------------------------------- save/load
    def settings(self) -> dict[str, Any]:
        return {"autoencoder": asdict(self.model.cfg), "quantizer": asdict(self.model.quantizer.cfg),
                "downsample": self.downsample}

    def _save_files(self, directory: Path) -> None:
        from safetensors.torch import save_model

        with atomic_path(directory / WEIGHTS) as tmp:
            save_model(self.model, str(tmp))

    @classmethod
    def _load_files(cls, directory: Path, settings: dict[str, Any]) -> ImageTokenizer:
        from safetensors.torch import load_model

        try:
            model = VQAutoencoder(VQAEConfig(**settings["autoencoder"]), QuantizerConfig(**settings["quantizer"]))
        except (KeyError, TypeError) as e:
            raise TokenizerLoadError(f"{directory}/config.json: bad image tokenizer settings ({e})") from None
        path = directory / WEIGHTS
        if not path.is_file():
            raise TokenizerLoadError(f"{path} is missing")
        try:
            load_model(model, str(path))
        except Exception as e:  # safetensors raises several types for corrupt or mismatched files
            raise TokenizerLoadError(f"{path} does not match the saved config: {e}") from None
        return cls(model)

    def __repr__(self) -> str:
        return (f"ImageTokenizer({self.model.quantizer.cfg.kind}, codebook_size={self.codebook_size}, "
                f"downsample={self.downsample})")
