"""Interleaved documents in WebDataset tar shards: which shards, which members, in which order.

A shard is a tar file read with the ``webdataset`` library; its members are grouped into samples by key
(``webdataset``'s rule: the key is the member name up to the first dot of its base name). One sample is one
document. Its members, by suffix::

    doc0042.000.txt    text (UTF-8)                      -> Text
    doc0042.001.jpg    an image (.png .jpg .webp ...)    -> Image
    doc0042.002.flac   audio (.wav .flac .ogg .mp3 ...)  -> Audio
    doc0042.003.mp4    video (.mp4 .webm .mkv ...)       -> Video
    doc0042.json       optional: {"parts": [...], "source": "..."}

Without ``parts`` in the ``.json``, the parts are the text and media members in the order of the number
before their suffix (``000``, ``001``, ... compared as numbers); members without a number (``jpg``, ``txt``
of a captioning set) follow, in name order. With ``parts``, the ``.json`` gives the order and may choose a
tokenizer by name, in the JSONL manifest's part format: ``{"text": "inline text"}`` or
``{"image" | "audio" | "video": "<member>", "name": "<tokenizer>"}``, where ``<member>`` is the member's name
after the key (``"001.jpg"``). A ``source`` (any string: the photograph, video or speaker the document comes
from) is recorded with the document. Other members (``.cls``, ``.npy``, a ``.json`` of metadata) are ignored.

Errors never stop a run: a document whose member is missing, corrupt or of an unknown format, and the sample
being read when a shard turns out truncated or unreadable, come out as :class:`TarError` naming shard, key and
cause; every complete sample before it is kept. This module reads and decodes; :mod:`modalities.shards`
turns the parts into tokens.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .io import AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES, load_audio_bytes, load_image_bytes, load_video
from .tars import is_tar_spec

__all__ = ["InterleavedShards", "RawPart", "ShardEnd", "TarError", "TarSample", "decode_part", "is_tar_spec",
           "member_name", "read_tar", "safe_key", "sample_parts", "shard_urls", "split_shards"]

log = logging.getLogger("mmtok")

TEXT_SUFFIXES = (".txt",)
KINDS = ("text", "image", "audio", "video")
_KIND_OF_SUFFIX = {**{s: "text" for s in TEXT_SUFFIXES}, **{s: "image" for s in IMAGE_SUFFIXES},
                   **{s: "audio" for s in AUDIO_SUFFIXES}, **{s: "video" for s in VIDEO_SUFFIXES}}


@dataclass
class TarSample:
    """One sample of a shard: ``members`` maps the member name after the key (``"001.jpg"``) to its bytes."""

    shard: str
    key: str
    members: dict[str, bytes] = field(default_factory=dict)


@dataclass
class TarError:
    """A document (``key``) or a whole shard (``key`` None) that could not be read, and why."""

    shard: str
    key: str | None
    error: str

    def as_dict(self) -> dict[str, Any]:
        return {"shard": self.shard, "key": self.key, "error": self.error}


@dataclass
class ShardEnd:
    """Marks that every sample of shard ``index`` (``url``) has been yielded."""

    index: int
    url: str


@dataclass
class RawPart:
    """A part before decoding: ``kind`` text/image/audio/video, ``data`` the text or the member's bytes,
    ``member`` its name in the sample (``"001.jpg"``; ``None`` for inline text), ``name`` a tokenizer name."""

    kind: str
    data: str | bytes
    member: str | None = None
    name: str | None = None


# ------------------------------------------------------------------ which shards
def shard_urls(spec: str | Path | Sequence[str]) -> list[str]:
    """Shard URLs of ``spec`` in order: a brace pattern (``/data/docs-{00000..00009}.tar``, ``::`` joins
    several; expanded by ``webdataset``), a glob (``/data/*.tar``, sorted), a ``pipe:`` command, or a list of
    them. A named shard that does not exist stays in the list (it is reported as unreadable when read, and the
    numbering of the others does not move). Raises ``ValueError`` when nothing is left."""
    import glob

    import webdataset as wds

    specs = [str(spec)] if isinstance(spec, (str, Path)) else [str(s) for s in spec]
    urls: list[str] = []
    for s in specs:
        for url in wds.shardlists.expand_urls(s):
            matches = sorted(glob.glob(url)) if not url.startswith("pipe:") and glob.has_magic(url) else [url]
            if not matches:
                raise ValueError(f"the tar pattern {url!r} matches no file")
            urls += matches
    if not urls:
        raise ValueError(f"no tar shards in {spec!r}")
    return urls


def split_shards(n: int, rank: int = 0, world_size: int = 1, worker: int = 0, num_workers: int = 1) -> list[int]:
    """Indices of the shards ``0..n-1`` that DataLoader ``worker`` of ``num_workers`` on ``rank`` of
    ``world_size`` reads: shard ``i`` belongs to rank ``i % world_size``, and a rank's shards are dealt to its
    workers in turn. Over all ranks and workers every shard is read exactly once."""
    if not 0 <= rank < world_size or not 0 <= worker < max(num_workers, 1):
        raise ValueError(f"bad split: rank {rank} of {world_size}, worker {worker} of {num_workers}")
    mine = [i for i in range(n) if i % world_size == rank]
    return mine[worker::max(num_workers, 1)]


# ------------------------------------------------------------------ reading a shard
def read_tar(url: str) -> Iterator[TarSample | TarError]:
    """The samples of one shard in file order; a truncated or unreadable shard ends with one :class:`TarError`
    for the sample being read (``key`` None when the shard could not be opened at all)."""
    import webdataset as wds
    from webdataset.tariterators import base_plus_ext

    seen: list[str] = []  # name of the member whose header was read last (webdataset calls rename_files with it)

    def note(name: str) -> str:
        seen.append(name)
        del seen[:-1]
        return name

    current: TarSample | None = None
    try:
        stream = wds.gopen(url, "rb")
    except Exception as e:  # noqa: BLE001 - any failure to open is reported, not raised
        yield TarError(url, None, f"cannot open shard: {type(e).__name__}: {e}")
        return
    try:
        for item in wds.tariterators.tar_file_iterator(stream, rename_files=note):
            key, ext = base_plus_ext(item["fname"])
            if key is None:
                continue  # a member without a suffix belongs to no sample
            if current is not None and key != current.key:
                yield current
                current = None
            if current is None:
                current = TarSample(url, key)
            if ext in current.members:
                raise ValueError(f"member {item['fname']} appears twice")
            current.members[ext] = item["data"]
    except Exception as e:  # noqa: BLE001 - tarfile raises ReadError, EOFError, zlib errors...
        name = seen[-1] if seen else None
        key = base_plus_ext(name)[0] if name else None
        if current is not None and key is not None and key != current.key:
            yield current  # the error is in the next sample's first member: this one is complete
            current = None
        where = current.key if current is not None else key
        yield TarError(url, where, f"shard truncated or corrupt at member {name!r}: {type(e).__name__}: {e}")
        return
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            try:
                close()
            except Exception as e:  # noqa: BLE001 - a pipe: command that failed reports here
                log.warning("closing shard %s: %s", url, e)
    if current is not None:
        yield current


# ------------------------------------------------------------------ member format
def _order(ext: str) -> tuple[int, int, str]:
    head = ext.split(".", 1)[0]
    return (0, int(head), ext) if head.isdigit() and "." in ext else (1, 0, ext)


def member_name(index: int, suffix: str) -> str:
    """The member name of part ``index`` with file suffix ``suffix`` (``member_name(1, ".JPG") == "001.jpg"``)."""
    return f"{index:03d}{suffix.lower()}"


def sample_parts(sample: TarSample) -> tuple[list[RawPart], str | None]:
    """The parts of ``sample`` in document order, and its source (``None`` if the ``.json`` names none).

    Raises ``ValueError`` naming shard, key and member for a malformed ``.json``, a part naming a missing
    member, or a sample with no part at all.
    """
    where = f"shard {sample.shard} key {sample.key}"
    meta: dict[str, Any] = {}
    if "json" in sample.members:
        try:
            meta = json.loads(sample.members["json"].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{where}: member json is not valid JSON ({e})") from None
        if not isinstance(meta, dict):
            meta = {}
    source = meta.get("source")
    source = None if source is None else str(source)
    if "parts" in meta:
        return _explicit_parts(sample, meta["parts"], where), source
    parts = []
    for ext in sorted(sample.members, key=_order):
        kind = _KIND_OF_SUFFIX.get("." + ext.rsplit(".", 1)[-1].lower())
        if kind is None:
            continue
        data = sample.members[ext]
        if kind == "text":
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{where} member {ext}: text is not UTF-8 ({e})") from None
        parts.append(RawPart(kind, data, ext))
    if not parts:
        raise ValueError(f"{where}: no text or media members (has {sorted(sample.members)})")
    return parts, source


def _explicit_parts(sample: TarSample, spec: Any, where: str) -> list[RawPart]:
    if not isinstance(spec, list) or not spec:
        raise ValueError(f"{where}: json 'parts' must be a non-empty list of parts")
    parts = []
    for i, p in enumerate(spec):
        kinds = [k for k in KINDS if isinstance(p, dict) and k in p]
        if len(kinds) != 1 or set(p) - set(KINDS) - {"name"} or not isinstance(p[kinds[0]], str):
            raise ValueError(f"{where}: json parts[{i}] must be {{\"text\": \"...\"}} or {{\"image\"|\"audio\"|"
                             f"\"video\": \"<member>\"}} (and optionally \"name\"), got {p!r}")
        kind, value, name = kinds[0], p[kinds[0]], p.get("name")
        if kind == "text":
            parts.append(RawPart("text", value, None, name))
            continue
        member = value[len(sample.key) + 1:] if value.startswith(sample.key + ".") else value
        if member not in sample.members:
            raise ValueError(f"{where}: json parts[{i}] names member {value!r}, which the sample does not have "
                             f"(it has {sorted(sample.members)})")
        parts.append(RawPart(kind, sample.members[member], member, name))
    return parts


# ------------------------------------------------------------------ decoding
def decode_part(part: RawPart, where: str, video_loader: Callable[[Path], torch.Tensor] = load_video) -> Any:
    """The decoded data of a part: image ``float[3, H, W]`` in [0, 1], audio ``(float[C, T], rate)`` (the
    ``*_bytes`` readers of :mod:`modalities.data.io`), video ``float[T, 3, H, W]`` read by ``video_loader`` from a
    temporary file (a video tokenizer's ``load``, which also trims the frame count); text as it is. A corrupt
    member is a ``ValueError`` naming ``where`` and the member."""
    if part.kind == "text":
        return part.data
    what = f"{where} member {part.member}"
    data = part.data if isinstance(part.data, bytes) else str(part.data).encode()
    if part.kind == "image":
        return load_image_bytes(data, what)
    if part.kind == "audio":
        return load_audio_bytes(data, what)
    suffix = "." + (part.member or "x.mp4").rsplit(".", 1)[-1].lower()
    try:
        with tempfile.NamedTemporaryFile(suffix=suffix) as f:  # a video tokenizer's load wants a path
            f.write(data)
            f.flush()
            return video_loader(Path(f.name))
    except (ValueError, OSError, RuntimeError) as e:
        raise ValueError(f"{what}: {str(e).replace(f.name, 'the member')}") from None


# ------------------------------------------------------------------ dataset
class InterleavedShards(torch.utils.data.IterableDataset):
    """The documents of shards ``urls[i]`` for ``i`` in ``indices``, split among DataLoader workers (worker ``w``
    of ``n`` reads ``indices[w::n]``, whole shards, in order).

    Yields ``(i, key, convert(sample))`` per document, where ``convert`` (run in the worker: decode media there)
    turns a :class:`TarSample` into what the consumer wants; a ``ValueError``/``OSError`` it raises becomes a
    :class:`TarError`, yielded as ``(i, key, TarError)``. After the last document of shard ``i`` comes
    :class:`ShardEnd` ``(i, url)``, so a consumer can finish one output shard per input shard.
    """

    def __init__(self, urls: Sequence[str], indices: Sequence[int], convert: Callable[[TarSample], Any]) -> None:
        super().__init__()
        self.urls, self.indices, self.convert = list(urls), list(indices), convert

    def __iter__(self) -> Iterator[tuple[int, str | None, Any] | ShardEnd]:
        info = torch.utils.data.get_worker_info()
        w, n = (info.id, info.num_workers) if info is not None else (0, 1)
        for i in self.indices[w::n]:
            for item in read_tar(self.urls[i]):
                if isinstance(item, TarError):
                    yield i, item.key, item
                    continue
                try:
                    out = self.convert(item)
                except (ValueError, OSError) as e:
                    out = TarError(item.shard, item.key, str(e))
                yield i, item.key, out
            yield ShardEnd(i, self.urls[i])


def member_suffix_kind(name: str) -> str | None:
    """``text``/``image``/``audio``/``video`` for a member or file name by its suffix, else ``None``."""
    return _KIND_OF_SUFFIX.get("." + name.rsplit(".", 1)[-1].lower()) if "." in name else None


_SAFE_KEY = re.compile(r"[^A-Za-z0-9_/-]")


def safe_key(name: str) -> str:
    """A WebDataset key made from ``name``: dots and other characters outside ``[A-Za-z0-9_/-]`` become ``_``
    (a dot would end the key)."""
    return _SAFE_KEY.sub("_", name).strip("/") or "_"
