"""Locating data: the bundled ``samples/`` folder, the data root, and ``data.*`` paths as a shell user means them.

A relative ``data.*`` path (``data.images=samples/images``, ``data.documents=my_docs.jsonl``) is looked for
first in the directory the command was started in (:func:`launch_dir`: the shell's current directory, also
inside ``train.py`` when Hydra is told to change into the run folder with ``hydra.job.chdir=true``), then under
``data.root`` (the bundled ``samples/`` when unset), which is where the defaults (``text/corpus/train.txt``,
``documents.jsonl``) live. A path found in neither place is an error that names both.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterable
from pathlib import Path

ENV_VAR = "MMTOK_SAMPLES"
log = logging.getLogger("mmtok")


def samples_root() -> Path:
    """The bundled sample folder (``$MMTOK_SAMPLES`` overrides it)."""
    root = Path(os.environ.get(ENV_VAR) or Path(__file__).resolve().parents[2] / "samples")
    if not root.is_dir():
        raise FileNotFoundError(f"sample data folder not found: {root}; set ${ENV_VAR} or data.root=...")
    return root


def launch_dir() -> Path:
    """The directory the command was started in: Hydra's original working directory inside ``train.py`` (the
    same as the current one unless ``hydra.job.chdir=true``), else the current directory."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return Path(HydraConfig.get().runtime.cwd)
    except (ImportError, ValueError):  # no Hydra, or a config without the runtime node
        pass
    return Path.cwd()


def data_root(root: str | os.PathLike | None) -> Path:
    """``root`` as a Path (a relative one from :func:`launch_dir`), or the sample folder when ``root`` is None."""
    if root is None:
        return samples_root()
    p = Path(root).expanduser()
    p = p if p.is_absolute() else launch_dir() / p
    if not p.is_dir():
        raise FileNotFoundError(f"data.root is not a folder: {p}")
    return p


def _both_places(what: str, value: object, here: Path, under: Path, root: Path) -> FileNotFoundError:
    return FileNotFoundError(f"{what}={value!s}: not found in the directory the command was started in ({here}) "
                             f"nor under the data root ({under}; data.root={root}); give an absolute path, one "
                             "relative to the current directory, or one relative to data.root")


def resolve_data_path(root: Path, value: str | os.PathLike, what: str) -> Path:
    """Where a ``data.*`` path points: an absolute one (``~`` expanded) as it is; a relative one in
    :func:`launch_dir` when it exists there, else under ``root``. Raises ``FileNotFoundError`` naming both places
    when it exists in neither. When both exist and differ, the current directory's wins, with a warning."""
    p = Path(value).expanduser()
    if p.is_absolute():
        if not p.exists():
            raise FileNotFoundError(f"{what}={value!s}: {p} does not exist")
        return p
    here, under = launch_dir() / p, root / p
    if here.exists():
        if under.exists() and here.resolve() != under.resolve():
            log.warning("%s=%s exists both in the current directory (%s, used) and under the data root (%s)", what,
                        value, here, under)
        return here
    if under.exists():
        return under
    raise _both_places(what, value, here, under, root)


def data_file(root: str | os.PathLike | None, value: str | os.PathLike, what: str, hint: str = "") -> Path:
    """:func:`resolve_data_path` of a file under ``data.root`` (``root`` as in the config, None for the samples),
    checked to be a file."""
    path = resolve_data_path(data_root(root), value, what)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: {path} is not a file" + (f" ({hint})" if hint else ""))
    return path


def resolve_files(root: Path, patterns: Iterable[str], what: str) -> list[Path]:
    """Sorted files matching each glob pattern: an absolute pattern as it is, a relative one in
    :func:`launch_dir` when it matches there, else under ``root``; raises, naming both places, if a pattern
    matches nothing."""
    files: list[Path] = []
    for pat in patterns:
        p = Path(pat).expanduser()
        if p.is_absolute():
            hits = sorted(Path(h) for h in glob.glob(str(p)) if Path(h).is_file())
            if not hits:
                raise FileNotFoundError(f"{what}: no file matches {pat!r}")
        else:
            here = launch_dir()
            hits = sorted(f for f in here.glob(str(p)) if f.is_file()) or sorted(f for f in root.glob(str(p))
                                                                                   if f.is_file())
            if not hits:
                raise FileNotFoundError(f"{what}: no file matches {pat!r} in the directory the command was started "
                                        f"in ({here}) nor under the data root ({root})")
        files += hits
    return files


def media_folder(root: Path, folder: str | os.PathLike | None, default: str, what: str = "data folder") -> Path:
    """The folder ``folder`` names (:func:`resolve_data_path`: an absolute path as is, a relative one from the
    current directory when it exists there, else under ``root``); with ``folder=None``, ``root/default`` if it
    exists, else ``root``."""
    if folder is not None:
        return resolve_data_path(root, folder, what)
    return root / default if (root / default).is_dir() else root
