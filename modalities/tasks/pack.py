"""Task ``pack``: a media folder or a JSONL manifest -> WebDataset tar shards of documents.

The shards are what ``task=tokenize task.manifest='<out>/docs-{000000..000009}.tar'`` reads, in the member
format of :mod:`modalities.data.interleaved`: a document's parts are members ``<key>.000.txt``,
``<key>.001.jpg``... (media bytes copied as they are), plus ``<key>.json`` with ``"source"`` and, when a part
names its tokenizer, the ``"parts"`` list.

* A **folder**: one document per image, audio or video file (recursively, in path order); the key is the file's
  path without suffix (dots and odd characters as ``_``). Sources come from the folder's metadata
  (``*.jsonl`` rows with ``file`` and ``source``, :mod:`modalities.data.sources`); a file no row names is its
  own source.
* A **JSONL manifest**: one document per line, either a list of parts (as for ``task=tokenize``) or
  ``{"parts": [...], "source": "..."}``; the key is the line number. Paths are relative to the manifest.

All documents of one source go into the same shard, so a split by shard never puts one source on both sides:
documents are grouped by source (sources in order of first appearance, documents in input order), and a new
shard starts before a source that would take the shard past ``task.shard_size`` documents or
``task.max_shard_bytes`` bytes (a larger source gets a shard of its own). Shards are written as ``.tar.tmp`` and
renamed when complete; ``<out>/pack.json`` lists them with their counts and the brace pattern to tokenise. A
document whose media file is missing is left out with a warning and listed in ``pack.json``'s ``skipped``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from tqdm.auto import tqdm

from ..data.fileio import atomic_write_text
from ..data.interleaved import member_name, safe_key
from ..data.io import AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES, list_media
from ..data.lock import DirLock
from ..data.sources import read_sources
from ..multimodal import Text, manifest_lines

__all__ = ["PackDocument", "folder_documents", "manifest_documents", "run", "write_tars"]

log = logging.getLogger("mmtok")
SUMMARY = "pack.json"


@dataclass
class PackDocument:
    """One document to write: its key, source, and members (name after the key -> text or a file to copy)."""

    key: str
    source: str
    members: dict[str, str | Path] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Bytes of its members."""
        return sum(len(v.encode()) if isinstance(v, str) else v.stat().st_size for v in self.members.values())

    def sample(self) -> dict[str, Any]:
        """The sample for ``webdataset.TarWriter``: ``__key__`` and member bytes."""
        return {"__key__": self.key} | {m: v.encode() if isinstance(v, str) else v.read_bytes()
                                        for m, v in self.members.items()}


def _unique(key: str, seen: set[str]) -> str:
    out, n = key, 0
    while out in seen:
        n += 1
        out = f"{key}_{n}"
    seen.add(out)
    return out


def folder_documents(folder: str | Path) -> list[PackDocument]:
    """One document per media file under ``folder``, with its source from the folder's metadata."""
    root = Path(folder)
    files = list_media(root, IMAGE_SUFFIXES + AUDIO_SUFFIXES + VIDEO_SUFFIXES, "task.source")
    sources: dict[str, str] = {}
    for d in sorted({f.parent for f in files}):
        rel = d.relative_to(root)
        sources |= {(rel / name).as_posix(): src for name, src in read_sources(d).items()}
    seen: set[str] = set()
    docs = []
    for f in files:
        rel = f.relative_to(root).as_posix()
        key = _unique(safe_key(rel.rsplit(".", 1)[0]), seen)
        source = sources.get(rel, rel)
        docs.append(PackDocument(key, source, {member_name(0, f.suffix): f, "json": json.dumps({"source": source})}))
    return docs


def manifest_documents(path: str | Path) -> tuple[list[PackDocument], list[dict[str, Any]]]:
    """The documents of a JSONL manifest, and the ``skipped`` entries of those naming a missing file. A malformed
    line is a ``ValueError`` naming the file and line."""
    docs, skipped = [], []
    for lineno, parts, source in manifest_lines(path):
        where = f"{path}:{lineno}"
        key = f"{lineno:09d}"
        missing = [str(p.data) for p in parts if not isinstance(p, Text) and not Path(p.data).is_file()]
        if missing:
            log.warning("skipping %s: missing file(s) %s", where, ", ".join(missing))
            skipped.append({"line": lineno, "files": missing, "error": "file not found"})
            continue
        docs.append(_document(key, source, parts))
    return docs, skipped


def _document(key: str, source: str | None, parts: Sequence[Any]) -> PackDocument:
    doc = PackDocument(key, source if source is not None else key)
    named = any(p.name is not None for p in parts)
    listed = []
    for j, p in enumerate(parts):
        kind = type(p).__name__.lower()
        if isinstance(p, Text):
            if named:
                listed.append({"text": p.text} | ({"name": p.name} if p.name else {}))
            else:
                doc.members[member_name(j, ".txt")] = p.text
            continue
        member = member_name(j, Path(p.data).suffix)
        doc.members[member] = Path(p.data)
        listed.append({kind: member} | ({"name": p.name} if p.name else {}))
    meta: dict[str, Any] = ({"source": source} if source is not None else {}) | ({"parts": listed} if named else {})
    if meta:
        doc.members["json"] = json.dumps(meta, ensure_ascii=False)
    return doc


def _groups(docs: Sequence[PackDocument]) -> list[list[PackDocument]]:
    by_source: dict[str, list[PackDocument]] = {}
    for d in docs:
        by_source.setdefault(d.source, []).append(d)
    return list(by_source.values())


def write_tars(docs: Sequence[PackDocument], out: str | Path, shard_size: int = 1000,
               max_shard_bytes: int = 1_000_000_000, prefix: str = "docs",
               show_progress: bool = True) -> list[dict[str, Any]]:
    """Writes ``docs`` as ``<out>/<prefix>-NNNNNN.tar`` with ``webdataset.ShardWriter``, one source per shard at
    most; returns ``[{"file", "documents", "bytes", "sources"}]`` per shard."""
    import webdataset as wds

    if shard_size < 1 or max_shard_bytes < 1:
        raise ValueError(f"task.shard_size and task.max_shard_bytes must be positive, got {shard_size}, "
                         f"{max_shard_bytes}")
    if not docs:
        raise ValueError("nothing to pack: no documents")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shards: list[dict[str, Any]] = []

    def done(fname: str) -> None:  # ShardWriter calls this after closing a shard
        os.replace(fname, fname.removesuffix(".tmp"))

    pattern = str(out / f"{prefix}-%06d.tar.tmp")
    with tqdm(total=len(docs), disable=not show_progress, desc="pack", unit="doc") as bar:
        writer = wds.ShardWriter(pattern, maxcount=2**62, maxsize=float("inf"), post=done, verbose=0, encoder=False,
                                 mtime=0.0)
        try:
            for group in _groups(docs):
                size = sum(d.size for d in group)
                if shards and shards[-1]["documents"] and (
                        shards[-1]["documents"] + len(group) > shard_size or shards[-1]["bytes"] + size > max_shard_bytes):
                    writer.next_stream()
                if not shards or writer.fname.removesuffix(".tmp") != str(out / shards[-1]["file"]):
                    shards.append({"file": Path(writer.fname).name.removesuffix(".tmp"), "documents": 0, "bytes": 0,
                                   "sources": 0})
                if len(group) > shard_size:
                    log.warning("source %r has %d documents, more than task.shard_size=%d: its shard %s holds them "
                                "all", group[0].source, len(group), shard_size, shards[-1]["file"])
                for d in group:
                    writer.write(d.sample())
                    bar.update(1)
                shards[-1]["documents"] += len(group)
                shards[-1]["bytes"] += size
                shards[-1]["sources"] += 1
        finally:
            writer.close()
    return shards


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Packs ``task.source`` into tar shards in ``task.out``; writes ``pack.json``; returns counts."""
    source = Path(cfg.task.source)
    target = Path(cfg.task.out) if Path(cfg.task.out).is_absolute() else out_dir / cfg.task.out
    if source.is_dir():
        docs, skipped = folder_documents(source), []
    elif source.is_file():
        docs, skipped = manifest_documents(source)
    else:
        raise FileNotFoundError(f"task.source: {source} is neither a media folder nor a JSONL manifest")
    target.mkdir(parents=True, exist_ok=True)
    with DirLock(target, int(os.environ.get("RANK", 0)), "shards folder"):
        shards = write_tars(docs, target, cfg.task.shard_size, cfg.task.max_shard_bytes, cfg.task.prefix,
                            cfg.show_progress)
        last = len(shards) - 1
        pattern = str(target / f"{cfg.task.prefix}-{{000000..{last:06d}}}.tar") if last else str(target / shards[0]["file"])
        stale = sorted(p.name for p in target.glob(f"{cfg.task.prefix}-*.tar") if p.name not in {s["file"] for s in shards})
        if stale:
            log.warning("%s also holds %d tar shards this run did not write (%s...): leave them out of the pattern",
                        target, len(stale), stale[0])
        summary = {"source": str(source), "documents": len(docs), "pattern": pattern, "shards": shards,
                   "skipped": skipped}
        atomic_write_text(target / SUMMARY, json.dumps(summary, indent=2) + "\n")
    return {"task": "pack", "out": str(target), "pattern": pattern, "documents": len(docs), "shards": len(shards),
            "sources": sum(s["sources"] for s in shards), "skipped": len(skipped),
            "bytes": sum(s["bytes"] for s in shards)}
