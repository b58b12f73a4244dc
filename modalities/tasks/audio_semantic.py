"""Task ``audio_semantic``: fit k-means units on frame features of a folder of speech; report usage and rates.

Reported on the held-out files (whole sources, :func:`.vq.media_split`), over all of them (``val_*``) and, for a
folder whose metadata files split it into collections, over each collection (``val_<collection>_*``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..data.io import AUDIO_SUFFIXES
from ..data.sources import collections_of
from ..data.waveform import AudioInputConfig
from ..eval.audio_eval import save_wav
from ..eval.collection_scores import by_collection
from ..semantic import SemanticAudioTokenizer
from ..training.trainer import resolve_device
from .audio_spectrogram import load_waves
from .vq import encode_throughput, finish, media_split

log = logging.getLogger("mmtok")


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Fits on the training files, evaluates on the held-out ones, saves to ``out_dir/tokenizer/audio``."""
    folder, train_files, val_files = media_split(cfg, "audio", "audio", AUDIO_SUFFIXES)
    tcfg = cfg.tokenizer.audio_semantic
    audio = AudioInputConfig(**OmegaConf.to_container(tcfg.audio, resolve=True))
    tok = SemanticAudioTokenizer(OmegaConf.to_container(tcfg.features, resolve=True), tcfg.k, audio, tcfg.dedup)
    tok.to(resolve_device(cfg.trainer.device))
    log.info("audio_semantic task: %s on %d training files, %d held out", tok, len(train_files), len(val_files))
    t0 = time.perf_counter()
    fit = tok.fit(train_files, iters=cfg.task.kmeans_iters, batch_size=cfg.task.kmeans_batch_size, seed=cfg.seed)
    metrics = {"task": "audio_semantic", "k": tok.codebook_size, "train_files": len(train_files),
               "val_files": len(val_files), "train_frames": int(fit["frames"]), "fit_seconds":
               round(time.perf_counter() - t0, 2), "train_inertia": fit["inertia"], "train_usage": fit["usage"],
               **{f"val_{k}": v for k, v in tok.evaluate(val_files).items()}}
    for name, files in by_collection(val_files, collections_of(val_files, folder)).items():  # each collection apart
        metrics[f"val_{name}_clips"] = len(files)
        metrics |= {f"val_{name}_{k}": v for k, v in tok.evaluate(files).items()}
    waves = load_waves(val_files[:1], audio)
    units, durations = tok.encode_dedup(waves[0], sample_rate=audio.sample_rate)[0]
    save_wav(out_dir / "samples" / "00_original.wav", waves[0], audio.sample_rate)
    if hasattr(tok.extractor, "to_audio"):
        save_wav(out_dir / "samples" / "00_from_units.wav", tok.decode(units, durations[None])[0], audio.sample_rate)
    batch = waves[0][None].expand(4, -1)
    per_s = encode_throughput(tok, batch, sample_rate=audio.sample_rate)
    metrics["encode_realtime_factor"] = round(per_s * batch.shape[-1] / audio.sample_rate, 1)
    return finish(out_dir, tok, metrics)
