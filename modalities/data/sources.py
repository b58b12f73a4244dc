"""Where each sample comes from, and a held-out split that keeps every source on one side.

A *source* is the unit that must not straddle training and evaluation: one photograph with all its crops, one
video with all its clips, pans and zooms, one sentence with every voice that speaks it. A media folder names its
sources in JSONL metadata files beside the media (any ``*.jsonl`` whose rows have ``file`` and ``source``)::

    {"file": "astronaut_crop0.png", "source": "skimage/data/astronaut.png", "region": "crop at x=0, y=0"}
    {"file": "speech_040.flac", "text": "...", "voice": "en-gb", "source": "sentence 00"}

A file no metadata row names is its own source. The split ranks *sources* by a hash of their name, so it is
stable when files or sources are added, and every file of a source lands on the side of its source.

A row may also pin its source to the held-out side with ``"split": "held_out"``: sources chosen for what they
test (a palette the training photographs lack), not by the hash. Pinned sources are held out on top of the
hashed share of the others, and the others split exactly as they would with the pinned ones removed. Adding
pins to a folder can therefore move other sources across (the hashed share is counted without them): compare
tokenizers only on a split they were all trained with.

A row may instead pin its source to the training side with ``"split": "train"``: material that widens what the
tokenizer sees (saturated renders and illustrations, not photographs) but that should never score it. Train pins
are left out of the hash altogether, so adding them moves no other source across, in the held-out split or in the
validation split of the training side. Tar-shard input (``data.images`` a tar spec) holds out whole shards and
does not read pins.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Collection, Mapping
from pathlib import Path

__all__ = ["collections_of", "read_collections", "read_held_out", "read_sources", "read_trained", "source_of",
           "split_by_source", "split_folder"]

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
    for the synthesised speech of the samples and ``recordings``, ``klettres`` and ``ktuberling`` for the recorded
    speech of three recording chains: held-out scores are also reported per collection
    (:mod:`modalities.eval.collection_scores`)."""
    return {Path(row["file"]).as_posix(): meta.stem for meta, _, row in _metadata_rows(Path(folder))}


def collections_of(files: list[Path], folder: str | Path) -> list[str]:
    """The collection (:func:`read_collections`) of each of ``files`` under ``folder``, ``"other"`` for a file that
    no metadata file lists."""
    folder = Path(folder)
    collections = read_collections(folder)
    return [collections.get(Path(f).relative_to(folder).as_posix(), "other") for f in files]


def _read_pins(folder: Path) -> dict[str, str]:
    """``{source: "held_out" | "train"}`` from the rows of the folder's metadata that carry ``split``. Any other
    value, or a source pinned to both sides, is an error naming the metadata file and line."""
    pins: dict[str, str] = {}
    for meta, n, row in _metadata_rows(folder):
        split = row.get("split")
        if split is None:
            continue
        if split not in ("held_out", "train"):
            raise ValueError(f"{meta}:{n}: split must be \"held_out\" or \"train\" (or absent), got {split!r}")
        source = str(row["source"])
        if pins.setdefault(source, split) != split:
            raise ValueError(f"{meta}:{n}: source {source!r} is pinned to {split!r} here and to {pins[source]!r} "
                             "by another row")
    return pins


def read_held_out(folder: str | Path) -> set[str]:
    """The sources that the folder's metadata pins to the held-out side (rows with ``"split": "held_out"``).

    A ``split`` other than ``held_out`` or ``train`` is an error naming the metadata file and line; a source pinned
    by one row holds all its files out, whatever its other rows say."""
    return {s for s, split in _read_pins(Path(folder)).items() if split == "held_out"}


def read_trained(folder: str | Path) -> set[str]:
    """The sources that the folder's metadata pins to the training side (rows with ``"split": "train"``): never
    held out, never validated on, and left out of the hash that splits the others."""
    return {s for s, split in _read_pins(Path(folder)).items() if split == "train"}


def source_of(file: Path, root: Path | None, sources: Mapping[str, str]) -> str:
    """The source of ``file``: its metadata entry, else its own name (relative to ``root`` when given)."""
    name = file.relative_to(root).as_posix() if root is not None else file.name
    return sources.get(name, sources.get(file.name, name))


def split_by_source(files: list[Path], val_fraction: float, root: Path | None = None,
                    sources: Mapping[str, str] | None = None,
                    held_out: Collection[str] = (), trained: Collection[str] = ()) -> tuple[list[Path], list[Path]]:
    """Deterministic train/held-out split of ``files`` by source; returns ``(train_files, held_out_files)`` in the
    order of ``files``.

    The sources named in ``held_out`` (see :func:`read_held_out`) are held out, those named in ``trained`` (see
    :func:`read_trained`) are trained on; of the others,
    ``round(n * val_fraction)`` (at least one, at most all but one) are held out too, chosen by a hash of the
    source name, counted without the ``trained`` sources, which therefore move no other source across.
    ``sources`` maps file names (relative to ``root``, or bare names) to sources (see :func:`read_sources`);
    ``None`` makes every file its own source. Raises with fewer than two unpinned-to-training sources, or when the
    pins leave no source to train on or none to hold out.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    of = {f: source_of(f, root, sources or {}) for f in files}
    kept = set(of.values()) & set(trained)
    if kept:  # the others split exactly as they would without the train pins
        if kept & set(held_out):
            raise ValueError(f"sources pinned both held out and trained on: {sorted(kept & set(held_out))}")
        rest = [f for f in files if of[f] not in kept]
        if not rest:
            raise ValueError(f"every source of the {len(files)} file(s) is pinned to training ({sorted(kept)}): "
                             "nothing is left to hold out")
        held_files = split_by_source(rest, val_fraction, root, sources, held_out)[1]
        held_set = set(held_files)
        return [f for f in files if f not in held_set], held_files
    pinned = set(of.values()) & set(held_out)
    names = sorted(set(of.values()) - pinned, key=lambda s: (zlib.crc32(s.encode()), s))
    if len(names) + len(pinned) < 2:
        raise ValueError(f"need files from at least 2 sources to hold one out, got {len(files)} file(s) from "
                         f"{len(names) + len(pinned)} source(s): {sorted(set(of.values()))} "
                         f"(files: {[str(f) for f in files[:5]]})")
    if not names:
        raise ValueError(f"every source of the {len(files)} file(s) is pinned held out ({sorted(pinned)}): "
                         "nothing is left to train on")
    hashed = 0 if pinned and len(names) == 1 else min(len(names) - 1, max(1, round(len(names) * val_fraction)))
    held = pinned | set(names[:hashed])
    return [f for f in files if of[f] not in held], [f for f in files if of[f] in held]


def split_folder(files: list[Path], val_fraction: float, folder: str | Path) -> tuple[list[Path], list[Path]]:
    """:func:`split_by_source` of ``files`` (under ``folder``) with the sources and the held-out and training pins
    of the folder's own metadata: ``(train_files, held_out_files)``."""
    folder = Path(folder)
    return split_by_source(files, val_fraction, folder, read_sources(folder), read_held_out(folder),
                           read_trained(folder))
