"""``benchmarks/unseen_palettes.py``: tokenizers and pixel k-means on hue-turned and saturated validation photos."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from .conftest import REPO, benchmark

unseen_palettes = benchmark("unseen_palettes")


class Rounding:
    """A stand-in tokenizer that keeps every colour: pixels rounded to eighths (f8, 4 'codes' for the baseline)."""

    model = SimpleNamespace(downsample=8, quantizer=SimpleNamespace(codebook_size=4))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return (x * 8).round()

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return codes / 8


def reds(n: int, seed: int) -> list[torch.Tensor]:
    """``n`` 32x32 textures in reds only: float[3, 32, 32]."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        r = 0.6 + 0.3 * torch.rand(1, 32, 32, generator=g)
        gb = 0.1 + 0.1 * torch.rand(2, 32, 32, generator=g)
        out.append(torch.cat([r, gb]))
    return out


def test_kmeans_fitted_on_reds_loses_a_turned_palette_that_a_colour_keeping_tokenizer_keeps():
    train, val = reds(6, 0), reds(3, 1)
    toks = {"round": Rounding()}
    rows = unseen_palettes.palettes(toks, unseen_palettes.kmeans_baselines(toks, train), val, hues=[0.0, 1 / 3],
                                    saturations=[1.0, 2.0])
    assert [(r["hue"], r["saturation"]) for r in rows] == [(0.0, 1.0), (1 / 3, 1.0), (0.0, 2.0), (1 / 3, 2.0)]
    plain, green = rows[0], rows[1]
    # the stand-in's error does not depend on the hue; k-means, fitted on reds, returns reds for greens
    assert green["psnr"] == pytest.approx(plain["psnr"], abs=1.0)
    assert green["kmeans_ciede2000"] > plain["kmeans_ciede2000"] + 10 and green["margin_db"] > plain["margin_db"] + 5
    assert all(r["margin_db"] == pytest.approx(r["psnr"] - r["kmeans_psnr"]) for r in rows)
    (summary,) = unseen_palettes.summarise(rows)  # the mean over the three turned palettes
    assert summary["margin_db"] == pytest.approx(sum(r["margin_db"] for r in rows[1:]) / 3)
    md = unseen_palettes.markdown(rows, [summary], "image_f16", len(val))
    assert md.count("| round |") == 5 and "| round | +0.333 | x2 | x1 |" in md


def test_darkened_palettes_are_scored_and_count_as_turned():
    """``brightness``: a row per factor; the darkened rows join the summary's mean, the stand-in keeps dark
    colours as well as bright ones (within its rounding), and k-means fitted on bright reds does not."""
    train, val = reds(6, 0), reds(3, 1)
    toks = {"round": Rounding()}
    rows = unseen_palettes.palettes(toks, unseen_palettes.kmeans_baselines(toks, train), val, hues=[0.0],
                                    saturations=[1.0], brightness=[1.0, 0.5])
    assert [r["brightness"] for r in rows] == [1.0, 0.5]
    plain, dark = rows
    # rounding to eighths: error bounded by 1/16 either way; halving the image leaves it in the same range
    assert dark["psnr"] > 20 and plain["psnr"] > 20
    # k-means fitted on the bright reds returns reds for the darkened crops: a large colour error
    assert dark["kmeans_ciede2000"] > plain["kmeans_ciede2000"] + 5
    (summary,) = unseen_palettes.summarise(rows)
    assert summary["margin_db"] == pytest.approx(dark["margin_db"])


def test_flat_swatches_show_a_tokenizer_that_cannot_decode_saturated_colours():
    """``swatches``: a colour-keeping stand-in returns every flat swatch within its rounding (CIEDE2000 small),
    k-means fitted on reds returns reds for the green and blue swatches; the decoded colour is the mean."""
    toks = {"round": Rounding()}
    rows = unseen_palettes.swatches(toks, unseen_palettes.kmeans_baselines(toks, reds(6, 0)))
    assert [r["colour"] for r in rows] == list(unseen_palettes.SWATCHES)
    by = {r["colour"]: r for r in rows}
    assert all(r["ciede2000"] < 6 for r in rows), [(r["colour"], r["ciede2000"]) for r in rows]
    assert by["green"]["kmeans_ciede2000"] > 30 and by["blue"]["kmeans_ciede2000"] > 30
    assert by["orange"]["decoded"] == pytest.approx([1.0, 0.375, 0.0])  # rounded to eighths
    md = unseen_palettes.markdown([], [], "image_f16", 0, rows)
    assert md.count("| round |") == len(unseen_palettes.SWATCHES) and "| round | orange | (1.0, 0.4, 0.0) |" in md


def test_only_the_unturned_palette_is_refused_before_any_work(tmp_path):
    """Hue 0 at saturation and brightness x1 is the reference, not a turned palette: the script stops with a
    message naming the flags instead of dividing by zero after loading and fitting."""
    cmd = [sys.executable, "benchmarks/unseen_palettes.py", "--tokenizers", str(tmp_path / "none"), "--hues", "0",
           "--saturations", "1"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "only the unturned palette" in proc.stderr, proc.stderr[-2000:]
