"""One writer per output folder: a lock file naming the process that writes there.

``with DirLock(folder, rank):`` creates ``folder/.mmtok-lock.rank<rank>`` atomically (``O_CREAT | O_EXCL``)
holding JSON ``{host, pid, started, command, rank, token}`` and removes it on exit, also when the block raises.
If the file is already there:

* its holder is this process (a nested ``with`` on the same folder and rank): the lock is re-entrant;
* its holder ran on this host and is dead (``os.kill(pid, 0)`` finds no such process): the lock is taken over
  with a :class:`StaleLockWarning` naming the old holder (a run killed with ``SIGKILL`` or by a power cut leaves
  its lock behind);
* otherwise: :class:`LockedError` naming the folder, the holder's host and pid, and what to do. A lock taken on
  another host cannot be checked from here, so it is refused too; the message says which file to delete if that
  job is gone.

The lock is per rank: the ``torchrun`` ranks of one job share an output folder, each with its own lock file, while
a second job writing the same folder collides with the first on the rank(s) both have. Only mmtok writers take the
lock; it keeps two runs from interleaving their files, not other programs out. "Host" is the host name; containers
sharing a host name but not a process namespace are told apart by the pid namespace where Linux shows it.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import shlex
import socket
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from .fileio import disk_error

__all__ = ["DirLock", "LockedError", "StaleLockWarning", "lock_name", "locks_folder"]

LOCK_PREFIX = ".mmtok-lock"
F = TypeVar("F", bound=Callable[..., Any])

_held: dict[str, tuple[int, int, str]] = {}  # lock file -> (pid, depth, token) for the locks this process holds
_held_lock = threading.Lock()


class LockedError(RuntimeError):
    """Another process holds the folder's lock. ``path`` is the lock file, ``holder`` what it says."""

    def __init__(self, message: str, path: Path, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.path, self.holder = path, holder


class StaleLockWarning(UserWarning):
    """A lock left behind by a dead process on this host was taken over."""


def lock_name(rank: int) -> str:
    """The lock file's name for ``rank``: ``.mmtok-lock.rank<rank>``."""
    return f"{LOCK_PREFIX}.rank{rank}"


def _env_rank() -> int:
    return int(os.environ.get("RANK", 0))


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs; a zombie (dead, not yet reaped: killed ``torchrun`` ranks in a
    container whose init does not reap orphans) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    except (OverflowError, ValueError):
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (macOS), or gone meanwhile
        return True
    return state not in ("Z", "X")


def _read(path: Path, tries: int = 10) -> dict[str, Any] | None:
    """The lock file's JSON; ``None`` if it is gone. A file still being written is read again for up to half a
    second; one that stays unreadable reads as ``{}``."""
    for i in range(tries):
        try:
            holder = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(holder, dict) and "pid" in holder:
                return holder
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            pass
        if i < tries - 1:
            time.sleep(0.05)
    return {}


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "an unknown process (the lock file is unreadable)"
    text = f"pid {holder.get('pid')} on host {holder.get('host')}"
    if holder.get("started"):
        text += f", started {holder['started']}"
    if holder.get("command"):
        text += f", command: {holder['command']}"
    return text


@contextlib.contextmanager
def _guard(directory: Path) -> Iterator[None]:
    """Serialises lock takeovers between processes of this host (``flock`` on the folder itself; a no-op where the
    file system or platform has no ``flock``: the ``O_EXCL`` create still lets only one writer in)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)  # closing releases the flock


class DirLock:
    """The lock of ``directory`` for ``rank`` (default: ``$RANK``, else 0); a re-entrant context manager.

    Args:
        directory: the folder (created if needed).
        rank: the rank within its job; each rank has its own lock file.
        what: how errors name the folder ("tokens folder", "run directory").
    """

    def __init__(self, directory: str | Path, rank: int | None = None, what: str = "folder") -> None:
        self.directory = Path(directory)
        self.rank = _env_rank() if rank is None else int(rank)
        self.what = what
        self.path = self.directory / lock_name(self.rank)

    @property
    def _key(self) -> str:
        return os.path.realpath(self.path)

    def holder(self) -> dict[str, Any] | None:
        """What the lock file says (``None``: not locked)."""
        return _read(self.path)

    def acquire(self) -> DirLock:
        """Takes the lock; raises :class:`LockedError` if another live (or uncheckable) process holds it."""
        with _held_lock:  # threads of this process take locks one at a time
            pid = os.getpid()
            held = _held.get(self._key)
            if held is not None and held[0] == pid:
                _held[self._key] = (pid, held[1] + 1, held[2])
                return self
            token = self._create()
            _held[self._key] = (pid, 1, token)
        return self

    def _create(self) -> str:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise disk_error(e, self.path) or e from None
        me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "command": shlex.join(sys.argv)[:500], "rank": self.rank, "pid_namespace": _pid_namespace(),
              "token": uuid.uuid4().hex}
        with _guard(self.directory):
            while True:
                try:
                    fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    holder = _read(self.path)
                    if holder is None:  # released meanwhile
                        continue
                    self._refuse_unless_stale(holder, me)
                    try:
                        self.path.unlink()
                    except FileNotFoundError:
                        pass
                    except OSError as e:
                        raise disk_error(e, self.path) or e from None
                    continue
                except OSError as e:
                    raise disk_error(e, self.path) or e from None
                try:
                    with os.fdopen(fd, "w", encoding="utf-8") as f:
                        f.write(json.dumps(me) + "\n")
                except OSError as e:
                    self.path.unlink(missing_ok=True)
                    raise disk_error(e, self.path) or e from None
                return me["token"]

    def _refuse_unless_stale(self, holder: dict[str, Any], me: dict[str, Any]) -> None:
        """Returns if ``holder`` is a dead process of this host (after warning), else raises LockedError."""
        same_host = holder.get("host") == me["host"]
        same_ns = None in (holder.get("pid_namespace"), me["pid_namespace"]) or \
            holder.get("pid_namespace") == me["pid_namespace"]
        pid = holder.get("pid")
        if not holder:
            stale = True  # an unreadable lock: its writer died between creating and filling it
        elif same_host and same_ns and isinstance(pid, int):
            stale = pid == me["pid"] or not _alive(pid)  # our own pid but not in _held: an earlier life of it
        else:
            stale = False
        if stale:
            warnings.warn(f"{self.directory}: taking over the lock {self.path.name} left by {_describe(holder)}, "
                          f"which is no longer running", StaleLockWarning, stacklevel=4)
            return
        if same_host and same_ns:
            check = (f"Wait for it to finish or stop it, or write elsewhere; if that job is no longer running (pid "
                     f"{pid} may since belong to another program), delete {self.path}")
        else:
            where = "host " + str(holder.get("host")) if not same_host else "another process namespace (container)"
            check = (f"The lock was taken on {where} and cannot be checked from here (this is host {me['host']}); "
                     f"if no job there is writing this folder any more, delete {self.path}")
        raise LockedError(f"{self.what} {self.directory} is in use by {_describe(holder)} (lock file {self.path}): "
                          f"two writers would mix up each other's files. {check}.", self.path, holder)

    def release(self) -> None:
        """Drops one level of the lock; the last removes the lock file if it is still ours."""
        with _held_lock:
            held = _held.get(self._key)
            if held is None or held[0] != os.getpid():
                return
            if held[1] > 1:
                _held[self._key] = (held[0], held[1] - 1, held[2])
                return
            del _held[self._key]
            holder = _read(self.path, tries=1)
            if holder and holder.get("token") == held[2]:
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
                except OSError as e:
                    warnings.warn(f"could not remove the lock file {self.path}: {e}", RuntimeWarning, stacklevel=3)

    def __enter__(self) -> DirLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def locks_folder(folder: str, rank: str | None = None, what: str = "folder") -> Callable[[F], F]:
    """Decorator: the call holds :class:`DirLock` of its argument ``folder``, for the rank in its argument ``rank``
    (default ``$RANK``, else 0)."""

    def deco(fn: F) -> F:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            with DirLock(bound.arguments[folder], None if rank is None else bound.arguments[rank], what):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return deco
