"""Hydra configs compose, and ``python train.py task=text`` trains and saves a tokenizer."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from modalities import TextTokenizer
from modalities.tasks import run_task

from .conftest import REPO


def test_default_config_composes(compose):
    cfg = compose()
    assert cfg.task.name == "demo" and cfg.task.run == "modalities.tasks.demo.run"
    assert cfg.tokenizer.text.vocab_size == 8192 and cfg.data.root is None


def test_every_task_and_experiment_composes(compose):
    for f in sorted((REPO / "conf/task").glob("*.yaml")):
        cfg = compose([f"task={f.stem}"])
        assert cfg.task.name == f.stem
    for f in sorted((REPO / "conf/experiment").glob("*.yaml")):
        OmegaConf.to_container(compose([f"experiment={f.stem}"]), resolve=True)


def test_demo_refuses_missing_documents_before_training(compose, tmp_path):
    cfg = compose([f"data.documents={tmp_path}/nope.jsonl"])
    with pytest.raises(FileNotFoundError, match="data.documents.*nope.jsonl does not exist"):
        run_task(cfg, tmp_path / "out")
    assert not (tmp_path / "out/text").exists()


def test_typed_schema_rejects_bad_override(compose):
    with pytest.raises(ConfigCompositionException, match="vocab_size"):
        compose(["tokenizer.text.vocab_size=lots"])


def test_text_task_in_process(compose, tmp_path):
    cfg = compose(["experiment=text_debug", "tokenizer.text.vocab_size=400"])
    metrics = run_task(cfg, tmp_path)
    assert metrics["vocab_size"] == 400 and metrics["roundtrip_exact"] == 1.0
    assert 1.5 < metrics["bytes_per_token"] < 3.0  # 144 merges: about 1.7 bytes per token
    tok = TextTokenizer.from_pretrained(tmp_path / "tokenizer/text")
    assert tok.codebook_size == 400
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["bytes_per_token"] == metrics["bytes_per_token"]


def test_text_task_bad_data_root(compose, tmp_path):
    cfg = compose(["experiment=text_debug", f"data.root={tmp_path}"])
    with pytest.raises(FileNotFoundError, match="data.text_train: no file matches 'text/corpus/train.txt'"):
        run_task(cfg, tmp_path / "out")


@pytest.mark.slow
def test_train_py_cli(tmp_path):
    """Exactly as a user runs it: a subprocess with Hydra overrides."""
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "train.py", "task=text", "tokenizer.text.vocab_size=512",
                           "show_progress=false", f"hydra.run.dir={run_dir}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "bytes_per_token" in proc.stdout + proc.stderr
    tok = TextTokenizer.from_pretrained(run_dir / "tokenizer/text")
    assert tok.codebook_size == 512
    assert (run_dir / ".hydra/config.yaml").is_file()
