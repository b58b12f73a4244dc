"""WebDataset tar shards as tokenizer training input: patterns, rank and worker splits, bad members and shards,
a training run from tars. The shards are written here from ``samples/`` with ``webdataset.TarWriter``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from modalities.data.tars import (
    AudioCrop,
    ImageCrop,
    SkipCounter,
    TarMedia,
    expand_shards,
    hold_out_last,
    is_tar_spec,
    read_members,
    shards_for,
    tar_batches,
)
from modalities.data.waveform import AudioInputConfig
from modalities.tasks import run_task

from .test_train_vq import FAST


def _write_shards(folder: Path, files: list[Path], n: int, prefix: str = "train") -> list[Path]:
    """``n`` shards ``prefix-000.tar ...``: file i goes to shard i % n, keyed by its stem, with a caption member."""
    import webdataset as wds

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{prefix}-{s:03d}.tar" for s in range(n)]
    for s, path in enumerate(paths):
        with wds.TarWriter(str(path)) as w:
            for f in files[s::n]:
                w.write({"__key__": f.stem, f.suffix[1:]: f.read_bytes(), "txt": b"a caption"})
    return paths


@pytest.fixture(scope="module")
def image_shards(samples, tmp_path_factory) -> list[Path]:
    files = sorted(p for p in (samples / "images").iterdir() if p.suffix == ".png")
    return _write_shards(tmp_path_factory.mktemp("tars"), files, 4)


def test_tar_specs_expand_to_shards(image_shards):
    folder = image_shards[0].parent
    assert is_tar_spec("/d/train-{000..003}.tar") and is_tar_spec(["a.tar", "b.tgz"]) and is_tar_spec("pipe:cat x")
    assert not is_tar_spec(None) and not is_tar_spec("images") and not is_tar_spec(["a.tar", "images"])
    assert expand_shards(str(folder / "train-{000..003}.tar"), folder, "data.images") == [str(p) for p in image_shards]
    assert expand_shards("train-*.tar", folder, "data.images") == [str(p) for p in image_shards]  # relative glob
    assert expand_shards(["train-000.tar", "train-{002..003}.tar"], folder, "x") == [str(image_shards[i]) for i in (0, 2, 3)]
    assert expand_shards("pipe:cat /d/a.tar", folder, "x") == ["pipe:cat /d/a.tar"]
    with pytest.raises(FileNotFoundError, match=r"data.images: the tar pattern 'nope-\{0..3\}.tar' matches no file"):
        expand_shards("nope-{0..3}.tar", folder, "data.images")
    assert hold_out_last(["a", "b", "c"], "x") == (["a", "b"], ["c"])
    with pytest.raises(ValueError, match="data.images: 1 tar shard"):
        hold_out_last(["a"], "data.images")


def test_ranks_and_workers_read_disjoint_shards_covering_all(image_shards):
    urls = [f"s{i}" for i in range(11)]
    for world, workers in [(2, 2), (3, 1), (1, 3)]:
        for epoch in range(2):
            parts = [shards_for(urls, 0, 5, epoch, r, world, w, workers) for r in range(world) for w in range(workers)]
            seen = [u for p in parts for u in p]
            assert sorted(seen) == sorted(urls) and len(seen) == len(set(seen)), (world, workers, parts)
            assert all(p for p in parts)
    assert shards_for(urls, 0, 0, 0, 0, 2, 0, 1) != shards_for(urls, 0, 0, 1, 0, 2, 0, 1)  # reshuffled per epoch
    # the members each reader gets, from real shards: every image once over the two ranks' readers
    keys = [k for r in range(2) for _, k, _ in read_members(shards_for([str(p) for p in image_shards], 0, 0, 0, r, 2,
                                                                        0, 1), "image", "data.images")]
    every = [k for _, k, _ in read_members([str(p) for p in image_shards], "image", "data.images")]
    assert sorted(keys) == sorted(every) and len(every) == len(set(every)) > 20


def test_corrupt_member_and_bad_shard_are_skipped_with_warnings(image_shards, tmp_path, caplog):
    import webdataset as wds

    bad = tmp_path / "bad-000.tar"
    with wds.TarWriter(str(bad)) as w:
        w.write({"__key__": "good_one", "png": _png_bytes()})
        w.write({"__key__": "broken", "jpg": b"not an image at all"})
        w.write({"__key__": "text_only", "txt": b"no media here"})
    cut = tmp_path / "cut-000.tar"  # a shard cut short in the middle of a member
    data = image_shards[1].read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    missing = str(tmp_path / "missing-000.tar")
    counter = SkipCounter()
    with caplog.at_level(logging.WARNING, logger="mmtok"):
        got = list(read_members([str(bad), str(cut), missing, str(image_shards[2])], "image", "data.images", counter))
    keys = [k for _, k, _ in got]
    text = caplog.text
    assert f"skipping member broken.jpg of shard {bad}" in text
    assert str(cut) in text and missing in text
    assert counter.value == 3  # the member, the rest of the cut shard, the missing shard
    whole = [k for _, k, _ in read_members([str(image_shards[2])], "image", "x")]
    n_cut = sum(1 for u, _, _ in got if u == str(cut))
    n_uncut = sum(1 for _ in read_members([str(image_shards[1])], "image", "x"))
    assert keys[0] == "good_one" and "broken" not in keys and "text_only" not in keys
    assert 0 < n_cut < n_uncut  # the members before the cut are kept
    assert keys[1 + n_cut:] == whole  # the shard after the bad ones is read whole: nothing else lost
    assert all(x.shape[0] == 3 and 0 <= x.min() and x.max() <= 1 for _, _, x in got)


def _png_bytes() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def test_stream_splits_over_workers_and_counts_their_skips(image_shards, tmp_path):
    """Two DataLoader workers each stream from their own shards and the skips they count reach the main process;
    too few shards for the readers is an error naming the key."""
    import webdataset as wds

    shards = [str(p) for p in image_shards]
    broken = tmp_path / "broken-000.tar"
    with wds.TarWriter(str(broken)) as w:
        w.write({"__key__": "broken", "png": b"garbage"})
        w.write({"__key__": "fine", "png": _png_bytes()})
    counter = SkipCounter()
    stream = TarMedia([*shards, str(broken)], "image", ImageCrop(16, flip=False), "data.images", shuffle_buffer=8,
                      counter=counter)
    n_images = sum(1 for _ in read_members(shards, "image", "x"))
    batches = tar_batches(stream, batch_size=n_images + 1, num_workers=2)
    # one batch from each worker (round robin), each more than its shards hold: both have read all their shards
    assert [tuple(next(batches).shape) for _ in range(2)] == [(n_images + 1, 3, 16, 16)] * 2
    assert counter.value >= 1  # the broken member, counted in a worker process
    with pytest.raises(ValueError, match=r"data.images: 2 training shard\(s\) cannot feed 1 rank\(s\) x 3"):
        next(tar_batches(TarMedia(shards[:2], "image", ImageCrop(16), "data.images"), 2, num_workers=3))


def test_audio_members_become_crops(samples, tmp_path):
    files = sorted((samples / "audio").glob("*.flac"))[:4]
    shards = _write_shards(tmp_path, files, 2)
    crops = [x for _, _, x in read_members([str(p) for p in shards], "audio", "data.audio",
                                           transform=AudioCrop(AudioInputConfig(sample_rate=16000), 8000))]
    assert len(crops) == 4 and all(c.shape == (8000,) and c.abs().max() > 0 for c in crops)
    whole = next(read_members([str(shards[0])], "audio", "data.audio", transform=AudioCrop(AudioInputConfig(), None)))
    assert whole[2].ndim == 1 and len(whole[2]) > 8000


@pytest.mark.slow
def test_image_training_from_tars_and_resume(image_shards, compose, tmp_path):
    pattern = str(image_shards[0].parent / "train-{000..003}.tar")
    over = [*FAST, f'data.images="{pattern}"', "data.shuffle_buffer=16", "task.batch_size=2", "task.crop_size=32",
            "trainer.log_every=1", "trainer.val_every=2", "trainer.ckpt_every=2"]
    m = run_task(compose([*over, "trainer.max_steps=2"]), tmp_path)
    assert m["train_shards"] == 3 and m["val_shards"] == 1 and m["val_items"] > 0 and m["skipped_members"] == 0
    assert m["steps"] == 2 and (tmp_path / "tokenizer/image/config.json").is_file()
    m = run_task(compose([*over, "trainer.max_steps=3", "trainer.resume=true"]), tmp_path)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3] and m["steps"] == 3
    with pytest.raises(ValueError, match="data.val_images names held-out data for tar input"):
        run_task(compose([*FAST, "data.val_images=/somewhere"]), tmp_path / "other")
    assert torch.isfinite(torch.tensor(m["val_psnr"]))
