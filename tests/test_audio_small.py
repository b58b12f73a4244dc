"""``experiment=audio_small`` (issue 25, item 3): 2 kbit/s spectrogram tokens. Its rate and shapes, a short
training run, the table ``benchmarks/audio_small.py`` writes, and, with ``MMTOK_LONG_TESTS=1``, the headline on
held-out speakers through the learned vocoder."""

from __future__ import annotations

import os

import pytest
import torch

from modalities.audio import SpectrogramTokenizer
from modalities.tasks import run_task
from modalities.tasks.vq import quantizer_config

from .conftest import benchmark

audio_small = benchmark("audio_small")


def test_audio_small_codes_50_steps_a_second_of_4_codes_from_1024(compose):
    """f2 over the 100 Hz log-mel: 50 tokens/s x 4 residual codebooks x 10 bits = 2000 bits/s, and a round trip
    keeps the clip's length."""
    from omegaconf import OmegaConf

    cfg = compose(["experiment=audio_small"])
    tcfg = OmegaConf.to_object(cfg.tokenizer.audio)
    tok = SpectrogramTokenizer.from_configs(tcfg.autoencoder, quantizer_config(cfg), tcfg.mel, tcfg.audio)
    assert tok.frame_rate == 50 and tok.num_codebooks == 4 and tok.codebook_size == 1024
    assert tok.bits_per_second == 2000 and tok.samples_per_token == 320
    wave = torch.randn(1, 16000) * 0.1
    codes = tok.encode(wave, sample_rate=16000)
    assert codes.shape == (1, 4, 50) and codes.dtype == torch.long and int(codes.max()) < 1024
    assert tok.decode(codes, vocoder="griffin_lim").shape == (1, 16000)
    # 8 clips of 1.28 s give 512 vectors a batch for 1024 codes: the threshold must follow the batch
    assert cfg.quantizer.dead_code_share > 0


def test_audio_small_trains_and_reports_its_rate(compose, tmp_path):
    cfg = compose(["experiment=audio_small", "trainer.max_steps=3", "trainer.val_every=3", "trainer.tensorboard=false",
                   "task.val_seconds=1.28", "task.baseline=false", "tokenizer.audio.mel.griffin_lim_iters=4"])
    m = run_task(cfg, tmp_path)
    assert m["tokens_per_second"] == 50 and m["bits_per_second"] == 2000 and m["num_codebooks"] == 4
    assert 0 < m["val_usage"] <= 1 and m["val_mel_l1_db"] > 0
    tok = SpectrogramTokenizer.from_pretrained(tmp_path / "tokenizer/audio")
    assert tok.encode(torch.zeros(1, 1, 3200), sample_rate=16000).shape == (1, 4, 10)


def _scores(pesq: float, stoi: float) -> dict:
    return {"all": {"pesq": pesq, "stoi": stoi}, "ktuberling": {"pesq": pesq - 0.1, "stoi": stoi - 0.01}}


def test_scores_and_markdown_table():
    metrics = {"heldout_ktuberling_clips": 12, "heldout_tokens_vocoder_pesq": 1.6, "heldout_tokens_vocoder_stoi": 0.82,
               "heldout_ktuberling_tokens_vocoder_pesq": 1.5, "heldout_ktuberling_tokens_vocoder_stoi": 0.81}
    assert audio_small._collections(metrics) == ["ktuberling"]
    assert audio_small._scores(metrics, "tokens_vocoder", ["ktuberling"]) == {
        "all": {"pesq": 1.6, "stoi": 0.82}, "ktuberling": {"pesq": 1.5, "stoi": 0.81}}
    row = {"seed": 0, "split": "heldout", "run": "audio_small_heldout_s0_full", "bits_per_second": 2000,
           "debug_bits_per_second": 400, "train_seconds": 800.0, "validation": {"val_mel_l1_db": 3.0},
           "debug_validation": {}, "collections": {"ktuberling": 12},
           "small": {d: _scores(1.6, 0.82) for d in audio_small.DECODINGS},
           "debug": {d: _scores(1.2, 0.75) for d in ("tokens_vocoder", "tokens_griffin_lim")},
           "evaluate": [{"name": "Opus", "bits_per_second": 5928.0, "pesq": 2.07, "stoi": 0.903, "si_sdr": 4.19,
                         "mel_distance": 11.7}]}
    md = audio_small.markdown([row])
    assert "| audio_small (2000 b/s): vocoder, from tokens | 1.60 / 0.820 | 1.50 / 0.810 |" in md
    assert "| audio_debug (400 b/s): Griffin-Lim, from tokens | 1.20 / 0.750 | 1.10 / 0.740 |" in md
    assert "| Opus | 5928 | 2.07 | 0.903 | 4.2 | 11.70 |" in md
    assert audio_small._label("quantizer.codebook_size=256") == "codebook_size=256"


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("MMTOK_LONG_TESTS"),
                    reason="two 30-minute runs (tokenizers, vocoder, evaluate), over the suite's budget: "
                           "MMTOK_LONG_TESTS=1 pytest runs it")
def test_audio_small_through_the_vocoder_on_held_out_speakers(tmp_path):
    """``python benchmarks/audio_small.py``: on the 44 held-out clips (speakers and a whole collection never
    trained on), both seeds of ``experiment=audio_small`` decoded through the learned vocoder reach the issue's
    STOI of 0.80 and its PESQ of 1.5 on the mean, beat the 400 bit/s tokens and Griffin-Lim from the same tokens, and
    stay behind Opus at about 6 kbit/s (measured in docs/audio.md#speech-tokens-at-2-kbits-experimentaudio_small)."""
    for seed in (0, 1):
        r = audio_small.run_seed(seed, "heldout", None, None, 6000.0, tmp_path, [])
        small, debug = r["small"]["tokens_vocoder"], r["debug"]["tokens_vocoder"]
        assert r["bits_per_second"] == 2000 and r["train_seconds"] < 15 * 60, r
        assert small["all"]["stoi"] >= STOI and small["all"]["pesq"] >= PESQ, small
        assert min(s["stoi"] for s in small.values()) >= WORST_STOI, small
        assert small["all"]["stoi"] > debug["all"]["stoi"] + DEBUG_STOI_MARGIN, (small, debug)
        for c, s in small.items():  # the vocoder beats Griffin-Lim from the same tokens on every collection
            gl = r["small"]["tokens_griffin_lim"][c]
            assert s["stoi"] > gl["stoi"] and s["pesq"] > gl["pesq"], (c, s, gl)
        opus = next(e for e in r["evaluate"] if e["name"] == "Opus")
        assert opus["stoi"] > small["all"]["stoi"], (opus, small)  # said plainly in the docs: Opus still wins


# measured (seeds 0 / 1, the default vocoder: 4000 steps, speed augmentation): STOI 0.870 / 0.874, PESQ 1.65 / 1.69,
# worst collection STOI 0.824 / 0.822 (ktuberling), audio_debug through the same vocoder 0.755 / 0.768
STOI, PESQ, WORST_STOI, DEBUG_STOI_MARGIN = 0.80, 1.55, 0.79, 0.05


def test_data_overrides_reach_every_stage(tmp_path, monkeypatch):
    """``--set data.audio=DIR`` lands in the config every stage takes its data from (``compose_stage`` copies the
    base config's ``data``): without it the runs would silently train on the bundled samples."""
    seen = []

    def fake_stage(cfg, runs, name, overrides):
        seen.append((name, cfg.data.audio, cfg.seed))
        return {"bits_per_second": 2000.0, "train_seconds": 1.0}

    monkeypatch.setattr(audio_small, "run_stage", fake_stage)
    row = audio_small.run_seed(3, "validation", 10, None, 6000.0, tmp_path, [f"data.audio={tmp_path}"])
    label = audio_small._label(f"data.audio={tmp_path}")
    assert [s[0] for s in seen] == [f"audio_small_validation_{label}_s3_10", "audio_debug_validation_s3"]
    assert all(s[1:] == (str(tmp_path), 3) for s in seen) and row["bits_per_second"] == 2000.0
