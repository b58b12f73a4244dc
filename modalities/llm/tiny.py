"""Tiny randomly initialised causal LMs saved as local Hugging Face folders, for tests, examples and benchmarks.

Nothing is downloaded: the model is built from a config, its weights are random
(seeded), and the folder gets the tokenizer files it is paired with, exactly as
a downloaded checkpoint would have them, so every code path that takes "a local
HF causal LM folder" can be exercised offline.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

__all__ = ["FAMILIES", "TOKENIZER_FAMILIES", "make_tiny_lm", "make_tiny_tokenizer"]

FAMILIES = ("llama", "gpt2")
#: ``byte_bpe``: byte-level BPE with a regex pre-tokenizer and added special tokens (GPT-2, Llama 3, Qwen 2);
#: ``sp_bpe``: SentencePiece-style BPE with byte fallback, ``<unk> <s> </s>`` first and ``▁`` for spaces
#: (Llama 2, Mistral); ``unigram``: a SentencePiece Unigram model with a normaliser and ``<unk>`` (T5).
TOKENIZER_FAMILIES = ("byte_bpe", "sp_bpe", "unigram")


def make_tiny_tokenizer(folder: str | Path, texts: Sequence[str], family: str = "byte_bpe", vocab_size: int = 700
                        ) -> Path:
    """Trains a small tokenizer of ``family`` (:data:`TOKENIZER_FAMILIES`) on ``texts`` and writes
    ``tokenizer.json`` and ``tokenizer_config.json`` into ``folder``, laid out as the models of that family ship
    them (special tokens, ``bos``/``eos``/``pad`` names), so ``AutoTokenizer`` and
    :meth:`TextTokenizer.from_hf <modalities.text.TextTokenizer.from_hf>` read it like a downloaded one."""
    if family not in TOKENIZER_FAMILIES:
        raise ValueError(f"family must be one of {list(TOKENIZER_FAMILIES)}, got {family!r}")
    tk, config = {"byte_bpe": _byte_bpe, "sp_bpe": _sp_bpe, "unigram": _unigram}[family](list(texts), vocab_size)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tk.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return folder


def _byte_bpe(texts: list[str], vocab_size: int) -> tuple[Any, dict]:
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[], show_progress=False,
                                                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tk.add_special_tokens([AddedToken("<|endoftext|>", special=True), AddedToken("<|im_start|>", special=True),
                           AddedToken("<|im_end|>", special=True)])
    tk.add_tokens([AddedToken("<think>", special=False)])  # a non-special added token is ordinary text
    return tk, {"tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>"}


def _sp_bpe(texts: list[str], vocab_size: int) -> tuple[Any, dict]:
    # learn merges over "▁"-joined words, then lay the vocabulary out as Llama 2 does:
    # <unk> <s> </s>, the 256 byte pieces <0x00>..<0xFF>, then the learned pieces
    norm = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    learn = Tokenizer(models.BPE(unk_token="<unk>"))
    learn.normalizer = norm
    learn.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size - 259, special_tokens=["<unk>"], limit_alphabet=70,
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


def _unigram(texts: list[str], vocab_size: int) -> tuple[Any, dict]:
    tk = Tokenizer(models.Unigram())
    tk.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tk.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tk.train_from_iterator(texts, trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "</s>", "<unk>"],
                                                             unk_token="<unk>", show_progress=False))
    return tk, {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "</s>", "pad_token": "<pad>",
                "unk_token": "<unk>"}




def make_tiny_lm(folder: str | Path, tokenizer_folder: str | Path, family: str = "llama", hidden: int = 64,
                 layers: int = 2, heads: int = 4, max_positions: int = 2048, tie: bool | None = None,
                 vocab_size: int | None = None, seed: int = 0) -> Path:
    """Writes a random ``family`` causal LM sized to the tokenizer in ``tokenizer_folder`` into ``folder``.

    Args:
        folder: output folder (``config.json``, ``model.safetensors``, ``generation_config.json`` and the
            tokenizer's ``tokenizer.json``/``tokenizer_config.json`` copied verbatim).
        tokenizer_folder: a folder with ``tokenizer.json`` (the base tokenizer).
        family: ``"llama"`` (RoPE, untied head by default) or ``"gpt2"`` (learned positions, tied head).
        hidden, layers, heads: model size.
        max_positions: context length.
        tie: tie the head to the input embedding (default: the family's habit).
        vocab_size: embedding rows (default: the tokenizer's size; larger makes a padded vocabulary).
        seed: weight initialisation seed.
    """
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    from ..text import TextTokenizer

    if family not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    text = TextTokenizer.from_hf(tokenizer_folder)
    base = text.base_vocab
    controls = dict(base.controls)
    rows = vocab_size or base.size
    if rows < base.size:
        raise ValueError(f"vocab_size {rows} is smaller than the tokenizer's {base.size} ids")
    ids = {"bos_token_id": controls.get("<bos>"), "eos_token_id": controls.get("<eos>"),
           "pad_token_id": controls.get("<pad>")}
    if family == "llama":
        config = LlamaConfig(vocab_size=rows, hidden_size=hidden, intermediate_size=hidden * 2 + hidden // 2,
                             num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                             max_position_embeddings=max_positions, tie_word_embeddings=bool(tie), **ids)
    else:
        config = GPT2Config(vocab_size=rows, n_embd=hidden, n_layer=layers, n_head=heads, n_positions=max_positions,
                            tie_word_embeddings=True if tie is None else tie, **ids)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    folder = Path(folder)
    model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if (Path(tokenizer_folder) / name).is_file():
            shutil.copyfile(Path(tokenizer_folder) / name, folder / name)
    return folder
