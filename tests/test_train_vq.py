"""``task=image`` and ``task=video`` end to end: quality against the k-means baseline, resume, multirun, bad config."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from modalities import ImageTokenizer, VideoTokenizer
from modalities.tasks import run_task

from .conftest import REPO

FAST = ["experiment=image_debug", "trainer.tensorboard=false", "task.baseline=false", "task.val_size=64"]


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("MMTOK_LONG_TESTS"),
                    reason="a 5-minute run; tests/test_image_demo.py holds the f8 claim by default: "
                           "MMTOK_LONG_TESTS=1 pytest runs it")
def test_image_debug_beats_kmeans_patch_baseline(compose, tmp_path):
    """``experiment=image_debug`` (about 4 minutes on 2 cores, 5-6 under the suite) must beat k-means on raw 8x8
    pixel patches with the same codebook size on the 18 held-out sources (46 images) by at least 0.5 dB, outside
    the run-to-run spread of a seed (measured figures: docs/images.md#colour-that-generalises). Shorter runs do
    not, so this runs the experiment as shipped. Opt-in since ``experiment=image_demo`` (the demo's f8 recipe,
    half the time) carries the default suite's f8-beats-k-means test."""
    m = run_task(compose(["experiment=image_debug", "trainer.tensorboard=false"]), tmp_path)
    assert m["downsample"] == 8 and m["bits_per_pixel"] == m["baseline_bpp"] == 0.125
    assert m["val_psnr"] > m["baseline_psnr"] + 0.5, m
    assert m["val_usage"] >= 0.5, m  # EMA VQ with dead-code restart keeps the codebook in use
    tok = ImageTokenizer.from_pretrained(tmp_path / "tokenizer/image")
    assert tok.codebook_size == 256 and (tmp_path / "samples/step_0002000.png").is_file()


@pytest.mark.slow
def test_fsq_entropy_loss_fills_the_codebook(compose, tmp_path):
    """FSQ 8x8x4 (256 codes) in ``experiment=image_debug`` for 150 steps (about 30 s each): with the
    shipped code-diversity loss at least 90% of the codes occur on the held-out images; plain FSQ, whose
    correlated channels reach only some level combinations, stays well below (measured: 100% against 41%, at
    150 steps as at 300)."""
    usage = {}
    for weight in (0.01, 0.0):
        m = run_task(compose(["experiment=image_debug", "quantizer=fsq", "quantizer.levels=[8,8,4]",
                              f"quantizer.fsq_entropy_weight={weight}", "trainer.max_steps=150",
                              "trainer.tensorboard=false", "task.baseline=false"]), tmp_path / str(weight))
        assert m["codebook_size"] == 256 and m["steps"] == 150
        usage[weight] = m["val_usage"]
    assert usage[0.01] >= 0.9 and usage[0.0] < usage[0.01] - 0.1, usage


def test_resume_continues_from_checkpoint(compose, tmp_path):
    cfg = compose([*FAST, "trainer.max_steps=4", "trainer.ckpt_every=2", "trainer.val_every=4", "trainer.log_every=1"])
    run_task(cfg, tmp_path)
    assert (tmp_path / "checkpoints/last.pt").is_file()
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))
    state = torch.load(tmp_path / "checkpoints/last.pt", weights_only=True)
    assert state["step"] == 4
    cfg = compose([*FAST, "trainer.max_steps=6", "trainer.resume=true", "trainer.val_every=2", "trainer.log_every=1"])
    m = run_task(cfg, tmp_path)
    steps = [r["step"] for r in _rows(tmp_path) if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6] and m["steps"] == 6
    with pytest.raises(FileNotFoundError, match="cannot resume: no checkpoint at"):
        run_task(compose([*FAST, f"trainer.resume_from={tmp_path}/none.pt"]), tmp_path / "other")


def test_gan_ema_and_l2_options_train(compose, tmp_path):
    cfg = compose([*FAST, "trainer.max_steps=3", "trainer.disc_start=1", "trainer.ema_decay=0.9",
                   "trainer.recon_loss=l2", "trainer.log_every=1", "trainer.discriminator.channels=8",
                   "trainer.tensorboard=true"])
    run_task(cfg, tmp_path)
    rows = [r for r in _rows(tmp_path) if "loss" in r]
    assert "loss_disc" not in rows[0] and "loss_disc" in rows[1] and "loss_gan" in rows[2]
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    state = torch.load(tmp_path / "checkpoints/last.pt", weights_only=True)
    assert {"ema", "disc", "disc_opt"} <= set(state)


def test_video_task_trains_and_saves(compose, tmp_path):
    cfg = compose(["experiment=video_debug", "trainer.tensorboard=false", "trainer.max_steps=2",
                   "task.val_size=32", "task.crop_size=32"])
    m = run_task(cfg, tmp_path)
    assert m["task"] == "video" and m["temporal_downsample"] == 2 and 0 < m["val_usage"] <= 1
    assert m["bits_per_pixel"] == pytest.approx(8 / (8 * 8 * 2))
    tok = VideoTokenizer.from_pretrained(tmp_path / "tokenizer/video")
    assert tok.encode(torch.rand(5, 3, 32, 32)).shape == (1, 3, 4, 4)


def test_bad_image_config(compose, tmp_path):
    with pytest.raises(ValueError, match="task.crop_size=60 must be a multiple of the downsample factor 8"):
        run_task(compose([*FAST, "task.crop_size=60"]), tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="data.images: no .png.* files under"):
        run_task(compose([*FAST, f"data.images={tmp_path}/empty"]), tmp_path / "out")
    with pytest.raises(ValueError, match="task.clip_frames=4 must be 1 \\+ k \\* temporal_downsample \\(2\\)"):
        run_task(compose(["experiment=video_debug", "task.clip_frames=4"]), tmp_path / "out2")


@pytest.mark.slow
def test_multirun_over_quantizers(tmp_path):
    """``python train.py -m task=image quantizer=vq,fsq,lfq`` runs one job per quantiser."""
    proc = subprocess.run([sys.executable, "train.py", "-m", "experiment=image_debug", "quantizer=vq,fsq,lfq",
                           "trainer.max_steps=2", "task.baseline=false", "task.val_size=64",
                           "trainer.tensorboard=false", f"hydra.sweep.dir={tmp_path}"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    kinds = [json.loads((tmp_path / str(i) / "tokenizer/image/config.json").read_text())["settings"]["quantizer"]
             ["kind"] for i in range(3)]
    assert kinds == ["vq", "fsq", "lfq"]


@pytest.mark.gpu
@pytest.mark.parametrize("compile_", [False, True], ids=["eager", "compile"])
def test_image_task_on_cuda_bf16(compose, tmp_path, compile_):
    """``task=image`` on CUDA trains under bf16 autocast (and ``torch.compile``), with finite metrics."""
    m = run_task(compose([*FAST, "trainer.max_steps=4", "trainer.val_every=4", "trainer.log_every=1",
                          "trainer.device=cuda", f"trainer.compile={compile_}"]), tmp_path)
    rows = [r for r in _rows(tmp_path) if "loss" in r]
    assert len(rows) == 4 and all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)
    assert 5 < m["val_psnr"] < 60 and ImageTokenizer.from_pretrained(tmp_path / "tokenizer/image").codebook_size == 256


def test_patch_mean_loss_weighs_each_tiles_mean_colour_only():
    from models.vqae import patch_mean_loss

    target = torch.zeros(1, 3, 4, 4)
    recon = target.clone()
    recon[0, 0, :2, :2] = 1.0  # one 2x2 tile of one channel moved by 1: one of 12 tile means off by 1
    assert float(patch_mean_loss(recon, target, 2)) == pytest.approx(1 / 12)
    texture = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(2, 2).expand(1, 3, 4, 4)  # zero mean in every tile
    assert float(patch_mean_loss(target + texture, target, 2)) == 0.0
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        patch_mean_loss(torch.zeros(1, 3, 2, 4, 4), torch.zeros(1, 3, 2, 4, 4), 2)


def test_colour_weight_trains_the_patch_mean_loss_and_refuses_audio(compose, tmp_path):
    cfg = compose([*FAST, "trainer.max_steps=2", "trainer.val_every=2", "trainer.log_every=1",
                   "trainer.colour_weight=2.0"])
    run_task(cfg, tmp_path)
    rows = [r for r in _rows(tmp_path) if "loss_colour" in r]
    assert len(rows) == 2 and all(r["loss_colour"] > 0 for r in rows), _rows(tmp_path)[:3]
    with pytest.raises(ValueError, match="colour_weight=1.0 must be >= 0, and > 0 only for an RGB image"):
        run_task(compose(["experiment=audio_debug", "trainer.colour_weight=1.0", "trainer.max_steps=1"]),
                 tmp_path / "audio")
