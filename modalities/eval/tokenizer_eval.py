"""Reconstruction quality of a tokenizer (or a classical codec) on a set of media, in the field's metrics.

Every function here takes already-loaded media and returns one row (a dict) of means:

* images ``float[3, H, W]`` in [0, 1] -> ``psnr`` (8-bit, per image then mean), ``ssim``, ``lpips``, ``rfid``
  with ``rfid_images`` (rFID on fewer than ~5k images is biased upwards: compare only at equal counts) and
  ``bits_per_pixel``;
* waveforms ``float[T]`` with their sample rate -> ``pesq``, ``stoi``, ``si_sdr``, ``mel_distance``,
  ``stft_distance`` and ``bits_per_second``; semantic units -> units/s before and after dedup, cluster use;
* videos ``float[T, 3, H, W]`` -> per-frame ``psnr``/``ssim``, ``temporal_error`` and ``bits_per_pixel`` (per
  pixel of every frame).

A metric whose weights were not given is the string ``"not computed (set eval.X)"``, never a number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torchaudio.functional as AF
from tqdm.auto import tqdm

from .audio_metrics import audio_metrics
from .metrics import CodeStats, image_scores, video_metrics
from .perceptual import FIDMetric, LPIPSMetric

__all__ = ["code_bits", "evaluate_audio", "evaluate_images", "evaluate_semantic", "evaluate_videos",
           "resampled", "score_images"]

PAD_CODE = -1  # ragged audio codec batches (modalities.external.audio_codecs)


def code_bits(codes: torch.Tensor, codebook_size: int) -> float:
    """Bits to store ``codes`` (any shape; ``-1`` padding not counted) at ``log2(codebook_size)`` bits a code."""
    return int((codes != PAD_CODE).sum()) * math.log2(codebook_size)


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]} if rows else {}


def _batches(items: Sequence[torch.Tensor], batch_size: int) -> list[list[int]]:
    """Indices of ``items`` grouped by shape into batches of at most ``batch_size``, in first-seen order."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, x in enumerate(items):
        by_shape.setdefault(tuple(x.shape), []).append(i)
    return [idx[j:j + batch_size] for idx in by_shape.values() for j in range(0, len(idx), batch_size)]


@torch.no_grad()
def score_images(originals: Sequence[torch.Tensor], recons: Sequence[torch.Tensor], bits: float,
                 lpips: LPIPSMetric | None = None, fid: FIDMetric | None = None) -> dict[str, Any]:
    """Means over pairs ``originals[i]``, ``recons[i]`` (``float[3, H, W]``): ``psnr`` (8-bit), ``ssim``,
    ``ciede2000`` and ``colour_shift`` (:func:`.metrics.image_scores`), and with the metrics given ``lpips`` and
    ``rfid`` (+ ``rfid_images``), or their "not computed" reason; ``bits_per_pixel`` is ``bits`` (the total) over
    all pixels."""
    scores: list[dict[str, float]] = []
    lp = []
    for x, y in zip(originals, recons, strict=True):
        scores.append({k: float(v[0]) for k, v in image_scores(y[None], x[None]).items()})
        if lpips is not None and lpips.available:
            lp.append(float(lpips(y[None], x[None])[0]))
    pixels = sum(x.shape[-1] * x.shape[-2] for x in originals)
    row: dict[str, Any] = _mean(scores) | {"bits_per_pixel": bits / pixels, "items": len(originals)}
    if lpips is not None:
        row["lpips"] = sum(lp) / len(lp) if lp else lpips.reason
    if fid is not None and fid.available:
        fid.reset()
        for x, y in zip(originals, recons, strict=True):
            fid.update(x[None], real=True)
            fid.update(y[None], real=False)
        res = fid.compute()
        row["rfid"], row["rfid_images"] = res["fid"], res["n_real"]
    elif fid is not None:
        row["rfid"] = fid.reason
    return row


@torch.no_grad()
def evaluate_images(tok: Any, images: Sequence[torch.Tensor], batch_size: int = 8, lpips: LPIPSMetric | None = None,
                    fid: FIDMetric | None = None, progress: bool = True, desc: str = "images") -> dict[str, Any]:
    """Encodes and decodes ``images`` (``float[3, H, W]``, sides multiples of ``tok.downsample``) in batches of
    equal shape; returns :func:`score_images`' row plus ``codebook_usage`` (share of codes used)."""
    recons: list[torch.Tensor | None] = [None] * len(images)
    bits, stats = 0.0, CodeStats(tok.codebook_size)
    for idx in tqdm(_batches(images, batch_size), desc=desc, disable=not progress):
        codes = tok.encode(torch.stack([images[i] for i in idx]))
        out = tok.decode(codes).float().cpu()
        bits += code_bits(codes, tok.codebook_size)
        stats.update(codes[codes != PAD_CODE])
        for j, i in enumerate(idx):
            recons[i] = out[j]
    row = score_images(images, recons, bits, lpips, fid)  # type: ignore[arg-type]
    return row | {"codebook_usage": stats.result()["usage"]}


@torch.no_grad()
def evaluate_videos(tok: Any, videos: Sequence[torch.Tensor], progress: bool = True, desc: str = "videos"
                    ) -> dict[str, Any]:
    """Encodes and decodes each video ``float[T, 3, H, W]`` (one at a time: lengths differ); mean per-video
    :func:`~modalities.eval.metrics.video_metrics` and bits per pixel per frame."""
    rows, bits, pixels = [], 0.0, 0
    for v in tqdm(videos, desc=desc, disable=not progress):
        codes = tok.encode(v[None])
        recon = tok.decode(codes)[0].float().cpu()[: len(v)]
        rows.append(video_metrics(recon, v[: len(recon)]))
        bits += code_bits(codes, tok.codebook_size)
        pixels += v.shape[0] * v.shape[-1] * v.shape[-2]
    return _mean(rows) | {"bits_per_pixel": bits / pixels, "items": len(videos)}


def resampled(wave: torch.Tensor, sr: int, target: int) -> torch.Tensor:
    """``wave[T]`` at ``sr`` -> at ``target`` Hz (itself when equal)."""
    return wave if sr == target else AF.resample(wave, sr, target)


@torch.no_grad()
def evaluate_audio(tok: Any, clips: Sequence[tuple[torch.Tensor, int]], progress: bool = True,
                   desc: str = "audio") -> dict[str, Any]:
    """Encodes and decodes each clip ``(wave[T], sample_rate)``; compares the decoded waveform with the clip
    resampled to the tokenizer's rate. Returns mean :func:`~modalities.eval.audio_metrics.audio_metrics`,
    ``bits_per_second`` and ``codebook_usage``."""
    rows, bits, seconds = [], 0.0, 0.0
    stats = CodeStats(tok.codebook_size)
    for wave, sr in tqdm(clips, desc=desc, disable=not progress):
        ref = resampled(wave, sr, tok.sample_rate)
        codes = tok.encode(ref, sample_rate=tok.sample_rate)
        recon = tok.decode(codes, length=len(ref)).float().cpu().reshape(-1)
        n = min(len(recon), len(ref))
        rows.append(audio_metrics(recon[:n], ref[:n], tok.sample_rate))
        bits += code_bits(codes, tok.codebook_size)
        stats.update(codes[codes != PAD_CODE])
        seconds += len(ref) / tok.sample_rate
    return _mean(rows) | {"bits_per_second": bits / seconds, "codebook_usage": stats.result()["usage"],
                          "items": len(clips)}


@torch.no_grad()
def evaluate_semantic(tok: Any, clips: Sequence[tuple[torch.Tensor, int]], progress: bool = True) -> dict[str, Any]:
    """Semantic units (no waveform comes back): units/s before and after run-length dedup, the share of
    clusters used, and bits/s of the deduplicated stream (``log2(k)`` bits a unit; durations not counted)."""
    from ..semantic import run_length_dedup

    units = dedup = 0
    seconds = 0.0
    stats = CodeStats(tok.codebook_size)
    for wave, sr in tqdm(clips, desc="semantic", disable=not progress):
        codes = tok.encode(wave, sample_rate=sr).reshape(-1).cpu()
        units += len(codes)
        dedup += len(run_length_dedup(codes)[0])
        stats.update(codes)
        seconds += len(wave) / sr
    bits = math.log2(tok.codebook_size)
    return {"units_per_second": units / seconds, "dedup_units_per_second": dedup / seconds,
            "cluster_use": stats.result()["usage"], "bits_per_second": dedup / seconds * bits,
            "bits_per_second_no_dedup": units / seconds * bits, "items": len(clips)}
