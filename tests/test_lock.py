"""One writer per folder: a live second writer is refused naming the holder, a dead one's lock is taken over,
ranks of one job coexist, and the lock goes with the process that held it (also on an exception)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from modalities.data.lock import DirLock, LockedError, StaleLockWarning, lock_name
from modalities.shards import pretokenize

from .conftest import REPO

HOLD = textwrap.dedent("""
    import sys
    from modalities.data.lock import DirLock
    with DirLock(sys.argv[1], int(sys.argv[2])):
        print("locked", flush=True)
        sys.stdin.read()  # holds the lock until the test closes stdin
""")


@pytest.fixture()
def holder(tmp_path):
    """holder(folder, rank) -> a live process of its own holding the lock (released when the test ends)."""
    procs = []

    def start(folder, rank=0):
        p = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), str(rank)], cwd=REPO, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        procs.append(p)
        assert p.stdout.readline().strip() == "locked"
        return p

    yield start
    for p in procs:
        p.stdin.close()
        p.wait(timeout=30)


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_second_writer_is_refused_naming_the_holder(holder, tmp_path, compose):
    folder = tmp_path / "out"
    p = holder(folder)
    with pytest.raises(LockedError) as e:
        DirLock(folder, 0).acquire()
    msg = str(e.value)
    assert f"pid {p.pid} on host {socket.gethostname()}" in msg and str(folder / lock_name(0)) in msg
    assert "Wait for it to finish" in msg and f"delete {folder / lock_name(0)}" in msg
    assert e.value.holder["pid"] == p.pid and "command" in e.value.holder
    # the writers refuse before they touch anything: pre-tokenisation and a task in the same folder
    with pytest.raises(LockedError, match=f"tokens folder {folder} is in use by pid {p.pid}"):
        pretokenize([], None, folder, show_progress=False)
    with pytest.raises(LockedError, match=f"run directory {folder} is in use by pid {p.pid}"):
        from modalities.tasks import run_task

        run_task(compose(["task=text"]), folder)
    assert sorted(x.name for x in folder.iterdir()) == [lock_name(0)]
    p.stdin.close()  # the holder finishes: its lock goes with it and the folder is free
    p.wait(timeout=30)
    assert not (folder / lock_name(0)).exists()
    with DirLock(folder, 0):
        assert json.loads((folder / lock_name(0)).read_text())["pid"] == os.getpid()


def test_a_dead_writers_lock_is_taken_over_with_a_warning(tmp_path):
    dead = _dead_pid()
    (tmp_path / lock_name(0)).write_text(json.dumps({"host": socket.gethostname(), "pid": dead,
                                                     "started": "2020-01-01T00:00:00", "command": "train.py"}))
    with pytest.warns(StaleLockWarning, match=f"left by pid {dead} on host .*no longer running"):
        lock = DirLock(tmp_path, 0).acquire()
    assert json.loads((tmp_path / lock_name(0)).read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / lock_name(0)).exists()
    zombie = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    zombie.kill()  # dead but not yet reaped (what killed ranks stay where init does not reap them)
    try:
        (tmp_path / lock_name(0)).write_text(json.dumps({"host": socket.gethostname(), "pid": zombie.pid}))
        os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)  # wait until it has died, without reaping it
        with pytest.warns(StaleLockWarning, match=f"left by pid {zombie.pid} "), DirLock(tmp_path, 0):
            pass
    finally:
        zombie.wait()
    (tmp_path / lock_name(0)).write_text("")  # killed between creating the lock file and filling it
    with pytest.warns(StaleLockWarning, match="unreadable"), DirLock(tmp_path, 0):
        pass


def test_a_lock_from_another_host_is_refused_with_how_to_clear_it(tmp_path):
    (tmp_path / lock_name(0)).write_text(json.dumps({"host": "node-17.example", "pid": _dead_pid()}))
    with pytest.raises(LockedError, match=r"on host node-17.example.*cannot be checked from here.*delete"):
        DirLock(tmp_path, 0).acquire()
    assert (tmp_path / lock_name(0)).exists()


def test_ranks_of_one_job_coexist_and_a_second_job_collides(holder, tmp_path, monkeypatch):
    holder(tmp_path, rank=0)  # rank 0 of a running job
    monkeypatch.setenv("RANK", "1")
    with DirLock(tmp_path) as lock:  # rank 1 of the same job ($RANK)
        assert lock.path.name == lock_name(1)
        with pytest.raises(LockedError):  # rank 0 of a second job
            DirLock(tmp_path, 0).acquire()
    assert sorted(p.name for p in tmp_path.iterdir()) == [lock_name(0)]


def test_released_on_exception_and_reentrant_in_one_process(tmp_path):
    path = tmp_path / lock_name(0)
    with pytest.raises(KeyError), DirLock(tmp_path, 0):
        raise KeyError("boom")
    assert not path.exists()
    with pytest.raises(ValueError, match="shard_docs"):  # pretokenize fails inside its lock: released
        pretokenize([], None, tmp_path, shard_docs=0, show_progress=False)
    assert not path.exists()
    with DirLock(tmp_path, 0):
        with DirLock(tmp_path, 0):  # the same process again (a task inside a task): no deadlock
            pass
        assert path.exists()  # the outer level still holds it
    assert not path.exists()
