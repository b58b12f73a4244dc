"""Waveform reconstruction metrics of the audio literature, each on a well-kept implementation.

Every function compares one mono reconstruction ``pred`` with its reference
``target``, both float ``[T]`` (or ``[1, T]``) in [-1, 1] at ``sample_rate``,
and returns a float:

====================  =========================================================  =================
metric                implementation and convention                              better
====================  =========================================================  =================
``pesq``              wide-band PESQ (ITU-T P.862.2, ``pesq`` package, mode       higher (1.0-4.64)
                      "wb") at 16 kHz; other rates are resampled first
                      (torchaudio). Needs at least 0.25 s and some speech.
``stoi``              STOI (``pystoi``, classic, not extended); pystoi            higher (0-1)
                      resamples to 10 kHz and drops silent frames itself.
                      Needs about 0.4 s of non-silent audio (30 frames).
``si_sdr``            scale-invariant SDR in dB (torchmetrics, no mean            higher
                      removal): ``10 log10(|a s|^2 / |a s - y|^2)`` with ``a``
                      the optimal scale of the target ``s``.
``mel_distance``      mean absolute difference of log-mel magnitudes in dB:       lower
                      torchaudio ``MelSpectrogram`` at ``sample_rate``,
                      n_fft 1024, hop 256, Hann window 1024, 80 Slaney mel
                      bands from 0 Hz to ``sample_rate / 2``, magnitude
                      (power 1), ``20 log10(max(mel, 1e-5))``. Compare only at
                      equal sample rates.
``stft_distance``     ``auraloss.freq.MultiResolutionSTFTLoss`` with its          lower
                      defaults (FFT 1024/2048/512, hops 120/240/50, windows
                      600/1200/240): spectral convergence + log-magnitude L1,
                      averaged over the three resolutions.
====================  =========================================================  =================

:func:`audio_metrics` computes them all after trimming both waves to the
shorter length. Lengths must match for the single metrics; they raise a
``ValueError`` naming the bad input (shape, length, sample rate, too short).
"""

from __future__ import annotations

import numbers
import warnings

import torch

__all__ = ["MEL_SETTINGS", "PESQ_RATE", "audio_metrics", "mel_distance", "pesq_wb", "si_sdr", "stft_distance",
           "stoi"]

PESQ_RATE = 16_000
"""Wide-band PESQ works at 16 kHz."""

MEL_SETTINGS = {"n_fft": 1024, "hop_length": 256, "win_length": 1024, "n_mels": 80, "f_min": 0.0,
                "power": 1.0, "norm": "slaney", "mel_scale": "slaney", "floor": 1e-5}
"""The log-mel of :func:`mel_distance` (``f_max`` is half the sample rate)."""


def _wave(x: torch.Tensor, name: str, what: str) -> torch.Tensor:
    """``[T]`` or ``[1, T]`` -> float ``[T]`` on the CPU."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1:
        raise ValueError(f"{what}: {name} must be a mono waveform [T] (or [1, T]), got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{what}: {name} is empty")
    return x.detach().float().cpu()


def _pair(pred: torch.Tensor, target: torch.Tensor, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    p, t = _wave(pred, "pred", what), _wave(target, "target", what)
    if len(p) != len(t):
        raise ValueError(f"{what}: pred and target lengths differ ({len(p)} vs {len(t)} samples); "
                         "audio_metrics() trims both to the shorter one")
    return p, t


def _rate(sample_rate: int, what: str) -> int:
    ok = isinstance(sample_rate, numbers.Integral) or (isinstance(sample_rate, float) and sample_rate.is_integer())
    if not ok or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise ValueError(f"{what}: sample_rate must be a positive whole number of Hz, got {sample_rate!r}")
    return int(sample_rate)


def pesq_wb(pred: torch.Tensor, target: torch.Tensor, sample_rate: int) -> float:
    """Wide-band PESQ (MOS-LQO, 1.0 to about 4.64) of ``pred[T]`` against ``target[T]``, resampled to 16 kHz."""
    import numpy as np
    from pesq import BufferTooShortError, NoUtterancesError, pesq

    p, t = _pair(pred, target, "pesq_wb")
    sr = _rate(sample_rate, "pesq_wb")
    if sr != PESQ_RATE:
        import torchaudio.functional as AF

        p, t = AF.resample(p, sr, PESQ_RATE), AF.resample(t, sr, PESQ_RATE)
    if len(t) < PESQ_RATE // 4:
        raise ValueError(f"pesq_wb: clip too short: {len(t) / PESQ_RATE:.3f} s at 16 kHz, PESQ needs at least 0.25 s")
    try:
        return float(pesq(PESQ_RATE, t.numpy().astype(np.float32), p.numpy().astype(np.float32), "wb"))
    except BufferTooShortError:
        raise ValueError(f"pesq_wb: clip too short ({len(t)} samples at 16 kHz)") from None
    except NoUtterancesError:
        raise ValueError("pesq_wb: no speech detected in the target (silent or too quiet clip)") from None


def stoi(pred: torch.Tensor, target: torch.Tensor, sample_rate: int) -> float:
    """STOI (0 to 1) of ``pred[T]`` against ``target[T]`` via ``pystoi``."""
    from pystoi import stoi as _stoi

    p, t = _pair(pred, target, "stoi")
    sr = _rate(sample_rate, "stoi")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        value = float(_stoi(t.double().numpy(), p.double().numpy(), sr, extended=False))
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        raise ValueError(f"stoi: clip too short or too silent ({len(t) / sr:.3f} s): STOI needs 30 frames "
                         "(about 0.4 s) of non-silent audio")
    return value


def si_sdr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Scale-invariant SDR in dB of ``pred[T]`` against ``target[T]`` (torchmetrics, ``zero_mean=False``)."""
    from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

    p, t = _pair(pred, target, "si_sdr")
    return float(scale_invariant_signal_distortion_ratio(p.double(), t.double()))


def _log_mel(x: torch.Tensor, sample_rate: int) -> torch.Tensor:
    import torchaudio

    s = MEL_SETTINGS
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate, n_fft=s["n_fft"], hop_length=s["hop_length"], win_length=s["win_length"],
        n_mels=s["n_mels"], f_min=s["f_min"], f_max=sample_rate / 2, power=s["power"], norm=s["norm"],
        mel_scale=s["mel_scale"])
    return 20 * torch.log10(mel(x).clamp(min=s["floor"]))


def mel_distance(pred: torch.Tensor, target: torch.Tensor, sample_rate: int) -> float:
    """Mean absolute log-mel difference in dB of ``pred[T]`` and ``target[T]`` (settings in :data:`MEL_SETTINGS`)."""
    p, t = _pair(pred, target, "mel_distance")
    sr = _rate(sample_rate, "mel_distance")
    return float((_log_mel(p, sr) - _log_mel(t, sr)).abs().mean())


def stft_distance(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Multi-resolution STFT distance (``auraloss``, defaults) of ``pred[T]`` and ``target[T]``; needs >= 1025 samples."""
    from .stft_loss import multi_resolution_stft_loss

    p, t = _pair(pred, target, "stft_distance")
    if len(t) <= 1024:
        raise ValueError(f"stft_distance: clip too short ({len(t)} samples); the 2048-point STFT needs > 1024")
    with torch.no_grad():
        return float(multi_resolution_stft_loss()(p[None, None], t[None, None]))


def audio_metrics(pred: torch.Tensor, target: torch.Tensor, sample_rate: int) -> dict[str, float]:
    """All five metrics of ``pred[T]`` against ``target[T]`` after trimming both to the shorter length.

    Returns ``{"pesq", "stoi", "si_sdr", "mel_distance", "stft_distance", "seconds"}``
    (``seconds``: the compared length).
    """
    p, t = _wave(pred, "pred", "audio_metrics"), _wave(target, "target", "audio_metrics")
    sr = _rate(sample_rate, "audio_metrics")
    n = min(len(p), len(t))
    p, t = p[:n], t[:n]
    return {"pesq": pesq_wb(p, t, sr), "stoi": stoi(p, t, sr), "si_sdr": si_sdr(p, t),
            "mel_distance": mel_distance(p, t, sr), "stft_distance": stft_distance(p, t), "seconds": n / sr}
