"""task=pack: media folders and JSONL manifests -> WebDataset tars, sources kept together, and back through
task=tokenize to the same ids as the manifest itself."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest

from modalities.data.interleaved import read_tar, shard_urls
from modalities.data.sources import read_sources
from modalities.multimodal import read_manifest
from modalities.shards import ShardReader, pretokenize, pretokenize_tars
from modalities.tasks.pack import folder_documents, manifest_documents, write_tars

from .tiny_mm import tiny_mm


@pytest.fixture(scope="module")
def mm(text_tok, samples):
    return tiny_mm(text_tok, samples)


def test_folder_pack_keeps_sources_together(samples, tmp_path):
    docs = folder_documents(samples / "images")
    assert len(docs) == len(list((samples / "images").glob("*.png")))
    shards = write_tars(docs, tmp_path, shard_size=4, prefix="img", show_progress=False)
    sources = read_sources(samples / "images")
    where: dict[str, set[str]] = {}
    n = 0
    for s in shards:
        for sample in read_tar(str(tmp_path / s["file"])):
            n += 1
            name = sample.key + ".png"
            assert json.loads(sample.members["json"])["source"] == sources.get(name, name)
            assert sample.members["000.png"] == (samples / "images" / name).read_bytes()
            where.setdefault(sources.get(name, name), set()).add(s["file"])
    assert n == len(docs) and all(len(files) == 1 for files in where.values())
    assert max(len(v) for v in where.values()) == 1 and len(shards) > 1
    assert sum(s["documents"] for s in shards) == n and not list(tmp_path.glob("*.tmp"))


def test_manifest_pack_round_trips_through_tokenize(mm, samples, tmp_path):
    lines = [json.dumps({"source": "coins", "parts": [{"text": "Coins:"}, {"image": str(samples / "images/coins.png")}]}),
             json.dumps([{"text": "a cat"}, {"image": str(samples / "images/chelsea.png")},
                         {"audio": str(samples / "audio/speech_000.flac"), "name": "audio_semantic"}]),
             json.dumps({"source": "coins", "parts": [{"image": str(samples / "images/coins.png")}, {"text": "again"}]}),
             json.dumps([{"text": "missing"}, {"image": "nope.png"}]),
             json.dumps([{"audio": str(samples / "audio/speech_001.flac")}, {"text": "said"}])]
    (tmp_path / "docs.jsonl").write_text("\n".join(lines) + "\n")
    docs, skipped = manifest_documents(tmp_path / "docs.jsonl")
    assert skipped == [{"line": 4, "files": [str(tmp_path / "nope.png")], "error": "file not found"}]
    shards = write_tars(docs, tmp_path / "tars", shard_size=2, show_progress=False)
    assert [s["documents"] for s in shards] == [2, 2]  # the two "coins" documents (lines 1, 3) share shard 0
    with tarfile.open(tmp_path / "tars" / shards[1]["file"]) as t:
        meta = json.loads(t.extractfile("000000002.json").read())
    assert meta == {"parts": [{"text": "a cat"}, {"image": "001.png"}, {"audio": "002.flac", "name": "audio_semantic"}]}
    urls = shard_urls(str(tmp_path / "tars/docs-{000000..000001}.tar"))
    man = pretokenize_tars(urls, mm, tmp_path / "tok", batch_size=4, show_progress=False)
    assert man["documents"] == 4 and man["skipped"] == 0
    good = [d for i, d in enumerate(read_manifest_lines(tmp_path / "docs.jsonl", lines)) if i != 3]
    pretokenize(good, mm, tmp_path / "direct", shard_docs=10, show_progress=False)
    direct, tars = ShardReader(tmp_path / "direct"), ShardReader(tmp_path / "tok")
    line_of = {1: 0, 2: 1, 3: 2, 5: 3}
    for i in range(4):
        src = tars.source(i)
        assert np.array_equal(tars[i], direct[line_of[int(src["key"])]]), src
    assert tars.source(1)["source"] == "coins" and "source" not in tars.source(2)


def read_manifest_lines(path, lines):
    """The manifest's documents through read_manifest (object lines rewritten as plain part lists)."""
    plain = [json.dumps(json.loads(x)["parts"]) if x.startswith("{") else x for x in lines]
    alt = path.with_name("plain.jsonl")
    alt.write_text("\n".join(plain) + "\n")
    return list(read_manifest(alt))


def test_pack_task_writes_the_pattern(compose, samples, tmp_path):
    from modalities.tasks import run_task

    cfg = compose(["task=pack", f"task.source={samples}/images", f"task.out={tmp_path}/out", "task.shard_size=10",
                   "show_progress=false"])
    m = run_task(cfg, tmp_path / "run")
    summary = json.loads((tmp_path / "out/pack.json").read_text())
    n_images = len(list((samples / "images").glob("*.png")))
    assert m["documents"] == summary["documents"] == n_images and m["shards"] == len(summary["shards"]) >= 3
    assert len(shard_urls(m["pattern"])) == m["shards"]
    with pytest.raises(FileNotFoundError, match="neither a media folder nor a JSONL manifest"):
        run_task(compose(["task=pack", f"task.source={tmp_path}/none"]), tmp_path / "run2")
