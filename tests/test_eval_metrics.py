"""Per-image PSNR/SSIM conventions, bits per pixel, video metrics and the rate-distortion plot."""

from __future__ import annotations

import math

import pytest
import torch

from modalities.data.io import load_image, load_video
from modalities.eval.metrics import PSNR_CAP_DB, bits_per_pixel, psnr8, quantize8, ssim_per_image, video_metrics
from modalities.eval.rd import plot_rate_distortion


@pytest.fixture(scope="module")
def pair(samples) -> torch.Tensor:
    """Two sample photographs ``[2, 3, 64, 64]``."""
    imgs = [load_image(samples / f"images/{n}.png") for n in ("astronaut", "coffee")]
    return torch.nn.functional.interpolate(torch.stack(imgs), size=64, mode="area")


def test_psnr8_per_image_with_the_8bit_convention(pair):
    noisy = (pair + 0.05 * torch.randn(pair.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    out = psnr8(noisy, pair)
    assert out.shape == (2,)
    for i in range(2):  # by hand: quantise both, MSE of that image alone, data range 1
        mse = (quantize8(noisy[i]) - quantize8(pair[i])).square().mean()
        assert out[i].item() == pytest.approx(-10 * math.log10(mse.item()), abs=1e-4)
    mixed = torch.stack([noisy[0], pair[1] + 0.004])  # one bad, one nearly perfect image
    pooled = -10 * math.log10((quantize8(mixed) - quantize8(pair)).square().mean().item())
    assert psnr8(mixed, pair).mean().item() > pooled + 5  # the mean of per-image PSNRs, not the PSNR of pooled MSE
    assert psnr8(noisy[0], pair[0]).shape == (1,)  # a single [3, H, W] image


def test_psnr8_identical_and_sub_quantum_differences_cap_at_100_db(pair):
    assert torch.all(psnr8(pair, pair) == PSNR_CAP_DB) and PSNR_CAP_DB == 100.0
    tiny = quantize8(pair) + 0.4 / 255  # rounds back to the same 8-bit values
    assert torch.all(psnr8(tiny, pair) == PSNR_CAP_DB)
    assert torch.all(psnr8(pair.clamp(0, 1) * 1.5, pair) < PSNR_CAP_DB)  # out-of-range values are clamped first


def test_psnr8_and_ssim_refuse_bad_shapes(pair):
    with pytest.raises(ValueError, match="shapes differ"):
        psnr8(pair[:1], pair)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        psnr8(pair[0, 0], pair[0, 0])
    with pytest.raises(ValueError, match="11x11"):
        ssim_per_image(pair[..., :8, :8], pair[..., :8, :8])


def test_ssim_per_image(pair):
    out = ssim_per_image(pair, pair)
    assert out.shape == (2,) and torch.allclose(out, torch.ones(2), atol=1e-5)
    blurred = torch.nn.functional.avg_pool2d(pair, 3, stride=1, padding=1, count_include_pad=False)
    worse = ssim_per_image(blurred, pair)
    assert torch.all(worse < 0.99) and torch.all(worse > 0)


def test_bits_per_pixel():
    assert bits_per_pixel(32 * 32, 10, 256, 256) == pytest.approx(10 / 64)  # f8, 1024 codes
    assert bits_per_pixel(16 * 16 * 2, math.log2(4096), 256, 256) == pytest.approx(12 * 2 / 256)
    with pytest.raises(ValueError, match="positive"):
        bits_per_pixel(10, 10, 0, 256)
    with pytest.raises(ValueError, match="non-negative"):
        bits_per_pixel(-1, 10, 16, 16)


def test_video_metrics_identical_and_frozen(samples):
    video = load_video(samples / "video/bikes.mp4", max_frames=6)
    same = video_metrics(video, video)
    assert same["psnr"] == PSNR_CAP_DB and same["ssim"] == pytest.approx(1.0, abs=1e-5)
    assert same["temporal_error"] == 0.0 and same["frames"] == 6
    frozen = video[:1].expand_as(video)  # the first frame held: each later frame is wrong *and* motion is lost
    out = video_metrics(frozen, video)
    assert out["temporal_error"] > 0 and out["psnr"] < PSNR_CAP_DB
    manual = (video[1:] - video[:-1]).abs().mean()  # a frozen video has zero frame differences
    assert out["temporal_error"] == pytest.approx(float(manual), rel=1e-5)
    assert video_metrics(video[:1], video[:1])["temporal_error"] == 0.0
    with pytest.raises(ValueError, match=r"\[T, 3, H, W\]"):
        video_metrics(video[0], video[0])


def test_rate_distortion_plot(tmp_path):
    points = [{"name": "vq", "bits_per_pixel": 0.15, "psnr": 24.0, "lpips": 0.3},
              {"name": "jpeg", "bits_per_pixel": 1.0, "psnr": 30.0, "lpips": "not computed (set eval.lpips_weights)"},
              {"name": "jpeg", "bits_per_pixel": 0.3, "psnr": 25.0, "lpips": "not computed (set eval.lpips_weights)"},
              {"name": "vq", "bits_per_pixel": 0.6, "psnr": torch.tensor(27.0), "lpips": 0.2}]
    for y in ("psnr", "lpips"):
        path = plot_rate_distortion(points, "bits_per_pixel", y, tmp_path / f"rd_{y}.png", title="test")
        assert path.is_file() and path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(ValueError, match="no 'name'"):
        plot_rate_distortion([{"bits_per_pixel": 1, "psnr": 2}], "bits_per_pixel", "psnr", tmp_path / "x.png")
