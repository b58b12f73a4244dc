"""The VQ training loop for spectrogram tokenizers: batches are waveforms, validation listens.

:class:`SpectrogramTrainer` is :class:`modalities.training.trainer.VQTrainer` with the
log-mel front end as its input layout (waveform crops ``[B, T]`` -> normalised
log-mel ``[B, 1, n_mels, F]``) and its own validation: log-mel L1 in dB,
SI-SDR of the Griffin-Lim waveform, codebook usage and perplexity; WAV files of
originals and reconstructions and a PNG of the mels go to
``samples/step_XXXXXXX/``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from models.melspec import LogMel
from models.vqae import VQModel

from ..eval.audio_eval import save_wav, spectrogram_metrics
from ..eval.metrics import CodeStats
from .trainer import TrainerConfig, VQTrainer

__all__ = ["SpectrogramTrainer"]


class SpectrogramTrainer(VQTrainer):
    """Trains a spectrogram VQ model on waveform batches ``[B, T]`` (``T`` a multiple of the token length)."""

    def __init__(self, model: VQModel, cfg: TrainerConfig, out_dir: str | Path, frontend: LogMel) -> None:
        super().__init__(model, cfg, out_dir)
        self.frontend = frontend.to(self.device)
        self.layout = self.frontend

    @torch.inference_mode()
    def validate(self, val_items: list[torch.Tensor]) -> dict[str, float]:
        """Metrics over ``val_items`` (waveforms ``[1, T]``); writes WAVs and a mel PNG of the first few."""
        model = self.export_model
        stats = CodeStats(model.quantizer.codebook_size)
        sums: dict[str, float] = {}
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
            for k, v in row.items():
                sums[k] = sums.get(k, 0.0) + v
            if i < self.cfg.grid_items:
                sr = self.frontend.cfg.sample_rate
                save_wav(folder / f"{i:02d}_original.wav", wave[0], sr)
                save_wav(folder / f"{i:02d}_reconstruction.wav", recon[0], sr)
                shown.append((mel[0].flip(-2).cpu(), mel_recon[0].flip(-2).cpu()))
        self.save_grid(shown)
        n = len(val_items)
        return {f"val_{k}": v / n for k, v in sums.items()} | {f"val_{k}": v for k, v in stats.result().items()}
