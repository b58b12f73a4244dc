"""Tiny randomly initialised causal LMs saved as local Hugging Face folders, for tests, examples and benchmarks.

Nothing is downloaded: the model is built from a config, its weights are random
(seeded), and the folder gets the tokenizer files it is paired with, exactly as
a downloaded checkpoint would have them, so every code path that takes "a local
HF causal LM folder" can be exercised offline.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

__all__ = ["FAMILIES", "make_tiny_lm"]

FAMILIES = ("llama", "gpt2")


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
