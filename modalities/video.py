"""Videos to VQ codes and back: ``VideoTokenizer``, causal 3-D or frame by frame.

Two modes share one face:

- ``causal`` (trained with ``python train.py task=video``): a
  :class:`models.vqae3d.CausalVQAutoencoder`; ``T = 1 + k * temporal_downsample``
  frames give ``t = 1 + k`` code frames, and a single frame is coded as an image.
- ``per_frame``: an :class:`ImageTokenizer` applied to every frame (``t = T``).

Video files are read with PyAV. A file whose frame count is not
``1 + k * temporal_downsample`` has its trailing frames dropped with a warning;
tensors of a wrong length are refused.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import torch

from models.quantizer import QuantizerConfig
from models.vqae3d import CausalVQAutoencoder, VQAE3DConfig

from .base import TokenizerLoadError, VQTokenizer, batched_codes, inside, load_model, save_weights
from .data.io import load_video, tensor_to_rgb
from .data.sizing import check_policy, fit_size
from .image import ImageTokenizer

__all__ = ["VideoTokenizer"]

IMAGE_DIR = "image_tokenizer"


class VideoTokenizer(VQTokenizer):
    """VQ video tokenizer: ``encode(video[B, T, 3, H, W] | path) -> LongTensor[B, t, h, w]``, ``decode`` back.

    Residual VQ gives ``[B, t, h, w, K]`` codes. ``h = H / downsample``,
    ``t = 1 + (T - 1) / temporal_downsample``.
    """

    kind: ClassVar[str] = "video"

    def __init__(self, model: CausalVQAutoencoder | None = None, image_tokenizer: ImageTokenizer | None = None,
                 size_policy: str = "refuse", size: int | None = None) -> None:
        if (model is None) == (image_tokenizer is None):
            raise ValueError("a VideoTokenizer wraps exactly one of a causal model or an image tokenizer")
        if model is not None and model.cfg.in_channels != 3:
            raise ValueError(f"a video tokenizer needs a 3-channel model, got in_channels={model.cfg.in_channels}")
        self.model = model.eval() if model is not None else None
        self.image_tokenizer = image_tokenizer
        check_policy(size_policy, size, self.downsample)
        self.size_policy, self.size = size_policy, size

    @classmethod
    def from_configs(cls, ae: VQAE3DConfig, quantizer: QuantizerConfig, size_policy: str = "refuse",
                     size: int | None = None) -> VideoTokenizer:
        """A new, untrained causal tokenizer."""
        return cls(CausalVQAutoencoder(ae, quantizer), size_policy=size_policy, size=size)

    @classmethod
    def per_frame(cls, image_tokenizer: ImageTokenizer) -> VideoTokenizer:
        """Codes every frame with ``image_tokenizer`` (no temporal compression)."""
        return cls(image_tokenizer=image_tokenizer, size_policy=image_tokenizer.size_policy,
                   size=image_tokenizer.size)

    # ------------------------------------------------------------ geometry
    @property
    def mode(self) -> str:
        return "causal" if self.model is not None else "per_frame"

    @property
    def vq_model(self):
        return self.model if self.model is not None else self.image_tokenizer.model

    @property
    def temporal_downsample(self) -> int:
        return self.model.temporal_downsample if self.model is not None else 1

    def valid_frames(self, t: int) -> bool:
        """Whether ``t`` frames is ``1 + k * temporal_downsample``."""
        return t >= 1 and (t - 1) % self.temporal_downsample == 0

    # -------------------------------------------------------------- inputs
    def load(self, path: str | Path, max_frames: int | None = None) -> torch.Tensor:
        """Reads a video file as float[T, 3, H, W], trimmed (with a warning) to a valid frame count."""
        v = load_video(path, max_frames)
        keep = 1 + (len(v) - 1) // self.temporal_downsample * self.temporal_downsample
        if keep < len(v):
            warnings.warn(f"{path}: {len(v)} frames is not 1 + k * {self.temporal_downsample}; "
                          f"dropping the last {len(v) - keep}", stacklevel=3)
        return v[:keep]

    def to_batch(self, video: Any) -> torch.Tensor:
        """Any accepted input -> float[B, T, 3, H, W] in [0, 1] on the model's device, checked."""
        if isinstance(video, (str, Path)):
            video = [video]
        if isinstance(video, torch.Tensor):
            if video.ndim == 4:
                video = video[None]
            if video.ndim != 5:
                raise ValueError(f"video must be [B, T, C, H, W] or [T, C, H, W], got shape {tuple(video.shape)}")
            if video.shape[0] == 0:
                raise ValueError(f"empty video batch of shape {tuple(video.shape)}")
            video = list(video)
        if not isinstance(video, (list, tuple)):
            raise TypeError(f"cannot encode a {type(video).__name__}; pass a tensor, a path or a list of them")
        if not video:
            raise ValueError("encode got an empty list of videos")
        items = []
        for i, v in enumerate(video):
            v = self.load(v) if isinstance(v, (str, Path)) else tensor_to_rgb(v, f"video {i}", ndim=4)
            if not self.valid_frames(len(v)):
                raise ValueError(f"video {i} has {len(v)} frames; the tokenizer needs 1 + k * "
                                 f"{self.temporal_downsample} (first frame coded alone)")
            items.append(fit_size(v, self.downsample, self.size_policy, self.size, f"video {i}"))
        shapes = {tuple(t.shape) for t in items}
        if len(shapes) > 1:
            raise ValueError(f"videos in one batch must share frames and size, got {sorted(shapes)}")
        return torch.stack(items).to(self.device)

    # ------------------------------------------------------- encode/decode
    @torch.inference_mode()
    def encode(self, video: Any) -> torch.Tensor:
        """Codes ``long[B, t, h, w]`` (``[..., K]`` for rvq) for videos ``[B, T, 3, H, W]`` or paths."""
        x = self.to_batch(video)
        if self.model is None:
            b, t = x.shape[:2]
            codes = self.image_tokenizer.encode(x.flatten(0, 1))
            return codes.reshape(b, t, *codes.shape[1:])
        return self.model.encode(x.transpose(1, 2) * 2 - 1)

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Videos ``float[B, T, 3, H, W]`` in [0, 1]; raises on codes outside ``[0, codebook_size)``."""
        codes = batched_codes(codes, "t, h, w", self.num_codebooks)
        if self.model is None:
            b, t = codes.shape[:2]
            frames = self.image_tokenizer.decode(codes.flatten(0, 1))
            return frames.reshape(b, t, *frames.shape[1:])
        video = self.model.decode(codes.to(self.device))
        return ((video.transpose(1, 2) + 1) / 2).clamp(0, 1)

    # ----------------------------------------------------------- save/load
    def settings(self) -> dict[str, Any]:
        common = {"mode": self.mode, "downsample": self.downsample, "temporal_downsample": self.temporal_downsample,
                  "size_policy": self.size_policy, "size": self.size}
        if self.model is None:
            return common | {"image_tokenizer": IMAGE_DIR}
        return common | {"autoencoder": asdict(self.model.cfg), "quantizer": asdict(self.model.quantizer.cfg)}

    def _save_files(self, directory: Path) -> None:
        if self.model is None:
            self.image_tokenizer.save_pretrained(directory / IMAGE_DIR)
        else:
            save_weights(self.model, directory)

    @classmethod
    def _load_files(cls, directory: Path, settings: dict[str, Any]) -> VideoTokenizer:
        if settings.get("mode") == "per_frame":
            sub = inside(directory, settings.get("image_tokenizer", IMAGE_DIR), "config.json settings.image_tokenizer")
            return cls.per_frame(ImageTokenizer.from_pretrained(sub))
        model = load_model(lambda: CausalVQAutoencoder(VQAE3DConfig(**settings["autoencoder"]),
                                                       QuantizerConfig(**settings["quantizer"])),
                           directory, "video tokenizer")
        try:
            return cls(model, size_policy=settings.get("size_policy", "refuse"), size=settings.get("size"))
        except (TypeError, ValueError) as e:
            raise TokenizerLoadError(f"{directory}/config.json: bad video tokenizer settings ({e})") from None

    def __repr__(self) -> str:
        return (f"VideoTokenizer({self.mode}, {self._quantizer.cfg.kind}, codebook_size={self.codebook_size}, "
                f"downsample={self.downsample}, temporal_downsample={self.temporal_downsample})")
