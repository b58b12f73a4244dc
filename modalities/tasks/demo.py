"""Task ``demo`` (the default of ``python train.py``): the whole pipeline on the bundled samples.

1. trains the text, image and audio tokenizers at debug sizes (each stage is
   ``python train.py <task.text|image|audio overrides>`` run in ``<run dir>/<stage>``);
2. joins them in one :class:`~modalities.multimodal.MultimodalTokenizer` (``tokenizer/``);
3. pre-tokenises ``data.documents`` into shards (``tokens/``);
4. trains a tiny transformer on the mixed stream (``lm/``, ``task=lm``);
5. asks it for an image after a caption and speech after a sentence, with
   grammar-constrained decoding, and decodes both;
6. writes ``report/``: reconstruction grids and WAVs, the loss curves (PNG),
   the generated media and ``metrics.md``, the table also printed at the end.

A stage finished in the same run directory (its ``result.json`` exists) is
reused, and an interrupted one resumes from its checkpoint:
``python train.py hydra.run.dir=outputs/demo`` twice trains once.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, open_dict

from models.transformer import Transformer

from ..audio import SpectrogramTokenizer
from ..data.fileio import atomic_write_text
from ..data.samples import data_root
from ..eval.audio_eval import save_wav
from ..eval.report import copy_latest_samples, metrics_table, plot_losses
from ..external import from_config, is_external
from ..generate import generate, segment_prefix
from ..image import ImageTokenizer
from ..multimodal import Audio, MultimodalTokenizer, Text, read_manifest
from ..shards import pretokenize
from ..text import TextTokenizer

log = logging.getLogger("mmtok")
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose_stage(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """The config ``python train.py <overrides>`` would see, with this run's data, seed, device and progress bars."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():  # inside train.py
        sub = compose(config_name="config", overrides=overrides)
    else:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            sub = compose(config_name="config", overrides=overrides)
    with open_dict(sub):
        sub.data, sub.seed, sub.show_progress = cfg.data, cfg.seed, cfg.show_progress
        sub.trainer.device = cfg.trainer.device
    return sub


def run_stage(cfg: DictConfig, out_dir: Path, name: str, overrides: list[str]) -> dict[str, Any]:
    """Runs one stage in ``out_dir/name`` (or reuses it when finished there); returns its metrics."""
    from . import run_task

    folder = out_dir / name
    done = folder / "result.json"
    if done.is_file():
        log.info("demo: reusing the %s stage finished in %s", name, folder)
        return json.loads(done.read_text())
    log.info("demo: %s stage: python train.py %s", name, " ".join(overrides))
    t0 = time.perf_counter()
    resume = ["trainer.resume=true"] if (folder / "checkpoints").is_dir() else []  # an interrupted stage goes on
    metrics = run_task(compose_stage(cfg, [*overrides, *resume]), folder)
    metrics = {**metrics, "stage_seconds": round(time.perf_counter() - t0, 1)}
    atomic_write_text(done, json.dumps(metrics, indent=2, default=str) + "\n")
    return metrics


def build_tokenizer(out_dir: Path, image_size: int, external: dict[str, Any] | None = None) -> MultimodalTokenizer:
    """The trained tokenizers in one vocabulary, images resized and centre-cropped to ``image_size``; a pretrained
    tokenizer in ``external`` (``tokenizer/image=emu3``, ``tokenizer/audio=encodec``) stands in for its stage's."""
    external = external or {}
    if "image" in external:
        image = external["image"]
    else:
        trained = ImageTokenizer.from_pretrained(out_dir / "image" / "tokenizer" / "image")
        image = ImageTokenizer(trained.model, "resize", image_size)
    vocoded = out_dir / "vocoder" / "tokenizer" / "audio"  # the vocoder stage's copy, with the vocoder inside
    audio = external.get("audio") or SpectrogramTokenizer.from_pretrained(
        vocoded if vocoded.is_dir() else out_dir / "audio" / "tokenizer" / "audio")
    mm = MultimodalTokenizer({"text": TextTokenizer.from_pretrained(out_dir / "text" / "tokenizer" / "text"),
                              "image": image, "audio": audio})
    mm.save_pretrained(out_dir / "tokenizer")
    return mm


def generate_samples(cfg: DictConfig, mm: MultimodalTokenizer, model: Transformer, image_size: int,
                     report: Path) -> dict[str, Any]:
    """Caption -> image and sentence -> speech with constrained decoding; writes the media into ``report``."""
    g, reg = cfg.task.generate, mm.registry
    image, audio = mm.tokenizers["image"], mm.tokenizers["audio"]
    side = image_size // image.downsample
    shapes = {"image": (side, side), "audio": (audio.num_codebooks, max(1, round(g.audio_seconds * audio.frame_rate)))}
    gen = torch.Generator().manual_seed(cfg.seed)
    out: dict[str, Any] = {}
    for media, prompt in (("image", g.image_prompt), ("audio", g.audio_prompt)):
        prompt_ids = torch.cat([mm.encode([Text(prompt)], bos=True).ids, segment_prefix(reg, media, shapes[media])])
        t0 = time.perf_counter()
        ids = generate(model, reg, prompt_ids, shapes, max_new_tokens=g.max_new_tokens, temperature=g.temperature,
                       top_k=g.top_k, top_p=g.top_p, generator=gen)
        seconds = time.perf_counter() - t0
        parts = mm.decode(ids)  # always decodes: the grammar closed every segment
        made = [p for p in parts if not isinstance(p, str)]
        if media == "image":
            from torchvision.utils import save_image

            path = report / "generated_image.png"
            save_image(made[0], path)
        else:
            path = save_wav(report / "generated_speech.wav", made[0].data, made[0].sample_rate)
        out[f"generated_{media}"] = str(path)
        out[f"generated_{media}_tokens_per_s"] = (len(ids) - len(prompt_ids)) / seconds
        (report / f"generated_{media}.json").write_text(json.dumps(
            {"prompt": prompt, "ids": ids.tolist(), "text": [p for p in parts if isinstance(p, str)],
             "media": [type(p).__name__ if isinstance(p, Audio) else list(p.shape) for p in made]}) + "\n")
    return out


def _pick(metrics: dict[str, Any], prefix: str, keys: tuple[str, ...]) -> dict[str, Any]:
    return {f"{prefix}_{k.removeprefix('val_')}": metrics[k] for k in keys if k in metrics}


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Runs the stages; writes ``report/``; returns the summary metrics (also ``report/metrics.md``)."""
    t, t0 = cfg.task, time.perf_counter()
    docs_path = data_root(cfg.data.root) / cfg.data.documents
    if not docs_path.is_file():
        raise FileNotFoundError(f"data.documents: {docs_path} does not exist (a JSONL manifest of documents, "
                                "one list of parts per line, e.g. samples/documents.jsonl)")
    external = {name: from_config(cfg.tokenizer[name]) for name in ("image", "audio") if is_external(cfg.tokenizer[name])}
    stages = {name: run_stage(cfg, out_dir, name, [*t[name], *([f"trainer.max_steps={t.steps[name]}"]
                                                               if name in t.steps else [])])
              for name in ("text", "image", "audio") if name not in external}
    if "audio" in stages and t.steps.vocoder > 0:  # the audio tokenizer again, now with a learned vocoder
        stages["vocoder"] = run_stage(cfg, out_dir, "vocoder", [
            *t.vocoder, f"task.tokenizer={out_dir / 'audio' / 'tokenizer' / 'audio'}",
            f"task.max_steps={t.steps.vocoder}"])
    mm = build_tokenizer(out_dir, t.image_size, external)
    docs = list(read_manifest(docs_path))
    tokens = pretokenize(docs, mm, out_dir / "tokens", t.shard_docs, num_workers=t.num_workers,
                         show_progress=cfg.show_progress)
    lm = run_stage(cfg, out_dir, "lm", ["task=lm", *t.lm, f"task.data={out_dir / 'tokens'}",
                                        f"trainer.max_steps={t.steps.lm}"])
    report = out_dir / "report"
    report.mkdir(parents=True, exist_ok=True)
    model = Transformer.from_pretrained(out_dir / "lm" / "model").eval()
    generated = generate_samples(cfg, mm, model, t.image_size, report)
    for name in ("image", "audio"):
        if name in stages:
            copy_latest_samples(out_dir / name, report, f"{name}_reconstructions")
    if "vocoder" in stages:  # held-out speech: original, vocoder and Griffin-Lim, from the true mel and from tokens
        shutil.copytree(out_dir / "vocoder" / "heldout", report / "vocoder_examples", dirs_exist_ok=True)
    curves = {f"{name} tokenizer": (out_dir / name, ["loss", "loss_recon"]) for name in ("image", "audio")
              if name in stages}
    plot_losses({**curves, "transformer": (out_dir / "lm", ["loss", *(f"loss_{n}" for n in mm.tokenizers),
                                                            "loss_special"])}, report / "loss_curves.png")
    metrics = {"task": "demo",
               **_pick(stages["text"], "text", ("vocab_size", "bytes_per_token", "roundtrip_exact")),
               **_pick(stages.get("image", {}), "image", ("steps", "val_psnr", "val_ssim", "val_usage")),
               **_pick(stages.get("audio", {}), "audio", ("steps", "val_mel_l1_db", "val_si_sdr", "val_usage")),
               **_pick(stages.get("vocoder", {}), "vocoder", (
                   "steps", *(f"heldout_{m}_{k}" for m in ("tokens_vocoder", "tokens_griffin_lim")
                              for k in ("pesq", "stoi")), "vocoder_rtf_1_thread")),
               **{f"{name}_tokenizer": repr(tok) for name, tok in external.items()},
               "documents": tokens.get("documents"), "tokens": tokens.get("tokens"), "skipped": tokens.get("skipped"),
               **{f"tokens_{k}": v for k, v in tokens.get("tokens_per_modality", {}).items()},
               **({"tokenize_tokens_per_s": tokens["tokens_per_s"]} if tokens.get("shards_written")
                  else {"tokenize": "reused"}),
               **_pick(lm, "lm", ("params", "steps", "loss", *(f"loss_{n}" for n in mm.tokenizers), "tokens_per_s")),
               **generated, "total_seconds": round(time.perf_counter() - t0, 1), "report": str(report)}
    metrics_table(metrics, report / "metrics.md")
    return metrics
