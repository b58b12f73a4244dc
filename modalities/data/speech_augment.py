"""Augmentation of training speech for the vocoder (issue 25, item 2): what a deployed vocoder meets.

:class:`SpeechAugment` draws, per crop, a speed (and so pitch) change, a level change, a telephone band (down to
8 kHz and back), light white noise and reverberation from a synthetic room impulse response; each is off at its
zero setting. :class:`AugmentedCrops` wraps :class:`~modalities.data.datasets.AudioCrops` so a speed change never
pads the crop: it crops long enough first, then cuts the augmented wave to length. ``task=vocoder`` turns on the
speed change alone by default (``task.augment.speed: 0.1``, checked on held-out voices: ``docs/audio.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torchaudio.functional as AF
from torch.utils.data import Dataset

from .datasets import AudioCrops

__all__ = ["AugmentConfig", "AugmentedCrops", "SpeechAugment", "training_crops"]


@dataclass
class AugmentConfig:
    """Per-crop augmentation of the vocoder's training speech; every field at 0 turns its step off.

    Attributes:
        speed: speed and pitch factor drawn from ``1 ± speed`` (resampling by 50 -> ``round(50 / factor)``, so in
            steps of about 2%; 0.1: about ±1.7 semitones).
        gain_db: level change drawn from ``± gain_db`` dB (clamped to [-1, 1] after).
        narrowband: probability of a telephone band: resampled to 8 kHz and back (only above 8 kHz).
        noise: probability of white noise at an SNR drawn from 20-40 dB.
        reverb: probability of reverberation: a synthetic room impulse response (exponentially decaying noise,
            RT60 drawn from 0.1-0.5 s) after the direct path.
    """

    speed: float = 0.0
    gain_db: float = 0.0
    narrowband: float = 0.0
    noise: float = 0.0
    reverb: float = 0.0

    def __post_init__(self) -> None:
        if not (0 <= self.speed < 0.5 and self.gain_db >= 0):
            raise ValueError(f"augment.speed must be in [0, 0.5) and gain_db >= 0, got {self.speed}, {self.gain_db}")
        for name in ("narrowband", "noise", "reverb"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"augment.{name} is a probability in [0, 1], got {getattr(self, name)}")

    @property
    def active(self) -> bool:
        return any((self.speed, self.gain_db, self.narrowband, self.noise, self.reverb))


def _rms(w: torch.Tensor) -> torch.Tensor:
    return w.pow(2).mean().sqrt().clamp_min(1e-8)


class SpeechAugment:
    """``float[T]`` at ``sample_rate`` -> an augmented ``float[T']`` (``T' = T`` unless ``speed``: about ``T / f``).

    Random numbers come from torch's global generator, as :class:`AudioCrops`' crop positions do."""

    def __init__(self, cfg: AugmentConfig, sample_rate: int) -> None:
        self.cfg, self.sr = cfg, sample_rate

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        c, u = self.cfg, torch.rand(8).tolist()
        if c.speed:  # 50 -> 50 / f: the wave gets shorter (f > 1) and its pitch rises when played at the same rate
            w = AF.resample(w, 50, max(1, round(50 / (1 + c.speed * (2 * u[0] - 1)))))
        if u[1] < c.reverb:
            rt60 = 0.1 + 0.4 * u[2]
            t = torch.arange(int(rt60 * self.sr)) / self.sr
            ir = torch.randn(len(t)) * torch.exp(-6.9 * t / rt60) * 0.1
            ir[0] = 1.0  # the direct path
            wet = AF.fftconvolve(w, ir)[: len(w)]
            w = wet * (_rms(w) / _rms(wet))  # the same loudness as before
        if u[3] < c.narrowband and self.sr > 8000:
            w = AF.resample(AF.resample(w, self.sr, 8000), 8000, self.sr)[: len(w)]
        if u[4] < c.noise:
            snr_db = 20 + 20 * u[5]
            w = w + torch.randn_like(w) * _rms(w) / 10 ** (snr_db / 20)
        if c.gain_db:
            w = w * 10 ** (c.gain_db * (2 * u[6] - 1) / 20)
        return w.clamp(-1, 1)


class AugmentedCrops(Dataset):
    """Random crops of ``crop`` samples, augmented: items ``float[crop]``.

    Crops ``ceil(crop * (1 + speed)) + 1`` samples from ``waves`` (:class:`AudioCrops`), augments them and keeps
    the first ``crop``: a sped-up crop still fills its length with speech."""

    def __init__(self, waves: list[torch.Tensor], crop: int, cfg: AugmentConfig, sample_rate: int,
                 samples_per_epoch: int = 1024) -> None:
        self.crop, self.augment = crop, SpeechAugment(cfg, sample_rate)
        self.crops = AudioCrops(waves, math.ceil(crop * (1 + cfg.speed)) + 1, samples_per_epoch)

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, idx: int) -> torch.Tensor:
        w = self.augment(self.crops[idx])[: self.crop]
        return torch.nn.functional.pad(w, (0, self.crop - len(w)))


def training_crops(waves: list[torch.Tensor], crop: int, cfg: AugmentConfig, sample_rate: int) -> Dataset:
    """Random ``crop``-sample crops of ``waves`` (items ``float[crop]``): :class:`AugmentedCrops` when ``cfg`` turns
    any step on, else plain :class:`AudioCrops`. What ``task=vocoder`` and ``task=audio_spectrogram`` train on."""
    return AugmentedCrops(waves, crop, cfg, sample_rate) if cfg.active else AudioCrops(waves, crop)
