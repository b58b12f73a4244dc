"""``TextTokenizer.from_hf``: the ids of ``AutoTokenizer`` for three tokenizer families, what decoding keeps,
special-token text, saving, and bad folders."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from modalities import TextTokenizer
from modalities.base import TokenizerLoadError

from .llm_setup import hf_dirs  # noqa: F401

TORTURE = ["", " ", "  ", "\n", "\t\r\n", "hello world", " leading", "trailing ", "double  space", "a\u0301",
           "é漢字🙂", "\u200b\u200d", "👩‍👩‍👧‍👦", "ﬁ ½ ⅷ", "Ω≈ç√∫", "\x00\x01\x7f", "\ufeffBOM", "מימין לשמאל",
           "<boi> <eoi> <#3>", "<|endoftext|>", "x<|im_start|>y<|im_end|>", "<s> </s> <unk> <pad>", "<think>",
           "▁under▁score▁", "  \u3000 ideographic space", "a" * 300, "0123456789" * 5, "\\u00e9 not an escape"]
ANY = st.text(max_size=60)


def _autos(folder):
    return AutoTokenizer.from_pretrained(folder), AutoTokenizer.from_pretrained(folder, split_special_tokens=True)


def _has_special_text(tok: TextTokenizer, s: str) -> bool:
    return any(content in s for _, content in tok.base_vocab.reserved)


@pytest.mark.parametrize("family", ["byte_bpe", "sp_bpe", "unigram"])
def test_ids_equal_autotokenizer(hf_dirs, family):  # noqa: F811
    tok = TextTokenizer.from_hf(hf_dirs[family])
    plain, split = _autos(hf_dirs[family])

    def check(s: str) -> None:
        ids = tok.encode(s)
        if not _has_special_text(tok, s):
            assert ids == plain(s, add_special_tokens=False).input_ids, s
        elif family != "unigram":  # a Unigram base also keeps its special pieces out (see test below)
            assert ids == split(s, add_special_tokens=False).input_ids, s

    for s in TORTURE:
        check(s)
    assert tok.encode(TORTURE) == [tok.encode(s) for s in TORTURE]  # the batch path agrees

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(ANY)
    def prop(s):
        check(s)

    prop()


@pytest.mark.parametrize("family", ["byte_bpe", "sp_bpe", "unigram"])
def test_special_token_text_stays_text(hf_dirs, family):  # noqa: F811
    tok = TextTokenizer.from_hf(hf_dirs[family])
    plain, _ = _autos(hf_dirs[family])
    reserved = {i for i, _ in tok.base_vocab.reserved}
    assert reserved, "each family has special tokens"
    unk = {"byte_bpe": None, "sp_bpe": 0, "unigram": 2}[family]
    assert unk not in reserved  # the unknown token is text
    for _, content in tok.base_vocab.reserved:
        s = f"x {content} y"
        assert not set(tok.encode(s)) & reserved, s  # mmtok: never a control id
        assert tok.decode(tok.encode(s)) == plain.decode(tok.encode(s))
        # the plain AutoTokenizer call would have produced the special id: the one stated difference
        assert set(plain(s, add_special_tokens=False).input_ids) & reserved, s


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ANY)
def test_byte_level_bpe_is_lossless(hf_dirs, s):  # noqa: F811
    tok = TextTokenizer.from_hf(hf_dirs["byte_bpe"])
    assert tok.lossless and tok.decode(tok.encode(s)) == s


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ANY)
def test_sentencepiece_bpe_round_trip_except_the_space_marker(hf_dirs, s):  # noqa: F811
    tok = TextTokenizer.from_hf(hf_dirs["sp_bpe"])
    assert not tok.lossless
    back = tok.decode(tok.encode(s))
    # byte fallback keeps every character; only a literal "▁" (U+2581) comes back as a space
    assert back == s.replace("▁", " ")


@pytest.mark.parametrize("family", ["byte_bpe", "sp_bpe", "unigram"])
def test_decode_equals_the_base_decode(hf_dirs, family):  # noqa: F811
    tok = TextTokenizer.from_hf(hf_dirs[family])
    plain, _ = _autos(hf_dirs[family])
    for s in TORTURE:
        ids = tok.encode(s)
        assert tok.decode(ids) == plain.decode(ids), s


def test_unigram_keeps_normalised_in_vocabulary_text_and_loses_the_rest(hf_dirs):  # noqa: F811
    tok = TextTokenizer.from_hf(hf_dirs["unigram"])
    assert not tok.lossless
    assert tok.decode(tok.encode("the cat sat on the mat.")) == "the cat sat on the mat."
    assert tok.decode(tok.encode("double  space")) == "double space"  # the normaliser collapses spaces
    assert tok.decode(tok.encode("ﬁne")) == unicodedata.normalize("NFKC", "ﬁne")
    assert "<unk>" in tok.decode(tok.encode("漢字"))  # characters outside the vocabulary are lost


@pytest.mark.parametrize("family", ["byte_bpe", "sp_bpe", "unigram"])
def test_save_and_load(hf_dirs, family, tmp_path):  # noqa: F811
    tok = TextTokenizer.from_hf(hf_dirs[family])
    tok.save_pretrained(tmp_path / "t")
    assert (tmp_path / "t/tokenizer.json").read_bytes() == (hf_dirs[family] / "tokenizer.json").read_bytes()
    back = TextTokenizer.from_pretrained(tmp_path / "t")
    assert back.base_vocab.to_dict() == tok.base_vocab.to_dict()
    assert [back.encode(s) for s in TORTURE] == [tok.encode(s) for s in TORTURE]
    # a different tokenizer.json under the same config is refused
    other = "byte_bpe" if family != "byte_bpe" else "sp_bpe"
    (tmp_path / "t/tokenizer.json").write_bytes((hf_dirs[other] / "tokenizer.json").read_bytes())
    with pytest.raises(TokenizerLoadError, match="not the base tokenizer"):
        TextTokenizer.from_pretrained(tmp_path / "t")


def test_controls_come_from_tokenizer_config(hf_dirs):  # noqa: F811
    gpt = TextTokenizer.from_hf(hf_dirs["byte_bpe"]).base_vocab
    assert dict(gpt.controls) == {"<bos>": 700, "<eos>": 700}
    llama = TextTokenizer.from_hf(hf_dirs["sp_bpe"]).base_vocab
    assert dict(llama.controls) == {"<bos>": 1, "<eos>": 2}
    t5 = TextTokenizer.from_hf(hf_dirs["unigram"]).base_vocab
    assert dict(t5.controls) == {"<eos>": 1, "<pad>": 0}


def test_bad_folders(hf_dirs, tmp_path):  # noqa: F811
    with pytest.raises(TokenizerLoadError, match="no such folder"):
        TextTokenizer.from_hf(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TokenizerLoadError, match="has no tokenizer.json"):
        TextTokenizer.from_hf(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "tokenizer.json").write_text('{"model": 3}')
    with pytest.raises(TokenizerLoadError, match=r"bad/tokenizer.json is not a valid tokenizers file"):
        TextTokenizer.from_hf(bad)
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "tokenizer.json").write_bytes((hf_dirs["byte_bpe"] / "tokenizer.json").read_bytes())
    (cfg / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|not_there|>"}))
    with pytest.raises(TokenizerLoadError, match=r"eos_token '<\|not_there\|>' is not in"):
        TextTokenizer.from_hf(cfg)
    (cfg / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(TokenizerLoadError, match="tokenizer_config.json is not valid JSON"):
        TextTokenizer.from_hf(cfg)
