"""Classic baselines the learned tokenizers must beat at the same bit budget.

``kmeans_patch_baseline``: k-means vector quantisation of raw ``p x p`` pixel
patches (p = the tokenizer's downsample factor, k = its codebook size), fitted
on the training images and measured on the held-out ones.

``kmeans_mel_baseline``: residual k-means on log-mel frames, for the spectrogram
tokenizers. The classical codecs (JPEG, WebP, Opus, H.264) live in
:mod:`modalities.eval.codecs`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from models.kmeans import KMeans

from ..data.datasets import center_crop_multiple
from .metrics import image_scores

__all__ = ["fit_patch_kmeans", "image_to_patches", "kmeans_mel_baseline", "kmeans_patch_baseline",
           "patches_to_image"]


def image_to_patches(x: torch.Tensor, p: int, stride: int | None = None) -> torch.Tensor:
    """``[B, C, H, W]`` (H, W multiples of p) -> ``[B * H/p * W/p, C * p * p]``; with ``stride`` < p, the
    overlapping patches at that step instead."""
    return F.unfold(x, p, stride=stride or p).transpose(1, 2).reshape(-1, x.shape[1] * p * p)


def patches_to_image(patches: torch.Tensor, shape: tuple[int, ...], p: int) -> torch.Tensor:
    """Inverse of :func:`image_to_patches` for an image batch of ``shape`` ``[B, C, H, W]``."""
    b, c, h, w = shape
    cols = patches.reshape(b, (h // p) * (w // p), c * p * p).transpose(1, 2)
    return F.fold(cols, (h, w), p, stride=p)


def fit_patch_kmeans(train_images: Sequence[torch.Tensor], patch: int, k: int, max_patches: int = 60_000,
                     iters: int = 20, seed: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    """k-means on raw ``patch x patch`` pixel patches of ``train_images`` (``float[3, H, W]``); returns the
    quantiser ``float[3, H, W] -> float[3, H, W]`` (sides multiples of ``patch``) at ``log2(k) / patch**2`` bpp.

    The patches tile each image; when the tiles number fewer than ``k`` (large patches, many codes), patches at
    half-patch steps are fitted instead (about four times as many, overlapping), so a 16x16 codebook of 16384
    codes can be fitted on a few dozen photographs."""
    crops = [center_crop_multiple(x, patch)[None] for x in train_images]
    train = torch.cat([image_to_patches(x, patch) for x in crops])
    if len(train) < k and patch > 1:
        train = torch.cat([image_to_patches(x, patch, stride=patch // 2) for x in crops])
    if len(train) > max_patches:
        train = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:max_patches]]
    km = KMeans(k, train.shape[1]).fit(train, iters=iters, seed=seed)

    def quantise(x: torch.Tensor) -> torch.Tensor:
        return patches_to_image(km.decode(km.predict(image_to_patches(x[None], patch))), (1, *x.shape), patch)[0]

    return quantise


def kmeans_patch_baseline(train_images: list[torch.Tensor], val_images: list[torch.Tensor], patch: int, k: int,
                          max_patches: int = 60_000, iters: int = 20, seed: int = 0,
                          per_item: list[dict[str, float]] | None = None) -> dict[str, float]:
    """The per-image scores of :func:`..metrics.image_scores` (8-bit PSNR, SSIM, CIEDE2000, mean-colour shift),
    then the mean, on ``val_images`` (each ``[1, 3, H, W]`` in [0, 1]) of k-means on raw pixel patches
    (:func:`fit_patch_kmeans` on ``train_images``).

    Returns ``baseline_psnr``, ``baseline_ssim``, ``baseline_ciede2000``, ``baseline_colour_shift`` and
    ``baseline_bpp`` (``log2(k) / patch**2``). A list given as ``per_item`` receives one dict of scores per
    image, in order (for per-source figures).
    """
    quantise = fit_patch_kmeans([x[0] if x.ndim == 4 else x for x in train_images], patch, k, max_patches, iters,
                                seed)
    xs = [v for x in val_images for v in (x if x.ndim == 4 else x[None])]
    rows = [{k: float(v[0]) for k, v in image_scores(quantise(x)[None], x[None]).items()} for x in xs]
    if per_item is not None:
        per_item.extend(rows)
    return {f"baseline_{k}": sum(r[k] for r in rows) / len(rows) for k in rows[0]} | {
        "baseline_bpp": math.log2(k) / patch**2}


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
