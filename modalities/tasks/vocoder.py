"""Task ``vocoder``: train the learned mel -> waveform vocoder and score it against Griffin-Lim on held-out speech.

The vocoder inverts exactly the log-mel a :class:`~modalities.audio.SpectrogramTokenizer` produces: with
``task.tokenizer=<saved tokenizer folder>`` it takes that tokenizer's mel settings, also vocodes the
tokenizer's decoded mels, and saves the tokenizer with the vocoder in ``<run>/tokenizer/audio`` (its
``decode`` then uses it); without, it takes the ``tokenizer/audio`` group's mel settings and saves a
standalone ``<run>/vocoder`` folder (:func:`modalities.audio.load_vocoder`).

Held-out speech shares no source with training: :func:`modalities.tasks.vq.media_split` holds out whole
sources named by the folder's metadata (for the samples, ``transcripts.jsonl`` gives each clip its
sentence, so both voices of a held-out sentence are held out, and the recorded speech's metadata gives each clip its
speaker, so a held-out voice is never heard in training), or whole files in a folder without any.

Reported on the held-out clips, each method against the original waveform: PESQ (wide band), STOI, SI-SDR and
the log-mel L1 distance in dB, for the vocoder and Griffin-Lim (the tokenizer's iteration count) from the true
mel, and with ``task.tokenizer`` the same from the tokenizer's decoded mel — over all held-out clips and, when the
folder's metadata files split them into collections, per collection (``heldout_<collection>_...``: for the samples
``transcripts``, the synthesised speech, and ``recordings``, ``klettres`` and ``ktuberling``, recorded human speech
of three recording chains; :mod:`modalities.eval.collection_scores`); plus the vocoder's real-time factor
on the CPU (seconds of audio per second of compute, 10 s of held-out mel in one call) with one thread and with all
of them, and the load average when it was measured: on a machine busy with other work, the all-threads figure
waits for busy cores and can fall below the one-thread one.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from models.melspec import LogMel
from models.vocoder import MelVocoder

from ..audio import SpectrogramTokenizer, save_vocoder
from ..data.io import AUDIO_SUFFIXES
from ..data.runlog import MetricsLog
from ..data.sources import collections_of
from ..data.speech_augment import training_crops
from ..eval.audio_eval import save_wav
from ..eval.collection_scores import collection_means
from ..training.vocoder_trainer import VocoderTrainer
from .audio_spectrogram import load_waves, whole_tokens
from .vq import media_split, train_vq

log = logging.getLogger("mmtok")

__all__ = ["heldout_scores", "realtime_factor", "run"]


def griffin_lim(frontend: LogMel, mel: torch.Tensor, seed: int) -> torch.Tensor:
    """Griffin-Lim waveform of a normalised log-mel, its random initial phase drawn with ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return frontend.invert(mel)


@torch.inference_mode()
def realtime_factor(vocoder: MelVocoder, mel: torch.Tensor, threads: int, repeat: int = 3) -> float:
    """Seconds of audio per second of compute of ``vocoder(mel)`` on the CPU with ``threads`` threads (best of
    ``repeat`` after a warm-up)."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        vocoder(mel)
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            vocoder(mel)
            best = min(best, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(old)
    return mel.shape[0] * mel.shape[-1] * vocoder.hop_length / vocoder.sample_rate / best


@torch.inference_mode()
def heldout_scores(vocoder: MelVocoder, frontend: LogMel, waves: list[torch.Tensor],
                   tok: SpectrogramTokenizer | None = None, out: Path | None = None,
                   examples: int = 0, groups: list[str] | None = None) -> dict[str, float]:
    """Mean scores over ``waves`` (each ``[1, T]``, ``T`` whole mel frames, or whole tokens with ``tok``) of
    ``vocoder`` and Griffin-Lim from the true mel, and with ``tok`` from its decoded mel (``tokens_vocoder``,
    ``tokens_griffin_lim``); keys ``heldout_<method>_<metric>``. Metrics: those of
    :func:`modalities.eval.audio_metrics.audio_metrics` (PESQ wb, STOI, SI-SDR, ``mel_distance`` and
    ``stft_distance`` at their fixed settings) plus ``mel_l1_db``, the log-mel L1 in dB through the tokenizer's own
    front end (``frontend``). The first ``examples`` clips are written to ``out`` as WAV.

    ``groups`` names each clip's collection; with two or more names the means of each collection come too
    (``heldout_<group>_<method>_<metric>`` and ``heldout_<group>_clips``), from the same per-clip scores."""
    from ..eval.audio_metrics import audio_metrics

    if groups is not None and len(groups) != len(waves):
        raise ValueError(f"heldout_scores got {len(groups)} group names for {len(waves)} clips")
    sr = frontend.cfg.sample_rate
    rows: list[dict[str, float]] = []  # per clip: "<method>_<metric>" -> value
    for i, wave in enumerate(waves):
        wave = wave.cpu().float()
        mel = frontend(wave)
        outs = {"vocoder": vocoder(mel).wave, "griffin_lim": griffin_lim(frontend, mel, i)}
        if tok is not None:
            db = tok.decode_mel(tok.encode(wave, sample_rate=sr)).cpu()
            decoded = ((db - frontend.cfg.min_db) / frontend.db_range)[:, None]
            outs |= {"tokens_vocoder": vocoder(decoded).wave, "tokens_griffin_lim": griffin_lim(frontend, decoded, i)}
        ref, scores = wave[0], {}
        for name, pred in outs.items():
            pred = pred[0, : ref.shape[-1]]
            row = audio_metrics(pred, ref, sr)
            row.pop("seconds")
            row["mel_l1_db"] = float((frontend(pred[None]) - mel).abs().mean()) * frontend.db_range
            scores |= {f"{name}_{k}": float(v) for k, v in row.items()}
            if out is not None and i < examples:
                save_wav(out / f"{i:02d}_{name}.wav", pred, sr)
        if out is not None and i < examples:
            save_wav(out / f"{i:02d}_original.wav", ref, sr)
        rows.append(scores)

    return collection_means(rows, groups, "heldout_", ndigits=4)  # e.g. synthesised and recorded speech apart


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Trains the vocoder, scores it and Griffin-Lim on held-out speech, saves it; returns the metrics."""
    t = cfg.task
    tok = SpectrogramTokenizer.from_pretrained(t.tokenizer) if t.tokenizer else None
    if tok is not None:
        tok.to("cpu")
        mel_cfg, audio_cfg = tok.frontend.cfg, tok.audio_cfg
    else:
        if "mel" not in cfg.tokenizer.audio:
            raise ValueError("task=vocoder needs a spectrogram tokenizer's mel settings: tokenizer/audio is a "
                             "pretrained codec; choose tokenizer/audio=mel_f4 (or tiny) or set task.tokenizer")
        tcfg = OmegaConf.to_object(cfg.tokenizer.audio)
        mel_cfg, audio_cfg = tcfg.mel, tcfg.audio
    sr, hop = mel_cfg.sample_rate, mel_cfg.hop_length
    unit = tok.samples_per_token if tok is not None else hop  # held-out clips: whole tokens, so encode pads nothing
    folder, train_files, val_files = media_split(cfg, "audio", "audio", AUDIO_SUFFIXES)
    crop = whole_tokens(t.crop_seconds, sr, hop, "task.crop_seconds")
    val_len = whole_tokens(t.val_seconds, sr, unit, "task.val_seconds")
    train_waves = load_waves(train_files, audio_cfg)
    val_waves = [w[: min(len(w) // unit * unit, val_len)][None] for w in load_waves(val_files, audio_cfg)]
    if any(w.shape[-1] == 0 for w in val_waves):
        raise ValueError(f"a held-out file in {folder} is shorter than {unit} samples")

    model = MelVocoder(OmegaConf.to_object(t.model), mel_cfg)
    tr = OmegaConf.to_object(cfg.trainer)
    tr.max_steps = t.max_steps if t.max_steps is not None else tr.max_steps
    tr.optimizer = {**tr.optimizer, "lr": t.lr, "betas": list(t.betas)}
    frontend = LogMel(mel_cfg)
    log.info("vocoder task: %d training files, %d held out; %s parameters; mel hop %d, n_fft %d; %d steps",
             len(train_files), len(val_files), f"{sum(p.numel() for p in model.parameters()):,}", hop, model.n_fft,
             tr.max_steps)
    trainer = VocoderTrainer(model, tr, out_dir, frontend, OmegaConf.to_object(t.loss),
                             tok.reconstruct_mel if tok is not None else None, t.decoded_share)
    if tok is not None:
        tok.to(trainer.device)  # reconstruct_mel runs where the training batches are
    augment = OmegaConf.to_object(t.augment)  # AugmentConfig: its checks ran
    data = training_crops(train_waves, crop, augment, sr)
    trainer, result = train_vq(cfg, out_dir, model, data, val_waves, trainer=trainer)

    vocoder = trainer.export_model.cpu().eval()
    if tok is not None:
        tok.to("cpu")
    frontend = frontend.cpu()
    metrics = {"task": "vocoder", "parameters": sum(p.numel() for p in vocoder.parameters()),
               "train_files": len(train_files), "val_files": len(val_files), "mel_hop": hop, "n_fft": vocoder.n_fft,
               "griffin_lim_iters": mel_cfg.griffin_lim_iters, **result}
    metrics |= heldout_scores(vocoder, frontend, val_waves, tok, out_dir / "heldout", t.examples,
                              collections_of(val_files, folder))
    bench = frontend(torch.cat([w[0] for w in val_waves])[None][..., : 10 * sr // hop * hop])
    threads = torch.get_num_threads()
    metrics["vocoder_rtf_1_thread"] = round(realtime_factor(vocoder, bench, 1), 1)
    metrics["vocoder_rtf_all_threads"] = round(realtime_factor(vocoder, bench, threads), 1)
    metrics["cpu_threads"] = threads
    metrics["cpu_load_average"] = round(os.getloadavg()[0], 2)  # other work on the machine slows the threads down

    if tok is not None:
        path = tok.set_vocoder(vocoder).save_pretrained(out_dir / "tokenizer" / "audio")
    else:
        path = save_vocoder(vocoder, out_dir / "vocoder")
    metrics["saved_to"] = str(path)
    MetricsLog(out_dir).write(summary=True, **metrics)
    return metrics
