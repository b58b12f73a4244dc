"""Measuring spectrogram reconstructions, and writing them out to listen to.

:func:`spectrogram_metrics` compares a reconstructed log-mel with the input
waveform in three ways:

* ``mel_l1_db``: mean absolute log-mel difference in dB (the tokenizer's own error);
* ``si_sdr``: scale-invariant SDR (torchmetrics) of the Griffin-Lim waveform
  against the input. Griffin-Lim guesses the phase, so even the true mel scores
  low; compare with the Griffin-Lim ceiling (the same metric on the true mel);
* ``resynth_mel_l1_db``: log-mel distance between the Griffin-Lim waveform,
  analysed again, and the input: what a listener's spectrum would differ by;
* ``pesq`` (wide band) and ``stoi`` of the Griffin-Lim waveform against the input, as ``task=evaluate``
  reports them (:mod:`modalities.eval.audio_metrics`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from models.melspec import LogMel

from ..data.fileio import atomic_path
from .audio_metrics import pesq_wb, stoi

__all__ = ["save_wav", "spectrogram_metrics"]


@torch.no_grad()
def spectrogram_metrics(frontend: LogMel, wave: torch.Tensor, mel_recon: torch.Tensor, seed: int = 0,
                        mel: torch.Tensor | None = None) -> tuple[dict[str, float], torch.Tensor]:
    """Metrics of a reconstruction ``mel_recon[B, 1, M, F]`` of ``wave[B, F * hop]``, and its waveform ``[B, F * hop]``.

    Griffin-Lim starts from random phases drawn with ``seed`` so numbers repeat. ``mel`` is
    ``frontend(wave)`` when the caller already has it.
    """
    from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

    mel = frontend(wave) if mel is None else mel
    with torch.random.fork_rng(devices=[wave.device] if wave.device.type == "cuda" else []):
        torch.manual_seed(seed)
        recon = frontend.invert(mel_recon)
    n = min(recon.shape[-1], wave.shape[-1])
    sdr = scale_invariant_signal_distortion_ratio(recon[..., :n].float(), wave[..., :n].float())
    db = frontend.db_range
    sr = frontend.cfg.sample_rate
    pairs = list(zip(recon[..., :n].reshape(-1, n).float().cpu(), wave[..., :n].reshape(-1, n).float().cpu(),
                     strict=True))
    return {"mel_l1_db": float((mel_recon - mel).abs().mean() * db),
            "si_sdr": float(sdr.mean()),
            "resynth_mel_l1_db": float((frontend(recon) - mel).abs().mean() * db),
            "pesq": sum(pesq_wb(r, w, sr) for r, w in pairs) / len(pairs),
            "stoi": sum(stoi(r, w, sr) for r, w in pairs) / len(pairs)}, recon


def save_wav(path: Path, wave: torch.Tensor, sample_rate: int) -> Path:
    """Writes mono ``wave[T]`` (float, clipped to [-1, 1]) as 16-bit PCM WAV, atomically."""
    import soundfile as sf

    with atomic_path(path) as tmp:
        sf.write(str(tmp), wave.detach().float().clamp(-1, 1).cpu().numpy(), sample_rate, subtype="PCM_16",
                 format="WAV")
    return path
