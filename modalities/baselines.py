"""Classic baselines the learned tokenizers must beat at the same bit budget.

``kmeans_patch_baseline``: k-means vector quantisation of raw ``p x p`` pixel
patches (p = the tokenizer's downsample factor, k = its codebook size), fitted
on the training images and measured on the held-out ones.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from models.kmeans import KMeans

from .datasets import center_crop_multiple
from .metrics import psnr, ssim

__all__ = ["image_to_patches", "kmeans_patch_baseline", "patches_to_image"]


def image_to_patches(x: torch.Tensor, p: int) -> torch.Tensor:
    """``[B, C, H, W]`` (H, W multiples of p) -> ``[B * H/p * W/p, C * p * p]``."""
    return F.unfold(x, p, stride=p).transpose(1, 2).reshape(-1, x.shape[1] * p * p)


def patches_to_image(patches: torch.Tensor, shape: tuple[int, ...], p: int) -> torch.Tensor:
    """Inverse of :func:`image_to_patches` for an image batch of ``shape`` ``[B, C, H, W]``."""
    b, c, h, w = shape
    cols = patches.reshape(b, (h // p) * (w // p), c * p * p).transpose(1, 2)
    return F.fold(cols, (h, w), p, stride=p)


def kmeans_patch_baseline(train_images: list[torch.Tensor], val_images: list[torch.Tensor], patch: int, k: int,
                          max_patches: int = 60_000, iters: int = 20, seed: int = 0) -> dict[str, float]:
    """PSNR/SSIM on ``val_images`` (each ``[1, 3, H, W]`` in [0, 1]) of k-means on raw pixel patches.

    Returns ``baseline_psnr``, ``baseline_ssim`` and ``baseline_bpp`` (``log2(k) / patch**2``).
    """
    crops = [center_crop_multiple(x, patch) for x in train_images]
    train = torch.cat([image_to_patches(c[None] if c.ndim == 3 else c, patch) for c in crops])
    if len(train) > max_patches:
        train = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:max_patches]]
    km = KMeans(k, train.shape[1]).fit(train, iters=iters, seed=seed)
    p_sum = s_sum = n = 0.0
    for x in val_images:
        recon = patches_to_image(km.decode(km.predict(image_to_patches(x, patch))), tuple(x.shape), patch)
        p_sum += psnr(recon, x) * len(x)
        s_sum += ssim(recon, x) * len(x)
        n += len(x)
    return {"baseline_psnr": p_sum / n, "baseline_ssim": s_sum / n, "baseline_bpp": math.log2(k) / patch**2}
