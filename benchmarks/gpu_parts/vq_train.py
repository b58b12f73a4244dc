"""Part ``vq_train``: training steps/s and peak memory of mmtok's own image, video and spectrogram tokenizers,
fp32 against bf16 autocast against bf16 + ``torch.compile``, through the project's trainer
(:class:`~modalities.training.trainer.VQTrainer` and its ``precision``/``compile`` options; the spectrogram's
:class:`~modalities.training.audio_trainer.SpectrogramTrainer` computes the log-mel on the device).

Each model is built from the Hydra config the task would compose (``task=image`` / ``video`` /
``audio_spectrogram`` with the tokenizer and quantiser below; ``--smoke``: the ``*_debug`` experiments at toy
crops), so the figures are those of ``python train.py task=...``. The three settings of a modality start from
the same weights and are stepped in alternation on one random batch (speed does not depend on the pixels); peak
memory is each setting's own (weights, gradients, optimiser state, activations: :class:`.common.PeakMemory`)."""

from __future__ import annotations

import dataclasses

import torch

from .common import REPO, Context, PeakMemory, alternate, free_memory, row

# modality -> (Hydra overrides at the real size, at the smoke size)
CONFIGS = {
    "image": (["task=image", "tokenizer/image=f8", "quantizer=vq", "task.batch_size=16", "task.crop_size=256"],
              ["experiment=image_debug", "task.batch_size=2", "task.crop_size=32"]),
    "video": (["task=video", "tokenizer/video=causal_f8", "quantizer=fsq", "task.batch_size=4", "task.crop_size=128",
               "task.clip_frames=9"],
              ["experiment=video_debug", "task.batch_size=1", "task.crop_size=32", "task.clip_frames=5"]),
    "audio": (["task=audio_spectrogram", "tokenizer/audio=mel_f4", "quantizer=rvq", "task.batch_size=16",
               "task.crop_seconds=2.56"],
              ["experiment=audio_debug", "task.batch_size=2", "task.crop_seconds=0.64"]),
}
SETTINGS = ("fp32", "bf16", "bf16+compile")


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from modalities.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return hydra_compose("config", overrides)


def build(modality: str, cfg, setting: str, ctx: Context, out_dir):
    """The trainer of ``setting`` for ``modality`` and one batch in the form the task feeds it."""
    from omegaconf import OmegaConf

    from modalities.audio import SpectrogramTokenizer
    from modalities.tasks.audio_spectrogram import whole_tokens
    from modalities.tasks.vq import quantizer_config
    from modalities.training.audio_trainer import SpectrogramTrainer
    from modalities.training.trainer import VQTrainer
    from models.vqae import VQAutoencoder
    from models.vqae3d import CausalVQAutoencoder

    tcfg = dataclasses.replace(OmegaConf.to_object(cfg.trainer), device=str(ctx.device),
                               precision="fp32" if setting == "fp32" else "bf16", tensorboard=False,
                               compile="compile" in setting and ctx.compile_backend == "inductor")
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    b, crop = cfg.task.batch_size, cfg.task.get("crop_size")
    if modality == "image":
        model = VQAutoencoder(OmegaConf.to_object(cfg.tokenizer.image), quantizer_config(cfg))
        trainer = VQTrainer(model, tcfg, out_dir)
        batch = torch.rand(b, 3, crop, crop, generator=gen)
    elif modality == "video":
        model = CausalVQAutoencoder(OmegaConf.to_object(cfg.tokenizer.video), quantizer_config(cfg))
        to_model = lambda x: x.transpose(1, 2)  # noqa: E731 ([B, T, C, H, W] -> [B, C, T, H, W], as the task)
        trainer = VQTrainer(model, tcfg, out_dir, layout=to_model, unlayout=to_model)
        batch = torch.rand(b, cfg.task.clip_frames, 3, crop, crop, generator=gen)
    else:
        acfg = OmegaConf.to_object(cfg.tokenizer.audio)
        tok = SpectrogramTokenizer.from_configs(acfg.autoencoder, quantizer_config(cfg), acfg.mel, acfg.audio)
        trainer = SpectrogramTrainer(tok.model, tcfg, out_dir, tok.frontend)
        n = whole_tokens(cfg.task.crop_seconds, tok.sample_rate, tok.samples_per_token, "task.crop_seconds")
        batch = (torch.rand(b, n, generator=gen) - 0.5) * 0.2
    if "compile" in setting and not tcfg.compile:  # the CPU smoke run: dynamo without inductor's code generation
        trainer.forward = torch.compile(trainer.forward, backend=ctx.compile_backend)
    return trainer, batch.to(ctx.device)


def measure(modality: str, ctx: Context) -> tuple[list[dict], dict]:
    real, smoke = CONFIGS[modality]
    cfg = compose(smoke if ctx.smoke else real)
    steps = 1 if ctx.smoke else 5  # optimiser steps per timed call
    trainers, batches, peak = {}, {}, {}
    for setting in SETTINGS:  # each built, compiled and warmed alone, so its peak memory is its own
        with PeakMemory(ctx.device) as mem:
            trainer, batch = build(modality, cfg, setting, ctx, ctx.work / f"vq_{modality}_{setting}")
            for _ in range(2):  # k-means init of the codebook, compilation, autotuning
                trainer.train_step(batch)
        trainers[setting], batches[setting], peak[setting] = trainer, batch, mem.mib

    def steps_of(setting: str):
        def go() -> None:
            for _ in range(steps):
                trainers[setting].train_step(batches[setting])
        return go

    best = alternate({s: steps_of(s) for s in SETTINGS}, ctx.device, ctx.rounds, warmup=0)
    per_s = {s: steps / best[s] for s in SETTINGS}
    batch = cfg.task.batch_size
    shape = list(batches["fp32"].shape)
    rows = [row(f"{modality} tokenizer training", s, per_s[s], "steps/s", None if s == "fp32" else "fp32",
                None if s == "fp32" else per_s[s] / per_s["fp32"], peak_mib=None if peak[s] is None else round(peak[s]),
                items_per_s=round(per_s[s] * batch, 2)) for s in SETTINGS]
    params = sum(p.numel() for p in trainers["fp32"].model.parameters())
    detail = {"overrides": real if not ctx.smoke else smoke, "batch_shape": shape, "params_m": round(params / 1e6, 2),
              "steps_per_call": steps, "compile_backend": ctx.compile_backend}
    return rows, detail


def run(ctx: Context) -> dict:
    rows, detail = [], {}
    for modality in CONFIGS:
        got, detail[modality] = measure(modality, ctx)
        rows += got
        free_memory()
    return {"rows": rows, "modalities": detail}
