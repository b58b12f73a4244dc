"""``python train.py`` (task=demo) end to end at debug size: every stage, the report, reuse of finished stages."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
import soundfile as sf
import torch
from PIL import Image

from modalities import unpack
from modalities.registry import VocabRegistry
from modalities.tasks import run_task

from .conftest import DEMO_TINY as TINY
from .conftest import REPO


@pytest.mark.slow
def test_demo_runs_every_stage_and_reuses_them(demo_run, tmp_path):
    """The shared debug-size run (``demo_run``, conftest.py): every stage's output, then ``train.py`` again on a
    copy of its folder reuses every stage."""
    run_dir, m = demo_run
    report = run_dir / "report"
    for name in ("image_reconstructions.png", "audio_reconstructions.png", "loss_curves.png", "generated_image.png",
                 "generated_speech.wav", "metrics.md", "audio_reconstructions/00_reconstruction.wav"):
        assert (report / name).is_file(), name
    assert m["documents"] == 108 and m["skipped"] == 0 and m["lm_steps"] == 30 and m["image_steps"] == 20
    assert m["vocoder_steps"] == 20 and (report / "vocoder_examples").is_dir()  # the vocoder stage ran too
    assert m["tokens"] == sum(m[f"tokens_{k}"] for k in ("text", "image", "audio", "special"))
    assert all(m[f"lm_loss_{k}"] > 0 for k in ("text", "image", "audio"))
    # the generated media have the asked geometry: 128x128 image, 3 s of speech at 25 tokens/s
    assert Image.open(report / "generated_image.png").size == (128, 128)
    info = sf.info(report / "generated_speech.wav")
    assert info.samplerate == 16000 and abs(info.duration - 3.0) < 0.05
    registry = VocabRegistry.load(run_dir / "lm/model/registry.json")
    for media, shape in (("image", (16, 16)), ("audio", (2, 75))):
        gen = json.loads((report / f"generated_{media}.json").read_text())
        segs = unpack(torch.tensor(gen["ids"]), registry)
        assert [s.modality for s in segs] == ["text", media] and tuple(segs[1].codes.shape) == shape
    table = (report / "metrics.md").read_text()
    assert "| lm_loss_image |" in table and "| image_psnr |" in table
    # the same run directory again (a copy), through train.py: every stage is reused, nothing retrains
    shutil.copytree(run_dir, tmp_path, dirs_exist_ok=True)
    proc = subprocess.run([sys.executable, "train.py", *TINY, f"hydra.run.dir={tmp_path}"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert all(f"reusing the {s} stage" in log for s in ("text", "image", "audio", "lm")), log[-3000:]
    assert re.search(r"tokenize\s+reused", log) and "tokenize_tokens_per_s" not in log


@pytest.mark.slow
def test_demo_with_pretrained_tokenizers(compose, tmp_path, samples):
    """``python train.py tokenizer/image=janus ... tokenizer/audio=encodec ...``: no image or audio stage is trained;
    the pretrained models code the media, the transformer learns them and the report shows what it generates."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    janus, codec = tmp_path / "janus", tmp_path / "encodec"
    transformers.JanusVQVAE(transformers.JanusVQVAEConfig(
        num_embeddings=256, embed_dim=4, latent_channels=32, base_channels=32, channel_multiplier=[1, 1, 1],
        num_res_blocks=1)).save_pretrained(str(janus))  # f = 4
    transformers.EncodecModel(transformers.EncodecConfig(
        hidden_size=16, num_filters=4, codebook_size=1024, codebook_dim=16, num_lstm_layers=1,
        target_bandwidths=[1.5, 3.0])).save_pretrained(str(codec))
    docs = tmp_path / "docs.jsonl"
    lines = [json.loads(line) for line in (samples / "documents.jsonl").read_text().splitlines()]
    fix = [[{k: (str(samples / v) if k in ("image", "audio") else v) for k, v in part.items()} for part in doc]
           for doc in lines[:4] + lines[-4:]]  # four captioned photos, four spoken sentences
    docs.write_text("".join(json.dumps(doc) + "\n" for doc in fix))
    m = run_task(compose([*TINY, "task.steps.lm=10", "task.image_size=32", f"data.documents={docs}",
                          "tokenizer/image=janus", f"tokenizer.image.path={janus}", "tokenizer.image.size_policy=resize",
                          "tokenizer.image.size=32", "tokenizer/audio=encodec", f"tokenizer.audio.path={codec}",
                          "tokenizer.audio.bandwidth=1.5"]), tmp_path / "run")
    assert not (tmp_path / "run" / "image").exists() and not (tmp_path / "run" / "audio").exists()
    assert m["documents"] == 8 and m["skipped"] == 0 and m["tokens_audio"] > 0 and m["tokens_image"] > 0
    assert m["image_tokenizer"].startswith("JanusVQTokenizer") and m["audio_tokenizer"].startswith("EncodecTokenizer")
    assert Image.open(tmp_path / "run" / "report" / "generated_image.png").size == (32, 32)
    info = sf.info(tmp_path / "run" / "report" / "generated_speech.wav")
    assert info.samplerate == 24000 and abs(info.duration - 3.0) < 0.05


def test_demo_config_defaults_mirror_the_yaml(compose):
    """``DemoTaskConfig``'s defaults (what code building the config gets) are ``conf/task/demo.yaml``'s stages and
    steps (what ``python train.py`` runs): the two drifted once."""
    from dataclasses import asdict

    from modalities.config import DemoTaskConfig

    yaml, code = compose(["task=demo"]).task, DemoTaskConfig()
    for stage in ("text", "image", "audio", "vocoder"):
        assert list(yaml[stage]) == getattr(code, stage), stage
    assert dict(yaml.steps) == asdict(code.steps) and yaml.steps.vocoder == 3000
