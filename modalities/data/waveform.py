"""Audio input for the audio tokenizers: any accepted input -> a checked ``float[B, C, T]`` batch.

Accepts tensors ``[B, C, T]``, ``[C, T]`` or ``[T]`` (one mono clip) and numpy
arrays of the same shapes together with their ``sample_rate``, file paths (the
rate comes from the file), and lists of paths or arrays of equal length after
resampling. Integer samples are scaled (int16 by 2**15, int32 by 2**31).
Then, by :class:`AudioInputConfig`: mix to mono or keep the channels, resample
with torchaudio, and peak or loudness (ITU-R BS.1770, torchaudio) normalise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .io import load_audio

__all__ = ["NORMALIZE_MODES", "AudioInputConfig", "check_sample_rate", "prepare_audio"]

NORMALIZE_MODES = ("none", "peak", "loudness")
MIN_RATE, MAX_RATE = 1000, 768000


@dataclass
class AudioInputConfig:
    """How audio is read before tokenising.

    Attributes:
        sample_rate: rate the tokenizer works at; inputs are resampled to it.
        mono: mix channels to mono (otherwise they are kept).
        normalize: ``none``, ``peak`` (scale so the largest sample is ``peak``) or
            ``loudness`` (scale to ``loudness_lufs``, then down if that would clip; clips
            shorter than the 0.4 s BS.1770 needs are peak normalised instead).
        peak: target peak of ``peak`` normalisation.
        loudness_lufs: target integrated loudness of ``loudness`` normalisation.
    """

    sample_rate: int = 16000
    mono: bool = True
    normalize: str = "none"
    peak: float = 0.95
    loudness_lufs: float = -23.0


def check_sample_rate(sample_rate: Any, what: str = "sample_rate") -> int:
    """Returns ``sample_rate`` as an int; raises on a non-integer or a rate outside 1 kHz..768 kHz."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer, float)):
        raise ValueError(f"{what} must be an integer number of Hz, got {sample_rate!r}")
    if float(sample_rate) != int(sample_rate) or not MIN_RATE <= int(sample_rate) <= MAX_RATE:
        raise ValueError(f"unsupported {what} {sample_rate!r}: expected an integer in [{MIN_RATE}, {MAX_RATE}] Hz")
    return int(sample_rate)


def _to_float(x: torch.Tensor, what: str) -> torch.Tensor:
    if x.dtype == torch.int16:
        return x.float() / 32768.0
    if x.dtype == torch.int32:
        return x.float() / 2147483648.0
    if x.dtype == torch.uint8:
        return (x.float() - 128.0) / 128.0
    if not x.dtype.is_floating_point:
        raise ValueError(f"{what}: unsupported sample dtype {x.dtype}; use float, int16 or int32")
    return x.float()


def _one(x: Any, sample_rate: Any, what: str) -> tuple[torch.Tensor, int]:
    """One input -> (float[B, C, T], rate)."""
    if isinstance(x, (str, Path)):
        wav, sr = load_audio(x)
        return wav[None], sr
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what}: expected a tensor, numpy array or path, got {type(x).__name__}")
    if sample_rate is None:
        raise ValueError(f"{what}: pass sample_rate= with tensor or array input")
    if x.ndim == 1:
        x = x[None]
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"{what}: audio must be [B, C, T], [C, T] or [T], got shape {tuple(x.shape)}")
    return _to_float(x, what), check_sample_rate(sample_rate)


def prepare_audio(audio: Any, cfg: AudioInputConfig, sample_rate: int | None = None) -> torch.Tensor:
    """Any accepted input -> ``float[B, C, T]`` at ``cfg.sample_rate`` (``C = 1`` when ``cfg.mono``).

    Raises ``ValueError`` naming the input for zero-length audio, NaN/inf
    samples, a bad shape or dtype, an unsupported ``sample_rate``, and a batch
    whose items differ in length or channels.
    """
    target = check_sample_rate(cfg.sample_rate, "the tokenizer's sample_rate")
    items = list(audio) if isinstance(audio, (list, tuple)) else [audio]
    if not items:
        raise ValueError("encode got an empty list of audio")
    out = []
    for i, item in enumerate(items):
        what = str(item) if isinstance(item, (str, Path)) else f"audio {i}" if len(items) > 1 else "audio"
        x, sr = _one(item, sample_rate, what)
        if x.shape[-1] == 0 or x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"{what}: zero-length audio of shape {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError(f"{what}: contains NaN or inf samples")
        if cfg.mono:
            x = x.mean(1, keepdim=True)
        if sr != target:
            import torchaudio.functional as AF

            x = AF.resample(x, sr, target)
        out.append(_normalize(x, cfg, what))
    shapes = {tuple(t.shape[1:]) for t in out}
    if len(shapes) > 1:
        raise ValueError(f"audio in one batch must share channels and length after resampling, got {sorted(shapes)}; "
                         "encode them one at a time")
    return torch.cat(out)


def _normalize(x: torch.Tensor, cfg: AudioInputConfig, what: str) -> torch.Tensor:
    """Peak or loudness normalisation of each item of ``x[B, C, T]``; silent items are left as they are."""
    if cfg.normalize == "none":
        return x
    if cfg.normalize not in NORMALIZE_MODES:
        raise ValueError(f"unknown audio normalize mode {cfg.normalize!r}; expected one of {list(NORMALIZE_MODES)}")
    peak = x.abs().amax(dim=(1, 2), keepdim=True)
    if cfg.normalize == "peak":
        return torch.where(peak > 0, x * cfg.peak / peak.clamp_min(1e-12), x)
    import torchaudio.functional as AF

    rows = []
    for item, p in zip(x, peak.flatten(), strict=True):
        if p == 0 or item.shape[-1] < cfg.sample_rate * 0.4:  # BS.1770 gates 400 ms blocks
            rows.append(item if p == 0 else item * cfg.peak / p)
            continue
        lufs = float(AF.loudness(item, cfg.sample_rate))
        gain = 1.0 if not math.isfinite(lufs) else 10 ** ((cfg.loudness_lufs - lufs) / 20)
        rows.append(item * min(gain, 1.0 / float(p)))  # never push the peak above full scale
    return torch.stack(rows)
