"""The training loop of the learned vocoder (``task=vocoder``): waveform crops in, waveform out.

:class:`VocoderTrainer` reuses :class:`modalities.training.trainer.VQTrainer` for
what every trainer here shares (optimiser, schedule, EMA, atomic resumable
checkpoints with random states, ``metrics.jsonl`` and TensorBoard, ``fit``) and
replaces the step and the validation: a batch of waveforms ``[B, T]`` becomes
its log-mel through the tokenizer's own front end (for a share of the batch,
optionally, what the tokenizer's tokens keep of it), the vocoder turns it back
into samples, and the loss is multi-resolution STFT (``auraloss``) plus log-mel
L1, with optional multi-period / multi-resolution discriminators (hinge or
LSGAN, plus feature matching) from ``trainer.disc_start``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from hydra.utils import instantiate

from models.melspec import LogMel
from models.vocoder import MelVocoder, VocoderDiscriminator, feature_matching, gan_losses

from ..eval.audio_eval import save_wav
from .trainer import TrainerConfig, VQTrainer

__all__ = ["VocoderLossConfig", "VocoderTrainer"]


@dataclass
class VocoderLossConfig:
    """What the vocoder is trained to match (``task.loss``).

    Attributes:
        stft_weight: weight of the multi-resolution STFT loss (spectral convergence + log magnitude).
        fft_sizes: its FFT sizes (hop a quarter of each, Hann window of the same size).
        mel_weight: weight of the L1 distance between the log-mels of the output and the input, in the
            front end's normalised units (1 = the whole ``max_db - min_db`` range).
        gan: ``hinge`` or ``lsgan``, used from ``trainer.disc_start`` with weight ``trainer.disc_weight``.
        feature_weight: weight of the discriminator feature-matching loss (with the GAN only).
        disc_periods: periods of the multi-period discriminator.
        disc_resolutions: FFT sizes of the multi-resolution discriminator.
        disc_channels: base width of the discriminators.
    """

    stft_weight: float = 1.0
    fft_sizes: list[int] = field(default_factory=lambda: [256, 512, 1024])
    mel_weight: float = 10.0
    gan: str = "hinge"
    feature_weight: float = 2.0
    disc_periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    disc_resolutions: list[int] = field(default_factory=lambda: [256, 512, 1024])
    disc_channels: int = 16


class VocoderTrainer(VQTrainer):
    """Trains a :class:`models.vocoder.MelVocoder` on waveform batches ``[B, T]`` (``T`` a multiple of the hop).

    Args:
        model: the vocoder.
        cfg: optimisation, checkpoints, logging; ``disc_start``/``disc_weight`` switch the GAN on.
        out_dir: the run directory.
        frontend: the log-mel front end the vocoder inverts (the tokenizer's).
        loss: the loss weights.
        reconstruct: normalised log-mel ``[B, 1, n_mels, F]`` -> the tokenizer's reconstruction of it, same
            shape (:meth:`modalities.audio.SpectrogramTokenizer.reconstruct_mel`); needed for ``decoded_share``.
        decoded_share: share of each batch (rounded to whole crops, the first ones) whose vocoder input is the
            reconstruction instead of the true mel; the targets stay the true waveform and mel.
    """

    def __init__(self, model: MelVocoder, cfg: TrainerConfig, out_dir: str | Path, frontend: LogMel,
                 loss: VocoderLossConfig | None = None,
                 reconstruct: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 decoded_share: float = 0.0) -> None:
        from ..eval.stft_loss import multi_resolution_stft_loss

        if not 0.0 <= decoded_share <= 1.0:
            raise ValueError(f"task.decoded_share must be in [0, 1], got {decoded_share}")
        if decoded_share > 0 and reconstruct is None:
            raise ValueError(f"task.decoded_share={decoded_share} trains on a tokenizer's decoded mels: "
                             "set task.tokenizer to a saved spectrogram tokenizer")
        # the base class would build an image PatchGAN (and a VGG loss): ours are built below
        super().__init__(model, replace(cfg, disc_start=-1, perceptual_weights=None), out_dir)
        self.cfg = cfg
        self.loss_cfg = loss = loss or VocoderLossConfig()
        if loss.gan not in ("hinge", "lsgan"):
            raise ValueError(f"task.loss.gan must be 'hinge' or 'lsgan', got {loss.gan!r}")
        if model.mel_cfg != frontend.cfg:
            raise ValueError("the vocoder and the front end it is trained with have different mel settings")
        self.reconstruct, self.decoded_share = reconstruct, decoded_share
        self.frontend = frontend.to(self.device)
        sizes = list(loss.fft_sizes)
        self.stft_loss = multi_resolution_stft_loss(fft_sizes=sizes, hop_sizes=[n // 4 for n in sizes],
                                                    win_lengths=sizes).to(self.device)
        if cfg.disc_start >= 0:
            self.disc = VocoderDiscriminator(tuple(loss.disc_periods), tuple(loss.disc_resolutions),
                                             loss.disc_channels).to(self.device)
            self.disc_opt = instantiate(cfg.optimizer)(self.disc.parameters())

    def losses(self, wave: torch.Tensor, mel: torch.Tensor, out: torch.Tensor) -> dict[str, torch.Tensor]:
        """The weighted reconstruction losses of ``out[B, T]`` against ``wave[B, T]`` whose log-mel is ``mel``."""
        lc = self.loss_cfg
        return {"stft": lc.stft_weight * self.stft_loss(out[:, None], wave[:, None]),
                "mel": lc.mel_weight * (self.frontend(out) - mel).abs().mean()}

    @torch.no_grad()
    def vocoder_input(self, mel: torch.Tensor) -> torch.Tensor:
        """The vocoder's input for a batch of true mels ``[B, 1, n_mels, F]``: the first
        ``round(B * decoded_share)`` replaced by the tokenizer's reconstruction."""
        n = round(mel.shape[0] * self.decoded_share)
        if n == 0:
            return mel
        return torch.cat([self.reconstruct(mel[:n]).to(mel), mel[n:]])

    def train_step(self, batch: torch.Tensor) -> dict[str, float]:
        """One optimiser step (and one discriminator step once the GAN is on) on waveforms ``batch[B, T]``."""
        self.model.train()
        wave = batch.to(self.device, non_blocking=True).float()
        with torch.no_grad():
            mel = self.frontend(wave)
        use_disc = self.disc is not None and self.step >= self.cfg.disc_start
        with self._ctx():
            out = self.forward(self.vocoder_input(mel)).wave.float()
        losses = self.losses(wave, mel, out)
        if use_disc:
            self.disc.requires_grad_(False)
            with self._ctx():
                fake_logits, fake_feats = self.disc(out)
                with torch.no_grad():
                    _, real_feats = self.disc(wave)
            losses["gan"] = self.cfg.disc_weight * gan_losses(self.loss_cfg.gan, None, fake_logits)
            losses["feature"] = self.loss_cfg.feature_weight * feature_matching(real_feats, fake_feats)
        row = self.optimizer_step(losses)
        if use_disc:
            self.disc.requires_grad_(True)
            with self._ctx():
                real_logits, _ = self.disc(wave)
                fake_logits, _ = self.disc(out.detach())
                d_loss = gan_losses(self.loss_cfg.gan, real_logits, fake_logits)
            row["loss_disc"] = self.discriminator_step(d_loss)
        self.step += 1
        return row

    @torch.inference_mode()
    def validate(self, val_items: list[torch.Tensor]) -> dict[str, float]:
        """Log-mel L1 (dB) and multi-resolution STFT loss of the vocoded held-out waveforms ``[1, T]`` (from
        their true mel); writes the first ``grid_items`` originals and outputs as WAV under
        ``samples/step_XXXXXXX/``."""
        model = self.export_model
        sums = {"mel_l1_db": 0.0, "stft": 0.0}
        folder = self.out_dir / "samples" / f"step_{self.step:07d}"
        sr = self.frontend.cfg.sample_rate
        for i, wave in enumerate(val_items):
            wave = wave.to(self.device).float()
            mel = self.frontend(wave)
            with self._ctx():
                out = model(mel).wave.float()
            sums["mel_l1_db"] += float((self.frontend(out) - mel).abs().mean()) * self.frontend.db_range
            sums["stft"] += float(self.stft_loss(out[:, None], wave[:, None]))
            if i < self.cfg.grid_items:
                save_wav(folder / f"{i:02d}_original.wav", wave[0], sr)
                save_wav(folder / f"{i:02d}_vocoder.wav", out[0], sr)
        return {f"val_{k}": v / len(val_items) for k, v in sums.items()}
