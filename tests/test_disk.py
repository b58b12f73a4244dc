"""Disk trouble: a full disk, a quota, a read-only or forbidden folder is a clear ``DiskWriteError`` naming the
file, and what was finished before (shards, the last checkpoint, metrics rows) stays intact and loadable."""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from modalities import MultimodalTokenizer
from modalities.data.fileio import DiskWriteError, atomic_write_text, disk_error
from modalities.data.lock import lock_name
from modalities.data.runlog import MetricsLog
from modalities.multimodal import Text
from modalities.shards import ShardReader, pretokenize
from modalities.training.trainer import TrainerConfig, VQTrainer
from models.quantizer import QuantizerConfig
from models.vqae import VQAEConfig, VQAutoencoder


class _FailingFile:
    """A file whose writes put ``room`` bytes on disk, then fail with ``code`` (what a full disk does)."""

    def __init__(self, f, code: int, room: int) -> None:
        self._f, self._code, self._room = f, code, room

    def write(self, data):
        n = len(memoryview(data).cast("B")) if not isinstance(data, str) else len(data)
        if n > self._room:
            self._f.write(data[:self._room] if isinstance(data, str) else memoryview(data).cast("B")[:self._room])
            self._f.flush()
            self._room = 0
            raise OSError(self._code, os.strerror(self._code))
        self._room -= n
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def fail_writes(monkeypatch, match: str, code: int = errno.ENOSPC, room: int = 100) -> None:
    """Files opened for writing whose path contains ``match`` fail with ``code`` after ``room`` bytes."""
    real = builtins.open

    def fake(file, mode="r", *args, **kwargs):
        f = real(file, mode, *args, **kwargs)
        writes = set(mode) & set("wax+") and not isinstance(file, int)
        return _FailingFile(f, code, room) if writes and match in os.fspath(file) else f

    monkeypatch.setattr(builtins, "open", fake)
    monkeypatch.setattr(io, "open", fake)


def read_only(monkeypatch, folder: Path, code: int = errno.EROFS) -> None:
    """Every attempt to create or write a file or folder under ``folder`` fails with ``code``, as on a read-only
    mount (simulated so that it also works as root, whom ``chmod`` does not stop)."""
    folder = str(folder)
    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def refuse(path):
        raise OSError(code, os.strerror(code), os.fspath(path))

    def fake_open(file, mode="r", *args, **kwargs):
        if set(mode) & set("wax+") and not isinstance(file, int) and os.fspath(file).startswith(folder):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if flags & writes and os.fspath(path).startswith(folder):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if os.fspath(path).startswith(folder):
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)


@pytest.fixture(scope="module")
def mm(text_tok) -> MultimodalTokenizer:
    return MultimodalTokenizer({"text": text_tok})


@pytest.fixture(scope="module")
def docs(samples):
    lines = (samples / "text/corpus/train.txt").read_text().splitlines()
    return [[Text(line)] for line in lines if line.strip()][:8]


def _files(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_atomic_write_keeps_the_old_file_and_names_the_cause(tmp_path, monkeypatch):
    path = tmp_path / "a.json"
    atomic_write_text(path, "old\n")
    fail_writes(monkeypatch, "a.json")
    with pytest.raises(DiskWriteError) as e:
        atomic_write_text(path, "x" * 1000)
    assert e.value.errno == errno.ENOSPC and isinstance(e.value, OSError) and e.value.filename == str(path)
    assert str(e.value).startswith(f"cannot write {path}: disk full")
    assert path.read_text() == "old\n" and sorted(tmp_path.iterdir()) == [path]
    # libraries that lose the errno: safetensors names it in its message; torch.save and numpy.tofile to a path
    # say nothing, and count as a full disk when no space is left
    assert disk_error(RuntimeError("I/O error: No space left on device (os error 28)"), path).errno == errno.ENOSPC
    assert disk_error(RuntimeError("unexpected pos 576 vs 534"), path) is None
    monkeypatch.setattr("shutil.disk_usage", lambda p: SimpleNamespace(total=1, used=1, free=0))
    assert disk_error(RuntimeError("unexpected pos 576 vs 534"), path).errno == errno.ENOSPC
    assert disk_error(ValueError("bad data"), path) is None


@pytest.mark.parametrize("code, cause", [(errno.ENOSPC, "disk full"), (errno.EDQUOT, "disk quota exceeded"),
                                         (errno.EROFS, "read-only folder"), (errno.EACCES, "no permission")])
def test_pretokenize_stopped_by_the_disk_keeps_finished_shards(mm, docs, tmp_path, monkeypatch, code, cause):
    whole = pretokenize(docs, mm, tmp_path / "whole", shard_docs=2, show_progress=False)
    out = tmp_path / "tok"
    fail_writes(monkeypatch, "shard_00002.bin", code, room=4)  # the third shard's ids: 4 bytes, then no more
    with pytest.raises(DiskWriteError) as e:
        pretokenize(docs, mm, out, shard_docs=2, show_progress=False)
    assert e.value.errno == code and str(e.value).startswith(f"cannot write {out / 'shard_00002.bin'}: {cause}")
    assert sorted(_files(out)) == [f"shard_0000{i}{s}" for i in (0, 1) for s in (".bin", ".idx.npy", ".json")]
    for i in (0, 1):  # finished shards are whole: what the uninterrupted run wrote, and readable
        stem = out / f"shard_0000{i}"
        assert _files(out)[stem.name + ".bin"] == (tmp_path / "whole" / (stem.name + ".bin")).read_bytes()
        offsets, meta = np.load(stem.with_suffix(".idx.npy")), json.loads(stem.with_suffix(".json").read_text())
        ids = np.fromfile(stem.with_suffix(".bin"), dtype=whole["dtype"])
        assert len(ids) == offsets[-1] == meta["tokens"] and meta["documents"] == 2
    monkeypatch.undo()  # space again: the same command finishes the job
    summary = pretokenize(docs, mm, out, shard_docs=2, show_progress=False)
    assert summary["shards_written"] == 2 and len(ShardReader(out)) == 8 == len(ShardReader(tmp_path / "whole"))
    assert _files(out) == _files(tmp_path / "whole")


def test_read_only_tokens_folder_is_a_clear_error_and_stays_readable(mm, docs, tmp_path, monkeypatch):
    out = tmp_path / "tok"
    pretokenize(docs, mm, out, shard_docs=3, show_progress=False)
    before = _files(out)
    read_only(monkeypatch, tmp_path)
    with pytest.raises(DiskWriteError) as e:
        pretokenize(docs, mm, out, shard_docs=3, show_progress=False)
    assert e.value.errno == errno.EROFS and f"cannot write {out / lock_name(0)}: read-only folder" in str(e.value)
    with pytest.raises(DiskWriteError, match=f"cannot write {tmp_path / 'new' / lock_name(0)}: read-only folder"):
        pretokenize(docs, mm, tmp_path / "new", shard_docs=3, show_progress=False)
    with pytest.raises(DiskWriteError, match="read-only folder"):
        MetricsLog(tmp_path / "run")
    assert len(ShardReader(out)) == 8  # reading a read-only folder is fine
    monkeypatch.undo()
    assert _files(out) == before


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores folder permissions")
def test_folder_without_write_permission(mm, docs, tmp_path):
    out = tmp_path / "tok"
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(DiskWriteError, match=f"cannot write {out / lock_name(0)}: no permission"):
            pretokenize(docs, mm, out, shard_docs=3, show_progress=False)
    finally:
        out.chmod(0o755)


def _trainer(out_dir, **kwargs) -> VQTrainer:
    torch.manual_seed(0)
    model = VQAutoencoder(VQAEConfig(channels=[8, 8, 16, 16], z_dim=8, groups=4),
                          QuantizerConfig(kind="fsq", levels=[4, 4, 4]))
    return VQTrainer(model, TrainerConfig(max_steps=4, warmup_steps=1, device="cpu", tensorboard=False, val_every=100,
                                          ckpt_every=2, log_every=1, **kwargs), out_dir)


def test_checkpoint_on_a_full_disk_leaves_the_last_one_resumable(tmp_path, monkeypatch):
    batches = [torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    t = _trainer(tmp_path)
    for b in batches[:2]:
        t.train_step(b)
    ckpt = t.save_checkpoint()
    good = ckpt.read_bytes()
    for b in batches[2:]:
        t.train_step(b)
    with monkeypatch.context() as m:
        fail_writes(m, "last.pt", room=10_000)  # the disk fills up in the middle of the checkpoint
        with pytest.raises(DiskWriteError, match=f"cannot write {ckpt}: disk full"):
            t.save_checkpoint()
    assert ckpt.read_bytes() == good and sorted(p.name for p in ckpt.parent.iterdir()) == ["last.pt"]
    saved = torch.load(ckpt, weights_only=True)
    resumed = _trainer(tmp_path)  # as a new process would: resumes from step 2 and finishes the run
    resumed.load_checkpoint(ckpt)
    assert resumed.step == 2 and all(torch.equal(v, saved["model"][k]) for k, v in resumed.model.state_dict().items())
    for b in batches[2:]:
        resumed.train_step(b)
    resumed.save_checkpoint()
    assert torch.load(ckpt, weights_only=True)["step"] == 4


def test_metrics_log_on_a_full_disk_keeps_whole_rows(tmp_path, monkeypatch):
    log = MetricsLog(tmp_path)
    log.write(step=1, loss=1.0)
    log.write(step=2, loss=0.5)
    with monkeypatch.context() as m:
        fail_writes(m, "metrics.jsonl", room=7)
        with pytest.raises(DiskWriteError, match=f"cannot write {log.path}: disk full"):
            log.write(step=3, loss=0.25)
    assert [r["step"] for r in log.read()] == [1, 2]  # the half row is gone
    log.write(step=3, loss=0.25)
    assert [r["step"] for r in log.read()] == [1, 2, 3]
