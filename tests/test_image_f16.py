"""``experiment=image_f16`` (issue 25, item 4): an f16 tokenizer with 4096 codes, its settings, a short run that
must not collapse onto a few codes, and, with ``MMTOK_LONG_TESTS=1``, the held-out figure against pixel k-means
on 16x16 patches (``python benchmarks/image_heldout.py --experiment image_f16``)."""

from __future__ import annotations

import os

import pytest

from modalities.tasks import run_task

from .conftest import benchmark


def test_image_f16_composes_with_the_documented_settings(compose):
    cfg = compose(["experiment=image_f16"])
    assert list(cfg.tokenizer.image.channels) == [32, 32, 64, 64, 64] and cfg.tokenizer.image.z_dim == 8  # f16
    assert cfg.quantizer.kind == "vq" and cfg.quantizer.codebook_size == 4096  # 12 bits per 16x16 patch
    # 4 crops of 128x128 give 256 vectors a batch, 1/16 of a code each: the threshold must follow the batch
    assert cfg.quantizer.dead_code_share == 0.1 and cfg.task.batch_size * (cfg.task.crop_size // 16) ** 2 == 256
    assert cfg.tokenizer.image.norm == "pixel" and cfg.trainer.optimizer.lr == 3e-4 and cfg.trainer.max_steps == 3000
    assert cfg.task.refit_crops == 4096 and list(cfg.task.colour) == [0.2, 0.5, 0.5]
    assert cfg.tokenizer.image.mean_colour == 1.0  # 3 of the 8 latent channels: each patch's mean colour


@pytest.mark.slow
def test_image_f16_short_run_keeps_its_codebook_and_colours(compose, tmp_path):
    """With the absolute dead-code threshold (2.0) the 4096 codes were re-seeded at every step and training
    collapsed onto 1 to 30 of them (9.5 to 16.6 dB after 250 steps); with ``dead_code_share`` a short run without
    ``mean_colour`` uses more than a hundred codes on the validation crops after 80 steps (143 measured, 3.5% of
    4096). The shipped recipe, whose codes carry each patch's mean colour, uses fewer codes that early (64
    measured; 56% after the full 3000 steps) but is already far closer to the photographs: 22.67 dB."""
    common = ["experiment=image_f16", "trainer.max_steps=80", "trainer.val_every=80", "trainer.ckpt_every=80",
              "trainer.log_every=40", "trainer.tensorboard=false", "task.baseline=false", "task.val_size=64",
              "task.refit_crops=0", "task.split=validation"]
    plain = run_task(compose([*common, "tokenizer.image.mean_colour=0"]), tmp_path / "plain")
    assert plain["steps"] == 80 and plain["bits_per_pixel"] == pytest.approx(12 / 256)
    assert plain["val_usage"] * 4096 > 80, plain["val_usage"]
    assert plain["val_psnr"] > 15, plain["val_psnr"]
    shipped = run_task(compose(common), tmp_path / "shipped")
    assert shipped["val_usage"] * 4096 > 30, shipped["val_usage"]  # collapse kept at most 30
    assert shipped["val_psnr"] > 21.5 and shipped["val_psnr"] > plain["val_psnr"] + 2, (shipped, plain)
    assert shipped["val_ciede2000"] < plain["val_ciede2000"], (shipped, plain)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("MMTOK_LONG_TESTS"),
                    reason="two 14-minute training runs, over the suite's budget: MMTOK_LONG_TESTS=1 pytest runs it")
def test_image_f16_against_kmeans_on_held_out_sources(tmp_path):
    """Each seed of the shipped f16 recipe on the held-out sources, against pixel k-means on 16x16 patches with
    4096 codes: the issue's goal (+0.5 dB). Measured (benchmarks/results/image_f16_heldout.md): 21.73 and 21.80 dB
    against 20.80 and 20.73, margins +0.93 and +1.07 dB, worst source -0.43 and +0.28 dB, CIEDE2000 8.84 and 8.62
    against 10.24 and 10.21. Before ``mean_colour`` the margins were -1.87 and -1.79."""
    res = benchmark("image_heldout").run("heldout", ["shipped"], [0, 1], None, tmp_path, experiment="image_f16")
    for r in res["rows"]:
        assert r["margin_db"] > F16_MARGIN_DB and r["worst_source_margin_db"] > -1.0, r
        assert r["val_ciede2000"] < r["baseline_ciede2000"] - 1.0, r


F16_MARGIN_DB = 0.5  # the goal; measured +0.93 / +1.07
