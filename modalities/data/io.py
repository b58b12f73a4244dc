"""Reading media files into tensors: images (PIL), videos (PyAV), audio (soundfile), and listing media folders.

Image and video readers return float tensors in [0, 1], the audio reader float
samples in [-1, 1]; every reader turns a missing, unreadable or truncated file
into an error that names the file. The ``*_bytes`` readers decode a file's
content held in memory (a member of a tar shard), with the same results and
errors naming ``name``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["AUDIO_SUFFIXES", "IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "list_media", "load_audio", "load_audio_bytes",
           "load_image", "load_image_bytes", "load_video", "load_video_bytes", "pil_to_tensor", "tensor_to_rgb"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif")


def load_image(path: str | Path) -> torch.Tensor:
    """Reads an image file as float[3, H, W] in [0, 1] (grayscale, RGBA, 16-bit converted; EXIF orientation
    applied, so a phone photo tagged "rotate 90" comes out upright)."""
    path = Path(path)
    try:
        return _read_image(path, str(path))
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {path}") from None


def load_image_bytes(data: bytes, name: str) -> torch.Tensor:
    """:func:`load_image` of a file's content ``data``: float[3, H, W] in [0, 1]; errors name ``name``."""
    return _read_image(io.BytesIO(data), name)


def _read_image(source: Path | BinaryIO, name: str) -> torch.Tensor:
    try:
        with Image.open(source) as im:
            im.load()
            return pil_to_tensor(im)
    except FileNotFoundError:
        raise
    except UnidentifiedImageError as e:  # its message shows the BytesIO object rather than a name
        raise ValueError(f"cannot read image {name}: " + (str(e) if isinstance(source, Path) else
                                                          "not an image format PIL can identify")) from None
    except (OSError, SyntaxError) as e:
        raise ValueError(f"cannot read image {name}: {e}") from None


def pil_to_tensor(im: Image.Image) -> torch.Tensor:
    """PIL image -> float[3, H, W] in [0, 1], upright: an EXIF orientation tag (phone photos) is applied."""
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float32) / 65535.0  # 16-bit PNGs open as I;16 or I
        return torch.from_numpy(arr.copy())[None].expand(3, -1, -1).clamp(0, 1).contiguous()
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))  # composite transparency on white
        im = Image.alpha_composite(bg, im)
    arr = np.array(im.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr).permute(2, 0, 1).float() / 255.0


def tensor_to_rgb(t: torch.Tensor, what: str, ndim: int = 3) -> torch.Tensor:
    """Checks and converts ``[..., C, H, W]`` pixels (C = 1, 3 or 4) to float RGB in [0, 1].

    uint8 is divided by 255, uint16 (and int32 from 16-bit files) by 65535; float
    must already lie in [0, 1]. Grayscale is repeated, RGBA composited on white.
    Raises, naming ``what``, on another shape, dtype, NaN/inf or out-of-range floats.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{what}: expected a tensor, PIL image or path, got {type(t).__name__}")
    dims = "[C, H, W]" if ndim == 3 else "[T, C, H, W]"
    if t.ndim != ndim or t.shape[-3] not in (1, 3, 4):
        raise ValueError(f"{what}: expected {dims} with C in 1/3/4, got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{what}: empty tensor of shape {tuple(t.shape)}")
    if t.dtype == torch.uint8:
        t = t.float() / 255.0
    elif t.dtype == torch.uint16 or t.dtype == torch.int32:
        t = t.float() / 65535.0
    elif not t.dtype.is_floating_point:
        raise ValueError(f"{what}: unsupported dtype {t.dtype}; use uint8, uint16 or float in [0, 1]")
    if not torch.isfinite(t).all():
        raise ValueError(f"{what}: contains NaN or inf values")
    if t.min() < -1e-3 or t.max() > 1 + 1e-3:
        raise ValueError(f"{what}: float values must be in [0, 1], got [{float(t.min()):.3g}, {float(t.max()):.3g}]")
    if t.shape[-3] == 1:
        t = t.expand(*t.shape[:-3], 3, *t.shape[-2:])
    elif t.shape[-3] == 4:
        rgb, alpha = t[..., :3, :, :], t[..., 3:, :, :]
        t = rgb * alpha + (1 - alpha)  # alpha over white
    return t.float().clamp(0, 1)


def load_video(path: str | Path, max_frames: int | None = None, start: int = 0) -> torch.Tensor:
    """Reads frames ``[start, start + max_frames)`` of a video file as float[T, 3, H, W] in [0, 1] (PyAV)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    return _read_video(str(path), str(path), max_frames, start)


def load_video_bytes(data: bytes, name: str, max_frames: int | None = None, start: int = 0) -> torch.Tensor:
    """:func:`load_video` of a file's content ``data``: float[T, 3, H, W] in [0, 1]; errors name ``name``."""
    return _read_video(io.BytesIO(data), name, max_frames, start)


def _read_video(source: str | BinaryIO, path: str, max_frames: int | None, start: int) -> torch.Tensor:
    import av

    frames: list[np.ndarray] = []
    try:
        with av.open(source) as container:
            if not container.streams.video:
                raise ValueError(f"cannot read video {path}: it has no video stream")
            for i, frame in enumerate(container.decode(video=0)):
                if i < start:
                    continue
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except av.FFmpegError as e:
        raise ValueError(f"cannot read video {path}: {e}") from None
    if not frames:
        raise ValueError(f"cannot read video {path}: no frames decoded (from frame {start})")
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0


def list_media(folder: str | Path, suffixes: tuple[str, ...], what: str) -> list[Path]:
    """Sorted files under ``folder`` (recursively) whose suffix is in ``suffixes``; raises if none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{what}: folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise FileNotFoundError(f"{what}: no {'/'.join(suffixes)} files under {folder}")
    return files


def load_audio(path: str | Path) -> tuple[torch.Tensor, int]:
    """Reads an audio file (wav/flac/ogg, mp3 where libsndfile has it) as ``(float[C, T] in [-1, 1], sample_rate)``.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the
    file for one that is unreadable, truncated (a WAV whose data chunk is cut
    short, a FLAC that loses sync) or holds no samples.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    with open(path, "rb") as f:
        return _read_audio(f, str(path))


def load_audio_bytes(data: bytes, name: str) -> tuple[torch.Tensor, int]:
    """:func:`load_audio` of a file's content ``data`` (the format is read from the content, not the name):
    ``(float[C, T] in [-1, 1], sample_rate)``; errors name ``name``."""
    return _read_audio(io.BytesIO(data), name)


def _read_audio(f: BinaryIO, path: str) -> tuple[torch.Tensor, int]:
    import soundfile as sf

    try:
        data, sr = sf.read(f, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as e:
        raise ValueError(f"cannot read audio {path}: {e}") from None
    f.seek(0)
    _check_wav_complete(f, path)
    if data.shape[0] == 0:
        raise ValueError(f"audio file {path} holds no samples (zero length)")
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(sr)


def _check_wav_complete(f: BinaryIO, path: str) -> None:
    """libsndfile reads a cut-off WAV without complaint; compare the data chunk's declared size with the file."""
    head = f.read(12)
    if head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        return  # not a WAV, or RF64/W64 and friends: trust libsndfile
    size = f.seek(0, 2)
    f.seek(12)
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            return
        n = int.from_bytes(chunk[4:8], "little" if head[:4] == b"RIFF" else "big")
        if chunk[:4] == b"data":
            if f.tell() + n > size:
                raise ValueError(f"audio file {path} is truncated: its data chunk declares {n} bytes, "
                                 f"{size - f.tell()} are present")
            return
        f.seek(n + (n & 1), 1)
