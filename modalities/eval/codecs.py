"""Classical codecs at a bit budget: the baselines a learned tokenizer must beat at the same rate.

Each ``*_at_*`` function codes one item, decodes it, and returns the
reconstruction with the rate it *actually* used, measured from the bytes:

=====================  ===========================  ==========================================================
function               library                      rate control, and what the rate counts
=====================  ===========================  ==========================================================
:func:`jpeg_at_bpp`    Pillow JPEG (4:2:0)          quality 1-95 by bisection, nearest to the target; the
                                                    whole file (headers included) / pixels
:func:`webp_at_bpp`    Pillow WebP (lossy)          quality 0-100 by bisection, nearest; whole file / pixels
:func:`opus_at_bitrate` PyAV ``libopus``           the target bitrate given to the encoder (Opus' own rate
                       (constrained VBR,            control); Opus packet payloads (no Ogg container) / seconds
                       application "audio")
:func:`h264_at_bpp`    PyAV ``libx264`` (yuv420p,   CRF 0-51 by bisection, nearest; the H.264 bitstream (SPS,
                       preset "medium")             PPS and slices, no MP4 container) / (frames x H x W)
=====================  ===========================  ==========================================================

"Nearest" means the setting whose measured rate is closest to the target
(sizes grow monotonically with quality in practice; bisection relies on it),
so the actual rate may lie on either side: always report it, never the target.

The baseline runners (:func:`image_codec_baseline`, :func:`opus_baseline`,
:func:`h264_baseline`) code a list of items and return mean metrics with the
mean actual rate (total bits over total pixels or seconds).

Shapes: images float ``[3, H, W]`` in [0, 1]; waves float ``[T]`` in [-1, 1];
videos float ``[T, 3, H, W]`` in [0, 1]. Everything runs in memory (``io.BytesIO``);
nothing is written to disk or downloaded.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from .metrics import video_metrics

if TYPE_CHECKING:
    from .perceptual import FIDMetric, LPIPSMetric

__all__ = ["OPUS_FLOOR", "OPUS_RATES", "Coded", "h264_at_bpp", "h264_baseline", "image_at_bpp", "image_codec_baseline",
           "jpeg_at_bpp", "opus_at_bitrate", "opus_baseline", "webp_at_bpp"]

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
OPUS_FLOOR = 6000  # bit/s: libopus codes mono speech no lower (lower targets come back at about this rate)
"""Input sample rates libopus accepts; any other rate is resampled to 48 kHz (and back) around the codec."""

_IMAGE_CODECS = {"jpeg": ("JPEG", 1, 95), "webp": ("WEBP", 0, 100)}


@dataclass(frozen=True)
class Coded:
    """One coded item: the decoded ``recon``, the measured ``rate`` (bpp or bit/s) and the codec ``setting``
    chosen (JPEG/WebP quality, H.264 CRF, Opus target bit/s)."""

    recon: torch.Tensor
    rate: float
    setting: int | float


def _nearest_setting(rate_of: Callable[[int], float], lo: int, hi: int, target: float) -> int:
    """The integer setting in ``[lo, hi]`` whose rate is nearest ``target``, for rates non-decreasing in the setting.

    Bisection for the first setting above the target, then the nearer of it and the one before (ties: the lower).
    """
    if rate_of(hi) <= target:
        return hi
    if rate_of(lo) > target:
        return lo
    a, b = lo, hi  # rate_of(a) <= target < rate_of(b)
    while b - a > 1:
        mid = (a + b) // 2
        if rate_of(mid) > target:
            b = mid
        else:
            a = mid
    return a if abs(rate_of(a) - target) <= abs(rate_of(b) - target) else b


def _check_rate(value: float, name: str, what: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what}: {name} must be a positive number, got {value!r}")
    return float(value)


# --------------------------------------------------------------------------------------------------- images


def _image(image: torch.Tensor, what: str) -> torch.Tensor:
    if image.ndim == 4 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"{what}: image must be [3, H, W] (RGB in [0, 1]), got shape {tuple(image.shape)}")
    return image


def image_at_bpp(image: torch.Tensor, bpp: float, codec: str = "jpeg") -> Coded:
    """Codes ``image`` ``[3, H, W]`` in [0, 1] with Pillow ``codec`` ("jpeg" or "webp") at the quality whose file
    size comes nearest ``bpp`` bits per pixel; returns the decoded image ``[3, H, W]``, its bits per pixel and the
    quality."""
    from PIL import Image

    from ..data.io import pil_to_tensor

    if codec not in _IMAGE_CODECS:
        raise ValueError(f"unknown image codec {codec!r}; choose one of {sorted(_IMAGE_CODECS)}")
    fmt, lo, hi = _IMAGE_CODECS[codec]
    image = _image(image, f"{codec}_at_bpp")
    bpp = _check_rate(bpp, "bpp", f"{codec}_at_bpp")
    arr = (image.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    pil, pixels = Image.fromarray(arr), image.shape[-1] * image.shape[-2]
    files: dict[int, bytes] = {}

    def rate_of(q: int) -> float:
        if q not in files:
            buf = io.BytesIO()
            pil.save(buf, format=fmt, quality=q)
            files[q] = buf.getvalue()
        return 8 * len(files[q]) / pixels

    q = _nearest_setting(rate_of, lo, hi, bpp)
    with Image.open(io.BytesIO(files[q])) as im:
        return Coded(pil_to_tensor(im.convert("RGB")), rate_of(q), q)


def jpeg_at_bpp(image: torch.Tensor, bpp: float) -> tuple[torch.Tensor, float]:
    """Pillow JPEG (4:2:0) of ``image`` ``[3, H, W]`` in [0, 1] at the quality (1-95) whose file size is nearest
    ``bpp`` bits per pixel; returns the decoded image ``[3, H, W]`` and its actual bits per pixel.
    (:func:`image_at_bpp` also gives the quality.)"""
    coded = image_at_bpp(image, bpp, "jpeg")
    return coded.recon, coded.rate


def webp_at_bpp(image: torch.Tensor, bpp: float) -> tuple[torch.Tensor, float]:
    """Pillow lossy WebP of ``image`` ``[3, H, W]`` in [0, 1] at the quality (0-100) whose file size is nearest
    ``bpp`` bits per pixel; returns the decoded image ``[3, H, W]`` and its actual bits per pixel."""
    coded = image_at_bpp(image, bpp, "webp")
    return coded.recon, coded.rate


def image_codec_baseline(images: Sequence[torch.Tensor], bpp: float, codec: str = "jpeg",
                         lpips: LPIPSMetric | None = None, fid: FIDMetric | None = None) -> dict[str, Any]:
    """JPEG or WebP of each image (``[3, H, W]`` or ``[1, 3, H, W]`` in [0, 1]) nearest ``bpp``.

    Returns ``codec``, ``target_bits_per_pixel``, ``quality`` (mean) and the row of
    :func:`~modalities.eval.tokenizer_eval.score_images`: ``bits_per_pixel`` (actual: total bits / total pixels),
    ``psnr``, ``ssim``, ``items``, and with ``lpips``/``fid`` given ``lpips``/``rfid`` (the metric's "not
    computed" reason when it has no weights).
    """
    from .tokenizer_eval import score_images

    if not images:
        raise ValueError("image_codec_baseline: no images")
    xs = [_image(x, f"image_codec_baseline (image {i})").float().cpu() for i, x in enumerate(images)]
    coded = [image_at_bpp(x, bpp, codec) for x in xs]
    bits = sum(c.rate * x.shape[-1] * x.shape[-2] for c, x in zip(coded, xs, strict=True))
    return {"codec": codec, "target_bits_per_pixel": float(bpp), "quality": _mean([c.setting for c in coded])} | (
        score_images(xs, [c.recon.reshape(x.shape) for c, x in zip(coded, xs, strict=True)], bits, lpips, fid))


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values))


# ---------------------------------------------------------------------------------------------------- audio


def _require_codec(name: str, mode: str) -> None:
    import av

    if name not in av.codecs_available:
        raise RuntimeError(f"this FFmpeg build (PyAV {av.__version__}) has no {name!r} codec; install a PyAV wheel "
                           f"built with {name} (the PyPI 'av' wheels include it)")
    av.Codec(name, mode)  # raises for an encoder-only or decoder-only build


def opus_at_bitrate(wave: torch.Tensor, sample_rate: int, bits_per_second: float) -> tuple[torch.Tensor, float]:
    """Opus (``libopus`` via PyAV, mono, constrained VBR) of ``wave`` ``[T]`` in [-1, 1] at a target of ``bits_per_second``.

    Rates other than :data:`OPUS_RATES` are resampled to 48 kHz for the codec
    (torchaudio) and back. The decoder drops the encoder's look-ahead (the
    pre-skip that the encoder writes in its ``OpusHead``), so the
    reconstruction starts with the input; it is then cut or zero-padded to
    exactly ``T`` samples. Returns the reconstruction ``[T]`` (float, at
    ``sample_rate``) and the actual rate: 8 x the Opus packet bytes / the clip's
    duration (no Ogg container, no headers). libopus accepts 500 to 256000 bit/s
    but does not go below about 5 kbit/s (speech, mono): lower targets come back at that floor.
    """
    import av
    import numpy as np
    import torchaudio.functional as AF

    what = "opus_at_bitrate"
    if wave.ndim == 2 and wave.shape[0] == 1:
        wave = wave[0]
    if wave.ndim != 1 or wave.numel() == 0:
        raise ValueError(f"{what}: wave must be a non-empty mono waveform [T], got shape {tuple(wave.shape)}")
    if not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"{what}: sample_rate must be a positive int (Hz), got {sample_rate!r}")
    bps = _check_rate(bits_per_second, "bits_per_second", what)
    if not 500 <= bps <= 256_000:
        raise ValueError(f"{what}: libopus takes 500 to 256000 bit/s for a mono stream, got {bps:g}")
    _require_codec("libopus", "w")
    _require_codec("libopus", "r")
    x = wave.detach().float().cpu().clamp(-1, 1)
    codec_rate = sample_rate if sample_rate in OPUS_RATES else 48_000
    if codec_rate != sample_rate:
        x = AF.resample(x, sample_rate, codec_rate)

    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format, enc.bit_rate = codec_rate, "mono", "flt", int(round(bps))
    enc.options = {"vbr": "constrained"}  # plain VBR overshoots high targets by half on speech
    enc.open()
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x.numpy()[None]), format="flt", layout="mono")
    frame.sample_rate, frame.pts = codec_rate, 0
    packets = [*enc.encode(frame), *enc.encode(None)]
    payload = sum(p.size for p in packets)

    dec = av.CodecContext.create("libopus", "r")
    dec.extradata = enc.extradata  # OpusHead: channel count and pre-skip
    chunks, out_rate = [], sample_rate
    for p in [*packets, None]:
        for f in dec.decode(p):
            out_rate, arr = f.sample_rate, f.to_ndarray()
            if arr.dtype.kind == "i":  # s16/s32 output: scale to [-1, 1]
                arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max + 1)
            chunks.append(torch.from_numpy(arr.astype(np.float32).reshape(-1)))  # mono: one plane
    if not chunks:
        raise RuntimeError(f"{what}: the Opus decoder returned no audio")
    y = torch.cat(chunks)
    if out_rate != sample_rate:
        y = AF.resample(y, out_rate, sample_rate)
    t = wave.shape[-1]
    y = F.pad(y, (0, max(0, t - len(y))))[:t]
    return y, 8 * payload / (t / sample_rate)


def opus_baseline(waves: Sequence[torch.Tensor], sample_rate: int, bps: float) -> dict[str, Any]:
    """Opus of each wave (``[T]`` or ``[1, T]`` in [-1, 1]) at ``bps`` bit/s, measured with
    :func:`~modalities.eval.audio_metrics.audio_metrics`.

    Returns ``codec`` ("opus"), ``target_bits_per_second``, ``bits_per_second`` (actual: total bits / total
    seconds), the mean of every audio metric (``pesq``, ``stoi``, ``si_sdr``, ``mel_distance``,
    ``stft_distance``) and ``clips``.
    """
    from .audio_metrics import audio_metrics

    if not waves:
        raise ValueError("opus_baseline: no waves")
    rows, bits, seconds = [], 0.0, 0.0
    for w in waves:
        w = w[0] if w.ndim == 2 and w.shape[0] == 1 else w
        recon, rate = opus_at_bitrate(w, sample_rate, bps)
        dur = w.shape[-1] / sample_rate
        bits, seconds = bits + rate * dur, seconds + dur
        rows.append(audio_metrics(recon, w, sample_rate))
    keys = [k for k in rows[0] if k != "seconds"]
    return {"codec": "opus", "target_bits_per_second": float(bps), "bits_per_second": bits / seconds} | {
        k: _mean([r[k] for r in rows]) for k in keys} | {"clips": len(rows)}


# ---------------------------------------------------------------------------------------------------- video


def _video(video: torch.Tensor, what: str) -> torch.Tensor:
    if video.ndim != 4 or video.shape[1] != 3 or video.shape[0] == 0:
        raise ValueError(f"{what}: video must be [T, 3, H, W] (RGB in [0, 1], T >= 1), got shape "
                         f"{tuple(video.shape)}")
    return video


def _h264_encode(frames: list[Any], width: int, height: int, fps: Fraction, crf: int, preset: str,
                 threads: int) -> list[Any]:
    import av

    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.time_base, enc.framerate = 1 / fps, fps
    enc.options = {"crf": str(crf), "preset": preset}
    enc.thread_count = threads
    enc.open()
    packets = []
    for i, fr in enumerate(frames):
        fr.pts = i
        packets.extend(enc.encode(fr))
    packets.extend(enc.encode(None))
    return packets


def h264_at_bpp(video: torch.Tensor, fps: float, bits_per_pixel: float, preset: str = "medium",
                threads: int = 0) -> tuple[torch.Tensor, float]:
    """H.264 (``libx264`` via PyAV, yuv420p) of ``video`` ``[T, 3, H, W]`` in [0, 1] at the CRF (0-51) whose
    bitstream comes nearest ``bits_per_pixel`` (bits / (T x H x W)).

    yuv420p needs even sizes: an odd height or width is padded by repeating the
    last row or column, and the reconstruction is cropped back (the rate still
    counts only the original pixels). ``fps`` sets the stream's frame rate (it
    matters to x264's rate control). ``threads=0`` lets x264 choose. Returns
    the decoded video ``[T, 3, H, W]`` (float in [0, 1]) and its actual bits per pixel.
    """
    import av
    import numpy as np

    what = "h264_at_bpp"
    video = _video(video, what)
    target = _check_rate(bits_per_pixel, "bits_per_pixel", what)
    fps_q = Fraction(_check_rate(fps, "fps", what)).limit_denominator(1001)
    _require_codec("libx264", "w")
    _require_codec("h264", "r")
    t, _, h, w = video.shape
    x = video.detach().float().cpu().clamp(0, 1)
    ph, pw = h % 2, w % 2
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    rgb = (x * 255).round().byte().permute(0, 2, 3, 1).contiguous().numpy()
    yuv = [av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p") for f in rgb]
    streams: dict[int, list[Any]] = {}

    def rate_of(quality: int) -> float:  # quality = 51 - crf, so the rate grows with it
        if quality not in streams:
            streams[quality] = _h264_encode(yuv, w + pw, h + ph, fps_q, 51 - quality, preset, threads)
        return 8 * sum(p.size for p in streams[quality]) / (t * h * w)

    quality = _nearest_setting(rate_of, 0, 51, target)
    dec = av.CodecContext.create("h264", "r")
    out = []
    for p in [*streams[quality], None]:
        out.extend(f.to_ndarray(format="rgb24") for f in dec.decode(p))
    if len(out) != t:
        raise RuntimeError(f"{what}: decoded {len(out)} frames from a {t}-frame video")
    recon = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)[:, :, :h, :w].float() / 255
    return recon, rate_of(quality)


def h264_baseline(videos: Sequence[torch.Tensor], fps: float, bpp: float) -> dict[str, Any]:
    """H.264 of each video (``[T, 3, H, W]`` in [0, 1]) nearest ``bpp`` bits per pixel, measured with
    :func:`~modalities.eval.metrics.video_metrics`.

    Returns ``codec`` ("h264"), ``target_bits_per_pixel``, ``bits_per_pixel`` (actual: total bits / total
    pixels), mean ``psnr``, ``ssim`` and ``temporal_error`` over videos, and ``videos``.
    """
    if not videos:
        raise ValueError("h264_baseline: no videos")
    rows, bits, pixels = [], 0.0, 0.0
    for v in videos:
        recon, rate = h264_at_bpp(v, fps, bpp)
        n = v.shape[0] * v.shape[-1] * v.shape[-2]
        bits, pixels = bits + rate * n, pixels + n
        rows.append(video_metrics(recon, v.float().cpu()))
    return {"codec": "h264", "target_bits_per_pixel": float(bpp), "bits_per_pixel": bits / pixels} | {
        k: _mean([r[k] for r in rows]) for k in ("psnr", "ssim", "temporal_error")} | {"videos": len(rows)}
