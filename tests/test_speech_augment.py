"""The vocoder's training-speech augmentation (``modalities/data/speech_augment.py``): each step does what it says,
at its zero setting nothing changes, and ``task=vocoder`` trains with it."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from modalities.data.speech_augment import AugmentConfig, AugmentedCrops, SpeechAugment
from modalities.tasks import run_task

SR = 16000


def _speech(n: int = SR, seed: int = 0) -> torch.Tensor:
    """A voiced-like test signal: harmonics of 150 Hz up to 7 kHz, level about -20 dBFS."""
    t = torch.arange(n) / SR
    g = torch.Generator().manual_seed(seed)
    phases = torch.rand(46, generator=g) * 2 * math.pi
    return sum(torch.sin(2 * math.pi * 150 * (k + 1) * t + phases[k]) for k in range(46)) * 0.1 / math.sqrt(23)


def _band_energy(w: torch.Tensor, lo: float, hi: float) -> float:
    spec = torch.fft.rfft(w).abs().pow(2)
    f = torch.fft.rfftfreq(len(w), 1 / SR)
    return float(spec[(f >= lo) & (f < hi)].sum())


def _rms(w: torch.Tensor) -> float:
    return float(w.pow(2).mean().sqrt())


def test_off_is_the_identity():
    w = _speech()
    assert not AugmentConfig().active
    assert torch.equal(SpeechAugment(AugmentConfig(), SR)(w), w)


@settings(max_examples=20, deadline=None)
@given(speed=st.floats(0.01, 0.3), seed=st.integers(0, 2**16))
def test_speed_changes_length_by_a_factor_in_range(speed, seed):
    torch.manual_seed(seed)
    w = _speech(8000)
    out = SpeechAugment(AugmentConfig(speed=speed), SR)(w)
    assert len(w) / (1 + speed) - 200 <= len(out) <= len(w) / (1 - speed) + 200  # 50 -> round(50 / f)


def test_gain_stays_within_its_range_and_never_clips():
    w = _speech()
    for seed in range(10):
        torch.manual_seed(seed)
        out = SpeechAugment(AugmentConfig(gain_db=6.0), SR)(w)
        ratio_db = 20 * math.log10(_rms(out) / _rms(w))
        assert -6.01 <= ratio_db <= 6.01 and float(out.abs().max()) <= 1.0


def test_narrowband_removes_the_band_above_4_khz():
    w = _speech()
    out = SpeechAugment(AugmentConfig(narrowband=1.0), SR)(w)
    assert len(out) == len(w)
    assert _band_energy(out, 4500, 8000) < 1e-2 * _band_energy(w, 4500, 8000)  # 20 dB down at least
    assert _band_energy(out, 300, 3500) == pytest.approx(_band_energy(w, 300, 3500), rel=0.05)


def test_noise_is_light():
    w = _speech()
    for seed in range(5):
        torch.manual_seed(seed)
        snr = 20 * math.log10(_rms(w) / _rms(SpeechAugment(AugmentConfig(noise=1.0), SR)(w) - w))
        assert 19 < snr < 41


def test_reverb_keeps_the_level_and_smears_the_signal():
    w = torch.zeros(SR)
    w[1000:1160] = _speech(160)  # a 10 ms burst: reverberation leaves a tail after it
    torch.manual_seed(0)
    out = SpeechAugment(AugmentConfig(reverb=1.0), SR)(w)
    assert len(out) == len(w) and _rms(out) == pytest.approx(_rms(w), rel=1e-3)
    assert _rms(out[2000:3000]) > 0.01 * _rms(w[1000:1160]) and float(w[2000:3000].abs().max()) == 0


def test_augmented_crops_fill_their_length():
    crops = AugmentedCrops([_speech(3 * SR)], SR, AugmentConfig(speed=0.2, noise=0.5, reverb=0.5), SR,
                           samples_per_epoch=16)
    for i in range(16):
        x = crops[i]
        assert x.shape == (SR,) and float(x[-100:].abs().max()) > 0  # no silence padded at the end


@pytest.mark.parametrize("bad", [{"speed": 0.5}, {"gain_db": -1.0}, {"noise": 1.5}, {"reverb": -0.1}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError, match="augment"):
        AugmentConfig(**bad)


def test_vocoder_task_trains_with_augmentation(compose, tmp_path):
    cfg = compose(["experiment=vocoder_debug", "task.max_steps=4", "trainer.val_every=4", "task.augment.speed=0.1",
                   "task.augment.gain_db=6", "task.augment.narrowband=0.5", "task.augment.noise=0.5",
                   "task.augment.reverb=0.5"])
    m = run_task(cfg, tmp_path)
    assert m["steps"] == 4 and math.isfinite(m["heldout_vocoder_stoi"]) and (tmp_path / "vocoder").is_dir()
    with pytest.raises(ValueError, match="augment.noise"):
        run_task(compose(["experiment=vocoder_debug", "task.augment.noise=2"]), tmp_path / "bad")


def test_vocoder_augment_benchmark_runs_each_recipe_and_tables_the_wins(tmp_path, monkeypatch):
    """``benchmarks/vocoder_augment.py`` runs ``task=vocoder`` once per recipe and seed with exactly the recipe's
    overrides (and ``+task.split=validation`` only on that split), and counts a group as won only when the vocoder
    beats Griffin-Lim in both PESQ and STOI."""
    from .conftest import benchmark

    bench = benchmark("vocoder_augment")
    seen = []

    def fake_stage(cfg, runs, name, overrides):
        seen.append((name, overrides, cfg.seed))
        speed = 0.1 if "task.augment.speed=0.1" in overrides else 0.0
        return {"train_seconds": 1.0, "heldout_klettres_clips": 11,
                "heldout_vocoder_pesq": 1.7 + speed, "heldout_vocoder_stoi": 0.90,
                "heldout_griffin_lim_pesq": 1.75, "heldout_griffin_lim_stoi": 0.89,
                "heldout_klettres_vocoder_pesq": 1.6, "heldout_klettres_vocoder_stoi": 0.85 + speed,
                "heldout_klettres_griffin_lim_pesq": 1.5, "heldout_klettres_griffin_lim_stoi": 0.87}

    monkeypatch.setattr(bench, "run_stage", fake_stage)
    rows = [bench.run_recipe(r, 2, "validation", tmp_path) for r in ("", "task.augment.speed=0.1 task.max_steps=4000")]
    assert seen == [("validation_default_s2", ["task=vocoder", "seed=2", "+task.split=validation"], 2),
                    ("validation_speed=0.1_max_steps=4000_s2", ["task=vocoder", "seed=2", "+task.split=validation",
                                                                "task.augment.speed=0.1", "task.max_steps=4000"], 2)]
    assert bench.run_recipe("", 0, "heldout", tmp_path)["run"] == "heldout_default_s0"
    assert "+task.split=validation" not in seen[-1][1]
    assert [bench.wins(r) for r in rows] == [[], ["all", "klettres"]]
    md = bench.markdown(rows)
    assert "| vocoder, `(defaults)` | 2 | 1.70 / 0.900 | 1.60 / 0.850 | none |" in md
    assert "| vocoder, `task.augment.speed=0.1 task.max_steps=4000` | 2 | 1.80 / 0.900 | 1.60 / 0.950 | all, klettres |" in md
    assert "| Griffin-Lim | 2 | 1.75 / 0.890 | 1.50 / 0.870 | |" in md
    png = bench.plot(rows, tmp_path / "fig/bars.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(png.parent.glob("*.tmp"))
