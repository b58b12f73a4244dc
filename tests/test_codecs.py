"""Classical codecs at a bit budget: more bits, better quality; the actual rate near the target; aligned audio."""

from __future__ import annotations

import pytest
import torch

from modalities.data.io import load_audio, load_image, load_video
from modalities.eval.codecs import (
    h264_at_bpp,
    h264_baseline,
    image_at_bpp,
    image_codec_baseline,
    jpeg_at_bpp,
    opus_at_bitrate,
    opus_baseline,
    webp_at_bpp,
)
from modalities.eval.metrics import psnr8
from modalities.eval.perceptual import LPIPS_NOT_COMPUTED, LPIPSMetric

IMAGE_RATE_FACTOR = 1.5  # JPEG/WebP land within this factor of the target (256x256 photographs, 0.5-2 bpp)
OPUS_RATE_FACTOR = 1.25  # constrained VBR
H264_RATE_FACTOR = 1.5


@pytest.fixture(scope="module")
def image(samples) -> torch.Tensor:
    return load_image(samples / "images/astronaut.png")


@pytest.fixture(scope="module")
def speech(samples) -> tuple[torch.Tensor, int]:
    wave, sr = load_audio(samples / "audio/speech_000.flac")
    return wave[0], sr


@pytest.fixture(scope="module")
def video(samples) -> torch.Tensor:
    return load_video(samples / "video/bikes.mp4", max_frames=10)


def _within(actual: float, target: float, factor: float) -> bool:
    return target / factor <= actual <= target * factor


@pytest.mark.parametrize("code", [jpeg_at_bpp, webp_at_bpp])
def test_image_codecs_more_bits_better(image, code):
    (low, low_bpp), (high, high_bpp) = code(image, 0.5), code(image, 2.0)
    assert low.shape == high.shape == image.shape
    assert high_bpp > low_bpp
    assert psnr8(high, image) > psnr8(low, image)
    assert _within(low_bpp, 0.5, IMAGE_RATE_FACTOR) and _within(high_bpp, 2.0, IMAGE_RATE_FACTOR)


def test_image_at_bpp_is_the_nearest_quality(image):
    """Bisection finds what an exhaustive scan would: no quality lands nearer the target."""
    import io

    from PIL import Image

    coded = image_at_bpp(image, 1.0, "jpeg")
    arr = (image * 255).round().byte().permute(1, 2, 0).numpy()
    sizes = {}
    for q in range(1, 96):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=q)
        sizes[q] = 8 * buf.tell() / (256 * 256)
    assert coded.rate == sizes[coded.setting]
    assert abs(coded.rate - 1.0) == min(abs(s - 1.0) for s in sizes.values())
    with pytest.raises(ValueError, match="unknown image codec"):
        image_at_bpp(image, 1.0, "png")
    with pytest.raises(ValueError, match=r"\[3, H, W\]"):
        jpeg_at_bpp(image[0], 1.0)
    with pytest.raises(ValueError, match="bpp"):
        webp_at_bpp(image, 0)


def test_image_codec_baseline(image):
    crops = [image[:, :128, :128], image[:, 128:, 128:][None]]
    out = image_codec_baseline(crops, 1.0, codec="webp", lpips=LPIPSMetric(None))
    assert out["codec"] == "webp" and out["items"] == 2 and out["lpips"] == LPIPS_NOT_COMPUTED
    assert 15 < out["psnr"] < 60 and 0 < out["ssim"] <= 1 and _within(out["bits_per_pixel"], 1.0, 2)
    assert "lpips" not in image_codec_baseline(crops, 1.0)


def test_opus_more_bits_better_and_aligned(speech):
    from modalities.eval.audio_metrics import si_sdr

    wave, sr = speech
    (low, low_bps), (high, high_bps) = opus_at_bitrate(wave, sr, 8000), opus_at_bitrate(wave, sr, 64000)
    assert low.shape == high.shape == wave.shape
    assert high_bps > low_bps
    assert _within(low_bps, 8000, OPUS_RATE_FACTOR) and _within(high_bps, 64000, OPUS_RATE_FACTOR)
    assert si_sdr(high, wave) > 20 > si_sdr(low, wave)  # a delay of even a few samples caps SI-SDR far lower
    lags = range(-50, 51)
    corr = torch.stack([(torch.roll(high, k) * wave).sum() for k in lags])
    assert abs(lags[int(corr.argmax())]) <= 1
    with pytest.raises(ValueError, match="500 to 256000"):
        opus_at_bitrate(wave, sr, 100)
    with pytest.raises(ValueError, match=r"mono waveform \[T\]"):
        opus_at_bitrate(torch.stack([wave, wave]), sr, 8000)


def test_opus_at_a_rate_opus_does_not_take(speech):
    import torchaudio.functional as AF

    from modalities.eval.audio_metrics import si_sdr

    wave, sr = speech
    w = AF.resample(wave[: sr * 2], sr, 22_050)
    recon, _ = opus_at_bitrate(w, 22_050, 64000)
    assert recon.shape == w.shape and si_sdr(recon, w) > 15


def test_opus_baseline(speech):
    wave, sr = speech
    out = opus_baseline([wave, wave[None, : sr * 2]], sr, 16000)
    assert out["clips"] == 2 and _within(out["bits_per_second"], 16000, OPUS_RATE_FACTOR)
    assert 1 < out["pesq"] < 4.64 and 0 < out["stoi"] < 1


def test_h264_more_bits_better(video):
    (low, low_bpp), (high, high_bpp) = h264_at_bpp(video, 10, 0.05), h264_at_bpp(video, 10, 0.5)
    assert low.shape == high.shape == video.shape
    assert high_bpp > low_bpp
    assert psnr8(high, video).mean() > psnr8(low, video).mean()
    assert _within(low_bpp, 0.05, H264_RATE_FACTOR) and _within(high_bpp, 0.5, H264_RATE_FACTOR)


def test_h264_odd_sizes_are_padded_and_cropped(video):
    odd = video[:4, :, :63, :65]
    recon, bpp = h264_at_bpp(odd, 10, 1.0)
    assert recon.shape == odd.shape and psnr8(recon, odd).mean() > 30 and bpp > 0
    with pytest.raises(ValueError, match=r"\[T, 3, H, W\]"):
        h264_at_bpp(video[0], 10, 1.0)


def test_h264_baseline(video):
    out = h264_baseline([video[:5], video[5:]], fps=10, bpp=0.3)
    assert out["codec"] == "h264" and out["videos"] == 2
    assert out["psnr"] > 25 and out["temporal_error"] > 0 and _within(out["bits_per_pixel"], 0.3, 2)
