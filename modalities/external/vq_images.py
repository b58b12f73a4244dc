"""Image and video VQ models of ``transformers`` as mmtok tokenizers: Emu3, Janus, Chameleon.

Each adapter wraps the ``transformers`` VQ model of a local folder (loaded by
:func:`~modalities.external.hf.load_hf_model`) and gives it the face of
:class:`~modalities.image.ImageTokenizer` / :class:`~modalities.video.VideoTokenizer`:

- ``encode`` takes file paths, PIL images, tensors ``[B, C, H, W]`` / ``[C, H, W]`` (float in [0, 1], uint8,
  uint16; grayscale and RGBA converted) and numpy arrays (channels last, as ``np.asarray(pil_image)`` gives:
  ``[H, W]``, ``[H, W, C]``, ``[B, H, W, C]``), and returns local codes ``LongTensor[B, H/f, W/f]``
  (video: ``[B, T/4, H/f, W/f]``);
- ``decode`` gives float images ``[B, 3, H, W]`` in [0, 1] (video ``[B, T, 3, H, W]``);
- ``codebook_size``, ``downsample`` (``f``), ``num_codebooks`` (1), ``register``, ``save_pretrained``.

Pixels reach the model normalised as its ``transformers`` image processor does it, written out here (the
processors are not called: they also resize, which is the size policy's job here):
``model_pixels = (x * rescale - mean) / std`` for ``x`` in [0, 1]; ``decode`` inverts it and clamps to
[0, 1]. Emu3 and Janus: ``rescale = 1``, ``mean = std = 0.5`` (so [-1, 1]; the checkpoints' processor
configs); Chameleon: ``ChameleonImageProcessor``'s ``rescale_factor = 0.0078`` on 0..255 values and
``mean = std = 1``, so ``rescale = 255 * 0.0078`` and pixels span [-1, 0.989]. Height and width must be
multiples of ``f``; other sizes are refused unless a size policy is chosen (``size_policy=``, ``size=``,
as for ``ImageTokenizer``; see :mod:`modalities.data.sizing`), and it is saved with the adapter.

Codes are what the ``transformers`` model computes, bit for bit: ``Emu3VQVAE.encode`` (an image is coded as
a clip of ``temporal_downsample_factor`` copies of itself, which is what ``transformers`` does),
``JanusVQVAE.encode`` and ``ChameleonVQVAE.encode``, flat indices reshaped to ``[B, h, w]``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from ..base import batched_codes
from ..data.io import load_image, load_video, pil_to_tensor, tensor_to_rgb
from ..data.sizing import check_policy, fit_size
from .hf import HFTokenizer

__all__ = ["ChameleonVQTokenizer", "Emu3VQTokenizer", "Emu3VideoTokenizer", "JanusVQTokenizer"]


def _numpy_to_tensor(a: np.ndarray, what: str, ndim: int) -> torch.Tensor:
    """A channels-last numpy image ``[H, W]`` / ``[H, W, C]`` (``ndim=3``) or frames ``[T, H, W, C]``
    (``ndim=4``) -> a channels-first tensor of the same dtype, for :func:`tensor_to_rgb`."""
    if a.dtype == np.uint16:
        a = a.astype(np.int32)  # tensor_to_rgb reads int32 as 16-bit
    t = torch.from_numpy(np.ascontiguousarray(a))
    if t.ndim == ndim - 1:  # grayscale without a channel axis
        t = t.unsqueeze(-1)
    if t.ndim != ndim or t.shape[-1] not in (1, 3, 4):
        want = "[H, W] or [H, W, C]" if ndim == 3 else "[T, H, W, C]"
        raise ValueError(f"{what}: a numpy image must be channels-last {want} with C in 1/3/4 "
                         f"(as np.asarray(PIL image) gives), got shape {a.shape}")
    return t.movedim(-1, -3)


def _items(x: Any, ndim: int, single_array: Any, what: str, accepted: str) -> list[Any]:
    """The items of a batch: one item (a path, a PIL image, an ``ndim``-dimensional tensor, or a numpy array for
    which ``single_array(x.ndim)`` holds) becomes a list of one; a batch tensor ``[B, ...]`` or array becomes its
    rows; a list stays. Raises naming the shape or type; an empty batch is an error."""
    if isinstance(x, (str, Path, Image.Image)) or (isinstance(x, np.ndarray) and single_array(x.ndim)):
        return [x]
    if isinstance(x, np.ndarray):
        return list(x)
    if isinstance(x, torch.Tensor):
        if x.ndim == ndim:
            x = x[None]
        if x.ndim != ndim + 1:
            raise ValueError(f"{what} must be {accepted}, got shape {tuple(x.shape)}")
        x = list(x)
    if not isinstance(x, (list, tuple)):
        raise TypeError(f"cannot encode a {type(x).__name__}; pass tensors, numpy arrays, PIL images or paths")
    if not x:
        raise ValueError(f"encode got an empty batch of {what}")
    return list(x)


def _pixels(x: Any, what: str, ndim: int = 3) -> torch.Tensor:
    """One image (``ndim=3``) or clip (``ndim=4``) given as a path, PIL image, tensor or numpy array ->
    float ``[3, H, W]`` / ``[T, 3, H, W]`` in [0, 1]."""
    if isinstance(x, (str, Path)):
        return load_image(x) if ndim == 3 else load_video(x)
    if isinstance(x, Image.Image) and ndim == 3:
        return pil_to_tensor(x)
    if isinstance(x, np.ndarray):
        x = _numpy_to_tensor(x, what, ndim)
    return tensor_to_rgb(x, what, ndim=ndim)


class _VQAdapter(HFTokenizer):
    """Shared part of the image and video adapters: options, normalisation, geometry, code checks."""

    # model_pixels = (x * rescale - mean) / std for x in [0, 1] (see the module docstring)
    rescale: ClassVar[float] = 1.0
    mean: ClassVar[float] = 0.5
    std: ClassVar[float] = 0.5

    def __init__(self, model: Any, size_policy: str = "refuse", size: int | None = None) -> None:
        super().__init__(model, size_policy=size_policy, size=size)
        check_policy(size_policy, size, self.downsample)
        self.size_policy, self.size = size_policy, size

    # ------------------------------------------------------------ geometry
    @property
    def downsample(self) -> int:
        """Spatial downsample factor ``f``: codes are ``[H/f, W/f]``."""
        return 2 ** (len(self.model.config.channel_multiplier) - 1)

    @property
    def codebook_size(self) -> int:
        return int(self.model.config.num_embeddings)

    @property
    def num_codebooks(self) -> int:
        return 1

    # ------------------------------------------------------ normalisation
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """float pixels in [0, 1] -> the model's input range, in the model's dtype on its device."""
        x = x.to(self.device)
        return ((x * self.rescale - self.mean) / self.std).to(self.model.dtype)

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        """The model's output range -> float32 pixels in [0, 1] (clamped)."""
        return ((y.float() * self.std + self.mean) / self.rescale).clamp(0, 1)

    def _fit(self, x: torch.Tensor, what: str) -> torch.Tensor:
        return fit_size(x, self.downsample, self.size_policy, self.size, what)

    def _checked(self, codes: Any, axes: str) -> torch.Tensor:
        """``codes`` as ``long[B, <axes>]`` on the model's device; raises on ids outside ``[0, codebook_size)``."""
        codes = batched_codes(codes, axes, 1)
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ValueError(f"codes must lie in [0, {self.codebook_size}), got [{int(codes.min())}, "
                             f"{int(codes.max())}]")
        return codes.to(self.device)


class _ImageAdapter(_VQAdapter):
    """An image VQ model: ``encode(images) -> LongTensor[B, H/f, W/f]``, ``decode(codes) -> float[B, 3, H, W]``."""

    kind: ClassVar[str] = "image"

    def to_batch(self, images: Any) -> torch.Tensor:
        """Any accepted input -> float ``[B, 3, H, W]`` in [0, 1], sized by the size policy (on the CPU)."""
        images = _items(images, 3, lambda n: n < 4, "images", "[B, C, H, W] or [C, H, W]")  # arrays [B, H, W, C]
        items = [self._fit(_pixels(x, f"image {i}"), f"image {i}") for i, x in enumerate(images)]
        shapes = {tuple(t.shape) for t in items}
        if len(shapes) > 1:
            raise ValueError(f"images in one batch must share a size, got {sorted(shapes)}; resize them first "
                             "or set a size policy")
        return torch.stack(items)

    @torch.inference_mode()
    def encode(self, images: Any) -> torch.Tensor:
        """Codes ``long[B, H/f, W/f]`` of images (paths, PIL, tensors, numpy; see the module docstring)."""
        x = self.to_batch(images)
        b, _, h, w = x.shape
        codes = self._encode_pixels(self.normalize(x))
        return codes.reshape(b, h // self.downsample, w // self.downsample).long()

    def _encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Model-range pixels ``[B, 3, H, W]`` -> codes (any layout holding ``B * h * w`` ids in row-major order)."""
        return self.model.encode(pixels, return_dict=True).image_tokens


class Emu3VQTokenizer(_ImageAdapter):
    """Emu3's VQ-VAE (``Emu3VQVAE``, ``model_type`` ``emu3_vqgan``) on images: ``f = 8``, 32768 codes.

    ``transformers`` codes an image as a clip of ``temporal_downsample_factor`` (4) copies of it, so the codes
    of an image equal those of a 4-frame clip of that image; ``decode`` returns the first decoded frame.
    ``from_hf(path, video=True)`` gives the video tokenizer of the same model (:class:`Emu3VideoTokenizer`).
    """

    model_types: ClassVar[tuple[str, ...]] = ("emu3_vqgan",)

    @classmethod
    def classes(cls) -> tuple[type, type]:
        from transformers import Emu3VQVAE, Emu3VQVAEConfig

        return Emu3VQVAE, Emu3VQVAEConfig

    @classmethod
    def from_hf(cls, path: str | Path, video: bool = False, **options: Any) -> HFTokenizer:
        """Opens the local folder ``path``; ``video=True``: an :class:`Emu3VideoTokenizer` (kind ``video``)."""
        if video and cls is Emu3VQTokenizer:
            return Emu3VideoTokenizer.from_hf(path, **options)
        return super().from_hf(path, **options)

    @property
    def downsample(self) -> int:
        return int(self.model.vision_spatial_factor)

    @property
    def codebook_size(self) -> int:
        return int(self.model.config.codebook_size)

    def _encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        sizes = torch.tensor([pixels.shape[-2:]] * len(pixels))
        return torch.stack(self.model.encode(pixels, image_sizes=sizes, return_dict=True).image_tokens)

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Images ``float[B, 3, h*f, w*f]`` in [0, 1] from codes ``[B, h, w]`` (``Emu3VQVAE.decode``)."""
        return self.denormalize(self.model.decode(self._checked(codes, "h, w")))


class Emu3VideoTokenizer(Emu3VQTokenizer):
    """Emu3's VQ-VAE on video (kind ``video``): ``encode(video[B, T, 3, H, W] | path) -> LongTensor[B, T/4, h, w]``.

    Frame rule (``temporal_downsample_factor`` ``ft`` = 4 in Emu3's config): ``T`` must be a positive multiple
    of ``ft`` and gives ``t = T / ft`` code frames; there is no separate first frame (the encoder's temporal
    convolutions pad causally, two strided halvings). ``decode`` returns ``t * ft`` frames. A video file whose
    length is not a multiple of ``ft`` has its trailing frames dropped with a warning; tensors of another
    length are refused. Open it with ``from_hf(path, video=True)``.
    """

    kind: ClassVar[str] = "video"

    @property
    def temporal_downsample(self) -> int:
        return int(self.model.config.temporal_downsample_factor)

    def valid_frames(self, t: int) -> bool:
        """Whether ``t`` frames is a positive multiple of ``temporal_downsample``."""
        return t >= 1 and t % self.temporal_downsample == 0

    def load(self, path: str | Path, max_frames: int | None = None) -> torch.Tensor:
        """Reads a video file as float ``[T, 3, H, W]``, trimmed (with a warning) to a multiple of the
        temporal downsample."""
        v = load_video(path, max_frames)
        keep = len(v) // self.temporal_downsample * self.temporal_downsample
        if keep == 0:
            raise ValueError(f"{path}: {len(v)} frames; Emu3 codes clips of {self.temporal_downsample} frames "
                             "or a multiple of it")
        if keep < len(v):
            warnings.warn(f"{path}: {len(v)} frames is not a multiple of {self.temporal_downsample}; "
                          f"dropping the last {len(v) - keep}", stacklevel=3)
        return v[:keep]

    def to_batch(self, video: Any) -> torch.Tensor:
        """Any accepted input -> float ``[B, T, 3, H, W]`` in [0, 1], sized by the size policy (on the CPU)."""
        video = _items(video, 4, lambda n: n == 4, "videos", "[B, T, C, H, W] or [T, C, H, W]")  # [B, T, H, W, C]
        items = []
        for i, v in enumerate(video):
            v = self.load(v) if isinstance(v, (str, Path)) else _pixels(v, f"video {i}", ndim=4)
            if not self.valid_frames(len(v)):
                raise ValueError(f"video {i} has {len(v)} frames; Emu3 needs a multiple of "
                                 f"{self.temporal_downsample} (temporal_downsample_factor)")
            items.append(self._fit(v, f"video {i}"))
        shapes = {tuple(t.shape) for t in items}
        if len(shapes) > 1:
            raise ValueError(f"videos in one batch must share frames and size, got {sorted(shapes)}")
        return torch.stack(items)

    @torch.inference_mode()
    def encode(self, video: Any) -> torch.Tensor:
        """Codes ``long[B, T/4, H/f, W/f]`` of videos ``[B, T, 3, H, W]``, ``[T, 3, H, W]``, paths or numpy
        ``[T, H, W, C]``."""
        pixels = self.normalize(self.to_batch(video))
        # Emu3VQVAE.encode crops each item's codes with [:H/f, :W/f] over its first two axes, which for a clip are
        # (t, h): sizes as large as the largest axis make that crop a no-op.
        side = self.downsample * max(pixels.shape[1], *pixels.shape[-2:])
        sizes = torch.tensor([[side, side]] * len(pixels))
        return torch.stack(self.model.encode(pixels, image_sizes=sizes, return_dict=True).image_tokens).long()

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Videos ``float[B, t * 4, 3, h*f, w*f]`` in [0, 1] from codes ``[B, t, h, w]`` (``Emu3VQVAE.decode``)."""
        return self.denormalize(self.model.decode(self._checked(codes, "t, h, w")))


class JanusVQTokenizer(_ImageAdapter):
    """Janus's VQ-VAE (``JanusVQVAE``, ``model_type`` ``janus_vqgan``): ``f = 16``, 16384 codes.

    ``decode`` takes any grid: ``JanusVQVAE.decode`` accepts only ``num_patches x num_patches`` codes (its
    config), so this runs the same steps on the model's own modules (the L2-normalised codebook entry,
    ``post_quant_conv``, ``decoder``); on the config's grid it equals ``JanusVQVAE.decode`` bit for bit.
    """

    model_types: ClassVar[tuple[str, ...]] = ("janus_vqgan",)

    @classmethod
    def classes(cls) -> tuple[type, type]:
        from transformers import JanusVQVAE, JanusVQVAEConfig

        return JanusVQVAE, JanusVQVAEConfig

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Images ``float[B, 3, h*f, w*f]`` in [0, 1] from codes ``[B, h, w]``."""
        import torch.nn.functional as F

        codes = self._checked(codes, "h, w")
        entry = F.normalize(self.model.quantize.embedding(codes), p=2, dim=-1)  # [B, h, w, D]
        hidden = self.model.post_quant_conv(entry.permute(0, 3, 1, 2).contiguous())
        return self.denormalize(self.model.decoder(hidden))


class ChameleonVQTokenizer(_ImageAdapter):
    """Chameleon's VQ-VAE (``ChameleonVQVAE``, ``model_type`` ``chameleon_vqgan``): ``f = 16``, 8192 codes.

    Encode only: ``transformers`` ships Chameleon's VQ encoder without its decoder, so ``decode`` raises
    ``NotImplementedError``.
    """

    model_types: ClassVar[tuple[str, ...]] = ("chameleon_vqgan",)
    rescale: ClassVar[float] = 255 * 0.0078  # ChameleonImageProcessor: rescale_factor 0.0078 on 0..255
    mean: ClassVar[float] = 1.0
    std: ClassVar[float] = 1.0

    @classmethod
    def classes(cls) -> tuple[type, type]:
        from transformers import ChameleonVQVAE, ChameleonVQVAEConfig

        return ChameleonVQVAE, ChameleonVQVAEConfig

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Not available: raises ``NotImplementedError``."""
        import transformers

        raise NotImplementedError(f"ChameleonVQTokenizer cannot decode: transformers {transformers.__version__} "
                                  "has no decoder for Chameleon's VQ-VAE (ChameleonVQVAE implements the encoder "
                                  "only); Chameleon codes can be encoded and trained on, not turned back into "
                                  "pixels")
