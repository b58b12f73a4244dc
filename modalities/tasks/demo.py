"""Task ``demo`` (the default of ``python train.py``): the whole pipeline on the bundled samples.

1. trains the text, image and audio tokenizers at debug sizes (each stage is
   ``python train.py <task.text|image|audio overrides>`` run in ``<run dir>/<stage>``);
2. joins them in one :class:`~modalities.multimodal.MultimodalTokenizer` (``tokenizer/``);
3. pre-tokenises ``data.documents`` into shards (``tokens/``);
4. trains a tiny transformer on the mixed stream (``lm/``, ``task=lm``);
5. asks it for an image after a caption and speech after a sentence, with
   grammar-constrained decoding, and decodes both;
6. writes ``report/``: ``index.html`` (open it in a browser: held-out images and speech beside their
   reconstructions with each item's scores, audio players for the original, the vocoder and Griffin-Lim,
   a rate-distortion plot against JPEG and WebP, the generated image and speech, the loss curves and the
   metrics), the same figures as PNGs, the WAVs, and ``metrics.md``, the table also printed at the end.

A stage finished in the same run directory (its ``result.json`` exists) is
reused, and an interrupted one resumes from its checkpoint, when it was started with the same settings
(``stage.json``, :func:`run_stage`): ``python train.py hydra.run.dir=outputs/demo`` twice trains once.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from models.transformer import Transformer

from ..audio import SpectrogramTokenizer
from ..data.fileio import atomic_write_text
from ..data.io import AUDIO_SUFFIXES, IMAGE_SUFFIXES
from ..data.samples import data_file
from ..data.sources import read_sources, source_of
from ..data.tars import is_tar_spec
from ..eval.audio_eval import save_wav
from ..eval.report import (
    HtmlReport,
    audio_examples,
    copy_latest_samples,
    image_examples,
    loss_figure,
    metrics_table,
)
from ..eval.viz import plot_rd, save_figure, show_mels, show_reconstructions
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
        from ..config import register_configs

        register_configs()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            sub = compose(config_name="config", overrides=overrides)
    with open_dict(sub):
        sub.data, sub.seed, sub.show_progress = cfg.data, cfg.seed, cfg.show_progress
        sub.trainer.device = cfg.trainer.device
    return sub


def stage_record(cfg: DictConfig, out_dir: Path, overrides: list[str]) -> dict[str, Any]:
    """What a stage folder's name stands for: its command-line overrides (``out_dir`` written as ``<run>``, so a
    copied run folder still matches), with the data and seed it takes from ``cfg`` (the device is left out: a
    stage may resume on another one). Saved as ``stage.json``."""
    return {"overrides": sorted(o.replace(str(out_dir), "<run>") for o in overrides), "seed": cfg.seed,
            "data": OmegaConf.to_container(cfg.data, resolve=True)}


def _check_stage(folder: Path, record: dict[str, Any]) -> None:
    """Raises when ``folder`` was started with settings other than ``record``; a folder from before records
    were kept (no ``stage.json``) is reused with a warning."""
    saved_path = folder / "stage.json"
    if not saved_path.is_file():
        log.warning("demo: %s holds no stage.json (made before stage settings were recorded); reusing it on its "
                    "name alone", folder)
        return
    saved = json.loads(saved_path.read_text())
    diff = {k: (saved.get(k), v) for k, v in record.items() if saved.get(k) != v}
    if diff:
        lines = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in diff.items())
        raise ValueError(f"stage folder {folder} was started with other settings ({lines}); delete it or run "
                         "into another folder rather than mixing the two")


def steps_overrides(key: str, steps: int) -> list[str]:
    """A tokenizer or vocoder stage's step count (``key=steps``) and one validation, at its last step: the
    held-out scores at the end are what the report shows, and a validation half way cost the audio and vocoder
    stages about 16 s and 20 s on 2 cores."""
    return [f"{key}={steps}", f"trainer.val_every={steps}"]


def run_stage(cfg: DictConfig, out_dir: Path, name: str, overrides: list[str]) -> dict[str, Any]:
    """Runs one stage in ``out_dir/name`` (or reuses it when finished there); returns its metrics.

    The folder keeps ``stage.json`` (:func:`stage_record`); a finished or interrupted stage is reused or resumed
    only when it was started with the same overrides, data and seed, and a clear ``ValueError`` says which
    differ otherwise. A changed yaml default is not seen: the record holds what the command line said."""
    from . import run_task

    folder = out_dir / name
    done = folder / "result.json"
    record = stage_record(cfg, out_dir, overrides)
    if done.is_file() or (folder / "checkpoints").is_dir():
        _check_stage(folder, record)
    if done.is_file():
        log.info("demo: reusing the %s stage finished in %s", name, folder)
        return json.loads(done.read_text())
    log.info("demo: %s stage: python train.py %s", name, " ".join(overrides))
    t0 = time.perf_counter()
    resume = ["trainer.resume=true"] if (folder / "checkpoints").is_dir() else []  # an interrupted stage goes on
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "stage.json").is_file():
        atomic_write_text(folder / "stage.json", json.dumps(record, indent=2, default=str) + "\n")
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


def held_out_files(cfg: DictConfig, stage: str, key: str, default: str, suffixes: tuple[str, ...],
                   n: int) -> list[Path]:
    """Up to ``n`` files the ``stage`` held out of ``data.<key>`` (its split, by source: never a training file),
    one per source first; ``[]`` for tar input (its held-out shard is read by the stage itself)."""
    from .vq import media_split

    if n <= 0 or is_tar_spec(cfg.data[key]):
        return []
    overrides = list(cfg.task[stage]) if stage in cfg.task else [f"task={stage}"]
    folder, _, val = media_split(compose_stage(cfg, overrides), key, default, suffixes)
    sources = read_sources(folder)
    first: dict[str, Path] = {}
    for f in val:
        first.setdefault(source_of(f, folder, sources), f)
    return (list(first.values()) + [f for f in val if f not in first.values()])[:n]


def held_out_items(run_dir: str | Path | None = None, n: int = 4) -> dict[str, list[Path]]:
    """Up to ``n`` held-out ``image``, ``audio`` and ``video`` files of a demo run (the notebook shows these): the
    splits of the run's own config (``run_dir/.hydra/config.yaml``, written by ``train.py``) or, without one, of
    the default config; ``[]`` for tar input."""
    from hydra import compose, initialize_config_dir

    from ..config import register_configs
    from ..data.io import VIDEO_SUFFIXES

    saved = Path(run_dir) / ".hydra" / "config.yaml" if run_dir is not None else None
    register_configs()
    if saved is not None and saved.is_file():
        cfg = OmegaConf.load(saved)
    else:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="config")
    return {"image": held_out_files(cfg, "image", "images", "images", IMAGE_SUFFIXES, n),
            "audio": held_out_files(cfg, "audio", "audio", "audio", AUDIO_SUFFIXES, n),
            "video": held_out_files(cfg, "video", "videos", "video", VIDEO_SUFFIXES, n)}


def write_report(cfg: DictConfig, out_dir: Path, mm: MultimodalTokenizer, stages: dict[str, Any],
                 metrics: dict[str, Any], losses: Any) -> Path:
    """``report/index.html``: held-out images and speech beside their reconstructions with each item's scores,
    players for the original, the vocoder and Griffin-Lim, rate and distortion against JPEG/WebP, the generated
    media, the loss curves and the metrics. Also rewrites ``image_reconstructions.png`` and
    ``audio_reconstructions.png`` as labelled figures of the same held-out items."""
    from ..eval.codecs import image_codec_baseline
    from ..eval.tokenizer_eval import evaluate_images

    t, report = cfg.task, out_dir / "report"
    n = int(t.get("report_items", 4))
    page = HtmlReport(report, "mmtok demo report", f"Run folder: {out_dir}. Every image and clip below comes from a "
                      "source the tokenizers held out of training; the generated media come from the transformer.")
    image_tok, audio_tok = mm.tokenizers["image"], mm.tokenizers["audio"]

    files = held_out_files(cfg, "image", "images", "images", IMAGE_SUFFIXES, n)
    if files:
        items = [(f.name, image_tok.to_batch(f)[0].cpu()) for f in files]
        examples = image_examples({"image tokenizer": image_tok}, items)
        page.section("Images: held-out photographs", "Each row is a photograph from a source the image tokenizer "
                     f"never trained on, resized to {t.image_size} pixels as in the documents. Look at edges, text "
                     "and fine texture: that is where a codebook of this size loses detail first. PSNR (dB, higher is "
                     "better) and SSIM (1 is identical) are under each reconstruction.")
        page.image_examples(examples)
        grid = show_reconstructions([e.original for e in examples],
                                    [e.reconstructions["image tokenizer"] for e in examples],
                                    titles=[e.name for e in examples])
        save_figure(grid, report / "image_reconstructions.png")
        originals = [e.original for e in examples]
        points = [{"name": "image tokenizer"} | evaluate_images(image_tok, originals, progress=False)]
        for codec in ("jpeg", "webp"):
            points += [{"name": codec.upper()} | image_codec_baseline(originals, bpp, codec)
                       for bpp in sorted({points[0]["bits_per_pixel"], 0.25, 0.5, 1.0})]
        rd = plot_rd(points, "bits_per_pixel", "psnr", title=f"{len(originals)} held-out images: PSNR vs rate")
        page.section("Rate and distortion: images", "The tokenizer is one point (its bits per pixel are fixed by the "
                     "codebook and the downsampling); JPEG and WebP are curves through several qualities on the same "
                     "images. A point above a codec's curve beats it at that rate. python train.py task=evaluate "
                     "does this on whole folders, with k-means, LPIPS and rFID.")
        page.figure(rd, "PSNR (dB) against bits per pixel on the held-out images above")
        save_figure(rd, report / "rd_image_psnr.png")

    clips = held_out_files(cfg, "audio", "audio", "audio", AUDIO_SUFFIXES, n)
    if clips:
        from ..data.io import load_audio

        waves = [(f.name, *load_audio(f)) for f in clips]
        examples = audio_examples({"audio tokenizer": audio_tok}, [(name, w.mean(0), sr) for name, w, sr in waves])
        page.section("Speech: held-out clips", "Each row is a clip (its first 4 seconds) from a speaker or "
                     "recording the audio tokenizer never trained on. Compare the spectrograms for smeared "
                     "harmonics and lost high frequencies, then listen: the learned vocoder and Griffin-Lim decode "
                     "the same tokens; Griffin-Lim's phase guess sounds metallic. PESQ (1 to 4.5) and STOI (0 to 1): "
                     "higher is better.")
        page.audio_examples(examples)
        if examples:
            first = examples[0].mel_geometry
            mels = show_mels([e.mels[0] for e in examples], [e.mels[1] for e in examples],
                             titles=[e.name for e in examples], **first)
            save_figure(mels, report / "audio_reconstructions.png")

    held = report / "vocoder_examples"
    if "vocoder" in stages and held.is_dir():
        page.section("Vocoder: from the true mel and from tokens", "The vocoder stage's held-out clips: the "
                     "learned vocoder and Griffin-Lim from the clip's own log-mel (the ceiling of each) and from the "
                     "tokenizer's codes (what the demo plays). Means over all held-out clips are in the table.")
        order = ("original", "vocoder", "griffin_lim", "tokens_vocoder", "tokens_griffin_lim")
        names = {"original": "original", "vocoder": "vocoder (true mel)", "griffin_lim": "Griffin-Lim (true mel)",
                 "tokens_vocoder": "vocoder (tokens)", "tokens_griffin_lim": "Griffin-Lim (tokens)"}
        for idx in sorted({p.name.split("_")[0] for p in held.glob("*.wav")}):
            found = [(names[k], held / f"{idx}_{k}.wav") for k in order if (held / f"{idx}_{k}.wav").is_file()]
            page.add(f"<h3>held-out clip {idx}</h3>" + page.players(found))
        page.key_values({k: v for k, v in stages["vocoder"].items() if k.startswith("heldout_")})

    page.section("Generated by the transformer", "A caption asked for an image and a sentence asked for speech; "
                 "constrained decoding keeps every segment well formed. A tiny model trained for minutes gives "
                 "textures and babble, not a cat or words: this shows the pipeline, not a generator.")
    for media in ("image", "audio"):
        meta = json.loads((report / f"generated_{media}.json").read_text())
        if media == "image":
            page.add(f"<p>prompt: <i>{_esc(meta['prompt'])}</i></p>"
                     + page.image(report / "generated_image.png", "generated image", width=256))
        else:
            page.add(f"<p>prompt: <i>{_esc(meta['prompt'])}</i></p>"
                     + page.players([("generated speech", report / "generated_speech.wav")]))
    page.section("Loss curves", "Training loss per step of each stage (log scale); the transformer's loss is split "
                 "by the modality of the predicted token.")
    page.figure(losses, "training losses")
    page.section("Metrics", "The run's summary, as in metrics.md.")
    page.key_values(metrics)
    return page.write()


def _esc(text: str) -> str:
    import html

    return html.escape(text)


def _pick(metrics: dict[str, Any], prefix: str, keys: tuple[str, ...]) -> dict[str, Any]:
    return {f"{prefix}_{k.removeprefix('val_')}": metrics[k] for k in keys if k in metrics}


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Runs the stages; writes ``report/``; returns the summary metrics (also ``report/metrics.md``)."""
    t, t0 = cfg.task, time.perf_counter()
    docs_path = data_file(cfg.data.root, cfg.data.documents, "data.documents",
                          "a JSONL manifest of documents, one list of parts per line, e.g. samples/documents.jsonl")
    external = {name: from_config(cfg.tokenizer[name]) for name in ("image", "audio") if is_external(cfg.tokenizer[name])}
    stages = {name: run_stage(cfg, out_dir, name, [*t[name], *(steps_overrides("trainer.max_steps", t.steps[name])
                                                               if name in t.steps else [])])
              for name in ("text", "image", "audio") if name not in external}
    if "audio" in stages and t.steps.vocoder > 0:  # the audio tokenizer again, now with a learned vocoder
        stages["vocoder"] = run_stage(cfg, out_dir, "vocoder", [
            *t.vocoder, f"task.tokenizer={out_dir / 'audio' / 'tokenizer' / 'audio'}",
            *steps_overrides("task.max_steps", t.steps.vocoder)])
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
    losses = loss_figure({**curves, "transformer": (out_dir / "lm", ["loss", *(f"loss_{n}" for n in mm.tokenizers),
                                                                    "loss_special"])})
    save_figure(losses, report / "loss_curves.png")
    metrics = {"task": "demo",
               **_pick(stages["text"], "text", ("vocab_size", "bytes_per_token", "roundtrip_exact")),
               **_pick(stages.get("image", {}), "image", ("steps", "val_psnr", "val_ssim", "val_ciede2000",
                                                          "val_colour_shift", "val_usage")),
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
    page = write_report(cfg, out_dir, mm, stages, metrics, losses)
    log.info("demo: the report is %s (open it in a browser)", page)
    return metrics
