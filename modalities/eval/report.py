"""The reports of the demo and of ``task=evaluate``: ``report/index.html``, one page to open, look at and listen to.

A page is built with :class:`HtmlReport` from sections; what goes in them is measured here too:

* :func:`image_examples` / :func:`video_examples`: held-out items through each tokenizer, with PSNR/SSIM per item;
* :func:`audio_examples`: held-out clips through each audio tokenizer (the learned vocoder and Griffin-Lim
  when the tokenizer has both), with PESQ, STOI, SI-SDR and mel distance per clip, and the log-mel spectrograms
  of :func:`modalities.eval.viz.show_mels`;
* :func:`plot_losses`: the training loss curves; :func:`metrics_table`: a run's metrics as Markdown.

The page is self-contained: images and figures are inline (PNG ``data:`` URIs) and every ``<audio>`` element
points at a WAV file in the same folder (``audio/``, or a file already there), so the folder can be copied,
zipped or served as it is. Layout::

    report/index.html           the page
    report/audio/*.wav          the clips its players play (16-bit PCM)
    report/*.png, metrics.md    the figures and the table, also as files
"""

from __future__ import annotations

import base64
import html
import io
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..data.fileio import atomic_write_text
from ..data.runlog import MetricsLog

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["AudioExample", "HtmlReport", "ImageExample", "audio_examples", "copy_latest_samples", "image_examples",
           "metrics_table", "plot_losses", "video_examples"]


def training_rows(run_dir: Path) -> list[dict[str, Any]]:
    """Rows of ``run_dir/metrics.jsonl`` logged during training (a ``step`` and a ``loss``)."""
    return [r for r in MetricsLog(run_dir).read() if "step" in r and "loss" in r]


def loss_figure(panels: Mapping[str, tuple[Path, Sequence[str]]]) -> Figure:
    """One panel per title: the keys (``loss``, ``loss_text``...) of a run's training rows against the step."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5 * len(panels), 3.6), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (title, (run_dir, keys)) in zip(axes[0], panels.items(), strict=True):
        rows = training_rows(run_dir)
        for key in keys:
            pts = [(r["step"], r[key]) for r in rows if key in r]
            if pts:
                ax.plot(*zip(*pts, strict=True), label=key, lw=1.2, marker="." if len(pts) < 10 else None)
        ax.set(title=title, xlabel="training step", ylabel="loss (log scale)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return fig


def plot_losses(panels: Mapping[str, tuple[Path, Sequence[str]]], path: Path) -> Path:
    """:func:`loss_figure` written as a PNG at ``path``."""
    from .viz import save_figure

    return save_figure(loss_figure(panels), path)


def copy_latest_samples(run_dir: Path, dest: Path, name: str) -> list[Path]:
    """Copies the last validation grid ``run_dir/samples/step_N.png`` to ``dest/<name>.png`` and the WAVs of
    ``run_dir/samples/step_N/`` (audio runs) to ``dest/<name>/``; returns what it wrote."""
    grids = sorted((run_dir / "samples").glob("step_*.png"))
    if not grids:
        return []
    dest.mkdir(parents=True, exist_ok=True)
    written = [Path(shutil.copyfile(grids[-1], dest / f"{name}.png"))]
    wavs = grids[-1].with_suffix("")
    if wavs.is_dir():
        shutil.copytree(wavs, dest / name, dirs_exist_ok=True)
        written.append(dest / name)
    return written


def fmt(v: Any) -> str:
    """A metric for a table: floats to 4 significant digits (whole numbers from 1000 on), None as empty."""
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1000 else f"{v:.0f}"
    return "" if v is None else str(v)


def metrics_table(metrics: Mapping[str, Any], path: Path) -> Path:
    """Writes ``metrics`` as a two-column Markdown table."""
    lines = ["| metric | value |", "|---|---|", *(f"| {k} | {fmt(v)} |" for k, v in metrics.items())]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


# --------------------------------------------------------------------- measuring
@dataclass
class ImageExample:
    """One held-out image (or a strip of video frames) and what each tokenizer made of it.

    Attributes:
        name: the file name.
        original: ``float[3, H, W]`` in [0, 1] as the tokenizers saw it (resized or cropped).
        reconstructions: tokenizer label -> ``float[3, H, W]``.
        metrics: tokenizer label -> ``{"psnr": dB, "ssim": ...}`` of that reconstruction.
    """

    name: str
    original: torch.Tensor
    reconstructions: dict[str, torch.Tensor] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class AudioExample:
    """One held-out clip through one audio tokenizer.

    Attributes:
        name: the file name.
        tokenizer: the tokenizer's label.
        sample_rate: Hz of every wave here.
        waves: ``"original"`` and each decoding (``"reconstruction"``; with a learned vocoder
            ``"reconstruction (vocoder)"`` and ``"reconstruction (Griffin-Lim)"``) -> ``float[T]``.
        metrics: decoding -> ``{"pesq", "stoi", "si_sdr", "mel_distance", ...}`` against the original.
        mels: ``(original, reconstruction)`` log-mel spectrograms in dB ``[n_mels, F]``.
        mel_geometry: ``sample_rate``, ``hop_length``, ``f_min``, ``f_max`` of those mels (for the axes).
    """

    name: str
    tokenizer: str
    sample_rate: int
    waves: dict[str, torch.Tensor]
    metrics: dict[str, dict[str, float]]
    mels: tuple[torch.Tensor, torch.Tensor]
    mel_geometry: dict[str, Any]


def _image_score(recon: torch.Tensor, original: torch.Tensor) -> dict[str, float]:
    from .metrics import image_scores

    a, b = recon[None].float().cpu().clamp(0, 1), original[None].float().cpu()
    return {k: float(v[0]) for k, v in image_scores(a, b).items()}


@torch.no_grad()
def image_examples(tokenizers: Mapping[str, Any], items: Sequence[tuple[str, torch.Tensor]]) -> list[ImageExample]:
    """Each ``(name, float[3, H, W])`` of ``items`` encoded and decoded by every tokenizer (one image per call:
    sizes may differ); 8-bit PSNR and SSIM per image, as ``task=evaluate`` computes them."""
    out = []
    for name, x in items:
        ex = ImageExample(name, x.float().cpu())
        for label, tok in tokenizers.items():
            recon = tok.decode(tok.encode(x[None]))[0].float().cpu().clamp(0, 1)
            ex.reconstructions[label] = recon
            ex.metrics[label] = _image_score(recon, ex.original)
        out.append(ex)
    return out


def _strip(frames: torch.Tensor, count: int = 3) -> tuple[torch.Tensor, list[int]]:
    """``count`` frames of ``[T, 3, H, W]`` (first, middle, last) side by side with 4 white pixels between."""
    idx = sorted({round(i * (len(frames) - 1) / max(1, count - 1)) for i in range(count)})
    pad = torch.ones(3, frames.shape[-2], 4)
    parts = [p for i in idx for p in (frames[i].float().cpu(), pad)][:-1]
    return torch.cat(parts, dim=-1), idx


@torch.no_grad()
def video_examples(tokenizers: Mapping[str, Any], items: Sequence[tuple[str, torch.Tensor]]) -> list[ImageExample]:
    """Each ``(name, float[T, 3, H, W])`` through every tokenizer, shown as a strip of its first, middle and last
    frames; PSNR/SSIM are the means over all frames (:func:`~modalities.eval.metrics.video_metrics`)."""
    from .metrics import video_metrics

    out = []
    for name, v in items:
        strip, idx = _strip(v)
        ex = ImageExample(f"{name} (frames {', '.join(map(str, idx))})", strip)
        for label, tok in tokenizers.items():
            recon = tok.decode(tok.encode(v[None]))[0].float().cpu().clamp(0, 1)[: len(v)]
            ex.reconstructions[label] = _strip(recon)[0]
            m = video_metrics(recon, v[: len(recon)].float().cpu())
            ex.metrics[label] = {k: m[k] for k in ("psnr", "ssim") if k in m}
        out.append(ex)
    return out


def _log_mel_db(wave: torch.Tensor, sample_rate: int) -> tuple[torch.Tensor, dict[str, Any]]:
    """Log-mel (dB) of ``wave[T]`` with the default front end at ``sample_rate`` (for codecs without one)."""
    from models.melspec import LogMel, MelConfig

    cfg = MelConfig(sample_rate=sample_rate, hop_length=max(1, sample_rate // 100), n_mels=80)
    lm = LogMel(cfg)
    n = len(wave) // cfg.hop_length * cfg.hop_length
    return lm.to_db(lm(wave[None, :n].float()))[0, 0], {"sample_rate": sample_rate, "hop_length": cfg.hop_length,
                                                        "f_min": cfg.f_min, "f_max": cfg.f_max}


def _audio_scores(pred: torch.Tensor, ref: torch.Tensor, sample_rate: int) -> dict[str, float]:
    from .audio_metrics import audio_metrics

    try:
        row = audio_metrics(pred, ref, sample_rate)
    except ValueError as e:  # a clip too short or silent for PESQ/STOI: say so instead of failing the report
        return {"error": str(e)}  # type: ignore[dict-item]
    row.pop("seconds", None)
    return row


@torch.no_grad()
def audio_examples(tokenizers: Mapping[str, Any], clips: Sequence[tuple[str, torch.Tensor, int]],
                   max_seconds: float = 4.0) -> list[AudioExample]:
    """Each ``(name, mono wave[T], sample_rate)`` of ``clips`` (its first ``max_seconds``) through every audio
    tokenizer that gives a waveform back, at the tokenizer's rate.

    A spectrogram tokenizer with a learned vocoder gives two decodings, through the vocoder and through
    Griffin-Lim; its mels are its own (the log-mel it codes and the one it decodes). Another codec's mels are
    computed from its decoded waveform."""
    from .tokenizer_eval import resampled

    out = []
    for name, wave, sr in clips:
        for label, tok in tokenizers.items():
            if not hasattr(tok, "decode") or hasattr(tok, "decode_features"):
                continue  # semantic units: nothing to listen to
            ref = resampled(wave.float().cpu(), sr, tok.sample_rate)[: int(max_seconds * tok.sample_rate)]
            codes = tok.encode(ref, sample_rate=tok.sample_rate)
            if getattr(tok, "vocoder", None) is not None:
                decoded = {"reconstruction (vocoder)": tok.decode(codes, length=len(ref)),
                           "reconstruction (Griffin-Lim)": tok.decode(codes, length=len(ref), vocoder="griffin_lim")}
            else:
                decoded = {"reconstruction": tok.decode(codes, length=len(ref))}
            waves = {"original": ref} | {k: v.float().cpu().reshape(-1)[: len(ref)] for k, v in decoded.items()}
            metrics = {k: _audio_scores(v, ref, tok.sample_rate) for k, v in waves.items() if k != "original"}
            first = next(k for k in waves if k != "original")
            if hasattr(tok, "decode_mel"):
                cfg = tok.frontend.cfg
                mel_in = tok.frontend.to_db(tok.mel(tok.waveform(ref, sample_rate=tok.sample_rate)))[0, 0].cpu()
                mels = (mel_in, tok.decode_mel(codes)[0].float().cpu())
                geometry = {"sample_rate": cfg.sample_rate, "hop_length": cfg.hop_length, "f_min": cfg.f_min,
                            "f_max": cfg.f_max}
            else:
                mel_in, geometry = _log_mel_db(ref, tok.sample_rate)
                mels = (mel_in, _log_mel_db(waves[first], tok.sample_rate)[0])
            out.append(AudioExample(name, label, tok.sample_rate, waves, metrics, mels, geometry))
    return out


# ----------------------------------------------------------------------- the page
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;
color:#222;line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
nav ul{columns:2;padding-left:1.2em}
.look{background:#f4f7fb;border-left:4px solid #4c72b0;padding:.5em .9em;margin:.8em 0}
table{border-collapse:collapse;margin:.6em 0}.wide{overflow-x:auto}
th,td{border:1px solid #ddd;padding:.3em .5em;vertical-align:top;text-align:left}
th{background:#f6f6f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:0}figcaption{font-size:.85em;color:#444;margin-top:.2em}
img.media{image-rendering:pixelated;min-width:192px;max-width:100%;height:auto;border:1px solid #eee}
.clip{border-top:1px solid #eee;padding:.6em 0}.clip h3{margin:.2em 0;font-size:1.05em}
img.plot{max-width:100%}
.players div{margin:.2em 0}.players span{display:inline-block;min-width:13em;font-size:.9em}
audio{height:2.2em;vertical-align:middle}
.small{font-size:.85em;color:#555}
"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "x"


def png_bytes(image: torch.Tensor | Figure | Path) -> bytes:
    """PNG bytes of an image ``float[3, H, W]`` in [0, 1], a matplotlib figure, or a PNG file."""
    if isinstance(image, (str, Path)):
        return Path(image).read_bytes()
    buf = io.BytesIO()
    if isinstance(image, torch.Tensor):
        from PIL import Image

        x = image.detach().float().cpu().clamp(0, 1)
        if x.ndim != 3 or x.shape[0] not in (1, 3):
            raise ValueError(f"png_bytes: expected an image float[3, H, W], got shape {tuple(x.shape)}")
        arr = (x.expand(3, -1, -1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        Image.fromarray(arr).save(buf, format="PNG")
    else:
        image.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def data_uri(image: torch.Tensor | Figure | Path) -> str:
    """``data:image/png;base64,...`` of what :func:`png_bytes` takes."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


class HtmlReport:
    """A page of sections, written as ``folder/index.html`` with its audio in ``folder/audio/``.

    ``section(title, look)`` starts a section (``look``: a sentence on what to look at in it); the other
    methods add to the current one. Nothing is written before :meth:`write`, except WAVs, which
    :meth:`audio` writes as it is given them."""

    def __init__(self, folder: str | Path, title: str, intro: str = "") -> None:
        self.folder = Path(folder)
        self.title, self.intro = title, intro
        self.sections: list[tuple[str, str, list[str]]] = []
        self._names: set[str] = set()

    # --------------------------------------------------------------- structure
    def section(self, title: str, look: str = "") -> HtmlReport:
        """Starts a section; ``look`` is shown first, in a box (what to look or listen for)."""
        ident = _slug(title)
        while ident in {s[0] for s in self.sections}:
            ident += "_"
        self.sections.append((ident, title, [f'<p class="look">{html.escape(look)}</p>'] if look else []))
        return self

    def add(self, fragment: str) -> HtmlReport:
        """Raw HTML into the current section (escape what you did not write yourself)."""
        if not self.sections:
            self.section("Results")
        self.sections[-1][2].append(fragment)
        return self

    def paragraph(self, text: str) -> HtmlReport:
        return self.add(f"<p>{html.escape(text)}</p>")

    # ------------------------------------------------------------------- media
    def image(self, image: torch.Tensor | Figure | Path, alt: str, css: str = "media", width: int | None = None
              ) -> str:
        """An ``<img>`` with the image inline (a PNG ``data:`` URI); returns the HTML without adding it."""
        w = f' width="{width}"' if width else ""
        return f'<img class="{css}" src="{data_uri(image)}" alt="{html.escape(alt)}"{w}>'

    def figure(self, image: torch.Tensor | Figure | Path, caption: str) -> HtmlReport:
        """A figure (a matplotlib figure or a PNG file) inline, with its caption."""
        return self.add(f"<figure>{self.image(image, caption, 'plot')}<figcaption>{html.escape(caption)}"
                        "</figcaption></figure>")

    def _wav_name(self, stem: str) -> Path:
        name = _slug(stem)
        while name in self._names:
            name += "_"
        self._names.add(name)
        return self.folder / "audio" / f"{name}.wav"

    def audio(self, source: torch.Tensor | Path, sample_rate: int | None = None, stem: str = "clip") -> str:
        """An ``<audio>`` element; a wave ``float[T]`` is written to ``audio/<stem>.wav`` (16-bit PCM), a file
        inside the report folder is pointed at, one outside it copied into ``audio/``."""
        from .audio_eval import save_wav

        if isinstance(source, torch.Tensor):
            if sample_rate is None:
                raise ValueError("HtmlReport.audio: a wave needs its sample_rate")
            path = save_wav(self._wav_name(stem), source.reshape(-1), sample_rate)
        else:
            path = Path(source).resolve()
            if not path.is_file():
                raise FileNotFoundError(f"HtmlReport.audio: no file {path}")
            if not path.is_relative_to(self.folder.resolve()):
                target = self._wav_name(stem or path.stem).with_suffix(path.suffix)
                target.parent.mkdir(parents=True, exist_ok=True)
                path = Path(shutil.copyfile(path, target)).resolve()
        src = path.relative_to(self.folder.resolve()).as_posix()
        return f'<audio controls preload="metadata" src="{html.escape(src)}"></audio>'

    def players(self, clips: Iterable[tuple[str, torch.Tensor | Path]], sample_rate: int | None = None,
                stem: str = "clip") -> str:
        """Labelled players, one per ``(label, wave or file)``; returns the HTML."""
        rows = [f"<div><span>{html.escape(label)}</span>{self.audio(src, sample_rate, f'{stem}_{label}')}</div>"
                for label, src in clips]
        return '<div class="players">' + "".join(rows) + "</div>"

    # ------------------------------------------------------------------ tables
    def table(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> HtmlReport:
        """A table of ``rows`` (dicts) with ``columns`` (default: every key, in first-seen order)."""
        cols = list(columns) if columns else list(dict.fromkeys(k for r in rows for k in r))
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = "".join("<tr>" + "".join(self._cell(r.get(c)) for c in cols) + "</tr>" for r in rows)
        return self.add(f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>')

    def key_values(self, metrics: Mapping[str, Any]) -> HtmlReport:
        """A two-column table: metric, value."""
        return self.table([{"metric": k, "value": v} for k, v in metrics.items()], ["metric", "value"])

    @staticmethod
    def _cell(v: Any) -> str:
        num = isinstance(v, (int, float)) and not isinstance(v, bool)
        return f'<td class="num">{html.escape(fmt(v))}</td>' if num else f"<td>{html.escape(fmt(v))}</td>"

    @staticmethod
    def _scores(m: Mapping[str, Any]) -> str:
        names = {"psnr": ("PSNR", " dB"), "ssim": ("SSIM", ""), "ciede2000": ("ΔE00", ""),
                 "colour_shift": ("mean-colour shift", ""), "pesq": ("PESQ", ""), "stoi": ("STOI", ""),
                 "si_sdr": ("SI-SDR", " dB"), "mel_distance": ("mel distance", " dB"), "stft_distance": ("STFT", "")}
        if "error" in m:
            return f'<span class="small">{html.escape(str(m["error"]))}</span>'
        return " · ".join(f"{names.get(k, (k, ''))[0]} {fmt(float(v))}{names.get(k, (k, ''))[1]}"
                          for k, v in m.items() if isinstance(v, (int, float)))

    # ------------------------------------------------------------ the sections
    def image_examples(self, examples: Sequence[ImageExample]) -> HtmlReport:
        """One row per item: the original, then each tokenizer's reconstruction with its PSNR, SSIM and colour
        errors (mean CIEDE2000, mean-colour shift)."""
        if not examples:
            return self
        labels = list(dict.fromkeys(k for ex in examples for k in ex.reconstructions))
        head = "<th>item</th><th>original</th>" + "".join(f"<th>reconstruction: {html.escape(k)}</th>"
                                                          for k in labels)
        rows = []
        for ex in examples:
            cells = [f"<td>{html.escape(ex.name)}</td>",
                     f"<td>{self.image(ex.original, f'original {ex.name}')}</td>"]
            for k in labels:
                if k in ex.reconstructions:
                    cells.append(f"<td><figure>{self.image(ex.reconstructions[k], f'{k} reconstruction of {ex.name}')}"
                                 f"<figcaption>{self._scores(ex.metrics.get(k, {}))}</figcaption></figure></td>")
                else:
                    cells.append("<td></td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        return self.add(f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
                        "</table></div>")

    def audio_examples(self, examples: Sequence[AudioExample]) -> HtmlReport:
        """One block per clip and tokenizer: the spectrograms, a player per decoding, the scores per decoding."""
        from .viz import show_mels

        for i, ex in enumerate(examples):
            fig = show_mels([ex.mels[0]], [ex.mels[1]], titles=[ex.name], **ex.mel_geometry)
            stem = f"{ex.tokenizer}_{i:02d}_{Path(ex.name).stem}"
            players = self.players(ex.waves.items(), ex.sample_rate, stem)
            scores = "".join(f"<div><b>{html.escape(k)}</b>: {self._scores(m)}</div>" for k, m in ex.metrics.items())
            self.add(f'<div class="clip"><h3>{html.escape(ex.name)} <span class="small">through '
                     f"{html.escape(ex.tokenizer)}</span></h3>"
                     f"{self.image(fig, f'log-mel spectrograms of {ex.name}: original and reconstruction', 'plot')}"
                     f'{players}<div class="small">{scores}</div></div>')
        return self

    # ------------------------------------------------------------------- write
    def render(self) -> str:
        toc = "".join(f'<li><a href="#{i}">{html.escape(t)}</a></li>' for i, t, _ in self.sections)
        body = "".join(f'<section id="{i}"><h2>{html.escape(t)}</h2>{"".join(parts)}</section>'
                       for i, t, parts in self.sections)
        intro = f"<p>{html.escape(self.intro)}</p>" if self.intro else ""
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head>\n"
                f"<body><h1>{html.escape(self.title)}</h1>{intro}<nav><b>Contents</b><ul>{toc}</ul></nav>\n"
                f"{body}\n</body></html>\n")

    def write(self) -> Path:
        """Writes ``index.html`` atomically; returns its path."""
        path = self.folder / "index.html"
        atomic_write_text(path, self.render())
        return path
