"""Locating data: the bundled ``samples/`` folder and glob patterns relative to a data root."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

ENV_VAR = "MMTOK_SAMPLES"


def samples_root() -> Path:
    """The bundled sample folder (``$MMTOK_SAMPLES`` overrides it)."""
    root = Path(os.environ.get(ENV_VAR) or Path(__file__).resolve().parents[2] / "samples")
    if not root.is_dir():
        raise FileNotFoundError(f"sample data folder not found: {root}; set ${ENV_VAR} or data.root=...")
    return root


def data_root(root: str | os.PathLike | None) -> Path:
    """``root`` as a Path, or the sample folder when ``root`` is None."""
    if root is None:
        return samples_root()
    p = Path(root).expanduser()
    if not p.is_dir():
        raise FileNotFoundError(f"data.root is not a folder: {p}")
    return p


def resolve_files(root: Path, patterns: Iterable[str], what: str) -> list[Path]:
    """Sorted files matching the glob patterns under ``root``; raises if a pattern matches nothing."""
    files: list[Path] = []
    for pat in patterns:
        hits = sorted(p for p in root.glob(pat) if p.is_file())
        if not hits:
            raise FileNotFoundError(f"{what}: no file matches {pat!r} under {root}")
        files += hits
    return files


def media_folder(root: Path, folder: str | None, default: str) -> Path:
    """``root/folder`` (absolute ``folder`` as is); with ``folder=None``, ``root/default`` if it exists, else ``root``."""
    if folder is not None:
        return root / Path(folder).expanduser()
    return root / default if (root / default).is_dir() else root
