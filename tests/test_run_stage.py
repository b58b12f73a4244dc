"""``modalities.tasks.demo.run_stage``: a stage folder is reused or resumed only with the settings it was started
with, and says so plainly otherwise."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
from omegaconf import OmegaConf

import modalities.tasks as tasks
from modalities.tasks.demo import run_stage


@pytest.fixture
def fake_task(monkeypatch):
    """Stands in for ``run_task``: records each config it is given and returns its step count."""
    calls = []

    def fake(cfg, folder):
        calls.append(cfg)
        return {"steps": cfg.trainer.max_steps}

    monkeypatch.setattr(tasks, "run_task", fake)
    monkeypatch.setattr("modalities.tasks.demo.compose_stage", lambda cfg, over: OmegaConf.create(
        {"trainer": {"max_steps": int(next(o for o in over if o.startswith("trainer.max_steps")).split("=")[1])},
         "overrides": over}))
    return calls


def _cfg(seed=0):
    return OmegaConf.create({"seed": seed, "data": {"images": "samples/images"}, "show_progress": False,
                             "trainer": {"device": "cpu"}})


def test_finished_stage_is_reused_only_with_its_own_settings(tmp_path, fake_task):
    over = ["task=image", "trainer.max_steps=5", f"task.tokenizer={tmp_path}/text/tokenizer"]
    assert run_stage(_cfg(), tmp_path, "image", over)["steps"] == 5
    saved = json.loads((tmp_path / "image" / "stage.json").read_text())
    assert saved["seed"] == 0 and "task.tokenizer=<run>/text/tokenizer" in saved["overrides"]
    # the same settings, in another order: reused, nothing runs
    assert run_stage(_cfg(), tmp_path, "image", list(reversed(over)))["steps"] == 5 and len(fake_task) == 1
    # a copy of the run folder elsewhere: paths inside the run folder still match
    copy = tmp_path.parent / (tmp_path.name + "_copy")
    shutil.copytree(tmp_path, copy)
    moved = [o.replace(str(tmp_path), str(copy)) for o in over]
    assert run_stage(_cfg(), copy, "image", moved)["steps"] == 5 and len(fake_task) == 1
    # another step count, or another seed: a clear error naming the folder and what differs
    with pytest.raises(ValueError, match=r"image was started with other settings \(overrides: .*max_steps=7"):
        run_stage(_cfg(), tmp_path, "image", ["task=image", "trainer.max_steps=7", over[2]])
    with pytest.raises(ValueError, match=r"seed: saved 0, now 1"):
        run_stage(_cfg(seed=1), tmp_path, "image", over)
    assert len(fake_task) == 1


def test_interrupted_stage_resumes_only_with_its_own_settings(tmp_path, fake_task):
    folder = tmp_path / "audio"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "stage.json").write_text(json.dumps(
        {"overrides": ["task=audio", "trainer.max_steps=5"], "seed": 0, "data": {"images": "samples/images"}}))
    with pytest.raises(ValueError, match="overrides"):
        run_stage(_cfg(), tmp_path, "audio", ["task=audio", "trainer.max_steps=9"])
    assert not fake_task and not (folder / "result.json").exists()
    run_stage(_cfg(), tmp_path, "audio", ["task=audio", "trainer.max_steps=5"])
    assert fake_task[0].overrides[-1] == "trainer.resume=true"  # it went on from its checkpoint
    assert (folder / "result.json").is_file()


def test_folder_without_a_record_is_reused_with_a_warning(tmp_path, fake_task, caplog):
    folder = tmp_path / "lm"
    folder.mkdir()
    (folder / "result.json").write_text(json.dumps({"steps": 3}))
    with caplog.at_level(logging.WARNING, logger="mmtok"):
        assert run_stage(_cfg(), tmp_path, "lm", ["task=lm", "trainer.max_steps=30"]) == {"steps": 3}
    assert "no stage.json" in caplog.text and not fake_task
