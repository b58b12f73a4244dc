"""Audio metrics on a bundled speech clip: perfect against itself, and what a 5 dB noise does to each."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from modalities.data.io import load_audio
from modalities.eval.audio_metrics import audio_metrics, mel_distance, pesq_wb, si_sdr, stft_distance, stoi


@pytest.fixture(scope="module")
def clip(samples) -> tuple[torch.Tensor, int]:
    wave, sr = load_audio(samples / "audio/speech_000.flac")
    return wave[0], sr


def noisy_copy(wave: torch.Tensor, snr_db: float, seed: int = 0) -> torch.Tensor:
    """``wave`` plus white noise orthogonal to it at exactly ``snr_db``: its SI-SDR is ``snr_db``."""
    s = wave.double()
    n = torch.randn(len(s), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    n = n - (n @ s) / (s @ s) * s
    return (s + n * s.norm() / n.norm() / 10 ** (snr_db / 20)).float()


@pytest.fixture(scope="module")
def clean_and_noisy(clip):
    wave, sr = clip
    noisy = noisy_copy(wave, 5.0)
    return audio_metrics(wave, wave, sr), audio_metrics(noisy, wave, sr), noisy


def test_a_clip_against_itself_is_perfect(clean_and_noisy):
    same, _, _ = clean_and_noisy
    assert same["pesq"] == pytest.approx(4.64, abs=0.01)
    assert same["stoi"] == pytest.approx(1.0, abs=1e-6)
    assert same["si_sdr"] > 100
    assert same["mel_distance"] == 0 and same["stft_distance"] == pytest.approx(0, abs=1e-6)
    assert set(same) == {"pesq", "stoi", "si_sdr", "mel_distance", "stft_distance", "seconds"}


def test_noise_at_5_db_lowers_every_score(clean_and_noisy):
    same, noisy, _ = clean_and_noisy
    assert noisy["si_sdr"] == pytest.approx(5.0, abs=1e-3)  # noise orthogonal to the clip: SI-SDR is the SNR
    assert noisy["pesq"] < same["pesq"] - 1 and noisy["stoi"] < same["stoi"] - 0.02
    assert noisy["mel_distance"] > 1 and noisy["stft_distance"] > 0.1


def test_single_metrics_agree_and_trim(clip, clean_and_noisy):
    wave, sr = clip
    _, noisy_row, noisy = clean_and_noisy
    assert si_sdr(noisy, wave) == pytest.approx(noisy_row["si_sdr"])
    assert mel_distance(noisy, wave, sr) == pytest.approx(noisy_row["mel_distance"])
    assert stft_distance(noisy[None], wave[None]) == pytest.approx(noisy_row["stft_distance"])  # [1, T] accepted
    longer = torch.cat([noisy, torch.zeros(500)])
    assert audio_metrics(longer, wave, sr)["si_sdr"] == pytest.approx(noisy_row["si_sdr"])  # trimmed to T


def test_resampling_for_pesq(clip):
    import torchaudio.functional as AF

    wave, sr = clip
    up = AF.resample(wave, sr, 24_000)
    assert pesq_wb(up, up, 24_000) == pytest.approx(4.64, abs=0.01)


def test_clear_errors(clip):
    wave, sr = clip
    with pytest.raises(ValueError, match="lengths differ"):
        si_sdr(wave[:-1], wave)
    with pytest.raises(ValueError, match="too short"):
        pesq_wb(wave[:2000], wave[:2000], sr)
    with pytest.raises(ValueError, match="too short"):
        stoi(wave[:3000], wave[:3000], sr)
    with pytest.raises(ValueError, match="too short"):
        stft_distance(wave[:800], wave[:800])
    with pytest.raises(ValueError, match="sample_rate"):
        mel_distance(wave, wave, 0)
    with pytest.raises(ValueError, match="mono"):
        si_sdr(torch.stack([wave, wave]), torch.stack([wave, wave]))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), length=st.integers(1100, 6000), grad=st.booleans())
def test_magnitude_stft_loss_equals_auraloss(seed, length, grad):
    """The phase-free multi-resolution STFT loss (modalities/eval/stft_loss.py) gives auraloss' values and
    gradients, at its defaults and at the vocoder's resolutions."""
    import auraloss

    from modalities.eval.stft_loss import MagnitudeSTFTLoss, multi_resolution_stft_loss

    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(2, 1, length, generator=g), torch.randn(2, 1, length, generator=g)
    for kwargs in ({}, {"fft_sizes": [256, 512, 1024], "hop_sizes": [64, 128, 256], "win_lengths": [256, 512, 1024]}):
        ours, theirs = multi_resolution_stft_loss(**kwargs), auraloss.freq.MultiResolutionSTFTLoss(**kwargs)
        assert all(type(m) is MagnitudeSTFTLoss for m in ours.stft_losses)
        a, b = x.clone().requires_grad_(grad), x.clone().requires_grad_(grad)
        la, lb = ours(a, y), theirs(b, y)
        assert torch.equal(la, lb)
        if grad:
            la.backward()
            lb.backward()
            assert torch.equal(a.grad, b.grad)
    assert multi_resolution_stft_loss(w_phs=1.0)(x, y) == auraloss.freq.MultiResolutionSTFTLoss(w_phs=1.0)(x, y)
