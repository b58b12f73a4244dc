"""Task ``evaluate``: tokenizers against the originals and the classical codecs at the same bits.

    python train.py task=evaluate task.tokenizer=runs/x/tokenizer/image                 # held-out sample photos
    python train.py task=evaluate task.tokenizers=[a,b] data.images=/photos task.split=all
    python train.py task=evaluate task.external=[image] tokenizer/image=emu3 tokenizer.image.path=/models/emu3

Each tokenizer encodes and decodes every item of its modality; the classical baselines run in the same call:
images — k-means on raw pixel patches (same patch and codes as a tokenizer), JPEG and WebP at the nearest bits
per pixel; audio — Opus at the nearest bitrate; video — H.264 at the nearest bits per pixel; each codec also at
the rates in ``task.rates`` so the rate–distortion plots have curves. Writes ``metrics.md``, ``evaluation.json``
and ``rd_<modality>_<metric>.png`` to the run folder and prints the table; ``report/index.html`` shows the first
``task.report_items`` items of each modality beside every tokenizer's reconstruction with their scores (audio
with players), the rate–distortion plots and the tables.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from ..base import Tokenizer, read_config
from ..data.datasets import center_crop_multiple
from ..data.fileio import atomic_write_text
from ..data.io import AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES, list_media, load_audio, load_image, load_video
from ..data.runlog import MetricsLog
from ..data.samples import data_root, media_folder
from ..data.sources import split_folder
from ..eval import codecs
from ..eval import report as html_report
from ..eval.baselines import fit_patch_kmeans
from ..eval.perceptual import FIDMetric, LPIPSMetric
from ..eval.tokenizer_eval import (
    evaluate_audio,
    evaluate_images,
    evaluate_semantic,
    evaluate_videos,
    resampled,
    score_images,
)
from ..eval.viz import axis_label, plot_rd, save_figure
from ..training.trainer import resolve_device

log = logging.getLogger("mmtok")

MEDIA = {"image": ("images", "images", IMAGE_SUFFIXES), "video": ("videos", "video", VIDEO_SUFFIXES),
         "audio": ("audio", "audio", AUDIO_SUFFIXES)}
COLUMNS = {"image": ("bits_per_pixel", "psnr", "ssim", "ciede2000", "colour_shift", "lpips", "rfid", "rfid_images",
                     "codebook_usage", "items"),
           "video": ("bits_per_pixel", "psnr", "ssim", "temporal_error", "items"),
           "audio": ("bits_per_second", "pesq", "stoi", "si_sdr", "mel_distance", "stft_distance", "codebook_usage",
                     "items"),
           "semantic": ("bits_per_second", "units_per_second", "dedup_units_per_second", "cluster_use", "items")}


# ------------------------------------------------------------------ tokenizers
def load_tokenizers(folder: str | Path) -> dict[str, Tokenizer]:
    """A saved tokenizer folder -> ``{label: tokenizer}``; a saved ``MultimodalTokenizer`` gives each of its
    image, video and audio tokenizers (text is not evaluated here)."""
    from ..multimodal import CONFIG_NAME, MultimodalTokenizer, _classes

    folder = Path(folder).expanduser()
    label = "/".join(folder.resolve().parts[-3:])
    if (folder / CONFIG_NAME).is_file():
        mm = MultimodalTokenizer.from_pretrained(folder)
        return {f"{label}:{name}": t for name, t in mm.tokenizers.items() if t.kind != "text"}
    cls = read_config(folder).get("class")
    klass = _classes().get(cls)
    if klass is None:
        raise ValueError(f"task.tokenizers: {folder} holds a {cls!r}, not a tokenizer mmtok can evaluate")
    return {label: klass.from_pretrained(folder)}


def tokenizers_to_evaluate(cfg: DictConfig) -> dict[str, Tokenizer]:
    """``task.tokenizer``, ``task.tokenizers`` and the pretrained models named by ``task.external``."""
    from ..external import from_config, is_external

    folders = ([cfg.task.tokenizer] if cfg.task.tokenizer else []) + list(cfg.task.tokenizers or [])
    toks: dict[str, Tokenizer] = {}
    for f in folders:
        toks |= load_tokenizers(f)
    for name in cfg.task.external or []:
        node = cfg.tokenizer.get(name)
        if node is None or not is_external(node):
            raise ValueError(f"task.external names {name!r}, but tokenizer/{name} is not a pretrained-model config "
                             f"(source: hf); e.g. tokenizer/{name}=emu3 tokenizer.{name}.path=/my/model")
        toks[f"{node.model}:{Path(node.path).name}"] = from_config(node)
    if not toks:
        raise ValueError("task=evaluate needs task.tokenizer=<saved folder>, task.tokenizers=[...] or "
                         "task.external=[<tokenizer group>]")
    return toks


def modality_of(tok: Tokenizer) -> str:
    """``image``, ``video``, ``audio`` (a waveform comes back) or ``semantic`` (units only)."""
    if tok.kind == "audio" and hasattr(tok, "decode_features"):
        return "semantic"
    if tok.kind not in MEDIA:
        raise ValueError(f"cannot evaluate a {type(tok).__name__} of kind {tok.kind!r}")
    return tok.kind


# ------------------------------------------------------------------------ data
def eval_files(cfg: DictConfig, modality: str) -> tuple[list[Path], list[Path]]:
    """``(files to evaluate, files the k-means baseline is fitted on)`` for ``data.<images|videos|audio>``.

    ``task.split=heldout``: the held-out sources of the training tasks' split (``task.val_fraction``), with the
    k-means baseline fitted on the training side, as the tokenizer was; ``task.split=all``: every file of the
    folder (data the tokenizers never saw), k-means fitted on the training side of the bundled samples.
    """
    key, default, suffixes = MEDIA[modality]
    folder = media_folder(data_root(cfg.data.root), cfg.data[key], default, f"data.{key}")
    files = list_media(folder, suffixes, f"data.{key}")
    fraction = cfg.task.val_fraction[modality]
    if cfg.task.split == "all":
        samples = media_folder(data_root(None), None, default)
        fit, _ = split_folder(list_media(samples, suffixes, "samples"), fraction, samples)
        chosen = files
    elif cfg.task.split == "heldout":
        fit, chosen = split_folder(files, fraction, folder)
    else:
        raise ValueError(f"task.split must be 'heldout' or 'all', got {cfg.task.split!r}")
    if cfg.task.max_items:
        chosen = chosen[: cfg.task.max_items]
    log.info("evaluate %s: %d files from %s (split=%s)", modality, len(chosen), folder, cfg.task.split)
    return chosen, fit


def _image_multiple(toks: dict[str, Tokenizer]) -> int:
    return math.lcm(*(t.downsample for t in toks.values()), 16)  # every tokenizer sees the same pixels


def _video_multiple(toks: dict[str, Tokenizer]) -> int:
    return math.lcm(*(t.downsample for t in toks.values()), 2)


def _cut_videos(videos: list[torch.Tensor], toks: dict[str, Tokenizer]) -> list[torch.Tensor]:
    for t in toks.values():  # causal models take 1 + k * temporal_downsample frames
        td = getattr(t, "temporal_downsample", 1)
        videos = [v[: 1 + (len(v) - 1) // td * td] for v in videos]
    return videos


def _images(files: list[Path], multiple: int, size: int) -> list[torch.Tensor]:
    return [center_crop_multiple(load_image(p), multiple, size) for p in files]


def _clips(files: list[Path]) -> list[tuple[torch.Tensor, int]]:
    """``(mono wave[T], sample_rate)`` of each audio file."""
    return [(w.mean(0) if w.ndim > 1 else w, sr) for w, sr in map(load_audio, files)]


# --------------------------------------------------------------------- evaluate
def _image_rows(cfg: DictConfig, toks: dict[str, Tokenizer], device: torch.device) -> list[dict[str, Any]]:
    files, fit = eval_files(cfg, "image")
    images = _images(files, _image_multiple(toks), cfg.task.image_size)
    lpips = LPIPSMetric(cfg.eval.lpips_weights, cfg.eval.lpips_net, device)
    fid = FIDMetric(cfg.eval.inception_weights, device)
    rows = []
    for name, tok in toks.items():
        rows.append({"name": name, "kind": "tokenizer"} | evaluate_images(
            tok.to(device), images, cfg.task.batch_size, lpips, fid, cfg.show_progress, name))
    baselines = set(cfg.task.baselines.image)
    if "kmeans" in baselines:
        train = [load_image(p) for p in fit]
        for f, k in sorted({(t.downsample, t.codebook_size) for t in toks.values() if t.num_codebooks == 1}):
            log.info("fitting k-means on %dx%d pixel patches of %d training images, %d codes ...", f, f, len(train), k)
            quantise = fit_patch_kmeans(train, f, k, seed=cfg.seed)
            bits = sum(x.shape[-1] * x.shape[-2] for x in images) * math.log2(k) / f**2
            rows.append({"name": f"k-means {f}x{f} patches", "kind": "baseline"}
                        | score_images(images, [quantise(x) for x in images], bits, lpips, fid))
    rates = sorted({r["bits_per_pixel"] for r in rows} | set(cfg.task.rates.image))
    for codec in ("jpeg", "webp"):
        if codec in baselines:
            rows += [{"name": codec.upper(), "kind": "baseline", "target_rate": bpp}
                     | codecs.image_codec_baseline(images, bpp, codec, lpips, fid) for bpp in rates]
    return rows


def _audio_rows(cfg: DictConfig, toks: dict[str, Tokenizer], device: torch.device) -> list[dict[str, Any]]:
    clips = _clips(eval_files(cfg, "audio")[0])
    rows = [{"name": n, "kind": "tokenizer"} | evaluate_audio(t.to(device), clips, cfg.show_progress, n)
            for n, t in toks.items()]
    if "opus" in cfg.task.baselines.audio:
        rates = {r["bits_per_second"] for r in rows} | set(cfg.task.rates.audio)
        if min(rates) < codecs.OPUS_FLOOR:
            log.info("Opus does not code speech below about %d bit/s: no Opus point at %s bit/s", codecs.OPUS_FLOOR,
                     ", ".join(f"{r:.0f}" for r in sorted(rates) if r < codecs.OPUS_FLOOR))
        for bps in sorted(r for r in rates if r >= codecs.OPUS_FLOOR):
            sr = clips[0][1]  # one rate for the codec: every clip resampled to the first clip's
            rows.append({"name": "Opus", "kind": "baseline", "target_rate": bps} | codecs.opus_baseline(
                [resampled(w, r, sr) for w, r in clips], sr, bps))
    return rows


def _video_rows(cfg: DictConfig, toks: dict[str, Tokenizer], device: torch.device) -> list[dict[str, Any]]:
    files, _ = eval_files(cfg, "video")
    videos = _cut_videos([center_crop_multiple(load_video(p), _video_multiple(toks), cfg.task.image_size)
                          for p in files], toks)
    rows = [{"name": n, "kind": "tokenizer"} | evaluate_videos(t.to(device), videos, cfg.show_progress, n)
            for n, t in toks.items()]
    if "h264" in cfg.task.baselines.video:
        for bpp in sorted({r["bits_per_pixel"] for r in rows} | set(cfg.task.rates.video)):
            rows.append({"name": "H.264", "kind": "baseline", "target_rate": bpp}
                        | codecs.h264_baseline(videos, cfg.task.fps, bpp))
    return rows


def _semantic_rows(cfg: DictConfig, toks: dict[str, Tokenizer], device: torch.device) -> list[dict[str, Any]]:
    clips = _clips(eval_files(cfg, "audio")[0])
    return [{"name": n, "kind": "tokenizer"} | evaluate_semantic(t.to(device), clips, cfg.show_progress)
            for n, t in toks.items()]


ROWS = {"image": _image_rows, "audio": _audio_rows, "video": _video_rows, "semantic": _semantic_rows}
PLOTS = {"image": ("bits_per_pixel", ("psnr", "ciede2000", "lpips")), "video": ("bits_per_pixel", ("psnr",)),
         "audio": ("bits_per_second", ("pesq", "stoi"))}
LOOK = {"image": "Each row is an item from the evaluated folder, cropped as every tokenizer saw it, then each "
                 "tokenizer's reconstruction with its 8-bit PSNR (dB, higher is better), SSIM (1 is identical), "
                 "mean CIEDE2000 colour difference (ΔE00: about 1 is just noticeable, above 10 another colour) and "
                 "mean-colour shift (how far the image's average colour moved: RGB distance, 0 to 1.73). Look at edges, text, fine "
                 "texture, and at saturated colours the training photographs rarely show.",
        "video": "The first, middle and last frames of each clip, then each tokenizer's; PSNR and SSIM are means "
                 "over all frames. Look for flicker-prone detail and for the first frame, which is coded alone.",
        "audio": "Each clip's log-mel spectrogram beside its reconstruction (time in seconds, frequency in Hz on "
                 "a mel scale, level in dB), players for the original and every decoding, and per-clip PESQ "
                 "(1 to 4.5), STOI (0 to 1), SI-SDR (dB) and mel distance (dB).",
        "semantic": "Semantic units decode to no waveform: only the table."}


def report_examples(cfg: DictConfig, modality: str, toks: dict[str, Tokenizer], device: torch.device,
                    page: html_report.HtmlReport) -> None:
    """The first ``task.report_items`` items of ``modality`` through every tokenizer, into ``page``."""
    n = int(cfg.task.get("report_items", 4))
    if n <= 0 or modality == "semantic":
        return
    files = eval_files(cfg, modality)[0][:n]
    toks = {k: t.to(device) for k, t in toks.items()}
    if modality == "image":
        items = list(zip((f.name for f in files), _images(files, _image_multiple(toks), cfg.task.image_size),
                         strict=True))
        page.image_examples(html_report.image_examples(toks, [(k, x.to(device)) for k, x in items]))
    elif modality == "video":
        videos = _cut_videos([center_crop_multiple(load_video(p), _video_multiple(toks), cfg.task.image_size)
                              for p in files], toks)
        page.image_examples(html_report.video_examples(toks, [(f.name, v) for f, v in zip(files, videos,
                                                                                           strict=True)]))
    else:
        clips = [(f.name, w, sr) for f, (w, sr) in zip(files, _clips(files), strict=True)]
        page.audio_examples(html_report.audio_examples(toks, clips))


# ---------------------------------------------------------------------- output
def distinct(rows: list[dict[str, Any]], rate: str) -> list[dict[str, Any]]:
    """``rows`` without baseline rows that repeat an earlier one's name and actual ``rate`` (a codec asked for
    two rates below its floor answers both with the same file)."""
    seen, out = set(), []
    for r in rows:
        key = (r["name"], round(float(r.get(rate, 0.0)), 6))
        if r["kind"] == "baseline" and key in seen:
            continue
        seen.add(key)
        out.append(r)
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1000 else f"{v:.0f}"
    return "" if v is None else str(v)


def table(modality: str, rows: list[dict[str, Any]]) -> str:
    """A Markdown table of ``rows`` with the columns of ``modality``."""
    cols = ("name", "kind", *COLUMNS[modality])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Evaluates every tokenizer on its modality's data; writes the tables and plots; returns the headline
    figures (``<modality>/<name>/<metric>``)."""
    device = resolve_device(cfg.trainer.device)
    groups: dict[str, dict[str, Tokenizer]] = {}
    for name, tok in tokenizers_to_evaluate(cfg).items():
        groups.setdefault(modality_of(tok), {})[name] = tok
    results, md = {}, ["# Tokenizer evaluation", "",
                       "PSNR: 8-bit reconstructions, data range 1, per item then mean. rFID needs thousands of "
                       "images to be unbiased; `rfid_images` is the count it was computed on.", ""]
    page = html_report.HtmlReport(out_dir / "report", "mmtok tokenizer evaluation",
                                  f"Tokenizers: {', '.join(n for toks in groups.values() for n in toks)}; data split: "
                                  f"{cfg.task.split}. Items and tables per modality, classical codecs at the same "
                                  "bits as baselines.")
    for modality, toks in groups.items():
        rows = distinct(ROWS[modality](cfg, toks, device), PLOTS.get(modality, ("bits_per_second",))[0])
        results[modality] = rows
        md += [f"## {modality}", "", table(modality, rows), ""]
        page.section(f"{modality}: items", LOOK[modality])
        report_examples(cfg, modality, toks, device, page)
        page.section(f"{modality}: rate, distortion and the table", "One row per tokenizer and per codec rate; "
                     "a tokenizer is a single point at its own rate, a codec a curve. A point above a curve beats "
                     "that codec at that rate (below, for a lower-is-better metric).")
        if modality in PLOTS:
            x, ys = PLOTS[modality]
            for y in ys:
                fig = plot_rd(rows, x, y, title=f"{modality}: {y} vs {x}")
                path = save_figure(fig, out_dir / f"rd_{modality}_{y}.png")
                md += [f"![{y} vs {x}]({path.name})", ""]
                if any(isinstance(r.get(y), (int, float)) for r in rows):
                    page.figure(fig, f"{modality}: {axis_label(y)} against {axis_label(x)}")
                else:  # every value is a "not computed (...)" reason: say it instead of an empty plot
                    page.paragraph(f"{y}: {next((r[y] for r in rows if y in r), 'not computed')}")
        page.table(rows, ("name", "kind", *COLUMNS[modality]))
    page.write()
    text = "\n".join(md)
    atomic_write_text(out_dir / "metrics.md", text + "\n")
    atomic_write_text(out_dir / "evaluation.json", json.dumps(results, indent=2, default=str) + "\n")
    print(text)
    flat = {"task": "evaluate"} | {f"{m}/{r['name']}/{k}": v for m, rows in results.items() for r in rows
                                   if r["kind"] == "tokenizer" for k, v in r.items()
                                   if k in COLUMNS[m] and isinstance(v, (int, float))}
    MetricsLog(out_dir).write(summary=True, **flat)
    return flat
