"""``experiment=image_demo``: the f8 recipe for short runs (the demo's image stage, the f8 rows of the
rate-distortion sweep), its settings and, run as shipped, its held-out figure against pixel k-means on 8x8
patches at the same bits (``python benchmarks/image_heldout.py --experiment image_demo``)."""

from __future__ import annotations

import pytest

from modalities.tasks import run_task


def test_image_demo_composes_as_image_small_with_colour_codes(compose):
    demo, small = compose(["experiment=image_demo"]), compose(["experiment=image_small"])
    assert demo.trainer.max_steps == 1000 and small.trainer.max_steps == 5000
    assert demo.tokenizer.image.mean_colour == 1.0 and not demo.quantizer.use_cosine_sim
    assert demo.task.refit_crops == 4096 and demo.quantizer.codebook_size == 256  # 8 bits per 8x8 patch
    assert demo.quantizer.dead_code_share == 0.1 and small.quantizer.dead_code_share == 0  # chosen on validation
    for key in ("crop_size", "zoom", "colour", "batch_size"):  # image_small's photographs and crops
        assert demo.task[key] == small.task[key], key
    assert demo.tokenizer.image.norm == small.tokenizer.image.norm == "pixel"
    assert compose(["task=demo"]).task.image[0] == "experiment=image_demo"


@pytest.mark.slow
def test_image_demo_beats_kmeans_and_keeps_colours_on_heldout_sources(compose, tmp_path):
    """The recipe as shipped (1000 steps, about 2.5 minutes on 2 cores) on the 18 held-out sources (46 images):
    above pixel k-means on 8x8 patches at the same 0.125 bits per pixel, with a lower CIEDE2000. ``image_small``
    cut to the same 1000 steps scored 18.63 dB against k-means' 21.08 there, CIEDE2000 17.0 against 10.8.
    Measured (``python benchmarks/image_heldout.py --experiment image_demo``), seeds 0 / 1: 21.83 / 21.89 dB against
    21.08 / 21.44 (+0.75 / +0.46), CIEDE2000 9.46 / 9.31 against 10.77 / 10.09, worst source -0.47 / -2.02 dB
    (docs/images.md#short-runs-experimentimage_demo). The bounds keep seed 0's figures with room for another
    machine's arithmetic; seed 1 would pass them too."""
    m = run_task(compose(["experiment=image_demo", "trainer.tensorboard=false"]), tmp_path)
    assert m["steps"] == 1000 and m["bits_per_pixel"] == m["baseline_bpp"] == 0.125
    assert m["val_psnr"] > m["baseline_psnr"] + 0.3, m
    assert m["val_ciede2000"] < m["baseline_ciede2000"] - 0.4, m
    assert m["worst_source_margin_db"] > -2.5, m
