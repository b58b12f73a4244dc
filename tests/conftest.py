"""Shared fixtures: the bundled samples, a small trained text tokenizer, Hydra composition."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from modalities import TextTokenizer, VocabRegistry
from modalities.data.samples import samples_root

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def samples() -> Path:
    return samples_root()


@pytest.fixture(scope="session")
def text_tok(samples) -> TextTokenizer:
    """A 1024-subword tokenizer trained on the sample corpus (about half a second)."""
    return TextTokenizer.train(samples / "text/corpus/train.txt", vocab_size=1024, show_progress=False)


def make_registry() -> VocabRegistry:
    """text 300, image 64, video 32, audio 16, audio_semantic 10 (kind audio)."""
    reg = VocabRegistry()
    reg.add_modality("text", 300)
    reg.add_modality("image", 64)
    reg.add_modality("video", 32)
    reg.add_modality("audio", 16)
    reg.add_modality("audio_semantic", 10, kind="audio")
    return reg


@pytest.fixture()
def registry() -> VocabRegistry:
    return make_registry()


@pytest.fixture()
def compose():
    """compose(overrides) -> the composed Hydra config, as train.py would see it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from modalities.config import register_configs

    register_configs()

    def _compose(overrides: list[str] | None = None):
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
            return hydra_compose(config_name="config", overrides=overrides or [])

    return _compose
