"""Reconstruction and codebook metrics shared by the image, video and audio tasks.

Two families live here:

* the training-time summaries :func:`psnr` and :func:`ssim` (one float over a
  batch, computed on the float tensors) and :class:`CodeStats` (codebook usage
  and perplexity accumulated over a whole validation set);
* the evaluation metrics of ``task=evaluate``, one number *per image* so that a
  report can average, bootstrap or list the worst cases:
  :func:`psnr8` (PSNR after 8-bit quantisation, the convention of image-codec
  papers), :func:`ssim_per_image`, the colour errors :func:`ciede2000` and
  :func:`colour_shift`, :func:`bits_per_pixel`, and :func:`video_metrics`
  (per-frame PSNR/SSIM plus a temporal error).

Conventions of the evaluation metrics:

* images are float ``[B, 3, H, W]`` or ``[3, H, W]`` in [0, 1]; values outside
  are clamped;
* PSNR is computed per image (MSE over all pixels and channels of that image,
  data range 1) and averaged over images by the caller -- never from the MSE of
  the whole set;
* both images are quantised to 8 bits first (``round(x * 255) / 255``), so a
  reconstruction is judged on what a PNG of it would show;
* identical images (MSE 0) score :data:`PSNR_CAP_DB` = 100 dB, and every PSNR
  is capped there, so means stay finite and JSON-serialisable. (The largest
  finite 8-bit PSNR, one grey level off in one pixel of a 256x256 image, is
  about 101 dB; above 100 dB nothing is visible anyway.)

PSNR and SSIM are computed by ``torchmetrics``, CIEDE2000 by ``scikit-image``.
"""

from __future__ import annotations

import torch

from models.quantizer import code_histogram, usage_and_perplexity

__all__ = ["IMAGE_SCORES", "PSNR_CAP_DB", "CodeStats", "bits_per_pixel", "ciede2000", "colour_shift", "image_scores",
           "psnr", "psnr8", "quantize8", "ssim", "ssim_per_image", "video_metrics"]

PSNR_CAP_DB = 100.0
"""PSNR of identical images, and the ceiling of every :func:`psnr8` value (dB)."""


def _as_images(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W]`` or video ``[B, C, T, H, W]`` -> ``[N, C, H, W]``."""
    return x.transpose(1, 2).flatten(0, 1) if x.ndim == 5 else x


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean PSNR in dB over images (or video frames) of two tensors in [0, 1]."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    p, t = _as_images(pred).float(), _as_images(target).float()
    return float(peak_signal_noise_ratio(p, t, data_range=1.0, reduction="none", dim=(1, 2, 3)).mean())


def ssim(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean SSIM over images (or video frames) of two tensors in [0, 1]."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    return float(structural_similarity_index_measure(_as_images(pred).float(), _as_images(target).float(),
                                                     data_range=1.0))


def _image_pair(pred: torch.Tensor, target: torch.Tensor, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Checks two image batches and returns them as float ``[B, C, H, W]`` on one device."""
    for name, x in (("pred", pred), ("target", target)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{what}: {name} must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim not in (3, 4):
            raise ValueError(f"{what}: {name} must be an image [3, H, W] or a batch [B, 3, H, W], "
                             f"got shape {tuple(x.shape)}")
    if pred.shape != target.shape:
        raise ValueError(f"{what}: pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.ndim == 3:
        pred, target = pred[None], target[None]
    if pred.shape[0] == 0:
        raise ValueError(f"{what}: empty batch")
    return pred.float(), target.to(pred.device).float()


def _rgb_pair(pred: torch.Tensor, target: torch.Tensor, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_image_pair` for the colour metrics, which also need three (RGB) channels."""
    p, t = _image_pair(pred, target, what)
    if p.shape[1] != 3:
        raise ValueError(f"{what}: images must have 3 (RGB) channels, got shape {tuple(pred.shape)}")
    return p, t


def quantize8(x: torch.Tensor) -> torch.Tensor:
    """``round(clamp(x, 0, 1) * 255) / 255``: what an 8-bit PNG of ``x`` holds, back as floats in [0, 1]."""
    return (x.float().clamp(0, 1) * 255).round() / 255


@torch.no_grad()
def psnr8(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of each image, after quantising *both* to 8 bits; data range 1.

    ``pred`` and ``target``: float ``[B, 3, H, W]`` (or ``[3, H, W]``) in [0, 1]
    (clamped). Returns float ``[B]`` (``[1]`` for a single image): per-image
    ``10 log10(1 / MSE)``, MSE over the channels and pixels of that image.
    Average the result over images yourself. Identical 8-bit images give
    :data:`PSNR_CAP_DB` (100 dB), which also caps every other value.
    """
    from torchmetrics.functional.image import peak_signal_noise_ratio

    p, t = _image_pair(pred, target, "psnr8")
    p, t = quantize8(p), quantize8(t)
    mse = (p - t).square().flatten(1).mean(1)
    out = peak_signal_noise_ratio(p, t, data_range=1.0, reduction="none", dim=(1, 2, 3))
    return torch.where(mse == 0, torch.full_like(out, PSNR_CAP_DB), out.clamp(max=PSNR_CAP_DB))


@torch.no_grad()
def ssim_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM of each image: float ``[B]`` from ``[B, 3, H, W]`` (or ``[3, H, W]``) in [0, 1].

    torchmetrics' SSIM with its defaults (Gaussian window 11, sigma 1.5,
    K1 0.01, K2 0.03, data range 1) on the float images, clamped to [0, 1]; the
    mean is over the valid (unpadded) window positions of each image. Images
    must be at least 11 pixels on each side.
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    p, t = _image_pair(pred, target, "ssim_per_image")
    if min(p.shape[-2:]) < 11:
        raise ValueError(f"ssim_per_image: images must be at least 11x11 (the Gaussian window), "
                         f"got {tuple(p.shape[-2:])}")
    return structural_similarity_index_measure(p.clamp(0, 1), t.clamp(0, 1), data_range=1.0,
                                               reduction="none").reshape(-1)


@torch.no_grad()
def ciede2000(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean CIEDE2000 colour difference of each image: float ``[B]`` from ``[B, 3, H, W]`` (or ``[3, H, W]``).

    Both images are clamped to [0, 1], read as sRGB (D65), converted to CIELAB and compared pixel by pixel with
    the CIEDE2000 formula (``skimage.color.deltaE_ciede2000``); the result is the mean over pixels. About 1 is
    the smallest difference a viewer notices side by side, 2-10 a visible tint, above 10 another colour: a
    yellow returned as salmon pink scores about 20-30 on those pixels. Unlike PSNR it weighs hue and chroma
    errors as the eye does, so it catches a reconstruction that keeps the edges but shifts every colour.
    """
    from skimage.color import deltaE_ciede2000, rgb2lab

    p, t = _rgb_pair(pred, target, "ciede2000")
    p = p.clamp(0, 1).permute(0, 2, 3, 1).cpu().double().numpy()
    t = t.clamp(0, 1).permute(0, 2, 3, 1).cpu().double().numpy()
    return torch.tensor([float(deltaE_ciede2000(rgb2lab(a), rgb2lab(b)).mean()) for a, b in zip(p, t, strict=True)])


@torch.no_grad()
def colour_shift(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """How far the mean colour of each image moved: float ``[B]`` from ``[B, 3, H, W]`` (or ``[3, H, W]``).

    The Euclidean distance between the mean RGB colours (over all pixels, images clamped to [0, 1]) of the
    reconstruction and the original, in the [0, 1] scale of one channel (so from 0 to sqrt(3)): 0.2 is a whole image tinted by a
    fifth of the range in one channel (a yellow flower whose mean green falls from 0.48 to 0.28). Texture
    and edge errors average out here; a tint or a palette pulled towards the training photographs does not.
    """
    p, t = _rgb_pair(pred, target, "colour_shift")
    return (p.clamp(0, 1).mean((2, 3)) - t.clamp(0, 1).mean((2, 3))).norm(dim=1).cpu()


IMAGE_SCORES = ("psnr", "ssim", "ciede2000", "colour_shift")
"""The per-image scores :func:`image_scores` returns, in report order: higher is better for the first two,
lower for the colour errors."""


@torch.no_grad()
def image_scores(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every per-image score of :data:`IMAGE_SCORES` for ``pred`` against ``target`` (``[B, 3, H, W]`` or
    ``[3, H, W]`` in [0, 1]): ``{name: float [B]}``. PSNR is :func:`psnr8` (8-bit); SSIM needs images of at
    least 11x11."""
    return {"psnr": psnr8(pred, target).cpu(), "ssim": ssim_per_image(pred, target).cpu(),
            "ciede2000": ciede2000(pred, target), "colour_shift": colour_shift(pred, target)}


def bits_per_pixel(num_tokens: int | float, bits_per_token: float, h: int, w: int) -> float:
    """Rate of a token grid: ``num_tokens * bits_per_token / (h * w)``.

    ``num_tokens`` counts the tokens of one image (all codebooks, e.g.
    ``16 * 16 * 2`` for a 2-level residual quantiser on a 16x16 grid);
    ``bits_per_token`` is usually ``log2(codebook_size)``; ``h, w`` are the
    *image* size in pixels. For a video pass the tokens of the whole clip and
    ``h * T`` (or multiply ``w`` by the frame count): bits per pixel per frame.
    """
    if num_tokens < 0 or bits_per_token < 0:
        raise ValueError(f"bits_per_pixel: num_tokens ({num_tokens}) and bits_per_token ({bits_per_token}) "
                         "must be non-negative")
    if h <= 0 or w <= 0:
        raise ValueError(f"bits_per_pixel: image size must be positive, got h={h}, w={w}")
    return float(num_tokens) * float(bits_per_token) / (h * w)


@torch.no_grad()
def video_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Reconstruction metrics of one video ``pred[T, 3, H, W]`` against ``target[T, 3, H, W]``, both in [0, 1].

    Returns

    * ``psnr``: mean over frames of :func:`psnr8` (8-bit, capped at 100 dB);
    * ``ssim``: mean over frames of :func:`ssim_per_image`;
    * ``temporal_error``: mean absolute difference between the frame
      differences of the two videos, ``|(pred[t+1] - pred[t]) - (target[t+1] -
      target[t])|`` averaged over t, channels and pixels (on the clamped float
      frames, range [0, 2]; 0 when the motion is reproduced exactly, and 0 for a
      one-frame video, which has no motion to get wrong). A reconstruction that
      freezes or flickers scores high here even when each frame looks right;
    * ``frames``: T.
    """
    for name, x in (("pred", pred), ("target", target)):
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"video_metrics: {name} must be a video [T, 3, H, W], got shape {tuple(x.shape)}")
    if pred.shape != target.shape:
        raise ValueError(f"video_metrics: pred and target shapes differ: {tuple(pred.shape)} vs "
                         f"{tuple(target.shape)}")
    p, t = pred.float().clamp(0, 1), target.to(pred.device).float().clamp(0, 1)
    temporal = ((p[1:] - p[:-1]) - (t[1:] - t[:-1])).abs().mean() if len(p) > 1 else torch.zeros(())
    return {"psnr": float(psnr8(p, t).mean()), "ssim": float(ssim_per_image(p, t).mean()),
            "temporal_error": float(temporal), "frames": len(p)}


class CodeStats:
    """Accumulates a code histogram; ``usage`` is the fraction of codes seen, ``perplexity`` exp(entropy)."""

    def __init__(self, codebook_size: int) -> None:
        self.hist = torch.zeros(codebook_size, dtype=torch.long)

    def update(self, codes: torch.Tensor) -> None:
        self.hist += code_histogram(codes, len(self.hist)).cpu()

    def result(self) -> dict[str, float]:
        usage, perplexity = usage_and_perplexity(self.hist)
        return {"usage": usage, "perplexity": perplexity}
