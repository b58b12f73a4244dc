"""Batched pre-tokenisation: media of equal shape encoded together give the same bytes as one document at a time."""

from __future__ import annotations

import pytest
import torch

from modalities.batch_encode import encode_documents, precision
from modalities.data.io import load_audio, load_image
from modalities.multimodal import Audio, Image, Text, Video
from modalities.shards import pretokenize

from .tiny_mm import tiny_mm


@pytest.fixture(scope="module")
def mm(text_tok, samples):
    return tiny_mm(text_tok, samples)


@pytest.fixture(scope="module")
def docs(samples):
    """Captions with images of several sizes, transcripts with audio (some clips twice, so equal shapes meet),
    two-channel audio (not batchable as rows), videos, a text-only document and a broken one."""
    images = sorted((samples / "images").glob("*.png"))[:9]
    clips = sorted((samples / "audio").glob("speech_*.flac"))[:3]
    out = [[Text(f"picture {i}"), Image(load_image(p))] for i, p in enumerate(images)]
    for i, p in enumerate(clips + clips):
        wave, sr = load_audio(p)
        out.append([Text(f"clip {i}"), Audio(wave, sr), Audio(wave[0], sr, name="audio_semantic")])
    wave, sr = load_audio(clips[0])
    out.append([Audio(torch.cat([wave, wave * 0.5]), sr)])  # [2, T]: encodes its first row alone
    torch.manual_seed(1)
    clip = torch.rand(5, 3, 40, 48)
    out += [[Text("a video"), Video(clip)], [Video(clip.flip(0)), Text("and back")], ["just text, twice"]]
    out.insert(4, [Text("bad"), Image(torch.full((3, 8, 8), float("nan")))])  # fails its batch, then alone
    return out


def _files(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.name != "manifest.json"}


def test_encode_documents_equals_one_at_a_time(mm, docs, monkeypatch):
    image = mm.tokenizers["image"]
    calls = []
    real = image.encode
    monkeypatch.setattr(image, "encode", lambda x: calls.append(len(x) if isinstance(x, list) else 1) or real(x))
    batched = encode_documents(mm, docs, batch_size=4)
    assert max(calls) == 4  # nine resized images went through in calls of up to four
    for doc, got in zip(docs, batched, strict=True):
        try:
            want = mm.encode(doc, bos=True, eos=True)
        except ValueError as e:
            assert isinstance(got, ValueError) and type(got) is type(e)
            continue
        assert torch.equal(got.ids, want.ids) and torch.equal(got.modality, want.modality)


@pytest.mark.parametrize("batch_size", [3, 32])
def test_shards_are_byte_identical_to_batch_size_one(mm, docs, tmp_path, batch_size):
    one = pretokenize(docs, mm, tmp_path / "one", shard_docs=7, batch_size=1, show_progress=False)
    many = pretokenize(docs, mm, tmp_path / "many", shard_docs=7, batch_size=batch_size, show_progress=False)
    assert one["skipped"] == many["skipped"] == 1 and one["documents"] == len(docs) - 1
    assert _files(tmp_path / "many") == _files(tmp_path / "one")
    assert many["tokens_per_modality"]["video"] > 0 and many["tokens_per_modality"]["audio_semantic"] > 0


def test_bf16_is_refused_on_the_cpu(mm, docs, tmp_path):
    with pytest.raises(ValueError, match="bf16 needs the tokenizers on a CUDA device"):
        pretokenize(docs[:2], mm, tmp_path / "t", batch_size=4, precision="bf16", show_progress=False)
    with pytest.raises(ValueError, match="precision must be one of"):
        with precision("fp16", mm):
            pass
    assert not list((tmp_path / "t").glob("shard_*"))


def test_resuming_with_another_precision_is_refused(mm, docs, tmp_path):
    pretokenize(docs[:2], mm, tmp_path / "t", shard_docs=1, show_progress=False)
    (tmp_path / "t/shard_00000.json").write_text((tmp_path / "t/shard_00000.json").read_text().replace(
        '"shard": 0,', '"shard": 0, "precision": "bf16",'))
    with pytest.raises(ValueError, match="written with precision bf16, this run uses fp32"):
        pretokenize(docs[:3], mm, tmp_path / "t", shard_docs=1, show_progress=False)


@pytest.mark.gpu
def test_bf16_on_cuda_gives_valid_documents(mm, docs, tmp_path):
    mm.to("cuda")
    try:
        man = pretokenize(docs, mm, tmp_path / "bf16", shard_docs=7, batch_size=8, precision="bf16",
                          show_progress=False)
    finally:
        mm.to("cpu")
    assert man["documents"] == len(docs) - 1 and man["shards"][0]["precision"] == "bf16"
