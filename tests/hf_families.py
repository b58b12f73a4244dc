"""Small local tokenizer folders of the three families a base LLM may bring (built here, nothing downloaded).

* ``byte_bpe``: byte-level BPE with a regex pre-tokenizer and added special tokens (GPT-2, Llama 3, Qwen 2);
* ``sp_bpe``: SentencePiece-style BPE with byte fallback, ``<unk> <s> </s>`` first, ``▁`` for spaces (Llama 2, Mistral);
* ``unigram``: a SentencePiece Unigram model with a normaliser and ``<unk>`` (T5).

Each folder holds ``tokenizer.json`` and ``tokenizer_config.json`` as ``save_pretrained`` writes them.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from .conftest import REPO

FAMILIES = ("byte_bpe", "sp_bpe", "unigram")


def corpus(n: int = 3000) -> list[str]:
    lines = (REPO / "samples/text/corpus/train.txt").read_text(encoding="utf-8").splitlines()
    return [s for s in lines if s.strip()][:n]


def _byte_bpe() -> tuple[Tokenizer, dict]:
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(corpus(), trainers.BpeTrainer(vocab_size=700, special_tokens=[], show_progress=False,
                                                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tk.add_special_tokens([AddedToken("<|endoftext|>", special=True), AddedToken("<|im_start|>", special=True),
                           AddedToken("<|im_end|>", special=True)])
    tk.add_tokens([AddedToken("<think>", special=False)])  # a non-special added token is ordinary text
    return tk, {"tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>"}


def _sp_bpe() -> tuple[Tokenizer, dict]:
    # learn merges over "▁"-joined words, then lay the vocabulary out as Llama 2 does:
    # <unk> <s> </s>, the 256 byte pieces <0x00>..<0xFF>, then the learned pieces
    norm = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    learn = Tokenizer(models.BPE(unk_token="<unk>"))
    learn.normalizer = norm
    learn.train_from_iterator(corpus(), trainers.BpeTrainer(vocab_size=600, special_tokens=["<unk>"], limit_alphabet=70,
                                                            show_progress=False))
    spec = json.loads(learn.to_str())
    learned = sorted(spec["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2} | {f"<0x{b:02X}>": 3 + b for b in range(256)}
    for piece, _ in learned:
        if piece not in vocab:
            vocab[piece] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in spec["model"]["merges"]]
    tk = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tk.normalizer = norm
    tk.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                    decoders.Strip(" ", 1, 0)])
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    return tk, {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
                "unk_token": "<unk>"}


def _unigram() -> tuple[Tokenizer, dict]:
    tk = Tokenizer(models.Unigram())
    tk.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tk.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tk.train_from_iterator(corpus(), trainers.UnigramTrainer(vocab_size=600, special_tokens=["<pad>", "</s>", "<unk>"],
                                                             unk_token="<unk>", show_progress=False))
    return tk, {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "</s>", "pad_token": "<pad>",
                "unk_token": "<unk>"}


def build(family: str, folder: Path) -> Path:
    """Writes the ``family`` tokenizer into ``folder`` and returns it."""
    tk, config = {"byte_bpe": _byte_bpe, "sp_bpe": _sp_bpe, "unigram": _unigram}[family]()
    folder.mkdir(parents=True, exist_ok=True)
    tk.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return folder
