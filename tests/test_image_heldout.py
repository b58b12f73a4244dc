"""The ``image_small`` headline (``benchmarks/image_heldout.py``): the table it writes, and, with
``MMTOK_LONG_TESTS=1``, the two full-length seeds against pixel k-means on the held-out sources (the issue's goal:
+1 dB on average, no source below -1 dB, lower CIEDE2000)."""

from __future__ import annotations

import os

import pytest

from .conftest import benchmark

image_heldout = benchmark("image_heldout")


def test_short_names_and_the_markdown_table():
    plasma = "debian/plasma-workspace-wallpapers/usr/share/wallpapers/FallenLeaf/contents/images/2560x1600.jpg"
    assert image_heldout.short(plasma) == "FallenLeaf"
    assert image_heldout.short("skimage/data/coffee.png") == "coffee"
    row = {"run": "heldout_shipped_s0_full", "val_psnr": 22.5, "baseline_psnr": 21.0, "margin_db": 1.5,
           "worst_source": plasma, "worst_source_margin_db": -0.4, "val_ciede2000": 9.0, "baseline_ciede2000": 10.0,
           "val_colour_shift": 0.04, "baseline_colour_shift": 0.05}
    per = {plasma: {"files": 3, "psnr": 20.0, "baseline_psnr": 20.4, "margin_db": -0.4, "ciede2000": 12.0,
                    "baseline_ciede2000": 13.0}}
    md = image_heldout.markdown({"split": "heldout", "rows": [row], "per_source": {row["run"]: per}})
    assert "| heldout_shipped_s0_full | 22.50 | 21.00 | +1.50 | FallenLeaf (-0.40) | 9.00 (10.00) |" in md
    assert "| FallenLeaf | 3 | 20.00 | 20.40 | -0.40 | 12.00 | 13.00 |" in md
    assert image_heldout._colour_arg("none") is None and image_heldout._colour_arg("0.2,0.5,0.5") == [0.2, 0.5, 0.5]


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("MMTOK_LONG_TESTS"),
                    reason="two 14-minute training runs, over the suite's budget: MMTOK_LONG_TESTS=1 pytest runs it")
def test_image_small_beats_kmeans_on_held_out_sources(tmp_path):
    """``python benchmarks/image_heldout.py``: on the 18 held-out sources, each seed of the shipped recipe (cosine
    lookup) meets the issue's goal against pixel k-means at the same bits: a mean PSNR margin of at least 1 dB
    (measured +1.64 / +1.39), no source more than 1 dB below (worst -0.70 / -0.46), a lower mean CIEDE2000
    (7.27 / 7.97 against 10.77 / 10.09), and on the three pinned palette sources a higher PSNR and far lower
    CIEDE2000 (docs/images.md#an-image-tokenizer-that-generalises-on-a-cpu-budget). The bounds are the goal's;
    the margins left over are what the two seeds showed."""
    res = image_heldout.run("heldout", ["shipped"], [0, 1], None, tmp_path)
    for r in res["rows"]:
        assert r["margin_db"] > MARGIN_DB, r
        assert r["worst_source_margin_db"] > WORST_DB, r
        assert r["val_ciede2000"] < r["baseline_ciede2000"] - CIEDE_MARGIN, r
        assert r["palette_ciede2000"] < r["palette_baseline_ciede2000"] - PALETTE_CIEDE_MARGIN, r
        assert r["palette_psnr"] > r["palette_baseline_psnr"] + PALETTE_DB, r


# measured: margin +1.64 / +1.39 dB, worst source -0.70 / -0.46 dB, CIEDE2000 3.50 / 2.12 below k-means,
# palette CIEDE2000 5.39 / 4.08 below, palette PSNR +1.74 / +1.61 dB
MARGIN_DB, WORST_DB, CIEDE_MARGIN, PALETTE_CIEDE_MARGIN, PALETTE_DB = 1.0, -1.0, 1.0, 2.0, 0.5


def test_data_overrides_reach_every_stage(tmp_path):
    """``--set data.images=DIR`` lands in the config each stage takes its data from (compose_stage copies the
    base config's ``data``): without it the runs would silently train on the bundled samples."""
    base = image_heldout.base_config("image_small", [f"data.images={tmp_path}", "tokenizer.image.norm=pixel"])
    assert base.data.images == str(tmp_path)
    assert image_heldout.base_config("image_small").data.images is None
