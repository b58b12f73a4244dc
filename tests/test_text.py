"""Text tokenizer: lossless round-trips, no special ids from raw text, save/load, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from modalities import TextTokenizer, TokenizerLoadError


def test_trained_vocab_and_compression(text_tok, samples):
    assert text_tok.codebook_size == 1024
    heldout = (samples / "text/corpus/heldout.txt").read_text(encoding="utf-8")[:50_000]
    ids = text_tok.encode(heldout)
    bpt = len(heldout.encode()) / len(ids)
    assert bpt > 2.3, f"1024 BPE merges should compress held-out prose to > 2.3 bytes/token, got {bpt:.2f}"
    assert text_tok.decode(ids) == heldout


@pytest.mark.parametrize("s", ["", " ", "\x00", "a\x00b", "e\u0301", "👩‍👩‍👧‍👦🐱", "\r\n\t", "  leading", "trailing  ",
                               "ǅungla Ωmega 日本語 עברית", "\ud7ff\ue000\U0010ffff", "<boi><eoi><|endoftext|><pad>"])
def test_roundtrip_edge_cases(text_tok, s):
    assert text_tok.decode(text_tok.encode(s)) == s


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_property_lossless_any_unicode(text_tok, s):
    ids = text_tok.encode(s)
    assert all(0 <= i < text_tok.codebook_size for i in ids)
    assert text_tok.decode(ids) == s


def test_very_long_string(text_tok):
    s = ("mmtok ✓ " * 20_000) + "x" * 100_000
    assert text_tok.decode(text_tok.encode(s)) == s


def test_specials_are_ordinary_text(text_tok):
    assert text_tok.hf_tokenizer.get_added_tokens_decoder() == {}
    ids = text_tok.encode("<|endoftext|>")
    assert len(ids) > 1  # spelled out, not one control id
    assert text_tok.decode(ids) == "<|endoftext|>"


def test_batch_matches_single(text_tok):
    texts = ["A photo of a cat:", "", "and it says 🐱", "x" * 1000]
    assert text_tok.encode(texts) == [text_tok.encode(t) for t in texts]
    assert text_tok.decode_batch(text_tok.encode(texts)) == texts


def test_decode_accepts_tensor(text_tok):
    ids = text_tok.encode("hello world")
    assert text_tok.decode(torch.tensor(ids)) == "hello world"


def test_bad_input(text_tok):
    with pytest.raises(ValueError, match="text id 1024 at position 1 is out of range \\[0, 1024\\)"):
        text_tok.decode([1, 1024])
    with pytest.raises(ValueError, match="text id -1 at position 0"):
        text_tok.decode([-1])
    with pytest.raises(ValueError, match="1-D integer tensor"):
        text_tok.decode(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="decode_batch item 1"):
        text_tok.decode_batch([[1], [99999]])
    with pytest.raises(TypeError, match="item 1 is a int"):
        text_tok.encode(["a", 3])
    with pytest.raises(TypeError, match="expects a str"):
        text_tok.encode(42)


def test_lone_surrogate_is_a_value_error_naming_the_position(text_tok):
    with pytest.raises(ValueError, match="lone surrogate '\\\\ud800' at position 3"):
        text_tok.encode("abc\ud800def")
    with pytest.raises(ValueError, match="lone surrogate '\\\\udcff' at item 1, position 0"):
        text_tok.encode(["fine", "\udcffx"])
    assert text_tok.decode(text_tok.encode("abc\U0001f600def")) == "abc\U0001f600def"  # a real pair is fine


def test_train_from_iterator_and_errors(tmp_path):
    lines = (f"line {i} of a small corpus about cats and tokens" for i in range(2000))
    tok = TextTokenizer.train(lines, vocab_size=300, show_progress=False)
    assert tok.codebook_size == 300 and tok.decode(tok.encode("cats and tokens")) == "cats and tokens"
    with pytest.raises(FileNotFoundError, match="text corpus file not found"):
        TextTokenizer.train([tmp_path / "missing.txt"], vocab_size=300)
    with pytest.raises(ValueError, match="at least 257"):
        TextTokenizer.train(iter(["a"]), vocab_size=100)
    with pytest.raises(TypeError, match="training item 1 is a bytes"):
        TextTokenizer.train(iter(["a", b"b"]), vocab_size=300, show_progress=False)


def test_save_load(tmp_path, text_tok):
    path = text_tok.save_pretrained(tmp_path / "tok")
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["class"] == "TextTokenizer" and cfg["kind"] == "text" and cfg["codebook_size"] == 1024
    assert "mmtok_version" in cfg
    loaded = TextTokenizer.from_pretrained(path)
    s = "Save and load keep every id: ✓"
    assert loaded.encode(s) == text_tok.encode(s) and loaded.codebook_size == text_tok.codebook_size
    assert not list(path.glob("*.pkl")) and not list(path.glob("*.bin"))


def test_load_errors(tmp_path, text_tok):
    with pytest.raises(TokenizerLoadError, match="tokenizer folder not found"):
        TextTokenizer.from_pretrained(tmp_path / "nope")
    path = text_tok.save_pretrained(tmp_path / "tok")
    cfg = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**cfg, "class": "ImageTokenizer"}))
    with pytest.raises(TokenizerLoadError, match="holds a 'ImageTokenizer', not a TextTokenizer"):
        TextTokenizer.from_pretrained(path)
    (path / "config.json").write_text(json.dumps(cfg))
    (path / "tokenizer.json").write_text("{broken")
    with pytest.raises(TokenizerLoadError, match="not a valid tokenizers file"):
        TextTokenizer.from_pretrained(path)
    (path / "config.json").write_text("nope")
    with pytest.raises(TokenizerLoadError, match="not valid JSON"):
        TextTokenizer.from_pretrained(path)
