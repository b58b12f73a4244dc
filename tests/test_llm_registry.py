"""A registry laid on a base LLM's vocabulary: text ids = base ids, controls, fingerprint, and old folders."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modalities import MultimodalTokenizer, TextTokenizer, VocabRegistry
from modalities.registry import BASE_SPECIALS, RegistryError, VocabMismatchError
from modalities.shards import ShardReader, pretokenize
from modalities.stream import Segment, pack, unpack

from .conftest import REPO
from .llm_setup import base_mm, caption_docs, hf_dirs, llama_dir, media_tokenizers  # noqa: F401

OLD = REPO / "tests/data/saved_v0_1"


def _on(folder, image=300, audio=100) -> VocabRegistry:
    text = TextTokenizer.from_hf(folder)
    reg = VocabRegistry(base=text.base_vocab)
    text.register(reg, "text")
    reg.add_modality("image", image)
    reg.add_modality("audio", audio)
    return reg


@pytest.mark.parametrize("family", ["byte_bpe", "sp_bpe", "unigram"])
def test_layout_on_a_base(hf_dirs, family):  # noqa: F811
    reg = _on(hf_dirs[family])
    base = reg.base
    text, image, audio = reg.modalities
    assert (text.offset, text.stop) == (0, base.size)
    assert image.offset == base.size + reg.num_special_slots and audio.offset == image.stop
    assert reg.vocab_size % 128 == 0 and reg.vocab_size >= audio.stop
    controls = dict(base.controls)
    for name in ("<pad>", "<bos>", "<eos>"):
        want = controls.get(name)
        got = reg.special_ids[name]
        assert got == want if want is not None else base.size <= got < image.offset
    for name, i in reg.special_ids.items():  # every other control is appended after the base range
        if name not in controls:
            assert base.size <= i < image.offset, name
    assert reg.digit_id(5) - reg.digit_id(0) == 5 and reg.special_id("<boi>") >= base.size
    # the base's own special tokens are not text; nothing overlaps
    mod = reg.modality_of(torch.arange(reg.used_size - 0)[: base.size])
    reserved = torch.tensor([i for i, _ in base.reserved], dtype=torch.long)
    assert (mod[reserved] == 0).all()
    assert int((mod == text.index).sum()) == base.size - len(set(reserved.tolist()))
    assert reg.ids_of("text").sum() == int((mod == text.index).sum())


@pytest.mark.parametrize("family", ["byte_bpe", "sp_bpe", "unigram"])
def test_text_never_makes_a_control_id(hf_dirs, family):  # noqa: F811
    text = TextTokenizer.from_hf(hf_dirs[family])
    reg = VocabRegistry(base=text.base_vocab)
    text.register(reg, "text")

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.text(max_size=40) | st.sampled_from([c for _, c in text.base_vocab.reserved]))
    def prop(s):
        ids = torch.tensor(text.encode(f"a {s} b"))
        assert (reg.modality_of(ids) == 1).all()

    prop()


def test_stream_round_trip_when_bos_is_eos(hf_dirs):  # noqa: F811
    reg = _on(hf_dirs["byte_bpe"])
    assert reg.bos_id == reg.eos_id == 700  # GPT-2 style: one <|endoftext|> for both
    segs = [Segment("text", torch.tensor([5, 6, 7])), Segment("image", torch.arange(6).reshape(2, 3)),
            Segment("text", torch.tensor([8]))]
    ids = pack(segs, reg, bos=True, eos=True).ids
    assert ids[0] == ids[-1] == 700
    assert unpack(ids, reg) == segs
    assert pack(unpack(ids, reg), reg, bos=True, eos=True).ids.tolist() == ids.tolist()


def test_save_load_and_fingerprint(hf_dirs, tmp_path):  # noqa: F811
    a, b = _on(hf_dirs["byte_bpe"]), _on(hf_dirs["sp_bpe"])
    a.save(tmp_path / "r.json")
    back = VocabRegistry.load(tmp_path / "r.json")
    assert back == a and back.fingerprint == a.fingerprint and back.special_ids == a.special_ids
    assert json.loads((tmp_path / "r.json").read_text())["version"] == 2
    assert a.fingerprint != b.fingerprint
    # the same layout on an edited tokenizer.json: only the hash differs, and the fingerprint follows it
    edited = tmp_path / "edited"
    edited.mkdir()
    raw = (hf_dirs["byte_bpe"] / "tokenizer.json").read_text()
    (edited / "tokenizer.json").write_text(raw.replace('"Ġthe"', '"Ġthe"', 1) + "\n")
    (edited / "tokenizer_config.json").write_bytes((hf_dirs["byte_bpe"] / "tokenizer_config.json").read_bytes())
    c = _on(edited)
    assert c.base.size == a.base.size and c.fingerprint != a.fingerprint
    with pytest.raises(VocabMismatchError, match="base vocabularies differ"):
        a.check_extended_by(c)


def test_a_media_range_cannot_come_first_on_a_base(hf_dirs):  # noqa: F811
    reg = VocabRegistry(base=TextTokenizer.from_hf(hf_dirs["byte_bpe"]).base_vocab)
    with pytest.raises(RegistryError, match="starts with that base's text range"):
        reg.add_modality("image", 64)
    with pytest.raises(RegistryError, match="needs a registry on that base"):
        TextTokenizer.from_hf(hf_dirs["byte_bpe"]).register(VocabRegistry(), "text")


def test_multimodal_tokenizer_lays_itself_on_the_base(llama_dir):  # noqa: F811
    media = media_tokenizers()
    mm = MultimodalTokenizer({"image": media["image"], "text": TextTokenizer.from_hf(llama_dir)})  # text not first
    assert mm.registry.base is not None and mm.registry.modality("text").offset == 0
    ids = mm.encode(["a cat <|endoftext|>"]).ids
    assert ids.tolist() == TextTokenizer.from_hf(llama_dir).encode("a cat <|endoftext|>")


def test_shards_made_on_another_base_are_refused(base_mm, hf_dirs, samples, tmp_path):  # noqa: F811
    media = media_tokenizers()
    other = MultimodalTokenizer({"text": TextTokenizer.from_hf(hf_dirs["sp_bpe"]), **media})
    pretokenize(caption_docs(samples, 3), other, tmp_path / "tok", show_progress=False)
    with pytest.raises(ValueError, match="was tokenised with vocabulary"):
        ShardReader(tmp_path / "tok", base_mm.registry.fingerprint)


def test_a_folder_saved_by_mmtok_0_1_loads_with_the_same_ids():
    want = json.loads((OLD / "expected.json").read_text())
    mm = MultimodalTokenizer.from_pretrained(OLD / "tokenizer")
    reg = mm.registry
    assert reg.base is None and reg.fingerprint == want["fingerprint"] and reg.vocab_size == want["vocab_size"]
    assert {m.name: [m.offset, m.stop] for m in reg.modalities} == want["ranges"]
    assert {n: reg.special_id(n) for n in reg.specials} == want["specials"]
    assert (reg.pad_id, reg.bos_id, reg.eos_id) == (0, 1, 2) == tuple(BASE_SPECIALS.index(s) for s in
                                                                      ("<pad>", "<bos>", "<eos>"))
    text = mm.tokenizers["text"]
    segs = [Segment("text", torch.tensor(text.encode(want["text"]))), Segment("image", torch.tensor(want["image"])),
            Segment("audio", torch.tensor(want["audio"]))]
    assert pack(segs, reg, bos=True, eos=True).ids.tolist() == want["ids"]
    assert unpack(torch.tensor(want["ids"]), reg) == segs
