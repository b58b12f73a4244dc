"""``experiment=image_small`` (issue 18): its settings, the random-scale crops it trains on, the photographs
it adds to the samples, and a short run that trains and saves."""

from __future__ import annotations

import json

import pytest
import torch

from modalities import ImageTokenizer
from modalities.data.datasets import ImageCrops, SampleStream, ZoomCrop
from modalities.data.io import IMAGE_SUFFIXES, list_media
from modalities.data.sources import read_sources, source_of, split_folder
from modalities.tasks import run_task


def test_image_small_composes_with_the_documented_settings(compose):
    cfg = compose(["experiment=image_small"])
    assert cfg.task.name == "image" and cfg.task.crop_size == 64 and cfg.task.batch_size == 8
    assert list(cfg.task.zoom) == [0.5, 1.0] and cfg.task.val_fraction == 0.4
    assert list(cfg.tokenizer.image.channels) == [32, 32, 64, 64]  # f8: three stride-2 levels
    assert cfg.tokenizer.image.norm == "pixel" and compose(["experiment=image_debug"]).tokenizer.image.norm == "group"
    assert cfg.quantizer.kind == "vq" and cfg.quantizer.codebook_size == 256  # 0.125 bits per pixel
    assert cfg.quantizer.use_cosine_sim and cfg.task.refit_crops == 0  # cosine lookup; the refit is Euclidean only
    assert cfg.trainer.max_steps == 5000 and cfg.trainer.recon_loss == "l2" and cfg.trainer.optimizer.lr == 1e-3
    assert list(cfg.task.colour) == [0.2, 0.5, 0.5]
    assert compose(["task=image"]).task.zoom is None and compose(["task=image"]).task.refit_crops == 0  # unchanged


def test_zoom_crop_shape_range_and_determinism():
    x = torch.rand(3, 120, 200)
    crop = ZoomCrop(32, (0.25, 2.0))
    outs = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        outs.append(crop(x))
    assert all(o.shape == (3, 32, 32) for o in outs)
    assert all(0 <= float(o.min()) and float(o.max()) <= 1 for o in outs)
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])


def test_zoom_one_is_a_plain_crop_and_zoom_out_averages():
    x = torch.rand(3, 64, 64)
    torch.manual_seed(0)
    y = ZoomCrop(16, (1.0, 1.0))(x)
    windows = x.unfold(1, 16, 1).unfold(2, 16, 1)  # [3, 49, 49, 16, 16]: every 16x16 window
    assert any(torch.equal(windows[:, i, j], y) for i in range(49) for j in range(49))
    flat = torch.full((3, 64, 64), 0.25)
    torch.manual_seed(0)
    assert torch.allclose(ZoomCrop(16, (0.25, 0.25))(flat), torch.full((3, 16, 16), 0.25))  # a 64-px square, resized
    small = torch.rand(3, 20, 40)  # the square never exceeds the shorter side
    assert ZoomCrop(16, (0.1, 0.1))(small).shape == (3, 16, 16)
    with pytest.raises(ValueError, match="zoom"):
        ZoomCrop(16, (1.0, 0.5))


def test_image_crops_with_zoom_are_reproducible(samples):
    files = sorted((samples / "images").glob("*.png"))[:4]
    data = SampleStream(ImageCrops(files, 32, zoom=(0.5, 1.0), samples_per_epoch=8), seed=3)
    a, b = data[5], data[5]
    assert a.shape == (3, 32, 32) and torch.equal(a, b) and not torch.equal(data[5], data[6])


def test_added_photographs_are_licensed_sources_and_eighteen_are_held_out(samples):
    folder = samples / "images"
    rows = [json.loads(x) for x in (folder / "captions.jsonl").read_text().splitlines() if x.strip()]
    added = [r for r in rows if not r["source"].startswith("skimage/")]
    assert len({r["source"] for r in added}) == 26  # 14 lomiri, 1 matplotlib, 11 plasma
    assert all(r.get("licence") and r.get("author") for r in added)
    files = list_media(folder, IMAGE_SUFFIXES, "images")
    sources = read_sources(folder)
    train, held = split_folder(files, 0.4, folder)
    held_sources = {source_of(f, folder, sources) for f in held}
    assert len(held_sources) == 18 and not held_sources & {source_of(f, folder, sources) for f in train}
    assert any(not s.startswith("skimage/") for s in {source_of(f, folder, sources) for f in train})


@pytest.mark.slow
def test_codebook_refit_short_run_trains_and_saves(compose, tmp_path):
    """``task.refit_crops`` on the ``image_small`` recipe with Euclidean lookup (the refit's setting; the shipped
    recipe looks codes up by cosine and has none): the saved folder holds the refitted codebook."""
    cfg = compose(["experiment=image_small", "trainer.max_steps=24", "trainer.val_every=24", "trainer.ckpt_every=24",
                   "trainer.log_every=12", "trainer.tensorboard=false", "task.baseline=false", "task.val_size=64",
                   "task.refit_crops=512", "quantizer.use_cosine_sim=false"])
    m = run_task(cfg, tmp_path)
    assert m["steps"] == 24 and m["bits_per_pixel"] == 0.125 and m["val_psnr"] > 5
    assert m["refit_mse_after"] <= m["refit_mse_before"] and "val_psnr_before_refit" in m  # the refit's own aim
    tok = ImageTokenizer.from_pretrained(tmp_path / "tokenizer/image")
    assert tok.codebook_size == 256 and tok.downsample == 8
    refit = tok.model.quantizer.q._codebook.embed[0]
    # the last checkpoint holds the model as trained, before the refit: the saved folder must hold another codebook
    ckpt = torch.load(tmp_path / "checkpoints/last.pt", map_location="cpu", weights_only=True)
    trained = [v for part in ("ema", "model") for k, v in (ckpt.get(part) or {}).items()
               if k.endswith("quantizer.q._codebook.embed")][0][0]
    assert trained.shape == refit.shape and not torch.allclose(trained, refit, atol=1e-4)


def test_codebook_refit_moves_codes_to_their_cluster_means():
    from models.quantizer import Quantizer, QuantizerConfig

    torch.manual_seed(0)
    q = Quantizer(2, QuantizerConfig(kind="vq", codebook_size=3, kmeans_init=False))
    centres = torch.tensor([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])
    z = (centres[:, None] + 0.1 * torch.randn(3, 200, 2)).reshape(-1, 2)
    q.q._codebook.embed[0].copy_(centres + torch.tensor([[0.4, -0.3], [0.2, 0.5], [-0.6, 0.1]]))
    stats = q.refit(z)
    got = q.q._codebook.embed[0]
    want = z.reshape(3, 200, 2).mean(1)
    assert torch.allclose(got, want, atol=1e-5) and stats["refit_codes_used"] == 3
    assert stats["refit_mse_after"] < stats["refit_mse_before"]
    codes = q(z.T[None, :, :, None]).codes.flatten()  # the quantiser now uses the refitted codes
    assert torch.equal(codes, torch.arange(3).repeat_interleave(200))
    with pytest.raises(ValueError, match="N >= 3"):
        q.refit(z[:2])
    with pytest.raises(ValueError, match="Euclidean vq"):
        Quantizer(2, QuantizerConfig(kind="fsq", levels=[3, 3])).refit(z)


@pytest.mark.parametrize("over", [[], ["quantizer=fsq"]])
def test_refit_with_a_non_euclidean_quantiser_fails_before_training(compose, tmp_path, over):
    """A refit needs Euclidean codes: the run says so before its first step, not after the whole training."""
    cfg = compose(["experiment=image_small", "trainer.max_steps=2", "task.baseline=false", "task.refit_crops=4096",
                   *over])
    with pytest.raises(ValueError, match=r"task.refit_crops=4096 needs a Euclidean vq quantiser.*refit_crops=0"):
        run_task(cfg, tmp_path)
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "metrics.jsonl").exists()
