"""Where each sample comes from, and a held-out split that keeps every source on one side.

A *source* is the unit that must not straddle training and evaluation: one photograph with all its crops, one
video with all its clips, pans and zooms, one sentence with every voice that speaks it. A media folder names its
sources in JSONL metadata files beside the media (any ``*.jsonl`` whose rows have ``file`` and ``source``)::

    {"file": "astronaut_crop0.png", "source": "skimage/data/astronaut.png", "region": "crop at x=0, y=0"}
    {"file": "speech_040.flac", "text": "...", "voice": "en-gb", "source": "sentence 00"}

A file no metadata row names is its own source. The split ranks *sources* by a hash of their name, so it is
stable when files or sources are added, and every file of a source lands on the side of its source.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Mapping
from pathlib import Path

__all__ = ["read_collections", "read_sources", "source_of", "split_by_source"]

log = logging.getLogger("mmtok")


def _metadata_rows(folder: Path):
    """``(metadata file, line number, row)`` for every JSON object row of the folder's ``*.jsonl`` files that has
    ``file`` (a string) and ``source``; a line that is not JSON is an error naming the file and line."""
    for meta in sorted(folder.glob("*.jsonl")):
        for n, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{meta}:{n}: not a JSON line ({e.msg})") from None
            if isinstance(row, dict) and isinstance(row.get("file"), str) and "source" in row:
                yield meta, n, row


def read_sources(folder: str | Path) -> dict[str, str]:
    """``{file name relative to folder (posix): source}`` from the folder's ``*.jsonl`` metadata (non-recursive).

    Rows without ``file`` or ``source`` are ignored (a manifest of documents is not metadata); a file given two
    different sources, or a row that is not JSON, is an error naming the metadata file and line.
    """
    sources: dict[str, str] = {}
    where: dict[str, str] = {}
    for meta, n, row in _metadata_rows(Path(folder)):
        name, source = Path(row["file"]).as_posix(), str(row["source"])
        if sources.get(name, source) != source:
            raise ValueError(f"{meta}:{n}: {name!r} has source {source!r}, but {where[name]} gives "
                             f"{sources[name]!r}")
        sources[name], where[name] = source, f"{meta}:{n}"
    return sources


def read_collections(folder: str | Path) -> dict[str, str]:
    """``{file name relative to folder (posix): stem of the metadata file that lists it}``, e.g. ``transcripts``
    for the synthesised speech of the samples and ``recordings`` for the recorded speech: held-out scores are
    also reported per collection."""
    return {Path(row["file"]).as_posix(): meta.stem for meta, _, row in _metadata_rows(Path(folder))}


def source_of(file: Path, root: Path | None, sources: Mapping[str, str]) -> str:
    """The source of ``file``: its metadata entry, else its own name (relative to ``root`` when given)."""
    name = file.relative_to(root).as_posix() if root is not None else file.name
    return sources.get(name, sources.get(file.name, name))


def split_by_source(files: list[Path], val_fraction: float, root: Path | None = None,
                    sources: Mapping[str, str] | None = None) -> tuple[list[Path], list[Path]]:
    """Deterministic train/held-out split of ``files`` by source: ``round(n_sources * val_fraction)`` sources
    (at least one, at most all but one) are held out, chosen by a hash of the source name; returns
    ``(train_files, held_out_files)`` in the order of ``files``.

    ``sources`` maps file names (relative to ``root``, or bare names) to sources (see :func:`read_sources`);
    ``None`` makes every file its own source. Raises with fewer than two sources, since then nothing can be
    held out without training on it.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    of = {f: source_of(f, root, sources or {}) for f in files}
    names = sorted(set(of.values()), key=lambda s: (zlib.crc32(s.encode()), s))
    if len(names) < 2:
        raise ValueError(f"need files from at least 2 sources to hold one out, got {len(files)} file(s) from "
                         f"{len(names)} source(s): {sorted(names)} (files: {[str(f) for f in files[:5]]})")
    held = set(names[:min(len(names) - 1, max(1, round(len(names) * val_fraction)))])
    return [f for f in files if of[f] not in held], [f for f in files if of[f] in held]
