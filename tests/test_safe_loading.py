"""Nothing in a shared folder runs: every loader is fed a crafted folder and must refuse it, naming the field.

Each case writes a genuine saved folder, tampers with one value of its JSON
(an import path, an unknown class, a path outside the folder, a huge declared
size), loads it, and checks three things: the load raises an error naming the
field, the callable named by the folder did not run (its marker file does not
exist), and nothing appeared in or vanished from the temporary tree.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from modalities import ImageTokenizer, TokenizerLoadError, VideoTokenizer
from modalities.audio import SpectrogramTokenizer
from modalities.audio_features import (
    HubertFeatures,
    build_feature_extractor,
    feature_extractor_names,
    register_feature_extractor,
)
from modalities.multimodal import MultimodalTokenizer
from modalities.semantic import SemanticAudioTokenizer
from modalities.shards import ShardReader, pretokenize
from models.melspec import MelConfig
from models.melvq import MelVQConfig
from models.quantizer import QuantizerConfig
from models.transformer import Transformer, TransformerConfig
from models.vqae import VQAEConfig
from models.vqae3d import VQAE3DConfig

FSQ = QuantizerConfig(kind="fsq", levels=[4, 4, 4])
VQ = QuantizerConfig(kind="vq", codebook_size=16, kmeans_init=False)


def _edit(path: Path, change) -> None:
    cfg = json.loads(path.read_text())
    change(cfg)
    path.write_text(json.dumps(cfg))


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*")}


def _refuses(tmp_path: Path, load, field: str, error: type[Exception] = TokenizerLoadError) -> None:
    """``load()`` raises ``error`` mentioning ``field``, runs nothing, writes nothing, and is fast."""
    marker = tmp_path / "pwned"
    before = _tree(tmp_path)
    t0 = time.perf_counter()
    with pytest.raises(error) as info:
        load()
    assert time.perf_counter() - t0 < 30, "a refused load must not first allocate what the file declares"
    assert field in str(info.value), f"error does not name {field!r}: {info.value}"
    assert not marker.exists()
    assert _tree(tmp_path) == before


@pytest.fixture(scope="module")
def semantic(samples) -> SemanticAudioTokenizer:
    tok = SemanticAudioTokenizer(k=8)
    tok.fit(sorted((samples / "audio").glob("speech_00*.flac"))[:2], iters=2)
    return tok


# ---------------------------------------------------------------- an import path in a saved folder
def test_a_target_in_a_semantic_folder_never_runs(semantic, tmp_path):
    path = semantic.save_pretrained(tmp_path / "sem")
    marker = tmp_path / "pwned"
    _edit(path / "config.json", lambda c: c["settings"].update(
        features={"_target_": "pathlib.Path.touch", "self": str(marker)}))
    _refuses(tmp_path, lambda: SemanticAudioTokenizer.from_pretrained(path), "settings.features._target_")
    _refuses(tmp_path, lambda: MultimodalTokenizer({"audio": SemanticAudioTokenizer.from_pretrained(path)}),
             "pathlib.Path.touch")


def test_semantic_features_name_must_be_registered(semantic, tmp_path):
    path = semantic.save_pretrained(tmp_path / "sem")
    _edit(path / "config.json", lambda c: c["settings"].update(features={"name": "os.system", "command": "touch x"}))
    _refuses(tmp_path, lambda: SemanticAudioTokenizer.from_pretrained(path), "unknown feature extractor 'os.system'")


def test_legacy_mfcc_target_reads_as_a_name(semantic, tmp_path, samples):
    """Folders saved before names stored the MFCC class path; it is mapped by a table, never imported."""
    path = semantic.save_pretrained(tmp_path / "sem")
    _edit(path / "config.json", lambda c: c["settings"].update(
        features={"_target_": "modalities.audio_features.MFCCFeatures", "sample_rate": 16000}))
    clip = samples / "audio/speech_000.flac"
    assert torch.equal(SemanticAudioTokenizer.from_pretrained(path).encode(clip), semantic.encode(clip))


@pytest.mark.parametrize("name", ["/etc/passwd", "../outside.safetensors", "sub/../../outside.safetensors"])
def test_feature_checkpoint_outside_the_folder(semantic, tmp_path, name):
    path = semantic.save_pretrained(tmp_path / "sem")
    (tmp_path / "outside.safetensors").write_bytes(b"")
    _edit(path / "config.json", lambda c: c["settings"].update(features={"name": "hubert", "checkpoint": name}))
    _refuses(tmp_path, lambda: SemanticAudioTokenizer.from_pretrained(path), "settings.features.checkpoint")


def test_huge_k_is_refused_before_allocating(semantic, tmp_path):
    path = semantic.save_pretrained(tmp_path / "sem")
    _edit(path / "config.json", lambda c: c["settings"].update(k=10**12))
    _refuses(tmp_path, lambda: SemanticAudioTokenizer.from_pretrained(path), "settings.k=1000000000000")


# ---------------------------------------------------------------- VQ tokenizers: declared sizes vs the weights
def _image(tmp_path: Path, q: QuantizerConfig = VQ) -> Path:
    torch.manual_seed(0)
    tok = ImageTokenizer.from_configs(VQAEConfig(channels=[8, 8], z_dim=4, groups=4), q)
    return tok.save_pretrained(tmp_path / "img")


@pytest.mark.parametrize(("section", "key", "value", "field"), [
    ("quantizer", "codebook_size", 10**12, "codebook"),          # a 10^12-entry codebook
    ("autoencoder", "channels", [10**6, 10**6], "settings declares tensor"),  # 10^12-parameter convs
    ("autoencoder", "z_dim", 10**9, "quantizer input dim"),
    ("quantizer", "kind", "os.system", "unknown quantizer kind"),
    ("autoencoder", "_target_", "os.system", "_target_"),
])
def test_image_folder_declaring_another_model(tmp_path, section, key, value, field):
    path = _image(tmp_path)
    _edit(path / "config.json", lambda c: c["settings"][section].update({key: value}))
    _refuses(tmp_path, lambda: ImageTokenizer.from_pretrained(path), field)


def test_fsq_levels_cannot_declare_a_huge_codebook(tmp_path):
    path = _image(tmp_path, FSQ)
    _edit(path / "config.json", lambda c: c["settings"]["quantizer"].update(levels=[1000] * 6))
    _refuses(tmp_path, lambda: ImageTokenizer.from_pretrained(path), "codes; FSQ materialises its codebook")


def test_image_size_setting_is_bounded(tmp_path):
    path = _image(tmp_path)
    _edit(path / "config.json", lambda c: c["settings"].update(size_policy="resize", size=10**7))
    _refuses(tmp_path, lambda: ImageTokenizer.from_pretrained(path), "target size must be an int")


def test_unknown_class_is_refused(tmp_path):
    path = _image(tmp_path)
    _edit(path / "config.json", lambda c: c.update({"class": "subprocess.Popen"}))
    _refuses(tmp_path, lambda: ImageTokenizer.from_pretrained(path), "'subprocess.Popen'")


def test_video_per_frame_path_outside_the_folder(tmp_path):
    torch.manual_seed(0)
    image = ImageTokenizer.from_configs(VQAEConfig(channels=[8, 8], z_dim=4, groups=4), FSQ)
    path = VideoTokenizer.per_frame(image).save_pretrained(tmp_path / "vid")
    image.save_pretrained(tmp_path / "elsewhere")
    _edit(path / "config.json", lambda c: c["settings"].update(image_tokenizer="../elsewhere"))
    _refuses(tmp_path, lambda: VideoTokenizer.from_pretrained(path), "settings.image_tokenizer")


def test_video_folder_declaring_a_huge_model(tmp_path):
    torch.manual_seed(0)
    tok = VideoTokenizer.from_configs(VQAE3DConfig(channels=[8, 8], z_dim=4, groups=4, temporal_downsample=2), VQ)
    path = tok.save_pretrained(tmp_path / "vid")
    _edit(path / "config.json", lambda c: c["settings"]["quantizer"].update(codebook_size=10**12))
    _refuses(tmp_path, lambda: VideoTokenizer.from_pretrained(path), "codebook")


def test_spectrogram_folder_declaring_a_huge_model(tmp_path):
    torch.manual_seed(0)
    tok = SpectrogramTokenizer.from_configs(MelVQConfig(channels=[8, 8], z_dim=4, band_channels=4, groups=4), VQ,
                                            MelConfig(n_mels=16, griffin_lim_iters=1))
    path = tok.save_pretrained(tmp_path / "spec")
    _edit(path / "config.json", lambda c: c["settings"]["quantizer"].update(codebook_size=10**12))
    _refuses(tmp_path, lambda: SpectrogramTokenizer.from_pretrained(path), "codebook")
    _edit(path / "config.json", lambda c: c["settings"]["mel"].update(n_mels=10**7))
    _refuses(tmp_path, lambda: SpectrogramTokenizer.from_pretrained(path), "declares")


# ---------------------------------------------------------------- the tokenizer set, the transformer, shards
@pytest.fixture()
def multimodal(text_tok, tmp_path) -> Path:
    torch.manual_seed(0)
    image = ImageTokenizer.from_configs(VQAEConfig(channels=[8, 8], z_dim=4, groups=4), FSQ)
    return MultimodalTokenizer({"text": text_tok, "image": image}).save_pretrained(tmp_path / "mm")


@pytest.mark.parametrize(("entry", "field"), [
    ({"class": "os.system", "kind": "image"}, "tokenizers.image.class"),
    ({"class": "hydra.utils.instantiate"}, "unknown tokenizer class"),
    ("ImageTokenizer", "tokenizers.image.class"),
])
def test_multimodal_unknown_class(multimodal, tmp_path, entry, field):
    _edit(multimodal / "multimodal.json", lambda c: c["tokenizers"].update(image=entry))
    _refuses(tmp_path, lambda: MultimodalTokenizer.from_pretrained(multimodal), field)


def test_multimodal_subfolder_outside(multimodal, tmp_path):
    def move(c):
        c["tokenizers"]["../evil"] = c["tokenizers"].pop("image")
    (tmp_path / "evil").mkdir()
    _edit(multimodal / "multimodal.json", move)
    _refuses(tmp_path, lambda: MultimodalTokenizer.from_pretrained(multimodal), "points outside")


def test_transformer_declaring_a_huge_model(tmp_path):
    torch.manual_seed(0)
    path = Transformer(TransformerConfig(vocab_size=256, dim=16, n_layers=1, n_heads=2, max_seq_len=32)
                       ).save_pretrained(tmp_path / "lm")
    for key, value, field in [("vocab_size", 10**12, "embed"), ("max_seq_len", 10**10, "buffers"),
                              ("_target_", "os.system", "_target_")]:
        cfg = json.loads((path / "config.json").read_text())
        _edit(path / "config.json", lambda c, k=key, v=value: c.update({k: v}))
        _refuses(tmp_path, lambda: Transformer.from_pretrained(path), field, ValueError)
        (path / "config.json").write_text(json.dumps(cfg))
    assert Transformer.from_pretrained(path).cfg.vocab_size == 256  # the untampered folder still loads


def test_shard_manifest_fields(text_tok, tmp_path):
    from modalities.multimodal import Text

    tok = MultimodalTokenizer({"text": text_tok})
    out = tmp_path / "tokens"
    pretokenize([[Text("a cat")], [Text("a dog")]], tok, out, shard_docs=1, show_progress=False)
    assert len(ShardReader(out)) == 2
    good = (out / "manifest.json").read_text()
    for change, field in [(lambda c: c.update(dtype="object"), "'dtype'"),
                          (lambda c: c["shards"][0].update(shard="../../etc/passwd"), "shards[0].shard"),
                          (lambda c: c["shards"][1].update(shard=-1), "shards[1].shard")]:
        (out / "manifest.json").write_text(good)
        _edit(out / "manifest.json", change)
        _refuses(tmp_path, lambda: ShardReader(out), field, ValueError)
    (out / "manifest.json").write_text(good)
    np.save(out / "shard_00001.idx.npy", np.array([0, 10**9], dtype=np.int64))
    _refuses(tmp_path, lambda: ShardReader(out), "offsets do not describe", ValueError)


def test_checkpoints_load_with_weights_only():
    """Every torch.load in the packages passes weights_only=True (checkpoints and user state dicts)."""
    root = Path(__file__).resolve().parents[1]
    calls = [(p, line) for p in [*root.glob("modalities/**/*.py"), *root.glob("models/*.py")]
             for line in p.read_text().splitlines() if "torch.load(" in line]
    assert calls, "the check found no torch.load at all"
    assert all("weights_only=True" in line for _, line in calls), calls


# ---------------------------------------------------------------- the extractor registry
class _Energy(nn.Module):
    sample_rate, dim = 16000, 1

    def __init__(self, hop_length: int = 320) -> None:
        super().__init__()
        self.hop_length = hop_length

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        frames = wave[:, : wave.shape[-1] // self.hop_length * self.hop_length].unflatten(-1, (-1, self.hop_length))
        return (frames**2).mean(-1, keepdim=True)


def test_feature_registry(tmp_path, samples):
    register_feature_extractor("test_energy_registry", _Energy)
    register_feature_extractor("test_energy_registry", _Energy)  # the same factory again is fine
    with pytest.raises(ValueError, match="already registered"):
        register_feature_extractor("test_energy_registry", MFCCLike)
    with pytest.raises(ValueError, match="alphanumeric"):
        register_feature_extractor("a.b")
    assert {"mfcc", "hubert", "test_energy_registry"} <= set(feature_extractor_names())
    assert build_feature_extractor("test_energy_registry", hop_length=160).hop_length == 160
    with pytest.raises(KeyError, match="unknown feature extractor 'nope'"):
        build_feature_extractor("nope")
    tok = SemanticAudioTokenizer({"name": "test_energy_registry", "hop_length": 160}, k=2)
    tok.fit([samples / "audio/speech_000.flac"], iters=2)
    back = SemanticAudioTokenizer.from_pretrained(tok.save_pretrained(tmp_path / "e"))
    assert back.hop_length == 160 and back.features_cfg == {"name": "test_energy_registry", "hop_length": 160}
    with pytest.raises(ValueError, match="chosen by name, not by import path"):
        SemanticAudioTokenizer({"_target_": "tests.test_safe_loading._Energy"})


class MFCCLike(_Energy):
    pass


def test_hubert_weights_travel_with_the_folder(tmp_path, samples):
    """A HuBERT-unit tokenizer saved and loaded without the original checkpoint gives the same units."""
    import torchaudio.models as AM
    from safetensors.torch import save_file

    kw = dict(extractor_mode="group_norm", extractor_conv_layer_config=[[8, 10, 5], [8, 3, 2], [8, 2, 2]],
              extractor_conv_bias=False, encoder_embed_dim=16, encoder_projection_dropout=0.0,
              encoder_pos_conv_kernel=4, encoder_pos_conv_groups=2, encoder_num_layers=2, encoder_num_heads=2,
              encoder_attention_dropout=0.0, encoder_ff_interm_features=32, encoder_ff_interm_dropout=0.0,
              encoder_dropout=0.0, encoder_layer_norm_first=False, encoder_layer_drop=0.0, aux_num_out=None)
    torch.manual_seed(0)
    ckpt = tmp_path / "w2v.safetensors"
    save_file(AM.wav2vec2_model(**kw).state_dict(), str(ckpt))
    tok = SemanticAudioTokenizer({"name": "hubert", "checkpoint": str(ckpt), "layer": 2, "arch": "wav2vec2_model",
                                  "arch_kwargs": kw}, k=4)
    clip = samples / "audio/speech_000.flac"
    tok.fit([clip], iters=2)
    path = tok.save_pretrained(tmp_path / "units")
    ckpt.unlink()
    back = SemanticAudioTokenizer.from_pretrained(path)
    assert torch.equal(back.encode(clip), tok.encode(clip))
    assert json.loads((path / "config.json").read_text())["settings"]["features"]["checkpoint"] == \
        "features.safetensors"
    # a declared model bigger than the stored weights is refused before it is built
    _edit(path / "config.json", lambda c: c["settings"]["features"]["arch_kwargs"].update(encoder_embed_dim=10**6))
    _refuses(tmp_path, lambda: SemanticAudioTokenizer.from_pretrained(path), "declares tensor")
    _edit(path / "config.json", lambda c: c["settings"]["features"].update(arch="__import__"))
    with pytest.raises(TokenizerLoadError, match="arch must be one of"):
        SemanticAudioTokenizer.from_pretrained(path)
    with pytest.raises(ValueError, match="arch must be one of"):
        HubertFeatures(str(path / "features.safetensors"), arch="os")
