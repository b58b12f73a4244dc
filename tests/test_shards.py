"""Pre-tokenisation into shards: layout, reading back, skipped corrupt files, resume after a kill, rank split."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from modalities import ImageTokenizer, MultimodalTokenizer
from modalities.multimodal import Image, Text
from modalities.shards import ShardReader, pretokenize
from models.quantizer import QuantizerConfig
from models.vqae import VQAEConfig


@pytest.fixture(scope="module")
def mm(text_tok) -> MultimodalTokenizer:
    torch.manual_seed(0)
    image = ImageTokenizer.from_configs(VQAEConfig(channels=[8, 8, 16, 16], z_dim=8, groups=4),
                                        QuantizerConfig(kind="fsq", levels=[4, 4, 4]), size_policy="resize", size=64)
    return MultimodalTokenizer({"text": text_tok, "image": image})


@pytest.fixture()
def docs(samples, tmp_path):
    rows = [json.loads(x) for x in (samples / "images/captions.jsonl").read_text().splitlines()][:7]
    out = [[Text(r["caption"]), Image(samples / "images" / r["file"])] for r in rows]
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 20)
    out.insert(3, [Text("a broken one"), Image(tmp_path / "broken.png")])
    return out


def _files(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.name != "manifest.json"}


def test_shards_round_trip_and_skip(mm, docs, tmp_path):
    man = pretokenize(docs, mm, tmp_path / "tok", shard_docs=3, show_progress=False)
    assert man["documents"] == 7 and man["skipped"] == 1 and len(man["shards"]) == 3
    assert man["shards"][1]["skipped"][0]["files"] == [str(tmp_path / "broken.png")]
    assert man["dtype"] == "uint16" and man["registry_fingerprint"] == mm.registry.fingerprint
    assert man["tokens"] == sum(man["tokens_per_modality"].values())
    reader = ShardReader(tmp_path / "tok", fingerprint=mm.registry.fingerprint)
    assert len(reader) == 7
    good = [d for i, d in enumerate(docs) if i != 3]
    for i in (0, 3, 6):
        assert np.array_equal(reader[i], mm.encode(good[i], bos=True, eos=True).ids.numpy())
    parts = mm.decode(torch.from_numpy(reader[2].astype(np.int64)))
    assert isinstance(parts[0], str) and parts[1].shape == (3, 64, 64)
    with pytest.raises(ValueError, match="tokenised with vocabulary"):
        ShardReader(tmp_path / "tok", fingerprint="0" * 16)
    with pytest.raises(IndexError):
        reader[7]


def test_resume_after_a_kill_is_byte_identical(mm, docs, tmp_path, monkeypatch):
    pretokenize(docs, mm, tmp_path / "whole", shard_docs=2, show_progress=False)
    real = mm.encode
    calls = {"n": 0}

    def dies(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:  # document 5, the second of shard 2 (the broken document 3 never reaches encode)
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(mm, "encode", dies)
    with pytest.raises(KeyboardInterrupt):
        pretokenize(docs, mm, tmp_path / "killed", shard_docs=2, show_progress=False)
    monkeypatch.setattr(mm, "encode", real)
    done = sorted(p.name for p in (tmp_path / "killed").glob("*.json"))
    assert done == ["shard_00000.json", "shard_00001.json"] and not list((tmp_path / "killed").glob("*.tmp"))
    summary = pretokenize(docs, mm, tmp_path / "killed", shard_docs=2, show_progress=False)
    assert summary["shards_written"] == 2
    assert _files(tmp_path / "killed") == _files(tmp_path / "whole")


def test_ranks_split_the_shards(mm, docs, tmp_path):
    r1 = pretokenize(docs, mm, tmp_path / "tok", shard_docs=2, rank=1, world_size=2, show_progress=False)
    assert r1["shards_written"] == 2 and not (tmp_path / "tok/manifest.json").exists()
    man = pretokenize(docs, mm, tmp_path / "tok", shard_docs=2, rank=0, world_size=2, show_progress=False)
    assert man["shards_written"] == 2 and man["documents"] == 7 and len(ShardReader(tmp_path / "tok")) == 7


def test_tokenize_task(mm, compose, tmp_path, samples):
    from modalities.tasks import run_task

    mm.save_pretrained(tmp_path / "mm")
    lines = [json.dumps([{"text": "Coins:"}, {"image": str(samples / "images/coins.png")}]),
             json.dumps([{"text": "just text"}])]
    (tmp_path / "docs.jsonl").write_text("\n".join(lines) + "\n")
    cfg = compose(["task=tokenize", f"task.tokenizer={tmp_path}/mm", f"task.manifest={tmp_path}/docs.jsonl",
                   "task.shard_docs=1", "show_progress=false"])
    m = run_task(cfg, tmp_path / "run")
    assert m["documents"] == 2 and m["shards_written"] == 2 and m["tokens_image"] == 2 + 6 + 8 * 9
    assert len(ShardReader(tmp_path / "run/tokens")) == 2
    again = run_task(cfg, tmp_path / "run")  # same command again: nothing left to do
    assert again["shards_written"] == 0 and again["tokens"] == m["tokens"]


def test_two_decoding_workers_give_the_same_shards(mm, docs, tmp_path):
    pretokenize(docs, mm, tmp_path / "inline", shard_docs=3, show_progress=False)
    man = pretokenize(docs, mm, tmp_path / "workers", shard_docs=3, num_workers=2, show_progress=False)
    assert man["skipped"] == 1 and man["shards"][1]["skipped"][0]["files"] == [str(tmp_path / "broken.png")]
    assert _files(tmp_path / "workers") == _files(tmp_path / "inline")


def test_resuming_with_another_vocabulary_is_refused(mm, text_tok, docs, tmp_path):
    pretokenize(docs[:2], mm, tmp_path / "tok", shard_docs=1, show_progress=False)
    other = MultimodalTokenizer({"text": text_tok})
    with pytest.raises(ValueError, match="written with vocabulary .* use another output folder"):
        pretokenize([[Text("hello")]], other, tmp_path / "tok", shard_docs=1, show_progress=False)
