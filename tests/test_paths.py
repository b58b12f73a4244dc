"""``data.*`` paths as a shell user means them: relative to the directory the command was started in when they
exist there, else under ``data.root`` (the bundled samples by default); an error naming both places otherwise."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from modalities.data.samples import data_file, data_root, launch_dir, media_folder, resolve_files
from modalities.data.tars import expand_shards
from modalities.image import ImageTokenizer
from modalities.tasks import run_task
from models.quantizer import QuantizerConfig
from models.vqae import VQAEConfig

from .conftest import REPO


def test_a_relative_folder_is_taken_from_the_current_directory_first(monkeypatch, samples):
    monkeypatch.chdir(REPO)
    root = data_root(None)
    assert media_folder(root, "samples/images", "images") == REPO / "samples/images"  # not samples/samples/images
    assert media_folder(root, "images", "images") == samples / "images"  # not here: under data.root, as before
    assert media_folder(root, None, "images") == samples / "images"
    with pytest.raises(FileNotFoundError) as err:
        media_folder(root, "nope/images", "images", "data.images")
    msg = str(err.value)
    assert msg.startswith("data.images=nope/images: not found")
    assert str(REPO / "nope/images") in msg and str(samples / "nope/images") in msg  # both places it looked


def test_files_patterns_and_shards_resolve_the_same_way(monkeypatch, tmp_path, samples):
    (tmp_path / "corpus.txt").write_text("hello\n")
    (tmp_path / "shards").mkdir()
    for i in range(2):
        (tmp_path / "shards" / f"a-{i}.tar").write_bytes(b"")
    (tmp_path / "docs.jsonl").write_text(json.dumps([{"text": "hi"}]) + "\n")
    monkeypatch.chdir(tmp_path)
    assert resolve_files(samples, ["corpus.txt"], "data.text_train") == [tmp_path / "corpus.txt"]
    assert resolve_files(samples, ["text/corpus/train.txt"], "x") == [samples / "text/corpus/train.txt"]  # default
    with pytest.raises(FileNotFoundError, match=r"data.text_train: no file matches 'missing\*.txt' in the directory "
                                                r"the command was started in \(.+\) nor under the data root"):
        resolve_files(samples, ["missing*.txt"], "data.text_train")
    assert expand_shards("shards/a-{0..1}.tar", samples, "data.images") == [str(tmp_path / f"shards/a-{i}.tar")
                                                                           for i in range(2)]
    with pytest.raises(FileNotFoundError, match="nor under the data root"):
        expand_shards("shards/b-*.tar", samples, "data.images")
    assert data_file(None, "docs.jsonl", "data.documents") == tmp_path / "docs.jsonl"
    assert data_file(None, "documents.jsonl", "data.documents") == samples / "documents.jsonl"
    assert data_root("shards") == tmp_path / "shards"  # a relative data.root too


def test_inside_hydra_the_launch_directory_is_hydras_original_cwd(monkeypatch, tmp_path):
    """With ``hydra.job.chdir=true`` the process runs in the run folder; paths still mean the launch directory."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from modalities.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.cwd = str(REPO)  # what train.py's Hydra records before changing directory
    HydraConfig.instance().set_config(cfg)
    try:
        monkeypatch.chdir(tmp_path)  # what hydra.job.chdir=true does
        assert launch_dir() == REPO
        assert media_folder(data_root(None), "samples/images", "images") == REPO / "samples/images"
    finally:
        HydraConfig.instance().cfg = None
    assert launch_dir() == tmp_path


def _tiny_image_tokenizer(path):
    torch.manual_seed(0)
    ImageTokenizer.from_configs(VQAEConfig(channels=[8, 8, 16, 16], num_res_blocks=1, z_dim=8, attention=False,
                                           groups=4), QuantizerConfig(kind="vq", codebook_size=64)).save_pretrained(path)


EVAL = ["task=evaluate", "task.max_items=1", "task.report_items=1", "task.image_size=64", "task.baselines.image=[]",
        "task.rates.image=[]", "show_progress=false"]


def test_evaluate_names_both_places_for_a_folder_that_is_nowhere(compose, monkeypatch, tmp_path, samples):
    _tiny_image_tokenizer(tmp_path / "tok")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"data.images=photos: not found in the directory the command was "
                                                r"started in \(.*photos\) nor under the data root"):
        run_task(compose([*EVAL, f"task.tokenizer={tmp_path / 'tok'}", "data.images=photos"]), tmp_path / "run")


def test_train_py_from_the_project_root_reads_samples_images(tmp_path):
    """The command of the issue, typed from the project root, with Hydra changing into the run folder."""
    _tiny_image_tokenizer(tmp_path / "tok")
    proc = subprocess.run([sys.executable, "train.py", *EVAL, f"task.tokenizer={tmp_path / 'tok'}",
                           "data.images=samples/images", "hydra.job.chdir=true", f"hydra.run.dir={tmp_path / 'run'}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert f"from {REPO / 'samples/images'} (split=heldout)" in log, log[-3000:]
    assert (tmp_path / "run" / "report" / "index.html").is_file()
