"""Sharded token files: pre-tokenised documents as flat id arrays with document offsets.

A shard ``shard_NNNNN`` is three files written to temporary names and renamed
when complete, the JSON last: ``.bin`` (the ids of its documents back to back,
``uint16`` when the vocabulary fits, else ``uint32``), ``.idx.npy`` (int64
offsets, ``len = documents + 1``) and ``.json`` (counts). A shard counts as
done only when its ``.json`` exists, so a killed run restarted with the same
command redoes only the unfinished shards and never truncates or duplicates a
finished one. Shard ``i`` holds documents ``[i * shard_docs, (i + 1) * shard_docs)``
of the input order and belongs to rank ``i % world_size``, so ``torchrun``
ranks split the work without talking to each other. Media files are decoded
in ``num_workers`` DataLoader worker processes (in order) while the main
process encodes. A document whose media cannot be read is skipped with a
warning naming the file, and listed in its shard's ``skipped``.
Documents are encoded ``batch_size`` at a time (media of equal shape in one call,
:mod:`modalities.batch_encode`); in fp32 the bytes do not depend on the batch size.
Interleaved documents in WebDataset tar shards (:func:`pretokenize_tars`) give one
output shard per input shard, with each document's input shard and key in
``shard_NNNNN.keys.json`` (:meth:`ShardReader.source`).
``manifest.json`` sums the shards and lists every skipped document. Every shard records the registry
fingerprint; resuming into a folder written with another vocabulary is an error.
Each rank holds the folder's lock while it writes (:mod:`modalities.data.lock`),
and a full or read-only disk is a ``DiskWriteError`` that leaves finished shards as they were.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from . import __version__
from .batch_encode import encode_documents
from .batch_encode import precision as _precision
from .data.fileio import atomic_open, atomic_path, atomic_write_text
from .data.interleaved import InterleavedShards, ShardEnd, TarError, TarSample, decode_part, sample_parts
from .data.io import load_audio, load_image
from .data.lock import locks_folder
from .multimodal import Audio, Image, MultimodalTokenizer, Text, Video

__all__ = ["ShardBuilder", "ShardReader", "pretokenize", "pretokenize_tars"]

log = logging.getLogger("mmtok")
MANIFEST = "manifest.json"


def _dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(np.uint32)


def _media_files(doc: Sequence[Any]) -> list[str]:
    return [str(p.data) for p in doc if isinstance(getattr(p, "data", None), (str, Path))]


class Unreadable:
    """A document whose media could not be decoded: the files it names and the error."""

    def __init__(self, files: list[str], error: str) -> None:
        self.files, self.error = files, error


class DecodedDocuments(torch.utils.data.Dataset):
    """``docs[i]`` with image, video and audio files decoded to tensors (what DataLoader workers do), or an
    :class:`Unreadable` for a document whose files fail."""

    def __init__(self, docs: Sequence[Sequence[Any]], tok: MultimodalTokenizer) -> None:
        self.docs, self.tok = docs, tok

    def __len__(self) -> int:
        return len(self.docs)

    def __getitem__(self, i: int) -> list[Any] | Unreadable:
        doc = self.docs[i]
        try:
            return [self._decode(p) for p in doc]
        except (ValueError, OSError) as e:  # FileNotFoundError is an OSError
            return Unreadable(_media_files(doc), str(e))

    def _decode(self, part: Any) -> Any:
        if not isinstance(getattr(part, "data", None), (str, Path)):
            return part
        if isinstance(part, Image):
            return Image(load_image(part.data), part.name)
        if isinstance(part, Audio):
            return Audio(*load_audio(part.data), name=part.name)
        if isinstance(part, Video):
            return Video(self.tok.tokenizer_for(part)[1].load(part.data), part.name)
        return part


def _as_is(x: Any) -> Any:
    return x


class ShardBuilder:
    """Encodes documents as they come, ``batch_size`` at a time (:func:`~modalities.batch_encode.encode_documents`;
    1: one :meth:`MultimodalTokenizer.encode` call per document), and writes them as one shard.

    ``add(doc, source)`` takes the parts of a document, an :class:`Unreadable` or a
    :class:`~modalities.data.interleaved.TarError`; ``source`` (``{"key": ..., "source": ...}`` for a document of
    a tar shard) is kept for the shard's ``.keys.json``. A document that fails is skipped with a warning and
    listed in the shard's ``skipped`` (``{"files", "error"}``, or ``{"shard", "key", "error"}`` from a tar).
    """

    def __init__(self, tok: MultimodalTokenizer, batch_size: int = 1, bar: Any = None, input: str | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.tok, self.batch_size, self.bar, self.input = tok, batch_size, bar, input
        self.names = {m.index: m.name for m in tok.registry.modalities} | {0: "special"}
        self.ids: list[np.ndarray] = []
        self.offsets, self.skipped, self.keys = [0], [], []
        self.counts = {n: 0 for n in self.names.values()}
        self._pending: list[tuple[Any, dict[str, Any] | None]] = []

    def add(self, doc: Sequence[Any] | Unreadable | TarError, source: dict[str, Any] | None = None) -> None:
        self._pending.append((doc, source))
        if len(self._pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Encodes the documents added since the last flush."""
        pending, self._pending = self._pending, []
        good = [d for d, _ in pending if not isinstance(d, (Unreadable, TarError))]
        if self.batch_size == 1:
            results = iter([self._encode_one(d) for d in good])
        else:
            results = iter(encode_documents(self.tok, good, self.batch_size, bos=True, eos=True))
        for doc, source in pending:
            result = (ValueError(doc.error) if isinstance(doc, (Unreadable, TarError)) else next(results))
            if isinstance(result, Exception):
                self._skip(doc, source, result)
            else:
                self._keep(result, source)
            if self.bar is not None:
                self.bar.update(1)

    def _encode_one(self, doc: Sequence[Any]) -> Any:
        try:
            return self.tok.encode(doc, bos=True, eos=True)
        except (ValueError, FileNotFoundError, OSError) as e:
            return e

    def _keep(self, seq: Any, source: dict[str, Any] | None) -> None:
        self.ids.append(seq.ids.numpy())
        self.offsets.append(self.offsets[-1] + len(seq))
        for idx, n in zip(*np.unique(seq.modality.numpy(), return_counts=True), strict=True):
            self.counts[self.names[int(idx)]] += int(n)
        if source is not None:
            self.keys.append(source)

    def _skip(self, doc: Any, source: dict[str, Any] | None, error: Exception) -> None:
        if isinstance(doc, TarError):
            entry = doc.as_dict()
        elif source is not None and self.input is not None:
            entry = {"shard": self.input, "key": source.get("key"), "error": str(error)}
        else:
            entry = {"files": doc.files if isinstance(doc, Unreadable) else _media_files(doc), "error": str(error)}
        if "files" in entry:
            log.warning("skipping a document (%s): %s", ", ".join(entry["files"]) or "no files", error)
        else:
            log.warning("skipping shard %s key %s: %s", entry["shard"], entry["key"], entry["error"])
        self.skipped.append(entry)

    def write(self, out_dir: Path, index: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Writes shard ``index`` (``.bin``, ``.idx.npy``, ``.keys.json`` when documents came from a tar, then the
        ``.json`` holding the counts and ``extra``); returns the ``.json``'s content."""
        self.flush()
        reg = self.tok.registry
        stem = out_dir / f"shard_{index:05d}"
        flat = np.concatenate(self.ids) if self.ids else np.zeros(0)
        with atomic_open(stem.with_suffix(".bin")) as f:  # a file object keeps the errno of a full disk; tofile does not
            f.write(flat.astype(_dtype(reg.vocab_size)).data)
        with atomic_path(stem.with_suffix(".idx.npy")) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(self.offsets, dtype=np.int64))
        if self.input is not None:
            keys = {"input": self.input, "keys": [k.get("key") for k in self.keys]}
            if any(k.get("source") is not None for k in self.keys):
                keys["sources"] = [k.get("source") for k in self.keys]
            atomic_write_text(stem.with_suffix(".keys.json"), json.dumps(keys) + "\n")
        meta = {"shard": index, "registry_fingerprint": reg.fingerprint, "documents": len(self.offsets) - 1,
                "tokens": int(self.offsets[-1]),
                "tokens_per_modality": self.counts, "skipped": self.skipped} | (extra or {})
        atomic_write_text(stem.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")
        return meta


def write_shard(out_dir: Path, index: int, docs: Sequence[Sequence[Any] | Unreadable], tok: MultimodalTokenizer,
                bar: Any = None, batch_size: int = 1) -> dict[str, Any]:
    """Encodes ``docs`` (parts, or :class:`Unreadable`) and writes shard ``index``; returns its counts (also in its
    ``.json``)."""
    builder = ShardBuilder(tok, batch_size, bar)
    for doc in docs:
        builder.add(doc)
    return builder.write(out_dir, index)


def _check_resumable(out_dir: Path, fingerprint: str, prec: str = "fp32", inputs: Sequence[str] | None = None) -> None:
    """Refuses to add shards to a folder written with another vocabulary, precision or list of input shards."""
    for p in sorted(out_dir.glob("shard_*.json")):
        if p.name.endswith(".keys.json"):
            continue
        meta = json.loads(p.read_text())
        found = meta.get("registry_fingerprint")
        if found != fingerprint:
            raise ValueError(f"{p} was written with vocabulary {found}, this tokenizer has {fingerprint}; "
                             f"use another output folder (or delete {out_dir}) to tokenise with a new vocabulary")
        if meta.get("precision", "fp32") != prec:
            raise ValueError(f"{p} was written with precision {meta.get('precision', 'fp32')}, this run uses {prec}; "
                             f"use the same task.precision or another output folder")
        index = meta.get("shard")
        if inputs is not None and isinstance(index, int) and (index >= len(inputs) or meta.get("input") != inputs[index]):
            want = inputs[index] if index < len(inputs) else "no shard (the list is shorter)"
            raise ValueError(f"{p} holds the documents of {meta.get('input')!r}, but input shard {index} is now "
                             f"{want!r}; resume with the same list of tar shards, or use another output folder")


def _wait_for_other_ranks(shards: list[Path], world_size: int) -> None:
    """Under ``torchrun`` (``WORLD_SIZE`` is ``world_size``) the other ranks are running now: rank 0 waits for their
    shards, so that one uninterrupted run ends with ``manifest.json`` (else it would appear only on a rerun). A
    rank that dies makes torchrun stop this one too; ranks called one at a time by hand do not wait."""
    if world_size == 1 or os.environ.get("WORLD_SIZE") != str(world_size):
        return
    missing = [p for p in shards if not p.is_file()]
    if missing:
        log.info("rank 0 waits for %d shards of the other ranks before writing %s", len(missing), MANIFEST)
    while missing:
        time.sleep(0.2)
        missing = [p for p in missing if not p.is_file()]


@locks_folder("out_dir", rank="rank", what="tokens folder")
def pretokenize(docs: Sequence[Sequence[Any]], tok: MultimodalTokenizer, out_dir: str | Path, shard_docs: int = 256,
                rank: int = 0, world_size: int = 1, num_workers: int = 0, show_progress: bool = True,
                batch_size: int = 1, precision: str = "fp32") -> dict[str, Any]:
    """Writes this rank's missing shards of ``docs`` into ``out_dir``; rank 0 writes ``manifest.json`` when every
    shard is present (under ``torchrun`` it waits for the other ranks' shards). Media are decoded by
    ``num_workers`` DataLoader processes (0: in this process) and encoded ``batch_size`` documents at a time
    (:mod:`modalities.batch_encode`; in fp32 the shards are the same bytes for every batch size), under
    ``precision`` (``bf16``: autocast, CUDA only). Returns the manifest (or, on other ranks or while shards are
    missing, this rank's summary)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if shard_docs < 1:
        raise ValueError(f"shard_docs must be at least 1, got {shard_docs}")
    _check_settings(num_workers, batch_size, precision, tok)
    _check_resumable(out_dir, tok.registry.fingerprint, precision)
    n_shards = -(-len(docs) // shard_docs)
    mine = [i for i in range(n_shards) if i % world_size == rank]
    todo = [i for i in mine if not (out_dir / f"shard_{i:05d}.json").is_file()]
    log.info("pre-tokenising %d documents into %d shards (rank %d/%d: %d to do, %d already done; %d workers)",
             len(docs), n_shards, rank, world_size, len(todo), len(mine) - len(todo), num_workers)
    t0 = time.perf_counter()
    chunks = [docs[i * shard_docs:(i + 1) * shard_docs] for i in todo]
    pending = [doc for chunk in chunks for doc in chunk]
    loader = iter(torch.utils.data.DataLoader(DecodedDocuments(pending, tok), batch_size=None, shuffle=False,
                                              num_workers=num_workers, collate_fn=_as_is))
    tokens = 0
    extra = {} if precision == "fp32" else {"precision": precision}
    with _precision(precision, tok), tqdm(total=len(pending), disable=not show_progress, desc="tokenize",
                                          unit="doc") as bar:
        for i, chunk in zip(todo, chunks, strict=True):
            builder = ShardBuilder(tok, batch_size, bar)
            for _ in chunk:
                builder.add(next(loader))
            tokens += builder.write(out_dir, i, extra)["tokens"]
            bar.set_postfix(tokens_per_s=f"{tokens / (time.perf_counter() - t0):,.0f}")
    seconds = time.perf_counter() - t0
    summary = {"rank": rank, "shards_written": len(todo), "tokens_written": tokens,
               "tokens_per_s": tokens / seconds if seconds > 0 else 0.0}
    return _finish(out_dir, tok, n_shards, rank, world_size, summary)


def _check_settings(num_workers: int, batch_size: int, prec: str, tok: MultimodalTokenizer) -> None:
    if num_workers < 0:
        raise ValueError(f"num_workers must be at least 0, got {num_workers}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    with _precision(prec, tok):  # refuses bf16 off CUDA (and an unknown name) before any work
        pass


def _finish(out_dir: Path, tok: MultimodalTokenizer, n_shards: int, rank: int, world_size: int,
            summary: dict[str, Any]) -> dict[str, Any]:
    """Rank 0 writes ``manifest.json`` (and ``registry.json``) once all ``n_shards`` shards exist."""
    shards = [out_dir / f"shard_{i:05d}.json" for i in range(n_shards)]
    if rank == 0:
        _wait_for_other_ranks(shards, world_size)
    if rank != 0 or not all(p.is_file() for p in shards):
        return summary
    metas = [json.loads(p.read_text()) for p in shards]
    counts: dict[str, int] = {}
    for m in metas:
        for k, v in m["tokens_per_modality"].items():
            counts[k] = counts.get(k, 0) + v
    manifest = {"mmtok_version": __version__, "registry_fingerprint": tok.registry.fingerprint,
                "vocab_size": tok.registry.vocab_size, "dtype": _dtype(tok.registry.vocab_size).name,
                "tokenizers": {n: {"class": type(t).__name__, "codebook_size": t.codebook_size}
                               for n, t in tok.tokenizers.items()},
                "documents": sum(m["documents"] for m in metas), "tokens": sum(m["tokens"] for m in metas),
                "tokens_per_modality": counts, "skipped": sum(len(m["skipped"]) for m in metas),
                "skipped_documents": [e for m in metas for e in m["skipped"]], "shards": metas}
    tok.registry.save(out_dir / "registry.json")
    atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest | summary


def _tar_document(sample: TarSample, tok: MultimodalTokenizer) -> tuple[list[Any], str | None]:
    """The parts of a tar sample with media decoded (in a DataLoader worker), and its source."""
    raw, source = sample_parts(sample)
    where = f"shard {sample.shard} key {sample.key}"
    parts: list[Any] = []
    for p in raw:
        if p.kind == "text":
            parts.append(Text(p.data, p.name))
        elif p.kind == "image":
            parts.append(Image(decode_part(p, where), p.name))
        elif p.kind == "audio":
            parts.append(Audio(*decode_part(p, where), name=p.name))
        else:
            loader = tok.tokenizer_for(Video(None, p.name))[1].load
            parts.append(Video(decode_part(p, where, loader), p.name))
    return parts, source


@locks_folder("out_dir", rank="rank", what="tokens folder")
def pretokenize_tars(urls: Sequence[str], tok: MultimodalTokenizer, out_dir: str | Path, rank: int = 0,
                     world_size: int = 1, num_workers: int = 0, show_progress: bool = True, batch_size: int = 1,
                     precision: str = "fp32") -> dict[str, Any]:
    """:func:`pretokenize` for interleaved documents in WebDataset tar shards (:mod:`modalities.data.interleaved`).

    Output shard ``i`` holds the documents of input shard ``urls[i]`` in their order, and belongs to rank
    ``i % world_size``; a rank's shards are dealt to its ``num_workers`` DataLoader workers, which read and
    decode them. Beside each shard, ``shard_NNNNN.keys.json`` holds the input shard and every document's key
    (and source, when the samples name one): :meth:`ShardReader.source`. A corrupt member or an unreadable or
    truncated shard is skipped with a warning naming shard and key and listed in the shard's ``skipped`` and the
    manifest's ``skipped_documents``; the documents read before it are kept. Resuming checks that shard ``i`` is
    still the same input."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    urls = list(urls)
    _check_settings(num_workers, batch_size, precision, tok)
    _check_resumable(out_dir, tok.registry.fingerprint, precision, urls)
    mine = [i for i in range(len(urls)) if i % world_size == rank]
    todo = [i for i in mine if not (out_dir / f"shard_{i:05d}.json").is_file()]
    workers = min(num_workers, len(todo))
    log.info("pre-tokenising %d tar shards (rank %d/%d: %d to do, %d already done; %d workers, batch %d)",
             len(urls), rank, world_size, len(todo), len(mine) - len(todo), workers, batch_size)
    t0 = time.perf_counter()
    tokens = 0
    extra = {} if precision == "fp32" else {"precision": precision}
    builders: dict[int, ShardBuilder] = {}
    data = InterleavedShards(urls, todo, functools.partial(_tar_document, tok=tok))
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=workers, collate_fn=_as_is) if todo else []
    with _precision(precision, tok), tqdm(disable=not show_progress, desc="tokenize", unit="doc") as bar:
        for item in loader:
            if isinstance(item, ShardEnd):
                builder = builders.pop(item.index, None) or ShardBuilder(tok, batch_size, bar, item.url)
                tokens += builder.write(out_dir, item.index, {"input": item.url} | extra)["tokens"]
                bar.set_postfix(shards=f"{len(todo) - len(builders)}", tokens_per_s=f"{tokens / (time.perf_counter() - t0):,.0f}")
                continue
            i, key, doc = item
            builder = builders.setdefault(i, ShardBuilder(tok, batch_size, bar, urls[i]))
            if isinstance(doc, TarError):
                builder.add(doc, {"key": key})
            else:
                builder.add(doc[0], {"key": key, "source": doc[1]})
    seconds = time.perf_counter() - t0
    summary = {"rank": rank, "shards_written": len(todo), "tokens_written": tokens,
               "tokens_per_s": tokens / seconds if seconds > 0 else 0.0}
    return _finish(out_dir, tok, len(urls), rank, world_size, summary)


class ShardReader:
    """Reads a pre-tokenised folder: ``len(reader)`` documents, ``reader[i]`` ids (numpy memmap slices),
    ``reader.source(i)`` where document ``i`` came from (tar input)."""

    def __init__(self, directory: str | Path, fingerprint: str | None = None) -> None:
        self.directory = Path(directory)
        path = self.directory / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: not a finished pre-tokenised folder")
        self.manifest = json.loads(path.read_text())
        if not isinstance(self.manifest, dict) or not isinstance(self.manifest.get("shards"), list):
            raise ValueError(f"{path}: not a pre-tokenisation manifest (no 'shards' list)")
        if fingerprint is not None and fingerprint != self.manifest.get("registry_fingerprint"):
            raise ValueError(f"{self.directory} was tokenised with vocabulary {self.manifest.get('registry_fingerprint')}"
                             f", not {fingerprint}")
        if self.manifest.get("dtype") not in ("uint16", "uint32"):  # only the two dtypes write_shard uses
            raise ValueError(f"{path}: field 'dtype' must be 'uint16' or 'uint32', got {self.manifest.get('dtype')!r}")
        dtype = np.dtype(self.manifest["dtype"])
        self.ids, self.offsets = [], []
        for k, m in enumerate(self.manifest["shards"]):
            index = m.get("shard") if isinstance(m, dict) else None
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise ValueError(f"{path}: field 'shards[{k}].shard' must be a shard number, got {index!r}")
            stem = self.directory / f"shard_{index:05d}"
            size = stem.with_suffix(".bin").stat().st_size // dtype.itemsize
            offsets = np.load(stem.with_suffix(".idx.npy"), allow_pickle=False)
            if (offsets.ndim != 1 or offsets.dtype != np.int64 or not len(offsets) or offsets[0] != 0
                    or (np.diff(offsets) < 0).any() or offsets[-1] != size):
                raise ValueError(f"{stem.with_suffix('.idx.npy')}: offsets do not describe {stem.with_suffix('.bin')} "
                                 f"({size} ids)")
            self.ids.append(np.memmap(stem.with_suffix(".bin"), dtype=dtype, mode="r", shape=(size,))
                            if size else np.zeros(0, dtype))
            self.offsets.append(offsets)
        self._starts = np.cumsum([0] + [len(o) - 1 for o in self.offsets])
        self._keys: dict[int, dict[str, Any] | None] = {}

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, i: int) -> np.ndarray:
        s, j = self._locate(i)
        return np.asarray(self.ids[s][self.offsets[s][j]:self.offsets[s][j + 1]])

    def _locate(self, i: int) -> tuple[int, int]:
        if not 0 <= i < len(self):
            raise IndexError(f"document {i} out of range [0, {len(self)})")
        s = int(np.searchsorted(self._starts, i, side="right") - 1)
        return s, i - int(self._starts[s])

    def source(self, i: int) -> dict[str, Any] | None:
        """``{"shard": <input tar>, "key": <sample key>}`` (plus ``"source"`` when the sample named one) of
        document ``i``, from its shard's ``.keys.json``; ``None`` for documents of a JSONL manifest and for folders
        written before keys were recorded."""
        s, j = self._locate(i)
        if s not in self._keys:
            index = self.manifest["shards"][s]["shard"]
            path = self.directory / f"shard_{index:05d}.keys.json"
            keys = json.loads(path.read_text()) if path.is_file() else None
            n = len(self.offsets[s]) - 1
            if keys is not None and (not isinstance(keys, dict) or not isinstance(keys.get("keys"), list)
                                     or len(keys["keys"]) != n or len(keys.get("sources", keys["keys"])) != n):
                raise ValueError(f"{path}: expected {{'input', 'keys'}} with {n} keys (one per document)")
            self._keys[s] = keys
        keys = self._keys[s]
        if keys is None:
            return None
        out = {"shard": keys.get("input"), "key": keys["keys"][j]}
        if keys.get("sources") is not None and keys["sources"][j] is not None:
            out["source"] = keys["sources"][j]
        return out
