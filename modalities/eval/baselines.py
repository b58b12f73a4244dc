"""Classic baselines the learned tokenizers must beat at the same bit budget.

``kmeans_patch_baseline``: k-means vector quantisation of raw ``p x p`` pixel
patches (p = the tokenizer's downsample factor, k = its codebook size), fitted
on the training images and measured on the held-out ones.

``jpeg_baseline``: Pillow JPEG of each held-out image at the quality whose
size comes nearest a target bits per pixel (the codecs themselves, JPEG, WebP,
Opus and H.264, live in :mod:`modalities.eval.codecs`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from models.kmeans import KMeans

from ..data.datasets import center_crop_multiple
from .codecs import image_at_bpp
from .metrics import psnr, ssim

__all__ = ["image_to_patches", "jpeg_at_bpp", "jpeg_baseline", "kmeans_mel_baseline", "kmeans_patch_baseline",
           "patches_to_image"]


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


def jpeg_at_bpp(image: torch.Tensor, bpp: float) -> tuple[torch.Tensor, float, int]:
    """Pillow JPEG (4:2:0) of ``image`` ``[3, H, W]`` in [0, 1] at the quality (1-95) whose file size is nearest
    ``bpp`` bits per pixel; returns the decoded image, its bits per pixel and the quality.

    The three-value form kept for existing callers; :func:`modalities.eval.codecs.jpeg_at_bpp` returns
    ``(recon, actual_bpp)`` and :func:`modalities.eval.codecs.image_at_bpp` the quality as well.
    """
    coded = image_at_bpp(image, bpp, "jpeg")
    return coded.recon, coded.rate, int(coded.setting)


def jpeg_baseline(val_images: list[torch.Tensor], bpp: float) -> dict[str, float]:
    """PSNR/SSIM and mean bits per pixel of JPEG nearest ``bpp`` on ``val_images`` (each ``[1, 3, H, W]``)."""
    rows = []
    for x in val_images:
        recon, size, q = jpeg_at_bpp(x[0], bpp)
        rows.append((psnr(recon[None], x), ssim(recon[None], x), size, q))
    n = len(rows)
    return {"jpeg_psnr": sum(r[0] for r in rows) / n, "jpeg_ssim": sum(r[1] for r in rows) / n,
            "jpeg_bpp": sum(r[2] for r in rows) / n, "jpeg_quality": sum(r[3] for r in rows) / n}


def mel_to_vectors(mel: torch.Tensor, f: int) -> torch.Tensor:
    """Normalised log-mel ``[B, 1, M, F]`` (F a multiple of f) -> ``[B * F/f, M * f]`` (f frames per vector)."""
    b, _, m, frames = mel.shape
    return mel[:, 0].unflatten(-1, (frames // f, f)).permute(0, 2, 1, 3).reshape(-1, m * f)


def vectors_to_mel(v: torch.Tensor, shape: tuple[int, ...], f: int) -> torch.Tensor:
    """Inverse of :func:`mel_to_vectors` for a mel batch of ``shape`` ``[B, 1, M, F]``."""
    b, _, m, frames = shape
    return v.reshape(b, frames // f, m, f).permute(0, 2, 1, 3).reshape(b, 1, m, frames)


def kmeans_mel_baseline(frontend: torch.nn.Module, train_waves: list[torch.Tensor], val_waves: list[torch.Tensor],
                        frames: int, k: int, stages: int = 1, max_vectors: int = 60_000, iters: int = 20,
                        seed: int = 0) -> dict[str, float]:
    """Log-mel L1 (dB), SI-SDR and resynthesis distance on ``val_waves`` (``[1, T]``) of residual k-means on
    ``frames``-frame log-mel vectors: ``stages`` codebooks of ``k`` centroids fitted on ``train_waves``.

    Returns ``baseline_mel_l1_db``, ``baseline_si_sdr``, ``baseline_resynth_mel_l1_db`` and
    ``baseline_bits_per_second``.
    """
    from .audio_eval import spectrogram_metrics

    hop = frontend.cfg.hop_length
    g = torch.Generator().manual_seed(seed)
    train = torch.cat([mel_to_vectors(frontend(w[None, : len(w) // (hop * frames) * hop * frames]), frames)
                       for w in train_waves if len(w) >= hop * frames])
    if len(train) > max_vectors:
        train = train[torch.randperm(len(train), generator=g)[:max_vectors]]
    books, residual = [], train
    for s in range(stages):
        km = KMeans(k, train.shape[1]).fit(residual, iters=iters, seed=seed + s)
        residual = residual - km.decode(km.predict(residual))
        books.append(km)
    sums: dict[str, float] = {}
    for i, wave in enumerate(val_waves):
        v = mel_to_vectors(frontend(wave), frames)
        recon = torch.zeros_like(v)
        for km in books:
            recon = recon + km.decode(km.predict(v - recon))
        mel = vectors_to_mel(recon, (1, 1, frontend.cfg.n_mels, v.shape[0] * frames), frames).clamp(0, 1)
        row, _ = spectrogram_metrics(frontend, wave, mel, seed=i)
        for key, val in row.items():
            sums[key] = sums.get(key, 0.0) + val
    rate = frontend.cfg.sample_rate / (hop * frames)
    return {f"baseline_{key}": val / len(val_waves) for key, val in sums.items()} | {
        "baseline_bits_per_second": rate * stages * math.log2(k)}
