"""The learned vocoder: shapes, its place in a tokenizer's folder, decode's choice, the held-out split, training."""

from __future__ import annotations

import json
import os
import shutil
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from modalities import TokenizerLoadError
from modalities.audio import SpectrogramTokenizer, load_vocoder, save_vocoder
from modalities.data.sources import read_sources, split_by_source
from modalities.tasks import run_task
from modalities.tasks.vq import media_split
from modalities.training.vocoder_trainer import VocoderTrainer
from models.melspec import LogMel, MelConfig
from models.melvq import MelVQConfig
from models.quantizer import QuantizerConfig
from models.vocoder import MelVocoder, VocoderConfig

warnings.filterwarnings("ignore", category=UserWarning, module="vector_quantize_pytorch")

MEL = MelConfig(n_mels=32, griffin_lim_iters=4)
SMALL = VocoderConfig(dim=16, intermediate_dim=32, num_blocks=2)
TINY_AE = MelVQConfig(channels=[8, 16, 16], z_dim=16, band_channels=4, groups=4)
VQ = QuantizerConfig(kind="vq", codebook_size=16, kmeans_init=False)
DEBUG = ["experiment=vocoder_debug"]


def _tok(vocoder: bool = True) -> SpectrogramTokenizer:
    torch.manual_seed(0)
    tok = SpectrogramTokenizer.from_configs(TINY_AE, VQ, MEL)
    return tok.set_vocoder(MelVocoder(SMALL, MEL)) if vocoder else tok


@pytest.mark.parametrize("frames", [1, 2, 7, 64])
@pytest.mark.parametrize("n_fft", [None, 320])
def test_output_is_frames_times_hop(frames, n_fft):
    voc = MelVocoder(VocoderConfig(dim=16, intermediate_dim=32, num_blocks=2, n_fft=n_fft), MEL).eval()
    assert voc.n_fft == (n_fft or 4 * MEL.hop_length)
    mel = torch.rand(3, MEL.n_mels, frames)
    out = voc(mel)
    assert out.wave.shape == (3, frames * MEL.hop_length) and out.wave.dtype == torch.float32
    assert out.spec.shape == (3, voc.n_fft // 2 + 1, frames + 1) and torch.isfinite(out.wave).all()
    assert torch.equal(voc(mel[:, None]).wave, out.wave)  # LogMel's [B, 1, n_mels, F] is accepted as it is
    if frames * MEL.hop_length > MEL.n_fft // 2:  # (LogMel's reflect padding needs more than n_fft / 2 samples)
        wave = torch.randn(2, frames * MEL.hop_length) * 0.1  # a log-mel of a waveform: it comes back as long
        assert voc(LogMel(MEL)(wave)).wave.shape == wave.shape


def test_bad_shapes_and_settings():
    voc = MelVocoder(SMALL, MEL)
    with pytest.raises(ValueError, match=r"\[B, 32, frames\]"):
        voc(torch.rand(1, 16, 10))
    with pytest.raises(ValueError, match="frames >= 1"):
        voc(torch.rand(1, 32, 0))
    with pytest.raises(ValueError, match="n_fft=100 must be even and at least the mel hop_length 160"):
        MelVocoder(VocoderConfig(n_fft=100), MEL)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        MelVocoder(VocoderConfig(kernel_size=4), MEL)


def test_tokenizer_with_vocoder_saves_and_loads(tmp_path):
    tok = _tok()
    path = tok.save_pretrained(tmp_path / "tok")
    settings_ = json.loads((path / "config.json").read_text())["settings"]
    assert settings_["vocoder"]["dim"] == 16 and (path / "vocoder.safetensors").is_file()
    back = SpectrogramTokenizer.from_pretrained(path)
    assert back.vocoder is not None and back.vocoder.cfg == tok.vocoder.cfg and back.vocoder.mel_cfg == MEL
    for (k, a), (k2, b) in zip(tok.vocoder.state_dict().items(), back.vocoder.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b), k
    codes = tok.encode(torch.randn(1, 6400) * 0.1, sample_rate=16000)
    assert torch.equal(tok.decode(codes), back.decode(codes))
    assert "decoder=vocoder" in repr(back)
    # saved again without the vocoder, the folder loses it (no stale weights file is picked up)
    back.set_vocoder(None).save_pretrained(path)
    assert not (path / "vocoder.safetensors").exists()
    assert SpectrogramTokenizer.from_pretrained(path).vocoder is None


def test_standalone_vocoder_folder(tmp_path):
    torch.manual_seed(0)
    voc = MelVocoder(SMALL, MEL)
    path = save_vocoder(voc, tmp_path / "voc")
    back = load_vocoder(path)
    mel = torch.rand(1, 32, 9)
    assert torch.equal(voc.eval()(mel).wave, back(mel).wave)
    tok = _tok(vocoder=False).set_vocoder(back)
    assert load_vocoder(tok.save_pretrained(tmp_path / "tok")).cfg == SMALL  # the one a tokenizer carries
    with pytest.raises(TokenizerLoadError, match="carries no vocoder"):
        load_vocoder(_tok(vocoder=False).save_pretrained(tmp_path / "plain"))


@pytest.mark.parametrize("change", [{"dim": 24}, {"num_blocks": 3}, {"n_fft": 320}, {"dim": 10**9}])
def test_refuses_vocoder_weights_that_disagree_with_the_config(tmp_path, change):
    path = _tok().save_pretrained(tmp_path / "tok")
    cfg = json.loads((path / "config.json").read_text())
    cfg["settings"]["vocoder"].update(change)
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(TokenizerLoadError, match="settings.vocoder"):
        SpectrogramTokenizer.from_pretrained(path)
    voc = save_vocoder(MelVocoder(SMALL, MEL), tmp_path / "voc")
    cfg = json.loads((voc / "config.json").read_text())
    cfg["settings"]["vocoder"].update(change)
    (voc / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(TokenizerLoadError, match="settings.vocoder"):
        load_vocoder(voc)


def test_refuses_a_missing_file_bad_settings_and_another_mel(tmp_path):
    path = _tok().save_pretrained(tmp_path / "tok")
    cfg = json.loads((path / "config.json").read_text())
    cfg["settings"]["vocoder"]["_target_"] = "os.system"
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(TokenizerLoadError, match="bad vocoder settings"):
        SpectrogramTokenizer.from_pretrained(path)
    (path / "vocoder.safetensors").unlink()
    with pytest.raises(TokenizerLoadError, match="vocoder.safetensors is missing"):
        SpectrogramTokenizer.from_pretrained(path)
    with pytest.raises(ValueError, match="other mel settings.*n_mels"):
        _tok(vocoder=False).set_vocoder(MelVocoder(SMALL, MelConfig(n_mels=64)))


def test_decode_uses_the_vocoder_when_present_and_griffin_lim_otherwise():
    tok = _tok()
    codes = tok.encode(torch.randn(2, 1, 6400) * 0.1, sample_rate=16000)  # [B, C, T]
    mel = ((tok.decode_mel(codes) - MEL.min_db) / (MEL.max_db - MEL.min_db))[:, None]
    want = tok.vocoder(mel).wave
    assert torch.allclose(tok.decode(codes), want, atol=1e-5)
    assert torch.allclose(tok.decode(codes, vocoder="vocoder"), want, atol=1e-5)

    def gl(t, **kw):
        torch.manual_seed(1)
        return t.decode(codes, **kw)

    plain = _tok(vocoder=False)
    plain.model.load_state_dict(tok.model.state_dict())
    assert torch.equal(gl(tok, vocoder="griffin_lim"), gl(plain))  # the fallback is Griffin-Lim, as before
    assert not torch.allclose(gl(tok, vocoder="griffin_lim"), want, atol=1e-3)
    assert tok.decode(codes, length=6000).shape == (2, 6000)
    with pytest.raises(ValueError, match="carries no vocoder"):
        plain.decode(codes, vocoder="vocoder")
    with pytest.raises(ValueError, match="expected one of"):
        tok.decode(codes, vocoder="hifigan")


def _texts(folder):
    return {r["file"]: r["text"] for r in map(json.loads, (folder / "transcripts.jsonl").read_text().splitlines())}


@settings(max_examples=40, deadline=None)
@given(frac=st.floats(0.05, 0.95), keep=st.lists(st.integers(0, 79), min_size=4, max_size=80, unique=True))
def test_heldout_split_never_shares_a_sentence(samples, frac, keep):
    """Whatever files are present and whatever share is held out, a sentence (any of its voices) is on one side."""
    folder = samples / "audio"
    texts = _texts(folder)
    files = [folder / f"speech_{i:03d}.flac" for i in sorted(keep)]
    if len({texts[f.name] for f in files}) < 2:
        return
    train, val = split_by_source(files, frac, folder, read_sources(folder))
    assert val and train and sorted(train + val) == files
    assert not {texts[f.name] for f in train} & {texts[f.name] for f in val}


def test_task_split_holds_out_whole_sentences_or_whole_files(compose, samples, tmp_path):
    folder, train, val = media_split(compose(DEBUG), "audio", "audio", (".flac",))
    texts = _texts(folder)
    synthetic = [f for f in val if f.name in texts]
    held = {texts[f.name] for f in synthetic}
    assert len(synthetic) == 2 * len(held) and not held & {texts[f.name] for f in train if f.name in texts}
    speakers = {r["file"]: r["speaker"] for name in ("recordings", "klettres", "ktuberling")
                for r in map(json.loads, (folder / f"{name}.jsonl").read_text().splitlines())}
    recorded = {speakers[f.name] for f in val if f.name in speakers}  # real speech is held out too, by speaker
    assert recorded and not recorded & {speakers[f.name] for f in train if f.name in speakers}
    assert len(val) == len(synthetic) + sum(f.name in speakers for f in val)
    plain = tmp_path / "plain"  # a user folder without transcripts: split by file
    plain.mkdir()
    for f in sorted(folder.glob("*.flac"))[:6]:
        shutil.copy(f, plain)
    _, train, val = media_split(compose([*DEBUG, f"data.audio={plain}"]), "audio", "audio", (".flac",))
    assert len(val) == 1 and len(train) == 5


def _rows(path):
    return [json.loads(x) for x in (path / "metrics.jsonl").read_text().splitlines()]


def test_tiny_training_lowers_the_loss_and_reports(compose, tmp_path):
    """``experiment=vocoder_debug`` (40 steps, seconds on a CPU) brings the held-out log-mel distance of the
    vocoder from its untrained value (about 18 dB) to under two thirds of it (about 10 dB), and the multi-resolution
    STFT distance down too. (Single-batch training losses are too noisy at this size to compare.)"""
    m0 = run_task(compose([*DEBUG, "task.max_steps=0"]), tmp_path / "untrained")
    m = run_task(compose(DEBUG), tmp_path)
    assert m["heldout_vocoder_mel_l1_db"] < 0.67 * m0["heldout_vocoder_mel_l1_db"], (m, m0)
    assert m["heldout_vocoder_stft_distance"] < m0["heldout_vocoder_stft_distance"], (m, m0)
    assert m["steps"] == 40 and len([r for r in _rows(tmp_path) if "loss" in r]) == 4
    for method in ("vocoder", "griffin_lim"):
        for metric in ("pesq", "stoi", "si_sdr", "mel_l1_db"):
            assert f"heldout_{method}_{metric}" in m
    assert m["vocoder_rtf_1_thread"] > 10 and m["val_files"] == 44
    clips = {"transcripts": 12, "recordings": 12, "klettres": 8, "ktuberling": 12}  # synthesised, 3 recorded chains
    assert {c: m[f"heldout_{c}_clips"] for c in clips} == clips
    for key in ("vocoder_pesq", "griffin_lim_stoi", "vocoder_mel_l1_db"):  # the collections' means, clip-weighted
        every = sum(n * m[f"heldout_{c}_{key}"] for c, n in clips.items()) / 44
        assert every == pytest.approx(m[f"heldout_{key}"], abs=2e-4)
    assert sorted(p.name for p in (tmp_path / "heldout").glob("*.wav")) == [
        "00_griffin_lim.wav", "00_original.wav", "00_vocoder.wav"]
    voc = load_vocoder(tmp_path / "vocoder")
    assert voc.cfg.dim == 32 and voc.mel_cfg == MelConfig()


def test_resume_ends_where_an_uninterrupted_run_ends(compose, tmp_path, monkeypatch):
    """A run killed at step 25 (its checkpoint is from step 20) and resumed with ``trainer.resume=true`` ends with
    the weights of a run never stopped, bit for bit on a CPU."""
    run_task(compose(DEBUG), tmp_path / "whole")
    step = VocoderTrainer.train_step

    def killed_at_25(self, batch):
        if self.step == 25:
            raise KeyboardInterrupt
        return step(self, batch)

    with monkeypatch.context() as m:
        m.setattr(VocoderTrainer, "train_step", killed_at_25)
        with pytest.raises(KeyboardInterrupt):
            run_task(compose(DEBUG), tmp_path / "split")
    assert torch.load(tmp_path / "split/checkpoints/last.pt", weights_only=True)["step"] == 20
    run_task(compose([*DEBUG, "trainer.resume=true"]), tmp_path / "split")
    assert [r["step"] for r in _rows(tmp_path / "split") if "loss" in r] == [10, 20, 30, 40]
    a, b = (load_file(str(tmp_path / d / "vocoder/vocoder.safetensors")) for d in ("whole", "split"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_task_with_a_tokenizer_saves_it_with_the_vocoder(compose, tmp_path):
    torch.manual_seed(0)
    path = SpectrogramTokenizer.from_configs(TINY_AE, VQ, MelConfig(griffin_lim_iters=4)).save_pretrained(
        tmp_path / "tok")
    m = run_task(compose([*DEBUG, f"task.tokenizer={path}", "task.max_steps=10", "trainer.disc_start=5",
                          "task.decoded_share=0.5"]), tmp_path / "run")
    for metric in ("pesq", "stoi", "mel_l1_db"):
        assert f"heldout_tokens_vocoder_{metric}" in m and f"heldout_tokens_griffin_lim_{metric}" in m
    assert m["griffin_lim_iters"] == 4
    assert "loss_gan" in _rows(tmp_path / "run")[-3] or any("loss_disc" in r for r in _rows(tmp_path / "run"))
    tok = SpectrogramTokenizer.from_pretrained(tmp_path / "run/tokenizer/audio")
    assert tok.vocoder is not None and tok.vocoder.cfg.dim == 32
    assert tok.decode(torch.zeros(1, 1, 3, dtype=torch.long)).shape == (1, 3 * tok.samples_per_token)
    with pytest.raises(ValueError, match="pretrained codec"):
        run_task(compose([*DEBUG, "tokenizer/audio=encodec", "tokenizer.audio.path=/nowhere"]), tmp_path / "bad")
    with pytest.raises(ValueError, match=r"task.decoded_share=0.5 .*set task.tokenizer"):
        run_task(compose([*DEBUG, "task.decoded_share=0.5"]), tmp_path / "no_tokenizer")


@settings(max_examples=15, deadline=None)
@given(frames=st.integers(1, 40), batch=st.integers(1, 3))
def test_reconstruct_mel_is_the_decoded_tokens_for_any_length(frames, batch):
    """``reconstruct_mel`` keeps the shape of any mel (whole tokens or not) and, for a batch of waveforms of whole
    tokens, equals ``decode_mel(encode(wave))`` normalised."""
    tok = _tok(vocoder=False)
    mel = torch.rand(batch, 1, MEL.n_mels, frames)
    out = tok.reconstruct_mel(mel)
    assert out.shape == mel.shape and out.min() >= 0 and out.max() <= 1
    wave = torch.randn(batch, 1, 8 * tok.samples_per_token) * 0.1  # [B, channels, T]: B clips, not B channels
    db = tok.decode_mel(tok.encode(wave, sample_rate=MEL.sample_rate))
    want = ((db - MEL.min_db) / (MEL.max_db - MEL.min_db))[:, None]
    assert torch.allclose(tok.reconstruct_mel(tok.mel(wave[:, 0])), want, atol=1e-5)
    with pytest.raises(ValueError, match=r"\[B, 1, n_mels, F\], got \(2, 32, 5\)"):
        tok.reconstruct_mel(torch.rand(2, MEL.n_mels, 5))


def test_vocoder_input_swaps_the_first_share_of_a_batch(tmp_path):
    from modalities.training.trainer import TrainerConfig

    mel = torch.rand(8, 1, MEL.n_mels, 12)
    trainer = VocoderTrainer(MelVocoder(SMALL, MEL), TrainerConfig(device="cpu"), tmp_path, LogMel(MEL),
                             reconstruct=lambda m: m * 0 - 1, decoded_share=0.3)
    got = trainer.vocoder_input(mel)
    assert torch.equal(got[:2], torch.full_like(mel[:2], -1)) and torch.equal(got[2:], mel[2:])  # round(8 * 0.3)
    trainer.decoded_share = 0.0
    assert trainer.vocoder_input(mel) is mel
    with pytest.raises(ValueError, match=r"in \[0, 1\], got 1.5"):
        VocoderTrainer(MelVocoder(SMALL, MEL), TrainerConfig(device="cpu"), tmp_path, LogMel(MEL),
                       reconstruct=lambda m: m, decoded_share=1.5)
    with pytest.raises(ValueError, match="set task.tokenizer"):
        VocoderTrainer(MelVocoder(SMALL, MEL), TrainerConfig(device="cpu"), tmp_path, LogMel(MEL), decoded_share=0.5)


@pytest.mark.slow
def test_demo_vocoder_beats_griffin_lim_on_heldout_speech(compose, tmp_path):
    """The demo's vocoder recipe, ``python train.py task=vocoder task.crop_seconds=0.5 task.lr=2e-3
    task.max_steps=3000`` (speed augmentation, about 4 minutes on 2 CPU cores), scores better PESQ and STOI than 32
    Griffin-Lim iterations from the true mel of the 44 held-out clips, with a lower log-mel distance, and both
    metrics on the KLettres voices and the held-out sentences; on the ``ktuberling`` recording chain STOI, with PESQ
    within 0.1 of Griffin-Lim's. Measured (``python benchmarks/vocoder_augment.py --recipes ...``, seeds 0 / 1):
    PESQ 1.87 on both against 1.68, STOI 0.908 on both against 0.896; KLettres 1.86 / 0.893 against 1.76 / 0.871;
    ktuberling 1.70 / 1.67 and 0.879 / 0.878 against 1.64 and 0.868; not on the ``recordings`` voices, where
    Griffin-Lim keeps STOI (0.925 against 0.916 / 0.917); docs/audio.md. The same test on another 2-core VM
    (the same code, seed 0; CPU arithmetic differs between machines) scored 1.82 / 0.908, KLettres 1.80 / 0.889,
    and ktuberling PESQ 1.59 against Griffin-Lim's 1.64 (STOI 0.879 against 0.868), so ktuberling's PESQ is not
    held to a win. Runs by default: it is the one test behind "the vocoder beats Griffin-Lim"."""
    from modalities.tasks.demo import steps_overrides

    demo = compose(["task=demo"]).task  # exactly the demo's stage: its steps and one validation, at the end
    m = run_task(compose([*demo.vocoder, *steps_overrides("task.max_steps", demo.steps.vocoder),
                          "trainer.tensorboard=false"]), tmp_path)
    assert m["steps"] == 3000
    assert m["heldout_vocoder_pesq"] > m["heldout_griffin_lim_pesq"] + 0.1, m
    assert m["heldout_vocoder_stoi"] > m["heldout_griffin_lim_stoi"] + 0.005, m
    assert m["heldout_vocoder_mel_l1_db"] < m["heldout_griffin_lim_mel_l1_db"], m
    assert m["heldout_klettres_vocoder_stoi"] > m["heldout_klettres_griffin_lim_stoi"] + 0.005, m  # as the test before
    for c in ("klettres", "ktuberling", "transcripts"):
        for metric in ("pesq", "stoi"):
            slack = 0.1 if (c, metric) == ("ktuberling", "pesq") else 0.0  # +0.06 / +0.03 on one VM, -0.05 on another
            assert m[f"heldout_{c}_vocoder_{metric}"] > m[f"heldout_{c}_griffin_lim_{metric}"] - slack, (c, metric, m)
    assert m["heldout_recordings_vocoder_pesq"] > m["heldout_recordings_griffin_lim_pesq"], m


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("MMTOK_LONG_TESTS"),
                    reason="a 9-minute training run, over the suite's budget: MMTOK_LONG_TESTS=1 pytest runs it")
def test_default_vocoder_beats_griffin_lim_on_every_collection(compose, tmp_path):
    """``python train.py task=vocoder`` (the default: 4000 steps with speed augmentation, about 9 minutes on 2 CPU
    cores) beats 32 Griffin-Lim iterations from the true mel in both PESQ and STOI over the 44 held-out clips and
    on every collection: issue 25's item 2. Measured (``python benchmarks/vocoder_augment.py --recipes
    task.augment.speed=0.1 "task.augment.speed=0.1 task.max_steps=4000"``, seeds 0 / 1): PESQ 2.06 / 2.03
    against 1.68, STOI 0.918 on both against 0.896; the narrowest lead is STOI on ``recordings`` (0.927 on both
    against 0.925); docs/audio.md."""
    m = run_task(compose(["task=vocoder", "trainer.tensorboard=false"]), tmp_path)
    assert m["steps"] == 4000
    assert m["heldout_vocoder_pesq"] > m["heldout_griffin_lim_pesq"] + 0.25, m
    assert m["heldout_vocoder_stoi"] > m["heldout_griffin_lim_stoi"] + 0.01, m
    for c in ("klettres", "ktuberling", "recordings", "transcripts"):
        for metric in ("pesq", "stoi"):
            assert m[f"heldout_{c}_vocoder_{metric}"] > m[f"heldout_{c}_griffin_lim_{metric}"], (c, metric, m)
