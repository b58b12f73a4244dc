"""Tokenizer training data from WebDataset tar shards (``data.images=/data/train-{00000..00127}.tar``).

A corpus too big for a folder of files comes as tar shards: each sample a group of members sharing a key
(``000123.jpg``, ``000123.txt``). :func:`expand_shards` turns ``data.images`` / ``data.audio`` /
``data.videos`` (a brace pattern, a glob, a list of them, or a ``pipe:`` command) into the list of shard URLs;
:class:`TarMedia` streams training items from them with the ``webdataset`` library: every epoch the shard order
is shuffled the same way on every rank (seeded by ``(seed, start step, epoch)``), ``wds.split_by_node`` gives
rank ``r`` of ``W`` every ``W``-th shard and ``wds.split_by_worker`` deals those to the DataLoader workers, then
the media members are decoded (:mod:`modalities.data.io`), pass a shuffle buffer and are cropped. The stream is
endless, so every rank has a batch for every step.

Members are recognised by extension (:data:`MEMBER_SUFFIXES`); a sample without one is passed over. A member
that does not decode or crop (corrupt file, too-short clip) and a shard that cannot be opened or read to its end
are skipped with a warning naming the shard (``__url__``) and the key (``__key__``) and counted in a
:class:`SkipCounter` shared with the workers; the members before a bad spot of a shard are kept.
"""

from __future__ import annotations

import glob
import itertools
import logging
import multiprocessing
import random
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset

from .datasets import _augment
from .io import load_audio_bytes, load_image_bytes, load_video_bytes
from .samples import launch_dir
from .waveform import AudioInputConfig, prepare_audio

__all__ = ["MEMBER_SUFFIXES", "AudioCrop", "ImageCrop", "SkipCounter", "TarMedia", "VideoClip", "decode_member",
           "decode_raw", "expand_shards", "hold_out_last", "is_tar_spec", "raw_members", "read_members", "shards_for",
           "tar_batches"]

log = logging.getLogger("mmtok")

MEMBER_SUFFIXES = {"image": ("jpg", "jpeg", "png", "webp"), "audio": ("flac", "wav", "mp3", "ogg"),
                   "video": ("mp4", "webm", "mkv")}
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


def is_tar_spec(value: Any) -> bool:
    """True when a ``data.*`` value names tar shards (a ``pipe:`` command, or paths ending in ``.tar``,
    ``.tar.gz`` or ``.tgz``, possibly with ``{a..b}`` braces or globs), False for a folder or None."""
    if value is None:
        return False
    items = [value] if isinstance(value, str) else list(value)
    return bool(items) and all(isinstance(s, str) and (s.startswith("pipe:") or s.endswith(TAR_SUFFIXES))
                               for s in items)


def expand_shards(spec: str | Iterable[str], root: Path, what: str) -> list[str]:
    """The shard URLs of ``spec``: braces expanded (``train-{000..127}.tar``, with the library's
    ``wds.shardlists.expand_urls``), globs (``*.tar``) matched and sorted, relative paths taken from the directory
    the command was started in when they match there, else under ``root``;
    ``pipe:`` commands as they are. Raises ``FileNotFoundError`` naming ``what`` and the pattern when a pattern
    matches no existing file."""
    import webdataset as wds

    urls: list[str] = []
    for pattern in [spec] if isinstance(spec, str) else list(spec):
        if pattern.startswith("pipe:"):
            urls += wds.shardlists.expand_urls(pattern)
            continue
        found: list[str] = []
        for base in (launch_dir(), root):  # a relative pattern: where the command was started, else the root
            for url in wds.shardlists.expand_urls(pattern):
                path = Path(url).expanduser()
                path = path if path.is_absolute() else base / path
                if glob.has_magic(str(path)):
                    found += sorted(glob.glob(str(path)))
                elif path.is_file():
                    found.append(str(path))
            if found:
                break
        if not found:
            where = (f"in the directory the command was started in ({launch_dir()}) nor under the data root ({root})"
                     if not Path(pattern).expanduser().is_absolute() else "")
            raise FileNotFoundError(f"{what}: the tar pattern {pattern!r} matches no file {where}".rstrip())
        urls += found
    return urls


def hold_out_last(urls: list[str], what: str) -> tuple[list[str], list[str]]:
    """``(training shards, [last shard])``: with no separate validation data the last shard is held out."""
    if len(urls) < 2:
        raise ValueError(f"{what}: {len(urls)} tar shard(s) {urls}: holding the last one out for validation needs "
                         "at least 2 (or name held-out data with data.val_images / val_audio / val_videos)")
    return urls[:-1], urls[-1:]


def shards_for(urls: list[str], seed: int, start: int, epoch: int, rank: int, world_size: int, worker: int,
               num_workers: int) -> list[str]:
    """The shards reader ``(rank, worker)`` reads in ``epoch``: the list shuffled by ``(seed, start, epoch)``
    (the same on every rank), then ``wds.split_by_node`` and ``wds.split_by_worker``. Over all ranks and
    workers the shards are each read exactly once per epoch."""
    import webdataset as wds

    order = list(urls)
    random.Random(f"{seed}/{start}/{epoch}").shuffle(order)
    env = {"RANK": str(rank), "WORLD_SIZE": str(world_size), "WORKER": str(worker), "NUM_WORKERS": str(num_workers)}
    with _environ(env):  # what wds.utils.pytorch_worker_info reads first
        return list(wds.split_by_worker(wds.split_by_node(iter(order))))


class _environ:
    """Sets environment variables for a ``with`` block (what ``webdataset`` reads the rank and worker from)."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values, self.saved = values, {}

    def __enter__(self) -> None:
        import os

        self.saved = {k: os.environ.get(k) for k in self.values}
        os.environ.update(self.values)

    def __exit__(self, *exc: Any) -> None:
        import os

        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class SkipCounter:
    """Members and shards skipped, counted across DataLoader worker processes (a shared integer)."""

    def __init__(self) -> None:
        self._value = multiprocessing.Value("q", 0)  # shared memory, inherited by DataLoader workers

    def add(self, n: int = 1) -> None:
        with self._value.get_lock():
            self._value.value += n

    @property
    def value(self) -> int:
        return int(self._value.value)


def decode_member(kind: str, data: bytes, name: str) -> Any:
    """A member's bytes decoded: image float[3, H, W] in [0, 1], video float[T, 3, H, W] in [0, 1], audio
    ``(float[C, T] in [-1, 1], sample_rate)``."""
    if kind == "image":
        return load_image_bytes(data, name)
    if kind == "audio":
        return load_audio_bytes(data, name)
    if kind == "video":
        return load_video_bytes(data, name)
    raise ValueError(f"unknown media kind {kind!r}; expected one of {sorted(MEMBER_SUFFIXES)}")


def raw_members(urls: list[str], kind: str, what: str,
                counter: SkipCounter | None = None) -> Iterator[tuple[str, str, str, bytes]]:
    """``(shard url, key, extension, bytes)`` of the first ``kind`` member of each sample of ``urls``, in order
    (samples without one are passed over). A shard that cannot be opened or read to its end is skipped (from the
    bad spot on) with a warning naming ``what`` and the shard, and counted."""
    import webdataset as wds

    suffixes = MEMBER_SUFFIXES[kind]

    failed: set[str] = set()

    def shard_failed(exn: Exception) -> bool:
        # the library appends the url to the exception's args, or " @ <file object>" to its message
        text = str(exn.args[0]) if exn.args else repr(exn)
        url = next((a for a in reversed(exn.args) if isinstance(a, str) and a in urls), None)
        url = url or next((u for u in urls if u in text), "?")
        if isinstance(exn, OSError) and exn.strerror:
            text = exn.strerror
        if url not in failed:  # one warning and one count per shard (a cut-off tar fails twice on its way out)
            failed.add(url)
            log.warning("%s: skipping (the rest of) shard %s: %s: %s", what, url, type(exn).__name__,
                        text.split(" @ ")[0])
            if counter is not None:
                counter.add()
        return True

    for sample in wds.tarfile_samples(iter([{"url": u} for u in urls]), handler=shard_failed):
        ext = next((e for e in suffixes if e in sample), None)
        if ext is not None:
            yield sample.get("__url__", "?"), sample.get("__key__", "?"), ext, sample[ext]


def decode_raw(raw: tuple[str, str, str, bytes], kind: str, what: str, counter: SkipCounter | None = None,
               transform: Callable[[Any], torch.Tensor] | None = None) -> Any | None:
    """One :func:`raw_members` entry decoded and passed through ``transform``; ``None`` (with a warning naming
    ``what``, the shard and the key, and counted) when it does not decode or transform."""
    url, key, ext, data = raw
    try:
        item = decode_member(kind, data, f"{key}.{ext} in {url}")
        return transform(item) if transform is not None else item
    except (ValueError, OSError, RuntimeError) as e:
        log.warning("%s: skipping member %s.%s of shard %s: %s", what, key, ext, url, e)
        if counter is not None:
            counter.add()
        return None


def read_members(urls: list[str], kind: str, what: str, counter: SkipCounter | None = None,
                 transform: Callable[[Any], torch.Tensor] | None = None,
                 limit: int | None = None) -> Iterator[tuple[str, str, Any]]:
    """``(shard url, key, item)`` for every readable ``kind`` member of ``urls`` in order, decoded and passed
    through ``transform``; at most ``limit``. Bad shards and members are skipped (:func:`raw_members`,
    :func:`decode_raw`)."""
    n = 0
    for raw in raw_members(urls, kind, what, counter):
        item = decode_raw(raw, kind, what, counter, transform)
        if item is None:
            continue
        yield raw[0], raw[1], item
        n += 1
        if limit is not None and n >= limit:
            return


class ImageCrop:
    """Random ``crop x crop`` crop (and horizontal flip): float[3, H, W] -> float[3, crop, crop]."""

    def __init__(self, crop: int, flip: bool = True) -> None:
        self.transform = _augment(crop, flip)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.transform(image)


class VideoClip:
    """Random ``frames``-frame clip, one crop and flip for all frames: float[T, 3, H, W] -> float[frames, 3, crop,
    crop]; a video shorter than ``frames`` is a ``ValueError`` (the member is skipped)."""

    def __init__(self, frames: int, crop: int, flip: bool = True) -> None:
        self.frames, self.transform = frames, _augment(crop, flip)

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        if len(video) < self.frames:
            raise ValueError(f"{len(video)} frames, fewer than the clip length {self.frames}")
        start = int(torch.randint(len(video) - self.frames + 1, ()))
        return self.transform(video[start:start + self.frames])


class AudioCrop:
    """Mono waveform at ``audio.sample_rate`` (:func:`prepare_audio`), randomly cropped to ``crop`` samples (shorter
    ones padded with silence): ``(float[C, T], rate)`` -> float[crop]; ``crop=None`` keeps the whole waveform."""

    def __init__(self, audio: AudioInputConfig, crop: int | None) -> None:
        self.audio, self.crop = audio, crop

    def __call__(self, decoded: tuple[torch.Tensor, int]) -> torch.Tensor:
        wave, sr = decoded
        w = prepare_audio(wave, self.audio, sample_rate=sr)[0].mean(0)
        if self.crop is None:
            return w
        if len(w) <= self.crop:
            return torch.nn.functional.pad(w, (0, self.crop - len(w)))
        start = int(torch.randint(len(w) - self.crop + 1, ()))
        return w[start:start + self.crop]


class TarMedia(IterableDataset):
    """Endless stream of training items (``transform`` of each decoded ``kind`` member) from tar shards ``urls``,
    split across ranks and DataLoader workers, through a ``shuffle_buffer``-item shuffle buffer.

    The random draws (shard order, buffer, crops) are seeded from ``(seed, start)`` and the reader's rank and
    worker, and crops draw from a generator of their own (the model's random numbers are not moved), so a run
    resumed at step ``start`` reads a fresh, reproducible order rather than the first run's first batches again.
    """

    def __init__(self, urls: list[str], kind: str, transform: Callable[[Any], torch.Tensor], what: str,
                 shuffle_buffer: int = 1000, seed: int = 0, start: int = 0,
                 counter: SkipCounter | None = None) -> None:
        if kind not in MEMBER_SUFFIXES:
            raise ValueError(f"unknown media kind {kind!r}; expected one of {sorted(MEMBER_SUFFIXES)}")
        if shuffle_buffer < 1:
            raise ValueError(f"data.shuffle_buffer must be at least 1, got {shuffle_buffer}")
        self.urls, self.kind, self.transform, self.what = list(urls), kind, transform, what
        self.shuffle_buffer, self.seed, self.start = shuffle_buffer, seed, start
        self.counter = counter if counter is not None else SkipCounter()

    def starting_at(self, start: int) -> TarMedia:
        """This stream as read by a run that starts (or resumes) at step ``start``."""
        return TarMedia(self.urls, self.kind, self.transform, self.what, self.shuffle_buffer, self.seed, start,
                        self.counter)

    def __iter__(self) -> Iterator[torch.Tensor]:
        import webdataset as wds

        rank, world, worker, workers = wds.utils.pytorch_worker_info()
        reader = f"{self.seed}/{self.start}/{rank}/{worker}"
        gen_state = torch.Generator().manual_seed(hash_seed(reader)).get_state()
        for epoch in itertools.count():
            mine = shards_for(self.urls, self.seed, self.start, epoch, rank, world, worker, workers)
            if not mine:
                raise ValueError(f"{self.what}: {len(self.urls)} training shard(s) cannot feed {world} rank(s) x "
                                 f"{workers} loader worker(s): each reader needs at least one shard; use more "
                                 "shards or fewer trainer.num_workers")
            raw = raw_members(mine, self.kind, self.what, self.counter)
            rng = random.Random(f"{reader}/{epoch}")
            n = 0
            # the buffer holds members still encoded (bytes), decoded only when drawn
            for member in wds.shuffle(self.shuffle_buffer, initial=self.shuffle_buffer, rng=rng)(raw):
                cpu = torch.default_generator
                saved = cpu.get_state()
                cpu.set_state(gen_state)
                try:
                    out = decode_raw(member, self.kind, self.what, self.counter, self.transform)
                finally:
                    gen_state = cpu.get_state()
                    cpu.set_state(saved)
                if out is None:
                    continue
                n += 1
                yield out
            if n == 0:
                raise ValueError(f"{self.what}: no readable {'/'.join(MEMBER_SUFFIXES[self.kind])} member in the "
                                 f"shards {mine} (rank {rank}, worker {worker})")


def hash_seed(text: str) -> int:
    """A 63-bit seed from a string (stable across processes, unlike ``hash``)."""
    import zlib

    return (zlib.crc32(text.encode()) | zlib.adler32(text.encode()) << 32) & (2**63 - 1)


def tar_batches(dataset: TarMedia, batch_size: int, num_workers: int = 0) -> Iterator[torch.Tensor]:
    """Batches ``[batch_size, ...]`` of ``dataset`` forever (one per training step on this rank)."""
    import webdataset as wds

    rank, world, _, _ = wds.utils.pytorch_worker_info()
    readers = world * max(1, num_workers)
    if len(dataset.urls) < readers:
        raise ValueError(f"{dataset.what}: {len(dataset.urls)} training shard(s) cannot feed {world} rank(s) x "
                         f"{max(1, num_workers)} loader worker(s) ({readers} readers, each needs at least one shard); "
                         "use more shards or fewer trainer.num_workers")
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                        generator=torch.Generator().manual_seed(hash_seed(f"{dataset.seed}/{dataset.start}/{rank}")))
    yield from loader
