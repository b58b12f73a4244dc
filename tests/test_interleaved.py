"""Interleaved documents in WebDataset tars: member order, .json parts, keys recorded, bad members and shards,
the rank and worker split, and task=tokenize on a tar pattern."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from modalities.data.interleaved import (
    InterleavedShards,
    ShardEnd,
    TarSample,
    read_tar,
    sample_parts,
    shard_urls,
    split_shards,
)
from modalities.multimodal import Audio, Image, Text
from modalities.shards import ShardReader, pretokenize_tars

from .tiny_mm import tiny_mm, write_tar


@pytest.fixture(scope="module")
def mm(text_tok, samples):
    return tiny_mm(text_tok, samples)


def _png(samples, name="coins.png"):
    return (samples / "images" / name).read_bytes()


def _flac(samples, i=0):
    return (samples / "audio" / f"speech_{i:03d}.flac").read_bytes()


def test_members_in_index_order_and_json_order(samples):
    s = TarSample("a.tar", "doc", {"10.txt": b"ten", "2.png": b"img", "001.txt": b"one", "jpg": b"x", "cls": b"3",
                                    "json": b'{"caption": "metadata, not parts"}'})
    parts, source = sample_parts(s)
    assert [(p.kind, p.member) for p in parts] == [("text", "001.txt"), ("image", "2.png"), ("text", "10.txt"),
                                                   ("image", "jpg")]
    assert parts[0].data == "one" and source is None
    s.members["json"] = json.dumps({"source": "book 7", "parts": [
        {"image": "2.png"}, {"text": "inline"}, {"audio": "doc.003.flac", "name": "audio_semantic"}]}).encode()
    s.members["003.flac"] = b"aud"
    parts, source = sample_parts(s)
    assert [(p.kind, p.data, p.name) for p in parts] == [("image", b"img", None), ("text", "inline", None),
                                                         ("audio", b"aud", "audio_semantic")]
    assert source == "book 7"
    s.members["json"] = b'{"parts": [{"image": "9.png"}]}'
    with pytest.raises(ValueError, match="key doc: json parts\\[0\\] names member '9.png'"):
        sample_parts(s)
    with pytest.raises(ValueError, match="no text or media members"):
        sample_parts(TarSample("a.tar", "doc", {"cls": b"1"}))


def test_tar_documents_keep_order_keys_and_ids(mm, samples, tmp_path):
    a = write_tar(tmp_path / "docs-0.tar", [
        {"__key__": "d0", "000.txt": "A coin:", "001.png": _png(samples), "002.flac": _flac(samples)},
        {"__key__": "d1", "json": json.dumps({"source": "chelsea", "parts": [
            {"image": "img.png"}, {"text": "a cat"}, {"audio": "a.flac", "name": "audio_semantic"}]}),
         "img.png": _png(samples, "chelsea.png"), "a.flac": _flac(samples, 1)}])
    b = write_tar(tmp_path / "docs-1.tar", [{"__key__": "e0", "txt": "only text"}])
    urls = shard_urls(str(tmp_path / "docs-{0..1}.tar"))
    assert urls == [str(a), str(b)]
    man = pretokenize_tars(urls, mm, tmp_path / "tok", batch_size=4, show_progress=False)
    assert man["documents"] == 3 and man["skipped"] == 0 and [m["input"] for m in man["shards"]] == urls
    reader = ShardReader(tmp_path / "tok")
    from modalities.data.io import load_audio, load_image

    wave0, sr = load_audio(samples / "audio/speech_000.flac")
    wave1, _ = load_audio(samples / "audio/speech_001.flac")
    want = [[Text("A coin:"), Image(load_image(samples / "images/coins.png")), Audio(wave0, sr)],
            [Image(load_image(samples / "images/chelsea.png")), Text("a cat"), Audio(wave1, sr, "audio_semantic")],
            [Text("only text")]]
    for i, doc in enumerate(want):
        assert np.array_equal(reader[i], mm.encode(doc, bos=True, eos=True).ids.numpy())
    assert [reader.source(i) for i in range(3)] == [{"shard": str(a), "key": "d0"},
                                                    {"shard": str(a), "key": "d1", "source": "chelsea"},
                                                    {"shard": str(b), "key": "e0"}]


def test_bad_members_and_shards_are_listed_and_the_rest_kept(mm, samples, tmp_path, caplog):
    good = [{"__key__": f"d{k}", "000.txt": f"doc {k}", "001.png": _png(samples)} for k in range(4)]
    broken = [dict(good[0]), {**good[1], "001.png": b"\x89PNG\r\n\x1a\nnot an image"}, dict(good[2])]
    write_tar(tmp_path / "s-0.tar", broken)
    full = write_tar(tmp_path / "whole.tar", good).read_bytes()
    cut = full.index(b"d3.000.txt") + 700  # inside the last sample's image
    (tmp_path / "s-1.tar").write_bytes(full[:cut])
    urls = [str(tmp_path / "s-0.tar"), str(tmp_path / "s-1.tar"), str(tmp_path / "s-2.tar")]  # s-2 is missing
    with caplog.at_level(logging.WARNING, logger="mmtok"):
        man = pretokenize_tars(urls, mm, tmp_path / "tok", batch_size=2, show_progress=False)
    skipped = man["skipped_documents"]
    assert [(e["shard"], e["key"]) for e in skipped] == [(urls[0], "d1"), (urls[1], "d3"), (urls[2], None)]
    assert "cannot read image" in skipped[0]["error"] and "truncated" in skipped[1]["error"]
    assert "cannot open shard" in skipped[2]["error"] and man["skipped"] == 3
    assert f"skipping shard {urls[0]} key d1" in caplog.text and f"shard {urls[1]} key d3" in caplog.text
    reader = ShardReader(tmp_path / "tok")
    assert [reader.source(i)["key"] for i in range(len(reader))] == ["d0", "d2", "d0", "d1", "d2"]
    from modalities.data.io import load_image

    img = load_image(samples / "images/coins.png")
    assert np.array_equal(reader[4], mm.encode([Text("doc 2"), Image(img)], bos=True, eos=True).ids.numpy())


def test_rank_and_worker_split_is_disjoint_and_covering():
    for n in (1, 5, 12):
        for world in (1, 2, 3):
            for workers in (1, 2, 4):
                got = [i for r in range(world) for w in range(workers) for i in split_shards(n, r, world, w, workers)]
                assert sorted(got) == list(range(n))
    assert split_shards(10, 1, 2, 1, 2) == [3, 7]
    with pytest.raises(ValueError, match="bad split"):
        split_shards(4, 2, 2)


def test_two_workers_read_whole_shards(samples, tmp_path):
    urls = [str(write_tar(tmp_path / f"w-{i}.tar", [{"__key__": f"s{i}k{k}", "txt": f"{i}/{k}"} for k in range(3)]))
            for i in range(4)]
    data = InterleavedShards(urls, [0, 1, 2, 3], lambda s: s.members["txt"].decode())
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=2, collate_fn=lambda x: x)
    seen: dict[int, list[str]] = {}
    ends = []
    for item in loader:
        if isinstance(item, ShardEnd):
            ends.append(item.index)
            continue
        seen.setdefault(item[0], []).append(item[2])
    assert sorted(ends) == [0, 1, 2, 3]
    assert seen == {i: [f"{i}/{k}" for k in range(3)] for i in range(4)}


def test_read_tar_reports_a_missing_shard(tmp_path):
    (err,) = list(read_tar(str(tmp_path / "nope.tar")))
    assert err.key is None and "cannot open shard" in err.error


def test_tokenize_task_reads_a_tar_pattern(mm, compose, samples, tmp_path):
    from modalities.tasks import run_task

    mm.save_pretrained(tmp_path / "mm")
    for i in range(2):
        write_tar(tmp_path / f"docs-{i:02d}.tar", [{"__key__": f"k{i}", "000.txt": "Coins:", "001.png": _png(samples)}])
    cfg = compose(["task=tokenize", f"task.tokenizer={tmp_path}/mm",
                   f"task.manifest='{tmp_path}/docs-{{00..01}}.tar'", "task.num_workers=0", "show_progress=false"])
    m = run_task(cfg, tmp_path / "run")
    from modalities.data.io import load_image

    want = mm.encode([Text("Coins:"), Image(load_image(samples / "images/coins.png"))], bos=True, eos=True)
    assert m["documents"] == 2 and m["shards_written"] == 2 and m["tokens"] == 2 * len(want)
    reader = ShardReader(tmp_path / "run/tokens")
    assert np.array_equal(reader[0], want.ids.numpy())
    assert reader.source(1) == {"shard": f"{tmp_path}/docs-01.tar", "key": "k1"}
    assert run_task(cfg, tmp_path / "run")["shards_written"] == 0
