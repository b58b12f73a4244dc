"""Shared fixtures: the bundled samples, a small trained text tokenizer, Hydra composition, and one debug-size demo
run that the slow tests share (trained once per session instead of once per test)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from modalities import TextTokenizer, VocabRegistry
from modalities.data.samples import samples_root

REPO = Path(__file__).resolve().parents[1]


def benchmark(name: str) -> ModuleType:
    """Imports ``benchmarks/<name>.py`` (or a module of a package there, ``"gpu_parts.report"``): the scripts are
    not a package, so ``benchmarks/`` joins ``sys.path`` for the import only."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


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


def compose_config(overrides: list[str] | None = None):
    """The composed Hydra config, as train.py would see it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from modalities.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides or [])


@pytest.fixture()
def compose():
    """compose(overrides) -> the composed Hydra config, as train.py would see it."""
    return compose_config


# ``python train.py`` (task=demo) at debug size: every stage runs and trains for real (the vocoder too), for a few
# steps each, and validates on less (64-px held-out crops, 1.28 s clips; the image codebook refitted on 256 crops
# rather than 4096) than the shipped recipes, whose
# validation would otherwise cost more than the training. The asserts
# are in tests/test_demo.py.
DEMO_TINY = ["task.steps.image=20", "task.steps.audio=20", "task.steps.vocoder=20", "task.steps.lm=30",
             "task.image=['experiment=image_demo','task.baseline=false','task.val_size=64','task.refit_crops=256']",
             "task.audio=['experiment=audio_debug','task.baseline=false','task.val_seconds=1.28']",
             "task.vocoder=['task=vocoder','task.crop_seconds=0.5','task.lr=2.0e-3','task.val_seconds=1.28','task.examples=2']",
             "show_progress=false", "trainer.device=cpu", "task.num_workers=1"]


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> tuple[Path, dict]:
    """``(run_dir, metrics)`` of one demo run at :data:`DEMO_TINY`, shared by the tests that need a finished run
    (the demo's own test, the notebook's). Read-only: a test that runs anything in it copies it first
    (``shutil.copytree``)."""
    from modalities.tasks import run_task

    run_dir = tmp_path_factory.mktemp("demo_run")
    return run_dir, run_task(compose_config(DEMO_TINY), run_dir)
