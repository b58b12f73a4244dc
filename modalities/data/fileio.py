"""Small file helpers: atomic writes (write, then rename) and JSON reads with clear errors.

A write that fails because of the disk (full, over quota, read-only, no permission) raises
:class:`DiskWriteError` naming the file and the cause; the temporary file is removed and the previous
finished file, if any, is left as it was.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("mmtok")

#: errno -> (cause, what to do), for the failures that come from the disk rather than from the data.
DISK_CAUSES: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("disk full", "free some space (or choose another folder) and run the same command again"),
    errno.EDQUOT: ("disk quota exceeded", "free some space (or choose another folder) and run the same command again"),
    errno.EROFS: ("read-only folder (the file system is mounted read-only)", "choose a writable output folder"),
    errno.EACCES: ("no permission to write there", "choose a folder you can write to, or fix its permissions"),
    errno.EPERM: ("no permission to write there", "choose a folder you can write to, or fix its permissions"),
}


class DiskWriteError(OSError):
    """Writing ``filename`` failed because of the disk: full, over quota, read-only or not permitted.

    An ``OSError`` whose ``errno`` is the original one (``ENOSPC``, ``EDQUOT``, ``EROFS``, ``EACCES``, ``EPERM``)
    and whose message names the file, the cause and what to do.
    """

    def __init__(self, code: int, message: str, filename: str | None = None) -> None:
        super().__init__(code, message, filename)

    def __str__(self) -> str:
        return str(self.strerror)


def _errno_in(e: BaseException | None) -> tuple[int, BaseException] | None:
    """The disk errno of ``e``: its ``errno``, else one named in its message (safetensors: "os error 28"), else
    that of the error it was raised while handling (``torch.save`` turns a failed write into a RuntimeError); with
    the exception that told."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        code = getattr(e, "errno", None)
        if code in DISK_CAUSES:
            return code, e
        text = str(e)
        for code in DISK_CAUSES:
            if f"os error {code})" in text or f"[Errno {code}]" in text or os.strerror(code) in text:
                return code, e
        e = e.__cause__ or e.__context__
    return None


def _disk_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free == 0
    except OSError:
        return False


def disk_error(e: BaseException, path: str | Path) -> DiskWriteError | None:
    """The clear :class:`DiskWriteError` for ``e``, raised while writing ``path``; ``None`` when ``e`` is not a disk
    problem. Libraries that lose the errno (``numpy.tofile``, ``torch.save`` to a path) count as "disk full" when the
    folder has no free space left."""
    if isinstance(e, DiskWriteError):
        return e
    found = _errno_in(e)
    if found is None and isinstance(e, (OSError, RuntimeError)) and _disk_full(Path(path).parent):
        found = errno.ENOSPC, e
    if found is None:
        return None
    code, told = found
    cause, todo = DISK_CAUSES[code]
    return DiskWriteError(code, f"cannot write {path}: {cause} ({told}); {todo}. Files already finished are kept, and "
                                f"the previous {Path(path).name}, if there was one, is unchanged", str(path))


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; renames it onto ``path`` if the block succeeds.

    Readers never see half a file, and a failed write leaves the old file in place and removes the temporary one.
    A failure of the disk (full, read-only, no permission) becomes a :class:`DiskWriteError` naming ``path``.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        tmp.replace(path)
    except Exception as e:
        err = disk_error(e, path)
        if err is None or err is e:
            raise
        raise err from e
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError as e:  # a read-only file system refuses even to unlink what is not there
            if tmp.exists():
                log.warning("could not remove the temporary file %s: %s", tmp, e)


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """:func:`atomic_path`, opened: yields the temporary file, closed and renamed onto ``path`` if the block succeeds.

    Writing through a Python file keeps the errno of a failed write (``torch.save`` and ``numpy.tofile`` given a path
    report a full disk without one).
    """
    with atomic_path(path) as tmp, open(tmp, mode) as f:
        yield f


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Writes ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Writes ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def read_json(path: Path, error: type[Exception], what: str) -> Any:
    """Parses a JSON file; a missing file raises FileNotFoundError, bad JSON raises ``error``, both naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path} is not valid JSON ({e})") from None
