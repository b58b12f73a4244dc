"""Audio input: reading files, shapes and dtypes, resampling, normalisation, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from modalities.data.io import load_audio
from modalities.data.waveform import AudioInputConfig, check_sample_rate, prepare_audio

CFG = AudioInputConfig(sample_rate=16000)


def _wav(path, x: np.ndarray, sr: int = 16000):
    sf.write(str(path), x, sr, subtype="PCM_16")
    return path


def test_load_sample_flac(samples):
    x, sr = load_audio(samples / "audio/speech_000.flac")
    assert sr == 16000 and x.ndim == 2 and x.shape[0] == 1 and x.dtype == torch.float32
    assert x.shape[1] == sf.info(str(samples / "audio/speech_000.flac")).frames
    assert 0.5 < float(x.abs().max()) <= 1.0


def test_bad_files_name_the_file(tmp_path, samples):
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        load_audio(tmp_path / "nope.wav")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all" * 10)
    with pytest.raises(ValueError, match="junk.wav"):
        load_audio(tmp_path / "junk.wav")
    data = (samples / "audio/speech_001.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.flac"):
        load_audio(tmp_path / "cut.flac")
    full = _wav(tmp_path / "full.wav", np.zeros(16000, dtype=np.float32)).read_bytes()
    (tmp_path / "cut.wav").write_bytes(full[: len(full) // 2])
    with pytest.raises(ValueError, match="cut.wav is truncated"):
        load_audio(tmp_path / "cut.wav")
    _wav(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32))
    with pytest.raises(ValueError, match="empty.wav holds no samples"):
        load_audio(tmp_path / "empty.wav")


def test_shapes_dtypes_and_channels():
    x = torch.rand(2, 3, 800) * 2 - 1
    assert prepare_audio(x, CFG, 16000).shape == (2, 1, 800)
    assert torch.allclose(prepare_audio(x, CFG, 16000), x.mean(1, keepdim=True))
    assert torch.equal(prepare_audio(x, AudioInputConfig(mono=False), 16000), x)
    assert prepare_audio(x[0], CFG, 16000).shape == (1, 1, 800)
    assert prepare_audio(x[0, 0], CFG, 16000).shape == (1, 1, 800)
    assert prepare_audio(x[0].numpy(), CFG, 16000).shape == (1, 1, 800)
    ints = torch.tensor([[-32768, 0, 16384]], dtype=torch.int16)
    assert prepare_audio(ints, CFG, 16000).flatten().tolist() == [-1.0, 0.0, 0.5]
    assert prepare_audio([x[0], x[1]], CFG, 16000).shape == (2, 1, 800)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="zero-length"):
        prepare_audio(torch.zeros(1, 0), CFG, 16000)
    with pytest.raises(ValueError, match="NaN or inf"):
        prepare_audio(torch.tensor([0.0, float("nan")]), CFG, 16000)
    with pytest.raises(ValueError, match="audio 1: contains NaN or inf"):
        prepare_audio([torch.zeros(10), torch.tensor([float("inf")] * 10)], CFG, 16000)
    with pytest.raises(ValueError, match="pass sample_rate"):
        prepare_audio(torch.zeros(100), CFG)
    with pytest.raises(ValueError, match=r"\[B, C, T\]"):
        prepare_audio(torch.zeros(1, 1, 1, 10), CFG, 16000)
    with pytest.raises(ValueError, match="share channels and length"):
        prepare_audio([torch.zeros(100), torch.zeros(90)], CFG, 16000)
    with pytest.raises(ValueError, match="unsupported sample dtype"):
        prepare_audio(torch.zeros(10, dtype=torch.int64), CFG, 16000)
    with pytest.raises(TypeError, match="dict"):
        prepare_audio({"a": 1}, CFG, 16000)
    with pytest.raises(ValueError, match="empty list"):
        prepare_audio([], CFG, 16000)


@pytest.mark.parametrize("bad", [0, -16000, 44100.5, "16k", True, 10**7, None])
def test_unsupported_sample_rates(bad):
    with pytest.raises(ValueError, match="sample_rate"):
        check_sample_rate(bad)
    with pytest.raises(ValueError, match="sample_rate"):
        prepare_audio(torch.zeros(100), CFG, bad)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([8000, 11025, 16000, 22050, 24000, 44100, 48000]), st.integers(1, 3000))
def test_resampled_length(sr, n):
    out = prepare_audio(torch.rand(1, n) - 0.5, CFG, sr)
    assert out.shape == (1, 1, math.ceil(n * 16000 / sr))


def test_resampling_keeps_pitch_and_identity():
    x = torch.rand(1, 1000) - 0.5
    assert torch.equal(prepare_audio(x, CFG, 16000)[0], x)  # same rate: untouched
    t = torch.arange(44100) / 44100
    tone = torch.sin(2 * math.pi * 440 * t)
    out = prepare_audio(tone, CFG, 44100)[0, 0]
    assert out.shape == (16000,)
    assert int(torch.fft.rfft(out).abs().argmax()) == 440  # 1 s at 16 kHz: bin k is k Hz


def test_peak_and_loudness_normalisation():
    import torchaudio.functional as AF

    g = torch.Generator().manual_seed(0)
    x = (torch.rand(1, 2, 32000, generator=g) - 0.5) * 0.1
    peak = prepare_audio(x, AudioInputConfig(normalize="peak", peak=0.5, mono=False), 16000)
    assert float(peak.abs().max()) == pytest.approx(0.5)
    loud = prepare_audio(x, AudioInputConfig(normalize="loudness", loudness_lufs=-23.0), 16000)
    assert float(AF.loudness(loud[0], 16000)) == pytest.approx(-23.0, abs=0.2)
    silent = torch.zeros(1, 16000)
    assert torch.equal(prepare_audio(silent, AudioInputConfig(normalize="loudness"), 16000)[0], silent)
    short = prepare_audio(x[..., :1000], AudioInputConfig(normalize="loudness", peak=0.9), 16000)
    assert float(short.abs().max()) == pytest.approx(0.9)  # too short for BS.1770: peak instead
    with pytest.raises(ValueError, match="normalize mode"):
        prepare_audio(x, AudioInputConfig(normalize="rms"), 16000)
