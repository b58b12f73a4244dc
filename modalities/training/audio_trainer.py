"""The VQ training loop for spectrogram tokenizers: batches are waveforms, validation listens.

:class:`SpectrogramTrainer` is :class:`modalities.training.trainer.VQTrainer` with the
log-mel front end as its input layout (waveform crops ``[B, T]`` -> normalised
log-mel ``[B, 1, n_mels, F]``) and its own validation: log-mel L1 in dB,
SI-SDR of the Griffin-Lim waveform, codebook usage and perplexity, over all
held-out clips and per collection of the data folder
(:mod:`modalities.eval.collection_scores`); WAV files of originals and
reconstructions and a PNG of the mels go to ``samples/step_XXXXXXX/``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from models.melspec import LogMel
from models.vqae import VQModel

from ..eval.audio_eval import save_wav, spectrogram_metrics
from ..eval.collection_scores import collection_means
from ..eval.metrics import CodeStats
from .trainer import TrainerConfig, VQTrainer

__all__ = ["SpectrogramTrainer"]


class SpectrogramTrainer(VQTrainer):
    """Trains a spectrogram VQ model on waveform batches ``[B, T]`` (``T`` a multiple of the token length).

    ``groups`` names the collection of each held-out clip that :meth:`validate` gets (for a folder of files,
    :func:`modalities.data.sources.collections_of`); with two or more names validation reports each collection's
    means too (``val_<collection>_<metric>``, ``val_<collection>_clips``)."""

    def __init__(self, model: VQModel, cfg: TrainerConfig, out_dir: str | Path, frontend: LogMel,
                 groups: list[str] | None = None) -> None:
        super().__init__(model, cfg, out_dir)
        self.frontend = frontend.to(self.device)
        self.layout = self.frontend
        self.groups = groups

    @torch.inference_mode()
    def validate(self, val_items: list[torch.Tensor]) -> dict[str, float]:
        """Metrics over ``val_items`` (waveforms ``[1, T]``), and per collection of ``groups``; writes WAVs and a
        mel PNG of the first few."""
        model = self.export_model
        stats = CodeStats(model.quantizer.codebook_size)
        rows: list[dict[str, float]] = []
        shown = []
        folder = self.out_dir / "samples" / f"step_{self.step:07d}"
        for i, wave in enumerate(val_items):
            wave = wave.to(self.device)
            mel = self.frontend(wave)
            with self._ctx():
                out = model(mel * 2 - 1)
            stats.update(out.codes)
            mel_recon = ((out.recon.float() + 1) / 2).clamp(0, 1)
            row, recon = spectrogram_metrics(self.frontend, wave, mel_recon, seed=i, mel=mel)
            rows.append(row)
            if i < self.cfg.grid_items:
                sr = self.frontend.cfg.sample_rate
                save_wav(folder / f"{i:02d}_original.wav", wave[0], sr)
                save_wav(folder / f"{i:02d}_reconstruction.wav", recon[0], sr)
                shown.append((mel[0].flip(-2).cpu(), mel_recon[0].flip(-2).cpu()))
        self.save_grid(shown)
        return collection_means(rows, self.groups, "val_") | {f"val_{k}": v for k, v in stats.result().items()}
