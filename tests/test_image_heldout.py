"""The ``image_small`` headline (``benchmarks/image_heldout.py``): the table it writes, and, with
``MMTOK_LONG_TESTS=1``, the two full-length seeds against pixel k-means on the held-out sources (what held on
both: colour)."""

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
def test_image_small_colour_beats_kmeans_on_held_out_sources(tmp_path):
    """``python benchmarks/image_heldout.py``: on the 18 held-out sources, each seed of the shipped recipe has a
    lower mean CIEDE2000 than pixel k-means at the same bits, overall (9.75 / 9.03 against 10.77 / 10.09) and on
    the three pinned palette sources (9.08 / 9.18 against 12.99 / 12.47), and stays within a bound of k-means'
    PSNR. The PSNR margin itself does not hold across seeds (+0.20 / -0.41 dB; worst source -3.27 / -6.51 dB,
    docs/images.md#an-image-tokenizer-that-generalises-on-a-cpu-budget), so only what held on both is asserted,
    with slack of about the spread between the seeds."""
    res = image_heldout.run("heldout", ["shipped"], [0, 1], None, tmp_path)
    for r in res["rows"]:
        assert r["margin_db"] > MARGIN_DB, r
        assert r["worst_source_margin_db"] > WORST_DB, r
        assert r["val_ciede2000"] < r["baseline_ciede2000"] - CIEDE_MARGIN, r
        assert r["palette_ciede2000"] < r["palette_baseline_ciede2000"] - PALETTE_CIEDE_MARGIN, r
        assert r["palette_psnr"] > r["palette_baseline_psnr"] + PALETTE_DB, r


# measured: margin +0.20 / -0.41 dB, worst source -3.27 / -6.51 dB, CIEDE2000 1.02 / 1.06 below k-means,
# palette CIEDE2000 3.91 / 3.29 below, palette PSNR +0.86 / +0.13 dB
MARGIN_DB, WORST_DB, CIEDE_MARGIN, PALETTE_CIEDE_MARGIN, PALETTE_DB = -1.0, -8.0, 0.5, 2.0, -0.5


def test_data_overrides_reach_every_stage(tmp_path):
    """``--set data.images=DIR`` lands in the config each stage takes its data from (compose_stage copies the
    base config's ``data``): without it the runs would silently train on the bundled samples."""
    base = image_heldout.base_config("image_small", [f"data.images={tmp_path}", "tokenizer.image.norm=pixel"])
    assert base.data.images == str(tmp_path)
    assert image_heldout.base_config("image_small").data.images is None
