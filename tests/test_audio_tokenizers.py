"""Spectrogram and semantic audio tokenizers: shapes, geometry, save/load, stream round trips, bad input."""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from modalities import RegistryError, Segment, TokenizerLoadError, VocabRegistry, pack, unpack
from modalities.audio import SpectrogramTokenizer
from modalities.audio_features import register_feature_extractor
from modalities.semantic import SemanticAudioTokenizer, run_length_dedup
from models.kmeans import KMeans
from models.melspec import LogMel, MelConfig
from models.melvq import MelVQAutoencoder, MelVQConfig
from models.quantizer import QUANTIZER_KINDS, QuantizerConfig

warnings.filterwarnings("ignore", category=UserWarning, module="vector_quantize_pytorch")

MEL = MelConfig(n_mels=32, griffin_lim_iters=4)
TINY = MelVQConfig(channels=[8, 16, 16], z_dim=16, band_channels=4, groups=4)


def _q(kind: str = "rvq") -> QuantizerConfig:
    return QuantizerConfig(kind=kind, codebook_size=32, levels=[8, 4], num_quantizers=2)


@pytest.fixture(scope="module")
def spec() -> SpectrogramTokenizer:
    torch.manual_seed(0)
    return SpectrogramTokenizer.from_configs(TINY, _q(), MEL)


@pytest.fixture(scope="module")
def semantic(samples) -> SemanticAudioTokenizer:
    tok = SemanticAudioTokenizer(k=16)
    tok.fit(sorted((samples / "audio").glob("speech_00*.flac")), iters=5, batch_size=512)
    return tok


def test_log_mel_framing_and_inverse():
    lm = LogMel(MEL)
    t = torch.arange(16000) / 16000
    wave = 0.5 * torch.sin(2 * torch.pi * 440 * t)[None]
    mel = lm(wave)
    assert mel.shape == (1, 1, 32, 100) and 0 <= float(mel.min()) and float(mel.max()) <= 1
    back = lm.invert(mel)
    assert back.shape == (1, 16000)
    # the tone survives Griffin-Lim: its long-term spectrum matches within a few dB where it has energy
    before, after = (lm.to_db(m)[0, 0, :, 2:-2].mean(-1) for m in (mel, lm(back)))
    loud = before > before.max() - 30
    assert int(loud.sum()) >= 2 and int(before.argmax()) == int(after.argmax())
    assert float((before - after)[loud].abs().mean()) < 3.0
    with pytest.raises(ValueError, match="max_db"):
        LogMel(MelConfig(min_db=10, max_db=0))


@pytest.mark.parametrize("kind", QUANTIZER_KINDS)
def test_mel_autoencoder_every_quantizer(kind):
    torch.manual_seed(0)
    model = MelVQAutoencoder(TINY, _q(kind), n_mels=32)
    out = model(torch.rand(2, 1, 32, 16) * 2 - 1)
    out.loss.backward()
    assert out.recon.shape == (2, 1, 32, 16)
    assert out.codes.shape == ((2, 4, 2) if kind == "rvq" else (2, 4))
    with pytest.raises(ValueError, match="log-mel batch"):
        model(torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match="multiple of the downsample factor 4"):
        model(torch.rand(2, 1, 32, 10))
    with pytest.raises(ValueError, match="n_mels=30"):
        MelVQAutoencoder(TINY, _q(kind), n_mels=30)


def test_geometry(spec):
    assert spec.sample_rate == 16000 and spec.hop_length == 160 and spec.downsample == 4
    assert spec.samples_per_token == 640 and spec.frame_rate == 25.0
    assert spec.num_codebooks == 2 and spec.codebook_size == 32
    assert spec.bits_per_second == 25 * 2 * 5


@pytest.mark.parametrize("n", [640, 641, 1279, 3200])
def test_encode_decode_lengths(spec, n):
    wave = torch.rand(2, 1, n) - 0.5  # [B, C, T]; a 2-D tensor would be one clip's channels
    codes = spec.encode(wave, sample_rate=16000)
    t = -(-n // 640)
    assert codes.shape == (2, 2, t) and codes.dtype == torch.long
    assert spec.decode(codes).shape == (2, t * 640)
    assert spec.decode(codes, length=n).shape == (2, n)
    assert spec.decode_mel(codes).shape == (2, 32, 4 * t)


def test_files_resampling_and_channels(spec, samples):
    path = samples / "audio/speech_000.flac"
    codes = spec.encode(path)
    import soundfile as sf

    frames = sf.info(str(path)).frames
    assert codes.shape == (1, 2, -(-frames // 640))
    stereo = torch.rand(1, 2, 1280) - 0.5
    assert spec.encode(stereo, sample_rate=16000).shape == (1, 2, 2)  # mono mix
    assert spec.encode(torch.rand(1, 2560) - 0.5, sample_rate=32000).shape == (1, 2, 2)  # resampled to 1280


def test_save_load_same_codes(spec, tmp_path):
    wave = torch.rand(1, 3200) - 0.5
    spec.save_pretrained(tmp_path / "spec")
    back = SpectrogramTokenizer.from_pretrained(tmp_path / "spec")
    assert torch.equal(back.encode(wave, sample_rate=16000), spec.encode(wave, sample_rate=16000))
    assert back.frame_rate == spec.frame_rate
    with pytest.raises(TokenizerLoadError, match="SemanticAudioTokenizer"):
        SemanticAudioTokenizer.from_pretrained(tmp_path / "spec")


def test_decode_refuses_bad_codes(spec):
    with pytest.raises(ValueError, match="out of range"):
        spec.decode(torch.full((1, 2, 3), 32))
    with pytest.raises(ValueError, match="out of range"):
        spec.decode(torch.full((1, 2, 3), -1))
    with pytest.raises(ValueError, match="3 codebooks"):
        spec.decode(torch.zeros(1, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        spec.decode(torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="no frames"):
        spec.decode(torch.zeros(1, 2, 0, dtype=torch.long))


def _registry(spec, semantic) -> VocabRegistry:
    reg = VocabRegistry()
    reg.add_modality("text", 100)
    assert spec.register(reg).size == 32 and spec.register(reg) == reg.modality("audio")  # idempotent
    semantic.register(reg, "audio_semantic")
    with pytest.raises(RegistryError, match="'audio' has 32 ids"):
        semantic.register(reg, "audio")
    return reg


def test_packed_audio_decodes_to_the_right_length(spec, semantic):
    reg = _registry(spec, semantic)
    n = 5000
    wave = 0.3 * torch.sin(torch.arange(n) / 7.0)[None]
    codes = spec.encode(wave, sample_rate=16000)[0]
    units = semantic.encode(wave, sample_rate=16000)[0]
    seq = pack([Segment("text", [1, 2]), Segment("audio", codes), Segment("audio_semantic", units)], reg)
    segs = unpack(seq.ids, reg)
    assert [s.modality for s in segs] == ["text", "audio", "audio_semantic"]
    assert torch.equal(segs[1].codes, codes) and torch.equal(segs[2].codes, units)
    out = spec.decode(segs[1].codes)
    assert out.shape[-1] == codes.shape[-1] * spec.samples_per_token
    assert 0 <= out.shape[-1] - n < spec.samples_per_token  # only the padding to a whole token
    assert spec.decode(segs[1].codes, length=n).shape == (1, n)
    approx = semantic.decode(segs[2].codes)
    assert abs(approx.shape[-1] - n) < semantic.hop_length  # one unit per hop


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=60))
def test_run_length_dedup_property(units):
    x = torch.tensor(units)
    u, d = run_length_dedup(x)
    assert torch.equal(u.repeat_interleave(d), x)
    assert (d >= 1).all() and not (u[1:] == u[:-1]).any()


def test_semantic_encode_dedup_decode(semantic, samples, tmp_path):
    path = samples / "audio/speech_070.flac"
    units = semantic.encode(path)
    import soundfile as sf

    assert units.shape == (1, 1, sf.info(str(path)).frames // 160)
    assert semantic.frame_rate == 100.0 and int(units.max()) < 16
    (u, d), = semantic.encode_dedup(path)
    assert u.shape[-1] < units.shape[-1] and int(d.sum()) == units.shape[-1]
    feats = semantic.decode_features(u, d[None])
    assert torch.allclose(feats, semantic.decode_features(units))
    assert semantic.decode(units).shape == (1, units.shape[-1] * 160)
    semantic.save_pretrained(tmp_path / "sem")
    back = SemanticAudioTokenizer.from_pretrained(tmp_path / "sem")
    assert torch.equal(back.encode(path), units)
    stats = semantic.evaluate([path])
    assert stats["units_per_second"] == pytest.approx(100.0)
    assert stats["dedup_units_per_second"] < 100 and 0 < stats["usage"] <= 1 and stats["inertia"] > 0
    with pytest.raises(ValueError, match="out of range"):
        semantic.decode(torch.tensor([[[16]]]))
    with pytest.raises(ValueError, match="durations"):
        semantic.decode_features(u, torch.zeros_like(d)[None])
    with pytest.raises(ValueError, match="shorter than one feature frame"):
        semantic.encode(torch.zeros(100), sample_rate=16000)


def test_unfitted_semantic_refuses():
    tok = SemanticAudioTokenizer(k=8)
    with pytest.raises(RuntimeError, match="not been fitted"):
        tok.encode(torch.zeros(1600), sample_rate=16000)
    with pytest.raises(ValueError, match="non-empty list"):
        tok.fit([])


@register_feature_extractor("test_frame_energy")
class FrameEnergy(nn.Module):
    """A user feature extractor: log energy and zero crossings per 20 ms frame."""

    sample_rate, hop_length, dim = 16000, 320, 2

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        frames = wave[:, : wave.shape[-1] // 320 * 320].unflatten(-1, (-1, 320))
        energy = (frames**2).mean(-1).clamp_min(1e-8).log()
        zc = (frames[..., 1:] * frames[..., :-1] < 0).float().mean(-1)
        return torch.stack([energy, zc], -1)


def test_custom_feature_extractor_by_name(samples, tmp_path):
    tok = SemanticAudioTokenizer("test_frame_energy", k=4)
    tok.fit(sorted((samples / "audio").glob("speech_01*.flac")), iters=5, batch_size=None)
    units = tok.encode(samples / "audio/speech_000.flac")
    assert units.shape[1] == 1 and tok.frame_rate == 50.0
    with pytest.raises(NotImplementedError, match="decode_features"):
        tok.decode(units)
    tok.save_pretrained(tmp_path / "fe")
    assert torch.equal(SemanticAudioTokenizer.from_pretrained(tmp_path / "fe").encode(samples / "audio/speech_000.flac"),
                       units)


def test_hubert_features_from_a_local_checkpoint(tmp_path):
    import torchaudio.models as AM
    from safetensors.torch import save_file

    from modalities.audio_features import HubertFeatures

    kw = dict(extractor_mode="group_norm", extractor_conv_layer_config=[(8, 10, 5), (8, 3, 2), (8, 2, 2)],
              extractor_conv_bias=False, encoder_embed_dim=16, encoder_projection_dropout=0.0,
              encoder_pos_conv_kernel=4, encoder_pos_conv_groups=2, encoder_num_layers=2, encoder_num_heads=2,
              encoder_attention_dropout=0.0, encoder_ff_interm_features=32, encoder_ff_interm_dropout=0.0,
              encoder_dropout=0.0, encoder_layer_norm_first=False, encoder_layer_drop=0.0, aux_num_out=None)
    torch.manual_seed(0)
    save_file(AM.wav2vec2_model(**kw).state_dict(), str(tmp_path / "w2v.safetensors"))
    fe = HubertFeatures(str(tmp_path / "w2v.safetensors"), layer=2, arch="wav2vec2_model", arch_kwargs=kw)
    assert fe.hop_length == 20 and fe.dim == 16
    out = fe(torch.randn(2, 1600))
    assert out.shape[0] == 2 and out.shape[-1] == 16 and abs(out.shape[1] - 80) <= 1
    with pytest.raises(FileNotFoundError, match="never downloads"):
        HubertFeatures(str(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match="layer must be in"):
        HubertFeatures(str(tmp_path / "w2v.safetensors"), layer=3, arch="wav2vec2_model", arch_kwargs=kw)


def test_minibatch_kmeans_finds_separated_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = (centres[:, None] + 0.3 * torch.randn(3, 400, 2, generator=g)).reshape(-1, 2)
    km = KMeans(3, 2).fit(x, iters=5, batch_size=64)
    found = km.centroids[torch.cdist(centres, km.centroids).argmin(1)]
    assert torch.allclose(found, centres, atol=0.2)
    assert km.inertia(x) < 0.25
    assert sorted(km.predict(centres).tolist()) == [0, 1, 2]
