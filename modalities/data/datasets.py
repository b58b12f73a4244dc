"""Training data for the tokenizers: random image crops, video clips, audio crops (held-out splits: data.sources).

Datasets return float tensors: images ``[3, H, W]`` and clips ``[T, 3, H, W]``
in [0, 1], audio crops ``[T]`` in [-1, 1]. Their length is virtual (``samples_per_epoch``) so that a
handful of files still fills a batch; each item is a fresh random crop.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from .io import load_image, load_video

__all__ = ["AudioCrops", "ColourJitter", "ImageCrops", "SampleStream", "VideoClips", "ZoomCrop", "center_crop_multiple",
           "infinite_batches", "rank_samples"]


def center_crop_multiple(x: torch.Tensor, multiple: int, max_size: int | None = None) -> torch.Tensor:
    """Centre crop of ``[..., H, W]`` to the largest multiples of ``multiple`` (at most ``max_size``)."""
    h, w = x.shape[-2:]
    th, tw = (min(s, max_size or s) // multiple * multiple for s in (h, w))
    if th == 0 or tw == 0:
        raise ValueError(f"frame of size {h}x{w} is smaller than the downsample factor {multiple}")
    top, left = (h - th) // 2, (w - tw) // 2
    return x[..., top:top + th, left:left + tw]


def _augment(crop: int, flip: bool) -> v2.Compose:
    steps = [v2.RandomCrop(crop, pad_if_needed=True, padding_mode="reflect")]
    return v2.Compose(steps + ([v2.RandomHorizontalFlip()] if flip else []))


class ZoomCrop:
    """Random square crop at a random scale: float[C, H, W] -> float[C, crop, crop].

    A zoom ``z`` drawn log-uniformly from ``zoom = (lo, hi)`` takes a random ``round(crop / z)``-pixel square
    (at most the image's shorter side) and resizes it (antialiased bilinear) to ``crop``: ``z < 1`` shows more of
    the scene in finer detail, as a downscaled photograph does, ``z > 1`` magnifies. Why: a few photographs seen at
    one scale teach a tokenizer their textures; seen at many scales they teach it photographs. Random numbers come
    from torch's global generator (seeded per sample by :class:`SampleStream`), so items are reproducible.
    """

    def __init__(self, crop: int, zoom: tuple[float, float] = (0.5, 1.0)) -> None:
        lo, hi = (float(z) for z in zoom)
        if not 0 < lo <= hi:
            raise ValueError(f"zoom must be (lo, hi) with 0 < lo <= hi, got {tuple(zoom)}")
        self.crop, self.log_lo, self.log_hi = crop, math.log(lo), math.log(hi)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        z = math.exp(self.log_lo + (self.log_hi - self.log_lo) * float(torch.rand(())))
        side = max(1, min(h, w, round(self.crop / z)))
        top, left = int(torch.randint(h - side + 1, ())), int(torch.randint(w - side + 1, ()))
        x = x[..., top:top + side, left:left + side]
        if side != self.crop:
            x = F.interpolate(x[None], size=(self.crop, self.crop), mode="bilinear", antialias=True,
                              align_corners=False)[0].clamp(0, 1)
        return x


class ColourJitter:
    """Random brightness, saturation and hue of one image: float[3, H, W] in [0, 1] -> the same, clamped.

    Factors are drawn uniformly: brightness ``1 + U(-b, b)`` scales every channel, saturation ``1 + U(-s, s)``
    moves each pixel away from (or towards) its own luma, and hue rotates chroma by ``U(-h, h)`` of a full turn
    (``h = 0.5``: any hue) around the grey axis in YIQ space. All three compose into one 3x3 matrix applied to
    the RGB pixels, about 20 times faster than torchvision's ``ColorJitter``, whose hue step converts every
    pixel to HSV and back; YIQ rotation keeps luma where HSV keeps the max channel, which is as good for
    teaching a tokenizer colours its photographs lack. Random numbers come from torch's global generator
    (seeded per sample by :class:`SampleStream`).
    """

    # RGB -> YIQ (NTSC); the rows of its inverse map back
    _YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])

    def __init__(self, brightness: float, saturation: float, hue: float) -> None:
        if not (0 <= brightness and 0 <= saturation and 0 <= hue <= 0.5):
            raise ValueError(f"colour must be [brightness, saturation, hue], each >= 0 and hue <= 0.5, got "
                             f"{[brightness, saturation, hue]}")
        self.b, self.s, self.h = float(brightness), float(saturation), float(hue)
        self.to_rgb = torch.linalg.inv(self._YIQ)

    def matrix(self, b: float, s: float, h: float) -> torch.Tensor:
        """The 3x3 RGB matrix of brightness factor ``b``, saturation factor ``s`` and hue turn ``h``."""
        c, n = math.cos(2 * math.pi * h), math.sin(2 * math.pi * h)
        yiq = torch.tensor([[1.0, 0.0, 0.0], [0.0, s * c, -s * n], [0.0, s * n, s * c]])
        return b * self.to_rgb @ yiq @ self._YIQ

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        u = torch.rand(3) * 2 - 1
        m = self.matrix(max(0.0, 1 + self.b * float(u[0])), max(0.0, 1 + self.s * float(u[1])), self.h * float(u[2]))
        return torch.einsum("ij,jhw->ihw", m.to(x.dtype), x).clamp(0, 1)


class ImageCrops(Dataset):
    """Random ``crop x crop`` crops (and horizontal flips) of image files: items float[3, crop, crop].

    ``zoom=(lo, hi)`` crops at a random scale instead (:class:`ZoomCrop`); ``None`` (the default) crops at the
    files' own resolution. ``colour=(brightness, saturation, hue)`` jitters every crop's colours
    (:class:`ColourJitter`; hue in ``[0, 0.5]`` of a turn, 0.5 being any rotation of the hue circle).
    """

    def __init__(self, files: list[Path], crop: int, flip: bool = True, samples_per_epoch: int = 1024,
                 cache: bool = True, zoom: tuple[float, float] | None = None,
                 colour: tuple[float, float, float] | None = None) -> None:
        if not files:
            raise ValueError("ImageCrops needs at least one image file")
        self.files, self.n = list(files), max(samples_per_epoch, len(files))
        self.transform = (_augment(crop, flip) if zoom is None else
                          v2.Compose([ZoomCrop(crop, zoom), *([v2.RandomHorizontalFlip()] if flip else [])]))
        if colour is not None:
            if len(colour) != 3:
                raise ValueError(f"colour must be [brightness, saturation, hue], got {list(colour)}")
            self.transform = v2.Compose([self.transform, ColourJitter(*(float(c) for c in colour))])
        self.cache: dict[int, torch.Tensor] | None = {} if cache else None

    def __len__(self) -> int:
        return self.n

    def _image(self, i: int) -> torch.Tensor:
        if self.cache is None:
            return load_image(self.files[i])
        if i not in self.cache:
            self.cache[i] = load_image(self.files[i])
        return self.cache[i]

    def __getitem__(self, idx: int) -> torch.Tensor:
        return self.transform(self._image(idx % len(self.files)))


class VideoClips(Dataset):
    """Random clips of ``frames`` consecutive frames, spatially cropped: items float[frames, 3, crop, crop].

    Videos shorter than ``frames`` are refused when the dataset is built.
    """

    def __init__(self, files: list[Path], frames: int, crop: int, flip: bool = True,
                 samples_per_epoch: int = 256) -> None:
        if not files:
            raise ValueError("VideoClips needs at least one video file")
        self.videos = [load_video(f) for f in files]  # decoded once; keep folders of short clips
        for f, v in zip(files, self.videos, strict=True):
            if len(v) < frames:
                raise ValueError(f"video {f} has {len(v)} frames, fewer than the clip length {frames}")
        self.frames, self.n = frames, max(samples_per_epoch, len(files))
        self.transform = _augment(crop, flip)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, idx: int) -> torch.Tensor:
        v = self.videos[idx % len(self.videos)]
        start = int(torch.randint(len(v) - self.frames + 1, ()))
        return self.transform(v[start:start + self.frames])  # one crop and flip for the whole clip


class SampleStream(Dataset):
    """Sample ``s`` of an endless shuffled stream over ``dataset``: item ``perm_e[s % n]`` of epoch ``e = s // n``,
    drawn with torch's random generator seeded from ``(seed, s)``.

    Why: a sample then depends on its number only, not on what was drawn before it nor on which DataLoader
    worker drew it, so a run resumed at step ``k`` gets exactly the batches an uninterrupted run gets from
    step ``k`` on. The global random state is saved and restored around each item, so data loading does not
    move the random numbers the model draws (k-means init, dead-code restarts).
    """

    def __init__(self, dataset: Dataset, seed: int = 0) -> None:
        self.dataset, self.n, self.seed = dataset, len(dataset), seed
        self._epoch, self._perm = -1, torch.zeros(0, dtype=torch.long)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, s: int) -> torch.Tensor:
        epoch, pos = divmod(s, self.n)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 2**32 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g)
        cpu = torch.default_generator  # what the transforms draw from (torch.manual_seed also seeds devices: slow)
        state = cpu.get_state()
        cpu.manual_seed((self.seed * 2**32 + s) ^ 0x5DEECE66D)
        try:
            return self.dataset[int(self._perm[pos])]
        finally:
            cpu.set_state(state)


def rank_samples(batch_size: int, start: int = 0, rank: int = 0, world_size: int = 1):
    """Sample numbers of rank ``rank`` of ``world_size``, from global batch ``start`` on: of global batch ``b``
    (``world_size * batch_size`` samples) the rank takes ``[b*W*bs + rank*bs, b*W*bs + (rank+1)*bs)``, so the
    ranks together see exactly the samples one process sees with batch ``W * bs``."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
    if world_size == 1:
        return itertools.count(start * batch_size)
    return (b * world_size * batch_size + rank * batch_size + i for b in itertools.count(start) for i in range(batch_size))


def infinite_batches(dataset: Dataset, batch_size: int, num_workers: int = 0, seed: int = 0, start: int = 0,
                     rank: int = 0, world_size: int = 1):
    """Yields shuffled batches forever, from batch number ``start`` on (batch ``b`` holds samples
    ``[b * batch_size, (b + 1) * batch_size)`` of a :class:`SampleStream`): the same tensors for any ``start``
    and any ``num_workers``, which is what makes a resumed run repeat an uninterrupted one. With ``world_size``
    ranks each yields its ``batch_size`` slice of the global batch (:func:`rank_samples`)."""
    if batch_size > len(dataset):
        raise ValueError(f"batch_size {batch_size} is larger than the dataset ({len(dataset)} items)")
    # an endless sampler of sample numbers; the DataLoader's own generator only seeds workers (our items reseed)
    # and keeps it from drawing from the global generator when the iterator starts
    loader = DataLoader(SampleStream(dataset, seed), batch_size=batch_size,
                        sampler=rank_samples(batch_size, start, rank, world_size),
                        num_workers=num_workers, generator=torch.Generator().manual_seed(seed))
    yield from loader


class AudioCrops(Dataset):
    """Random crops of ``crop`` samples from waveforms ``[T]`` (shorter ones padded with silence): items float[crop]."""

    def __init__(self, waves: list[torch.Tensor], crop: int, samples_per_epoch: int = 1024) -> None:
        if not waves:
            raise ValueError("AudioCrops needs at least one waveform")
        if crop < 1:
            raise ValueError(f"audio crop must be at least one sample, got {crop}")
        self.waves, self.crop, self.n = waves, crop, max(samples_per_epoch, len(waves))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, idx: int) -> torch.Tensor:
        w = self.waves[idx % len(self.waves)]
        if len(w) <= self.crop:
            return torch.nn.functional.pad(w, (0, self.crop - len(w)))
        start = int(torch.randint(len(w) - self.crop + 1, ()))
        return w[start:start + self.crop]
