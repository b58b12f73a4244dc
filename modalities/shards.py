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
``manifest.json`` sums the shards. Every shard records the registry
fingerprint; resuming into a folder written with another vocabulary is an error.
Each rank holds the folder's lock while it writes (:mod:`modalities.data.lock`),
and a full or read-only disk is a ``DiskWriteError`` that leaves finished shards as they were.
"""

from __future__ import annotations

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
from .data.fileio import atomic_open, atomic_path, atomic_write_text
from .data.io import load_audio, load_image
from .data.lock import locks_folder
from .multimodal import Audio, Image, MultimodalTokenizer, Video

__all__ = ["ShardReader", "pretokenize"]

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


def write_shard(out_dir: Path, index: int, docs: Sequence[Sequence[Any] | Unreadable], tok: MultimodalTokenizer,
                bar: Any = None) -> dict[str, Any]:
    """Encodes ``docs`` (parts, or :class:`Unreadable`) and writes shard ``index``; returns its counts (also in its
    ``.json``)."""
    reg = tok.registry
    names = {m.index: m.name for m in reg.modalities} | {0: "special"}
    ids, offsets, counts, skipped = [], [0], {n: 0 for n in names.values()}, []
    for doc in docs:
        try:
            if isinstance(doc, Unreadable):
                raise ValueError(doc.error)
            seq = tok.encode(doc, bos=True, eos=True)
        except (ValueError, FileNotFoundError, OSError) as e:
            files = doc.files if isinstance(doc, Unreadable) else _media_files(doc)
            log.warning("skipping a document (%s): %s", ", ".join(files) or "no files", e)
            skipped.append({"files": files, "error": str(e)})
        else:
            ids.append(seq.ids.numpy())
            offsets.append(offsets[-1] + len(seq))
            for idx, n in zip(*np.unique(seq.modality.numpy(), return_counts=True), strict=True):
                counts[names[int(idx)]] += int(n)
        if bar is not None:
            bar.update(1)
    stem = out_dir / f"shard_{index:05d}"
    flat = np.concatenate(ids) if ids else np.zeros(0)
    with atomic_open(stem.with_suffix(".bin")) as f:  # a file object keeps the errno of a full disk; tofile does not
        f.write(flat.astype(_dtype(reg.vocab_size)).data)
    with atomic_path(stem.with_suffix(".idx.npy")) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(offsets, dtype=np.int64))
    meta = {"shard": index, "registry_fingerprint": reg.fingerprint, "documents": len(offsets) - 1,
            "tokens": int(offsets[-1]),
            "tokens_per_modality": counts, "skipped": skipped}
    atomic_write_text(stem.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")
    return meta


def _check_resumable(out_dir: Path, fingerprint: str) -> None:
    for p in sorted(out_dir.glob("shard_*.json")):
        found = json.loads(p.read_text()).get("registry_fingerprint")
        if found != fingerprint:
            raise ValueError(f"{p} was written with vocabulary {found}, this tokenizer has {fingerprint}; "
                             f"use another output folder (or delete {out_dir}) to tokenise with a new vocabulary")


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
                rank: int = 0, world_size: int = 1, num_workers: int = 0, show_progress: bool = True
                ) -> dict[str, Any]:
    """Writes this rank's missing shards of ``docs`` into ``out_dir``; rank 0 writes ``manifest.json`` when every
    shard is present (under ``torchrun`` it waits for the other ranks' shards). Media are decoded by
    ``num_workers`` DataLoader processes (0: in this process). Returns the manifest (or, on other ranks or while
    shards are missing, this rank's summary)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if shard_docs < 1:
        raise ValueError(f"shard_docs must be at least 1, got {shard_docs}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be at least 0, got {num_workers}")
    _check_resumable(out_dir, tok.registry.fingerprint)
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
    with tqdm(total=len(pending), disable=not show_progress, desc="tokenize", unit="doc") as bar:
        for i, chunk in zip(todo, chunks, strict=True):
            tokens += write_shard(out_dir, i, [next(loader) for _ in chunk], tok, bar)["tokens"]
            bar.set_postfix(tokens_per_s=f"{tokens / (time.perf_counter() - t0):,.0f}")
    seconds = time.perf_counter() - t0
    summary = {"rank": rank, "shards_written": len(todo), "tokens_written": tokens,
               "tokens_per_s": tokens / seconds if seconds > 0 else 0.0}
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
                "shards": metas}
    tok.registry.save(out_dir / "registry.json")
    atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest | summary


class ShardReader:
    """Reads a pre-tokenised folder: ``len(reader)`` documents, ``reader[i]`` ids (numpy memmap slices)."""

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

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, i: int) -> np.ndarray:
        if not 0 <= i < len(self):
            raise IndexError(f"document {i} out of range [0, {len(self)})")
        s = int(np.searchsorted(self._starts, i, side="right") - 1)
        j = i - int(self._starts[s])
        return np.asarray(self.ids[s][self.offsets[s][j]:self.offsets[s][j + 1]])
