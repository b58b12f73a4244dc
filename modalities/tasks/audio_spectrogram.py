"""Task ``audio_spectrogram``: train the spectrogram VQ tokenizer on a folder of speech; compare with k-means on mels.

Held-out clips are whole sources of the folder's metadata (:func:`.vq.media_split`; for the samples a sentence with
both its voices, a recorded speaker with all its clips); the validation metrics (``val_*``) are means over them and,
for a folder whose metadata files split it into collections, over each collection too (``val_<collection>_*``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from ..audio import SpectrogramTokenizer
from ..data.io import AUDIO_SUFFIXES
from ..data.sources import collections_of
from ..data.speech_augment import training_crops
from ..data.tars import AudioCrop, is_tar_spec
from ..data.waveform import AudioInputConfig, prepare_audio
from ..eval.audio_eval import spectrogram_metrics
from ..eval.baselines import kmeans_mel_baseline
from ..eval.collection_scores import collection_means
from ..training import distributed
from ..training.audio_trainer import SpectrogramTrainer
from .vq import ddp_task, encode_throughput, finish, media_split, quantizer_config, rank_summary, tar_input, train_vq

log = logging.getLogger("mmtok")


def load_waves(files: list[Path], audio: AudioInputConfig) -> list[torch.Tensor]:
    """Mono waveforms ``[T]`` at ``audio.sample_rate``, one per file."""
    return [prepare_audio(p, audio)[0].mean(0) for p in files]


class _HeldOutWave:
    """A held-out clip cut to whole tokens, at most ``max_len`` samples: ``(float[C, T], rate)`` -> float[1, T']."""

    def __init__(self, audio: AudioInputConfig, samples_per_token: int, max_len: int) -> None:
        self.whole, self.n, self.max_len = AudioCrop(audio, None), samples_per_token, max_len

    def __call__(self, decoded: tuple[torch.Tensor, int]) -> torch.Tensor:
        w = self.whole(decoded)
        if len(w) < self.n:
            raise ValueError(f"shorter than one token ({self.n} samples)")
        return w[: min(len(w) // self.n * self.n, self.max_len)][None]


def whole_tokens(seconds: float, sample_rate: int, samples_per_token: int, what: str) -> int:
    n = int(seconds * sample_rate) // samples_per_token * samples_per_token
    if n == 0:
        raise ValueError(f"{what}={seconds} s is shorter than one token ({samples_per_token / sample_rate:g} s)")
    return n


BASELINE_TAR_CLIPS = 64  # training clips the k-means baseline is fitted on with tar input


@ddp_task
def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Trains, validates and saves to ``out_dir/tokenizer/audio``; returns the final metrics
    (under ``torchrun``: see :func:`.vq.ddp_task`)."""
    augment = OmegaConf.to_object(cfg.task.augment)  # AugmentConfig: its checks ran
    if augment.active and is_tar_spec(cfg.data.audio):
        raise ValueError(f"task.augment works on a folder of audio, not on tar shards (data.audio={cfg.data.audio}): "
                         "set task.augment.* to 0 or give a folder")
    tars = tar_input(cfg, "audio", "audio", AUDIO_SUFFIXES)
    if tars is None:
        folder, train_files, val_files = media_split(cfg, "audio", "audio", AUDIO_SUFFIXES)
    tcfg = OmegaConf.to_object(cfg.tokenizer.audio)
    tok = SpectrogramTokenizer.from_configs(tcfg.autoencoder, quantizer_config(cfg), tcfg.mel, tcfg.audio)
    sr, n = tok.sample_rate, tok.samples_per_token
    crop = whole_tokens(cfg.task.crop_seconds, sr, n, "task.crop_seconds")
    val_len = whole_tokens(cfg.task.val_seconds, sr, n, "task.val_seconds")
    if tars is None:
        train_waves = load_waves(train_files, tcfg.audio)
        val_waves = [w[: min(len(w) // n * n, val_len)][None] for w in load_waves(val_files, tcfg.audio)]
        if any(w.shape[-1] == 0 for w in val_waves):
            raise ValueError(f"a held-out file in {folder} is shorter than one token ({n} samples)")
        log.info("audio_spectrogram task: %d training files, %d held out (%s); %g tokens/s, %g bits/s",
                 len(train_files), len(val_files), ", ".join(p.name for p in val_files), tok.frame_rate,
                 tok.bits_per_second)
        data = training_crops(train_waves, crop, augment, sr)
        counts = {"train_files": len(train_files), "val_files": len(val_files)}
        groups = collections_of(val_files, folder)  # validation also reports each collection's means
    else:  # held-out clips shorter than one token are skipped with a warning
        val_waves = tars.held_out(_HeldOutWave(tcfg.audio, n, val_len))
        data = tars.stream(AudioCrop(tcfg.audio, crop))
        counts = tars.counts() | {"val_items": len(val_waves)}
        groups = None
    trainer = SpectrogramTrainer(tok.model, OmegaConf.to_object(cfg.trainer), out_dir, tok.frontend, groups)
    trainer, result = train_vq(cfg, out_dir, tok.model, data, val_waves, trainer=trainer)
    if not distributed.is_main():
        return rank_summary("audio_spectrogram", trainer, result)
    if tars is not None and cfg.task.baseline:
        train_waves = tars.training_sample(AudioCrop(tcfg.audio, None), BASELINE_TAR_CLIPS)
    tok = SpectrogramTokenizer(trainer.export_model, tcfg.mel, tcfg.audio)
    q = tok.model.quantizer
    metrics = {"task": "audio_spectrogram", "quantizer": q.cfg.kind, "codebook_size": q.codebook_size,
               "num_codebooks": q.num_codebooks, "tokens_per_second": tok.frame_rate,
               "bits_per_second": tok.bits_per_second, **counts, **result}
    frontend = tok.frontend.cpu()
    ceiling = []
    for i, w in enumerate(val_waves):  # the true mel through Griffin-Lim: the best any mel tokenizer can score
        mel = frontend(w)
        ceiling.append(spectrogram_metrics(frontend, w, mel, seed=i, mel=mel)[0])
    metrics |= collection_means([{k: r[k] for k in ("si_sdr", "resynth_mel_l1_db")} for r in ceiling], groups,
                                "griffin_lim_ceiling_")  # over all clips, and per collection beside val_<collection>_*
    if cfg.task.baseline:
        metrics |= kmeans_mel_baseline(frontend, train_waves, val_waves, tok.downsample, q.codebook_size,
                                       q.num_codebooks, seed=cfg.seed)
    tok.to(trainer.device)
    batch = val_waves[0].expand(4, -1)
    per_s = encode_throughput(tok, batch, sample_rate=sr)
    metrics["encode_realtime_factor"] = round(per_s * batch.shape[-1] / sr, 1)
    return finish(out_dir, tok, metrics)
