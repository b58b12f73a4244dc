"""Pretrained models join through Hydra: ``tokenizer/audio=encodec tokenizer.audio.path=...`` composes, builds the
adapter, and ``task=tokenize task.external=[audio]`` pre-tokenises documents with it beside mmtok's own tokenizers."""

from __future__ import annotations

import json

import pytest
import torch

from modalities import ImageTokenizer, MultimodalTokenizer
from modalities.external import from_config, is_external
from modalities.external.audio_codecs import EncodecTokenizer
from modalities.shards import ShardReader
from modalities.tasks import run_task
from models.quantizer import QuantizerConfig
from models.vqae import VQAEConfig

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def encodec_dir(tmp_path_factory):
    torch.manual_seed(0)
    cfg = transformers.EncodecConfig(hidden_size=16, num_filters=4, codebook_size=1024, codebook_dim=16,
                                     num_lstm_layers=1, target_bandwidths=[1.5, 3.0])
    path = tmp_path_factory.mktemp("hf") / "encodec"
    transformers.EncodecModel(cfg).save_pretrained(str(path))
    return path


@pytest.mark.parametrize(("group", "choice"), [("audio", "encodec"), ("audio", "dac"), ("audio", "mimi"),
                                               ("audio", "xcodec"), ("image", "emu3"), ("image", "janus"),
                                               ("image", "chameleon"), ("video", "emu3")])
def test_every_external_config_composes(compose, group, choice):
    cfg = compose([f"tokenizer/{group}={choice}", f"tokenizer.{group}.path=/nowhere"])
    node = cfg.tokenizer[group]
    assert is_external(node) and node.path == "/nowhere"
    with pytest.raises(FileNotFoundError, match="no such model folder: /nowhere .*nothing is downloaded"):
        from_config(node)


def test_path_is_required(compose):
    with pytest.raises(ValueError, match="needs path="):
        from_config(compose(["tokenizer/audio=encodec"]).tokenizer.audio)
    assert not is_external(compose([]).tokenizer.audio)  # mmtok's own spectrogram tokenizer


def test_hf_hubert_semantic_config_composes(compose):
    cfg = compose(["tokenizer/audio_semantic=hf_hubert", "tokenizer.audio_semantic.features.path=/my/hubert"])
    assert dict(cfg.tokenizer.audio_semantic.features) == {"name": "hf_hubert", "path": "/my/hubert", "layer": 6}


def test_from_config_passes_options(compose, encodec_dir):
    cfg = compose(["tokenizer/audio=encodec", f"tokenizer.audio.path={encodec_dir}", "tokenizer.audio.bandwidth=3"])
    tok = from_config(cfg.tokenizer.audio)
    assert isinstance(tok, EncodecTokenizer) and tok.options["bandwidth"] == 3.0 and tok.num_codebooks == 4
    bad = compose(["tokenizer/audio=encodec", f"tokenizer.audio.path={encodec_dir}", "tokenizer.audio.bandwidth=7"])
    with pytest.raises(ValueError, match="bandwidth"):
        from_config(bad.tokenizer.audio)


def test_tokenize_task_joins_an_external_codec(compose, encodec_dir, text_tok, samples, tmp_path):
    torch.manual_seed(0)
    image = ImageTokenizer.from_configs(VQAEConfig(channels=[8, 8], z_dim=4, groups=4),
                                        QuantizerConfig(kind="fsq", levels=[4, 4, 4]), size_policy="resize", size=32)
    base = MultimodalTokenizer({"text": text_tok, "image": image})
    base.save_pretrained(tmp_path / "set")
    manifest = tmp_path / "docs.jsonl"
    manifest.write_text("\n".join(json.dumps(d) for d in [
        [{"text": "a photo"}, {"image": str(samples / "images/coffee.png")}],
        [{"text": "and speech"}, {"audio": str(samples / "audio/speech_000.flac")}],
    ]) + "\n")
    cfg = compose(["task=tokenize", f"task.tokenizer={tmp_path / 'set'}", f"task.manifest={manifest}",
                   "task.external=[audio]", "task.num_workers=0", "task.shard_docs=1", "show_progress=false",
                   "tokenizer/audio=encodec", f"tokenizer.audio.path={encodec_dir}", "tokenizer.audio.bandwidth=1.5"])
    metrics = run_task(cfg, tmp_path / "run")
    assert metrics["documents"] == 2 and metrics["skipped"] == 0 and metrics["tokens_audio"] > 0
    joined = MultimodalTokenizer.from_pretrained(tmp_path / "run" / "tokenizer")
    assert list(joined.tokenizers) == ["text", "image", "audio"]
    assert isinstance(joined.tokenizers["audio"], EncodecTokenizer)
    for name in ("text", "image"):  # appended: the saved set's ids did not move
        assert joined.registry.modality(name).offset == base.registry.modality(name).offset
    ids = torch.from_numpy(ShardReader(tmp_path / "run" / "tokens")[1].astype("int64"))
    text, audio = joined.decode(ids)
    assert text == "and speech" and audio.sample_rate == 24000 and audio.data.ndim == 1


def test_tokenize_task_needs_a_tokenizer(compose, tmp_path):
    cfg = compose(["task=tokenize", "task.manifest=x.jsonl"])
    with pytest.raises(ValueError, match="task.external"):
        run_task(cfg, tmp_path)
    cfg = compose(["task=tokenize", "task.manifest=x.jsonl", "task.external=[audio]"])
    with pytest.raises(ValueError, match="not a pretrained-model config"):
        run_task(cfg, tmp_path)
