"""Shared pieces of the tests of ``modalities.llm``: base tokenizers of three families, a tiny local Llama and
GPT-2 on the byte-level one, a tiny image + audio tokenizer set laid on that base, and shards made with it.
Everything is built in temporary folders; nothing is downloaded."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from modalities import ImageTokenizer, MultimodalTokenizer, TextTokenizer
from modalities.audio import SpectrogramTokenizer
from modalities.llm import make_tiny_lm
from modalities.multimodal import Image, Text
from modalities.shards import pretokenize
from models.melspec import MelConfig
from models.melvq import MelVQConfig
from models.vqae import VQAEConfig

from .hf_families import FAMILIES, build
from .tiny_mm import FSQ

warnings.filterwarnings("ignore", message=".*generation flags.*")


@pytest.fixture(scope="session")
def hf_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf_tokenizers")
    return {f: build(f, root / f) for f in FAMILIES}


@pytest.fixture(scope="session")
def llama_dir(hf_dirs, tmp_path_factory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("llama") / "m", hf_dirs["byte_bpe"], "llama", hidden=32, heads=2)


@pytest.fixture(scope="session")
def gpt2_dir(hf_dirs, tmp_path_factory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("gpt2") / "m", hf_dirs["byte_bpe"], "gpt2", hidden=32, heads=2)


def media_tokenizers() -> dict:
    """Untrained (seeded) tiny image (FSQ 64 codes, 32x32 -> 4x4) and spectrogram (FSQ 64 codes) tokenizers."""
    torch.manual_seed(0)
    image = ImageTokenizer.from_configs(VQAEConfig(channels=[8, 8, 16, 16], z_dim=8, groups=4), FSQ,
                                        size_policy="resize", size=32)
    audio = SpectrogramTokenizer.from_configs(MelVQConfig(channels=[8, 16, 16], z_dim=16, band_channels=4, groups=4),
                                              FSQ, MelConfig(n_mels=32, griffin_lim_iters=2))
    return {"image": image, "audio": audio}


@pytest.fixture(scope="session")
def base_mm(llama_dir) -> MultimodalTokenizer:
    """text = the tiny Llama's tokenizer (ids = its ids), then image and audio ranges."""
    return MultimodalTokenizer({"text": TextTokenizer.from_hf(llama_dir), **media_tokenizers()})


def caption_docs(samples: Path, n: int = 28) -> list:
    rows = [json.loads(x) for x in (samples / "images/captions.jsonl").read_text().splitlines()][:n]
    return [[Text(r["caption"]), Image(samples / "images" / r["file"])] for r in rows]


@pytest.fixture(scope="session")
def base_tokens(base_mm, samples, tmp_path_factory) -> Path:
    """Shards of 28 caption + image documents made with ``base_mm`` (10 per shard), its tokenizer beside them."""
    root = tmp_path_factory.mktemp("base_run")
    pretokenize(caption_docs(samples), base_mm, root / "tokens", shard_docs=10, show_progress=False)
    base_mm.save_pretrained(root / "tokenizer")
    return root / "tokens"
