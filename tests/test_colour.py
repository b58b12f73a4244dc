"""Colour that generalises (issue 25 item 5): the colour errors, colour jitter, the validation split that recipes
are chosen on, and the per-source held-out figures of the image task."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from modalities.data.datasets import ColourJitter, ImageCrops, SampleStream
from modalities.data.io import IMAGE_SUFFIXES, list_media
from modalities.data.sources import read_held_out, read_sources, source_of, split_folder
from modalities.eval.metrics import IMAGE_SCORES, ciede2000, colour_shift, image_scores
from modalities.tasks import run_task


def _flat(rgb: tuple[float, float, float], side: int = 16) -> torch.Tensor:
    return torch.tensor(rgb).view(3, 1, 1).expand(3, side, side).clone()


def test_ciede2000_known_values():
    black, white = _flat((0, 0, 0)), _flat((1, 1, 1))
    # achromatic pair around L* 50: S_L = 1, so the difference is the lightness difference, 100
    assert float(ciede2000(white, black)[0]) == pytest.approx(100.0, abs=0.01)
    assert float(ciede2000(white, white)[0]) == 0.0
    yellow, salmon = _flat((1.0, 0.9, 0.1)), _flat((0.98, 0.55, 0.5))
    assert float(ciede2000(salmon, yellow)[0]) > 20  # the failure the issue reports is another colour
    grey, tinted = _flat((0.5, 0.5, 0.5)), _flat((0.5, 0.5, 0.52))
    assert 0.5 < float(ciede2000(tinted, grey)[0]) < 3  # two levels of blue: about the smallest visible step


def test_colour_shift_is_the_distance_between_mean_colours():
    x = torch.rand(2, 3, 24, 24) * 0.8
    assert torch.allclose(colour_shift(x + torch.tensor([0.1, 0, 0]).view(1, 3, 1, 1), x), torch.full((2,), 0.1),
                          atol=1e-6)
    assert torch.allclose(colour_shift(x + 0.1, x), torch.full((2,), 0.1 * math.sqrt(3)), atol=1e-6)
    swapped = x.flip(-1)  # the same pixels elsewhere: texture wrong, mean colour right
    assert float(colour_shift(swapped, x).max()) < 1e-6 and float(ciede2000(swapped, x).min()) > 1


@settings(max_examples=15, deadline=None)
@given(b=st.integers(1, 3), h=st.integers(11, 24), w=st.integers(11, 24), seed=st.integers(0, 1000))
def test_image_scores_shapes_and_identity(b, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, 3, h, w, generator=g)
    same = image_scores(x, x)
    assert tuple(same) == IMAGE_SCORES and all(v.shape == (b,) for v in same.values())
    assert torch.all(same["ciede2000"] == 0) and torch.all(same["colour_shift"] == 0)
    other = image_scores(torch.rand(b, 3, h, w, generator=g), x)
    assert torch.all(other["ciede2000"] > 0) and torch.all(other["psnr"] < same["psnr"])
    with pytest.raises(ValueError, match="ciede2000: pred and target shapes differ"):
        ciede2000(x, x[..., 1:])


def test_colour_jitter_is_reproducible_and_changes_colours(samples):
    files = sorted((samples / "images").glob("plasma_*.png"))[:3]
    plain = SampleStream(ImageCrops(files, 32, flip=False, samples_per_epoch=8), seed=1)
    jitter = SampleStream(ImageCrops(files, 32, flip=False, samples_per_epoch=8, colour=(0.2, 0.5, 0.5)), seed=1)
    assert torch.equal(jitter[3], jitter[3]) and jitter[3].shape == (3, 32, 32)
    assert float(jitter[3].min()) >= 0 and float(jitter[3].max()) <= 1
    shifts = [float(colour_shift(jitter[i], plain[i])[0]) for i in range(8)]
    assert max(shifts) > 0.02  # the same crops, other colours
    none = SampleStream(ImageCrops(files, 32, flip=False, samples_per_epoch=8, colour=(0, 0, 0)), seed=1)
    assert torch.allclose(none[3], plain[3], atol=1e-6)
    for bad in [(0.2, 0.5), (0.2, 0.5, 0.7), (-0.1, 0, 0)]:
        with pytest.raises(ValueError, match="brightness, saturation, hue"):
            ImageCrops(files, 32, colour=bad)


def test_colour_jitter_matrix_keeps_grey_and_luma():
    j = ColourJitter(0.2, 0.5, 0.5)
    grey = torch.tensor([0.4, 0.4, 0.4])
    for h in (0.1, 0.25, 0.5):  # a hue turn leaves greys alone; two half turns are the identity
        assert torch.allclose(j.matrix(1, 1, h) @ grey, grey, atol=1e-5)
    assert torch.allclose(j.matrix(1, 1, 0.5) @ j.matrix(1, 1, 0.5), torch.eye(3), atol=1e-5)
    red = torch.tensor([1.0, 0.0, 0.0])
    assert torch.allclose(j.matrix(1, 0, 0) @ red, torch.full((3,), 0.299), atol=1e-5)  # saturation 0: the luma
    assert torch.allclose(j.matrix(0.5, 1, 0) @ red, 0.5 * red, atol=1e-6)
    luma = torch.tensor([0.299, 0.587, 0.114])
    colour = torch.tensor([0.9, 0.7, 0.1])
    assert float(luma @ (j.matrix(1, 1.3, 0.2) @ colour)) == pytest.approx(float(luma @ colour), abs=1e-5)
    x = torch.rand(3, 5, 7)
    torch.manual_seed(0)
    y = j(x)
    assert y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1


def test_validation_split_is_inside_the_training_sources(samples, compose):
    from modalities.tasks.vq import media_split

    folder = samples / "images"
    sources = read_sources(folder)
    _, train, held = media_split(compose(["task=image"]), "images", "images", IMAGE_SUFFIXES)
    _, fit, val = media_split(compose(["task=image", "task.split=validation"]), "images", "images", IMAGE_SUFFIXES)
    of = {f: source_of(f, folder, sources) for f in list_media(folder, IMAGE_SUFFIXES, "images")}
    assert sorted(fit + val) == sorted(train) and (len(fit), len(val)) == (37, 23)
    assert not {of[f] for f in val} & {of[f] for f in fit}
    assert not {of[f] for f in val + fit} & {of[f] for f in held}  # recipes never see the held-out sources
    assert read_held_out(folder) <= {of[f] for f in held}
    with pytest.raises(ValueError, match="task.split must be"):
        media_split(compose(["task=image", "task.split=test"]), "images", "images", IMAGE_SUFFIXES)


@pytest.mark.slow
def test_image_task_reports_held_out_sources_and_colour(compose, tmp_path, samples):
    """A 30-step run: validation carries the colour errors, and the per-source table agrees with the means."""
    m = run_task(compose(["experiment=image_debug", "trainer.max_steps=30", "trainer.val_every=30",
                          "trainer.ckpt_every=30", "trainer.tensorboard=false", "task.val_size=64",
                          "task.colour=[0.2,0.5,0.5]", "show_progress=false"]), tmp_path)
    assert m["val_ciede2000"] > 0 and 0 <= m["val_colour_shift"] < 1 and m["baseline_ciede2000"] > 0
    per = m["heldout_sources"]
    folder = samples / "images"
    _, held = split_folder(list_media(folder, IMAGE_SUFFIXES, "images"), 0.4, folder)
    assert len(per) == 18 and sum(r["files"] for r in per.values()) == len(held) == 46
    files = sum(r["files"] for r in per.values())
    for key in ("baseline_psnr", "baseline_ciede2000", "psnr", "ciede2000"):  # per-source means weight back
        assert sum(r[key] * r["files"] for r in per.values()) / files == pytest.approx(m[key if "baseline" in key
                                                                                          else f"val_{key}"], abs=1e-3)
    assert m["worst_source_margin_db"] == min(r["margin_db"] for r in per.values())
    pinned = read_held_out(folder)
    assert m["palette_files"] == sum(per[s]["files"] for s in pinned) == 9


@pytest.mark.parametrize("norm", ["group", "pixel", "none"])
def test_pixel_norm_decodes_a_region_whatever_the_rest_of_the_image_holds(norm):
    """With ``norm=pixel`` (or ``none``) a latent region decodes to the same pixels when a far part of the image changes; with
    GroupNorm (statistics over the whole image) it does not: a colour comes back relative to its surroundings."""
    from models.quantizer import QuantizerConfig
    from models.vqae import ChannelAffine, PixelNorm, VQAEConfig, VQAutoencoder

    torch.manual_seed(0)
    model = VQAutoencoder(VQAEConfig(channels=[8, 8, 16, 16], z_dim=8, groups=4, norm=norm),
                          QuantizerConfig(kind="vq", codebook_size=16, kmeans_init=False)).eval()
    z = torch.randn(1, 8, 8, 40)
    other = z.clone()
    other[..., 24:] = torch.randn(1, 8, 8, 16) * 3  # the right part of the latent changes
    with torch.no_grad():  # latent columns 0-3, 20 columns from the change: beyond the decoder's receptive field
        a, b = model.decoder(z)[..., :32], model.decoder(other)[..., :32]
    assert torch.allclose(a, b, atol=1e-5) == (norm != "group")
    x = torch.randn(2, 6, 5, 5)
    n = PixelNorm(1, 6)
    assert torch.allclose(n(x).mean(1), torch.zeros(2, 5, 5), atol=1e-5)
    assert torch.allclose(n(x).var(1, unbiased=False), torch.ones(2, 5, 5), atol=1e-3)
    assert set(dict(n.named_parameters())) == set(dict(torch.nn.GroupNorm(2, 6).named_parameters()))
    none = ChannelAffine(1, 6)  # no statistics: a dark position stays dark (PixelNorm would rescale it)
    with torch.no_grad():
        none.weight.copy_(torch.arange(1.0, 7.0)), none.bias.fill_(0.5)
    assert torch.allclose(none(x), x * torch.arange(1.0, 7.0).view(1, 6, 1, 1) + 0.5)
    assert set(dict(none.named_parameters())) == set(dict(n.named_parameters()))
    with pytest.raises(ValueError, match="norm must be one of"):
        VQAutoencoder(VQAEConfig(norm="batch"), QuantizerConfig(kind="vq", codebook_size=16))
