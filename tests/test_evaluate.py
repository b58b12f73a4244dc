"""``task=evaluate`` end to end on the samples with tiny tokenizers; the evaluation helpers on known cases."""

from __future__ import annotations

import json
import math

import pytest
import torch

from modalities.audio import SpectrogramTokenizer
from modalities.eval.baselines import fit_patch_kmeans
from modalities.eval.perceptual import FIDMetric, LPIPSMetric
from modalities.eval.tokenizer_eval import code_bits, score_images
from modalities.image import ImageTokenizer
from modalities.multimodal import MultimodalTokenizer
from modalities.tasks import run_task
from modalities.tasks.evaluate import load_tokenizers, modality_of
from modalities.video import VideoTokenizer
from models.melspec import MelConfig
from models.melvq import MelVQConfig
from models.quantizer import QuantizerConfig
from models.vqae import VQAEConfig

from .conftest import REPO

TINY_AE = VQAEConfig(channels=[8, 8, 16, 16], num_res_blocks=1, z_dim=8, attention=False, groups=4)


def _image_tok() -> ImageTokenizer:
    torch.manual_seed(0)
    return ImageTokenizer.from_configs(TINY_AE, QuantizerConfig(kind="vq", codebook_size=64))


def test_code_bits_counts_real_codes_only():
    codes = torch.tensor([[3, 1, -1], [0, -1, -1]])
    assert code_bits(codes, 256) == 3 * 8
    assert code_bits(torch.zeros(2, 4, 4, dtype=torch.long), 1024) == 32 * 10


def test_score_images_perfect_and_degraded():
    g = torch.Generator().manual_seed(0)
    x = [torch.rand(3, 32, 32, generator=g) for _ in range(2)]
    same = score_images(x, x, bits=2 * 32 * 32 * 0.5)
    assert same["psnr"] >= 99 and same["ssim"] == pytest.approx(1, abs=1e-4) and same["bits_per_pixel"] == 0.5
    assert "lpips" not in same and "rfid" not in same  # not asked for
    unweighted = score_images(x, x, bits=1.0, lpips=LPIPSMetric(None), fid=FIDMetric(None))
    assert unweighted["lpips"].startswith("not computed (set eval.lpips_weights")
    assert unweighted["rfid"].startswith("not computed (set eval.inception_weights")
    noisy = score_images(x, [(t + 0.1 * torch.randn(t.shape, generator=g)).clamp(0, 1) for t in x], bits=1.0)
    assert 15 < noisy["psnr"] < 25 and noisy["ssim"] < 0.99


def test_patch_kmeans_reconstructs_its_own_patches_exactly():
    x = torch.rand(3, 16, 16)
    quantise = fit_patch_kmeans([x], patch=8, k=4, iters=5)  # 4 patches, 4 centroids
    assert torch.allclose(quantise(x), x, atol=1e-5)


def test_patch_kmeans_fits_more_codes_than_tiles_on_half_patch_steps():
    x = torch.rand(3, 16, 16)  # 4 tiles of 8x8, 9 patches at steps of 4
    quantise = fit_patch_kmeans([x], patch=8, k=9, iters=5)
    assert quantise(x).shape == x.shape and torch.allclose(quantise(x), x, atol=1e-5)  # the tiles are among them
    with pytest.raises(ValueError, match="needs at least 10 points, got 9"):
        fit_patch_kmeans([x], patch=8, k=10, iters=5)


def test_a_multimodal_folder_gives_its_media_tokenizers(tmp_path, text_tok):
    img = _image_tok()
    mm = MultimodalTokenizer({"text": text_tok, "image": img})
    mm.save_pretrained(tmp_path / "set")
    toks = load_tokenizers(tmp_path / "set")
    assert [modality_of(t) for t in toks.values()] == ["image"]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/config.json").write_text(json.dumps({"class": "pathlib.Path", "settings": {}}))
    with pytest.raises(ValueError, match="not a tokenizer mmtok can evaluate"):
        load_tokenizers(tmp_path / "bad")


@pytest.mark.slow
def test_evaluate_end_to_end_on_the_samples(compose, tmp_path):
    """Image, audio and video tokenizers against k-means, JPEG, WebP, Opus and H.264 in one run."""
    _image_tok().save_pretrained(tmp_path / "image")
    torch.manual_seed(0)
    SpectrogramTokenizer.from_configs(MelVQConfig(channels=[8, 16, 16], z_dim=16, band_channels=4, groups=4),
                                      QuantizerConfig(kind="vq", codebook_size=32),
                                      MelConfig(n_mels=32, griffin_lim_iters=4)).save_pretrained(tmp_path / "audio")
    VideoTokenizer.per_frame(_image_tok()).save_pretrained(tmp_path / "video")
    cfg = compose(["task=evaluate", f"task.tokenizers=[{tmp_path}/image,{tmp_path}/audio,{tmp_path}/video]",
                   "task.max_items=2", "task.image_size=64", "task.rates.image=[3.0]", "task.rates.audio=[12000]",
                   "task.rates.video=[0.1]", "show_progress=false"])
    out = tmp_path / "run"
    metrics = run_task(cfg, out)
    rows = json.loads((out / "evaluation.json").read_text())
    images = {r["name"]: r for r in rows["image"]}
    tok_row = next(r for r in rows["image"] if r["kind"] == "tokenizer")
    assert tok_row["bits_per_pixel"] == pytest.approx(math.log2(64) / 64)  # f8, 64 codes
    assert tok_row["items"] == 2 and tok_row["lpips"] == "not computed (set eval.lpips_weights)"
    assert {"k-means 8x8 patches", "JPEG", "WEBP"} <= set(images)
    jpeg = [r for r in rows["image"] if r["name"] == "JPEG"]
    assert len(jpeg) == 2 and all(r["psnr"] > 10 for r in jpeg)
    by_rate = sorted(jpeg, key=lambda r: r["bits_per_pixel"])
    assert by_rate[0]["psnr"] < by_rate[1]["psnr"]  # more bits, less distortion
    audio = rows["audio"]
    assert any(r["name"] == "Opus" and r["pesq"] > 1 for r in audio)
    tok_audio = next(r for r in audio if r["kind"] == "tokenizer")
    assert {"pesq", "stoi", "si_sdr", "mel_distance", "stft_distance", "bits_per_second"} <= set(tok_audio)
    assert any(r["name"] == "H.264" for r in rows["video"])
    for name in ("metrics.md", "rd_image_psnr.png", "rd_audio_pesq.png", "rd_video_psnr.png"):
        assert (out / name).stat().st_size > 100, name
    assert "| JPEG |" in (out / "metrics.md").read_text()
    assert any(k.startswith("image/") and k.endswith("/psnr") for k in metrics)


def test_evaluate_val_fractions_mirror_the_training_tasks(compose):
    cfg = compose(["task=evaluate"])
    for modality, task in (("image", "image"), ("audio", "audio_spectrogram"), ("video", "video")):
        assert cfg.task.val_fraction[modality] == compose([f"task={task}"]).task.val_fraction, modality


def test_evaluate_needs_a_tokenizer(compose, tmp_path):
    with pytest.raises(ValueError, match="task=evaluate needs task.tokenizer"):
        run_task(compose(["task=evaluate"]), tmp_path)
    assert (REPO / "conf/eval/default.yaml").is_file()


def test_training_validation_logs_the_evaluation_metrics(tmp_path, samples):
    """8-bit PSNR per image as task=evaluate computes it, and LPIPS when the trainer is given weights."""
    import torchvision

    from modalities.data.io import load_image
    from modalities.eval.metrics import psnr8
    from modalities.training.trainer import TrainerConfig, VQTrainer

    torch.save(torchvision.models.alexnet(weights=None).state_dict(), tmp_path / "alexnet.pth")
    tok = _image_tok()
    cfg = TrainerConfig(max_steps=1, device="cpu", tensorboard=False)
    x = load_image(samples / "images/coffee.png")[:, :64, :64][None]
    plain = VQTrainer(tok.model, cfg, tmp_path / "a").validate([x])
    with_lpips = VQTrainer(tok.model, cfg, tmp_path / "b", lpips=LPIPSMetric(tmp_path / "alexnet.pth")).validate([x])
    assert "val_lpips" not in plain and with_lpips["val_lpips"] > 0
    assert plain["val_psnr"] == pytest.approx(float(psnr8(tok.decode(tok.encode(x)), x)[0]), abs=1e-4)


def test_codec_rows_at_the_same_actual_rate_appear_once():
    from modalities.tasks.evaluate import distinct

    rows = [{"name": "t", "kind": "tokenizer", "bits_per_pixel": 0.1}, {"name": "t", "kind": "tokenizer", "bits_per_pixel": 0.1},
            {"name": "JPEG", "kind": "baseline", "bits_per_pixel": 0.24}, {"name": "JPEG", "kind": "baseline",
                                                                            "bits_per_pixel": 0.24},
            {"name": "JPEG", "kind": "baseline", "bits_per_pixel": 0.5}]
    assert [r["bits_per_pixel"] for r in distinct(rows, "bits_per_pixel")] == [0.1, 0.1, 0.24, 0.5]
