"""transformers audio codecs (EnCodec 24 kHz / 48 kHz, DAC, Mimi, X-codec) and HuBERT/wav2vec2 features as mmtok
tokenizers: tiny random models built from their config classes, saved, and opened through ``from_hf``."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import pytest
import torch

from modalities import ImageTokenizer, MultimodalTokenizer, SemanticAudioTokenizer, TokenizerLoadError
from modalities.external import from_hf
from modalities.external.audio_codecs import PAD_CODE, DacTokenizer, EncodecTokenizer, MimiTokenizer, XcodecTokenizer
from modalities.multimodal import Audio, Image, Text
from modalities.shards import ShardReader, pretokenize
from models.quantizer import QuantizerConfig
from models.vqae import VQAEConfig

transformers = pytest.importorskip("transformers")

TINY_HUBERT = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, conv_dim=(8,) * 7,
                   num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2)


def _configs() -> dict[str, tuple[type, object]]:
    """name -> (model class, tiny config) with the real checkpoints' rates, hops and codebook sizes."""
    t = transformers
    return {
        "encodec_24khz": (t.EncodecModel, t.EncodecConfig(  # causal, mono, 75 Hz
            hidden_size=16, num_filters=4, codebook_size=1024, codebook_dim=16, num_lstm_layers=1,
            target_bandwidths=[1.5, 3.0])),
        "encodec_48khz": (t.EncodecModel, t.EncodecConfig(  # stereo, normalised chunks (0.1 s here, 1 s real)
            sampling_rate=48000, audio_channels=2, normalize=True, chunk_length_s=0.1, overlap=0.01,
            use_causal_conv=False, norm_type="time_group_norm", hidden_size=16, num_filters=4, codebook_size=1024,
            codebook_dim=16, num_lstm_layers=1, target_bandwidths=[3.0, 6.0])),
        "dac": (t.DacModel, t.DacConfig(encoder_hidden_size=4, downsampling_ratios=[2, 4, 5, 8], decoder_hidden_size=16,
                                        n_codebooks=3, codebook_size=1024, codebook_dim=4)),
        "mimi": (t.MimiModel, t.MimiConfig(
            hidden_size=16, num_filters=4, codebook_size=2048, codebook_dim=8, num_quantizers=4,
            vector_quantization_hidden_dimension=8, upsample_groups=16, num_hidden_layers=2, intermediate_size=32,
            num_attention_heads=2, num_key_value_heads=2, sliding_window=8)),
        "xcodec": (t.XcodecModel, t.XcodecConfig(
            acoustic_model_config=dict(encoder_hidden_size=4, decoder_hidden_size=16),
            semantic_model_config=dict(model_type="hubert", **TINY_HUBERT), codebook_size=1024)),
    }


OPTIONS = {"encodec_24khz": {"bandwidth": 3.0}, "encodec_48khz": {"bandwidth": 6.0}, "dac": {"num_codebooks": 2},
           "mimi": {"num_codebooks": 3}, "xcodec": {"bandwidth": 1.0}}
ADAPTER = {"encodec_24khz": EncodecTokenizer, "encodec_48khz": EncodecTokenizer, "dac": DacTokenizer,
           "mimi": MimiTokenizer, "xcodec": XcodecTokenizer}
NAMES = list(OPTIONS)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The models are tiny: a second intra-op thread only adds synchronisation (and spinning on shared cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _rate(cfg) -> int:
    return cfg.sample_rate if hasattr(cfg, "sample_rate") else cfg.sampling_rate


def _calibrate(model, wave: torch.Tensor) -> None:
    """Fills every Euclidean codebook (all zero after random init) with frames of its own input, so codes vary."""
    g = torch.Generator().manual_seed(0)
    patched = []
    for mod in model.modules():
        if hasattr(mod, "quantize") and (hasattr(mod, "embed_sum") or isinstance(getattr(mod, "embed", None),
                                                                                 torch.Tensor)):
            def quantize(h, mod=mod, orig=mod.quantize):
                if not getattr(mod, "_calibrated", False):
                    rows = h[torch.randint(len(h), (mod.codebook_size,), generator=g)]
                    rows = rows + 0.05 * h.std() * torch.randn(rows.shape, generator=g)
                    if hasattr(mod, "embed_sum"):
                        mod.embed_sum.copy_(rows)
                        mod._embed = None
                    else:
                        mod.embed.copy_(rows)
                    mod._calibrated = True
                return orig(h)

            mod.quantize = quantize
            patched.append(mod)
    with torch.no_grad():
        model.encode(wave)
    for mod in patched:
        del mod.quantize


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, object]:
    """name -> local transformers folder of a tiny random model."""
    root = tmp_path_factory.mktemp("hf")
    out = {}
    for name, (cls, cfg) in _configs().items():
        torch.manual_seed(0)
        model = cls(cfg).eval()
        channels = getattr(cfg, "audio_channels", 1)
        _calibrate(model, _noise(channels, _rate(cfg) // 2, seed=1))
        model.save_pretrained(root / name)
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def toks(folders) -> dict[str, object]:
    return {name: from_hf(folders[name], **OPTIONS[name]) for name in NAMES}


def _noise(channels: int, n: int, seed: int = 0) -> torch.Tensor:
    """``float[1, channels, n]``: a chirp plus noise (more structure than white noise)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / n
    chirp = 0.3 * torch.sin(2 * math.pi * (50 + 400 * t) * t * 20)
    return (chirp + 0.05 * torch.randn(channels, n, generator=g))[None]


def _direct(name: str, model, wave: torch.Tensor) -> torch.Tensor:
    """The codes the transformers model itself gives, in the mmtok layout [B, K, T']."""
    opts = OPTIONS[name]
    with torch.no_grad():
        if name.startswith("encodec"):
            out = model.encode(wave, bandwidth=opts["bandwidth"])
            n, b, k, f = out.audio_codes.shape
            return out.audio_codes.permute(1, 2, 0, 3).reshape(b, k, n * f)[..., : n * f - out.last_frame_pad_length]
        if name == "dac":
            return model.encode(wave, n_quantizers=opts["num_codebooks"]).audio_codes
        if name == "mimi":
            return model.encode(wave, num_quantizers=opts["num_codebooks"]).audio_codes
        return model.encode(wave, bandwidth=opts["bandwidth"]).audio_codes


# ------------------------------------------------------------------------------------------ codes and geometry
@pytest.mark.parametrize("name", NAMES)
def test_codes_equal_the_direct_call(name, toks):
    tok = toks[name]
    assert type(tok) is ADAPTER[name] and tok.kind == "audio"
    model, hop, sr = tok.model, tok.downsample, tok.sample_rate
    wave = _noise(tok.channels, 12 * hop if name != "encodec_48khz" else 4 * 4800 + 7 * hop)
    codes = tok.encode(wave, sample_rate=sr)
    want = _direct(name, model, wave)
    assert codes.dtype == torch.long and codes.shape == want.shape == (1, tok.num_codebooks, tok.frame_count(
        wave.shape[-1]))
    assert torch.equal(codes, want)
    assert len(codes.unique()) > 8  # the calibrated codebooks are used
    # a length that is not whole frames: padded with silence at the end first
    cut = wave[..., : wave.shape[-1] - 7]
    padded = torch.nn.functional.pad(cut, (0, 7))
    assert torch.equal(tok.encode(cut, sample_rate=sr), _direct(name, model, padded))
    # decode: the model's own decoder on the same codes
    audio = tok.decode(codes)
    n = tok.decoded_length(codes.shape[-1])
    assert audio.shape == ((1, n) if tok.channels == 1 else (1, 2, n)) and n >= wave.shape[-1]
    assert tok.decode(codes, length=100).shape[-1] == 100 and torch.isfinite(audio).all()


def test_geometry_follows_the_configs(toks, folders):
    e24, e48, dac, mimi, xc = (toks[n] for n in NAMES)
    assert (e24.sample_rate, e24.downsample, e24.frame_rate, e24.codebook_size, e24.num_codebooks) == (
        24000, 320, 75.0, 1024, 4)
    assert e24.bits_per_second == 3000.0 and e24.causal and not e24.chunking_is_exact
    assert (e48.sample_rate, e48.channels, e48.downsample, e48.num_codebooks, e48.frames_per_chunk) == (
        48000, 2, 320, 4, 15)
    assert e48.frame_rate == pytest.approx(48000 * 15 / 4752) and e48.chunking_is_exact
    assert (dac.sample_rate, dac.downsample, dac.frame_rate, dac.num_codebooks) == (16000, 320, 50.0, 2)
    assert (mimi.sample_rate, mimi.downsample, mimi.frame_rate, mimi.codebook_size, mimi.num_codebooks) == (
        24000, 1920, 12.5, 2048, 3)
    assert (xc.sample_rate, xc.downsample, xc.frame_rate, xc.num_codebooks) == (16000, 320, 50.0, 2)
    assert from_hf(folders["xcodec"]).num_codebooks == 8  # 4 kbps, the model's default


def test_inputs_are_resampled_and_mixed(toks, samples):
    e24, e48 = toks["encodec_24khz"], toks["encodec_48khz"]
    path = samples / "audio/speech_000.flac"  # 16 kHz mono file
    import soundfile

    info = soundfile.info(str(path))
    codes = e24.encode(path)
    assert codes.shape == (1, 4, e24.frame_count(math.ceil(info.frames * 24000 / info.samplerate)))
    stereo = _noise(2, 16000)  # [1, 2, T] at 16 kHz -> 24 kHz mono
    assert e24.encode(stereo, sample_rate=16000).shape[-1] == 75
    mono = _noise(1, 4800)[0, 0].numpy()  # numpy [T] -> duplicated to the stereo model's two channels
    both = torch.from_numpy(mono).expand(2, -1)
    assert torch.equal(e48.encode(mono, sample_rate=48000), e48.encode(both, sample_rate=48000))
    with pytest.raises(ValueError, match="3 channels"):
        e48.encode(torch.zeros(3, 4800), sample_rate=48000)
    with pytest.raises(ValueError, match="sample_rate"):
        e24.encode(torch.zeros(4800))


# ---------------------------------------------------------------------------------------------- ragged batches
@pytest.mark.parametrize("name", NAMES)
def test_a_ragged_batch_gives_each_clip_its_own_codes(name, toks):
    tok = toks[name]
    sr, hop = tok.sample_rate, tok.downsample
    lengths = [9 * hop + 17, 4 * hop, 14 * hop - 3] if name != "encodec_48khz" else [9000 + 17, 4800, 14000 - 3]
    clips = [_noise(tok.channels, n, seed=i)[0] for i, n in enumerate(lengths)]
    codes = tok.encode(clips, sample_rate=sr)
    frames = [tok.frame_count(n) for n in lengths]
    assert codes.shape == (3, tok.num_codebooks, max(frames))
    for i, (clip, n) in enumerate(zip(clips, frames, strict=True)):
        alone = tok.encode(clip, sample_rate=sr)
        assert alone.shape[-1] == n and torch.equal(codes[i, :, :n], alone[0])
        assert (codes[i, :, n:] == PAD_CODE).all()
    assert [c.shape[-1] for c in tok.encode_clips(clips, sample_rate=sr)] == frames
    with pytest.raises(ValueError, match="cut them off"):
        tok.decode(codes[1])


# ----------------------------------------------------------------------------------------------------- chunking
@pytest.mark.parametrize("name", NAMES)
def test_chunked_codes_against_whole_file_codes(name, toks):
    """The README's claim per model: exact for Mimi (streaming caches), EnCodec 48 kHz (its own chunk grid) and
    DAC (receptive field as context); EnCodec 24 kHz and X-codec are approximate (first chunk exact for the
    causal EnCodec)."""
    tok = toks[name]
    sr = tok.sample_rate
    wave = _noise(tok.channels, int(1.3 * sr) + 5, seed=3)
    whole = tok.encode(wave, sample_rate=sr)
    chunked = tok.encode(wave, sample_rate=sr, chunk_seconds=0.4, context_seconds=0.2)
    assert chunked.shape == whole.shape
    expected_exact = name in ("encodec_48khz", "dac", "mimi")
    assert tok.chunking_is_exact == expected_exact
    if expected_exact:
        assert torch.equal(chunked, whole)
    else:
        first = round(0.4 * tok.frame_rate)
        if tok.causal:
            assert torch.equal(chunked[..., :first], whole[..., :first])
        agree = (chunked == whole).float().mean()
        assert agree > 0.2  # mostly the same codes, not the same everywhere


# ------------------------------------------------------------------------------------------------- save / load
@pytest.mark.parametrize("name", NAMES)
def test_save_pretrained_is_self_contained(name, folders, tmp_path):
    src = tmp_path / "orig"
    shutil.copytree(folders[name], src)
    tok = from_hf(src, **OPTIONS[name])
    wave = _noise(tok.channels, tok.sample_rate // 2, seed=5)
    codes = tok.encode(wave, sample_rate=tok.sample_rate)
    out = tok.save_pretrained(tmp_path / "saved")
    shutil.rmtree(src)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["class"] == ADAPTER[name].__name__ and cfg["kind"] == "audio"
    assert cfg["settings"]["options"] == tok.options and str(src) not in (out / "config.json").read_text()
    assert (out / "hf" / "config.json").is_file() and (out / "hf" / "model.safetensors").is_file()
    again = ADAPTER[name].from_pretrained(out)
    assert again.options == tok.options and again.num_codebooks == tok.num_codebooks
    assert torch.equal(again.encode(wave, sample_rate=tok.sample_rate), codes)


# ------------------------------------------------------------------------------------------- mixed documents
def test_multimodal_with_an_external_codec(toks, text_tok, samples, tmp_path):
    torch.manual_seed(0)
    image = ImageTokenizer.from_configs(VQAEConfig(channels=[8, 8, 16, 16], z_dim=8, groups=4),
                                        QuantizerConfig(kind="fsq", levels=[4, 4, 4]), size_policy="resize", size=32)
    codec = toks["encodec_24khz"]
    mm = MultimodalTokenizer({"text": text_tok, "image": image, "audio": codec})
    assert mm.registry.modality("audio").size == 1024
    wave = _noise(1, 8000)[0]
    doc = [Text("a cat"), Image(samples / "images/chelsea.png"), Text("says"), Audio(wave, 16000)]
    seq = mm.encode(doc, bos=True, eos=True)
    parts = mm.decode(seq.ids)
    assert parts[0] == "a cat" and parts[1].shape == (3, 32, 32) and parts[2] == "says"
    assert isinstance(parts[3], Audio) and parts[3].sample_rate == 24000 and parts[3].data.shape == (38 * 320,)
    mm.save_pretrained(tmp_path / "mm")
    again = MultimodalTokenizer.from_pretrained(tmp_path / "mm")
    assert type(again.tokenizers["audio"]) is EncodecTokenizer
    assert torch.equal(again.encode(doc, bos=True, eos=True).ids, seq.ids)
    docs = [[Text("speech:"), Audio(samples / f"audio/speech_00{i}.flac")] for i in range(3)]
    docs.insert(1, doc)
    man = pretokenize(docs, mm, tmp_path / "tok", shard_docs=2, show_progress=False)
    assert man["documents"] == 4 and man["skipped"] == 0 and man["tokens_per_modality"]["audio"] > 0
    reader = ShardReader(tmp_path / "tok", fingerprint=mm.registry.fingerprint)
    assert reader[1].tolist() == seq.ids.tolist()
    assert reader[0].tolist() == mm.encode(docs[0], bos=True, eos=True).ids.tolist()


# ----------------------------------------------------------------------------------------------------- errors
def test_a_folder_of_another_model_is_a_clear_error(folders, tmp_path):
    with pytest.raises(TokenizerLoadError, match="holds a 'dac' model, not 'encodec'"):
        EncodecTokenizer.from_hf(folders["dac"])
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(TokenizerLoadError, match="no mmtok adapter for model_type 'bert'"):
        from_hf(tmp_path / "bert")
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        from_hf(tmp_path / "facebook/encodec_24khz")
    shutil.copytree(folders["mimi"], tmp_path / "bin")
    (tmp_path / "bin" / "model.safetensors").rename(tmp_path / "bin" / "pytorch_model.bin")
    with pytest.raises(TokenizerLoadError, match="safetensors only"):
        from_hf(tmp_path / "bin")


def test_bad_options_are_clear_errors(folders, toks):
    with pytest.raises(ValueError, match=r"bandwidth must be one of \[1.5, 3.0\]"):
        from_hf(folders["encodec_24khz"], bandwidth=6.0)
    with pytest.raises(ValueError, match=r"num_codebooks must be an int in \[1, 3\]"):
        from_hf(folders["dac"], num_codebooks=4)
    with pytest.raises(ValueError, match=r"num_codebooks must be an int in \[1, 4\]"):
        from_hf(folders["mimi"], num_codebooks=0)
    with pytest.raises(ValueError, match="num_codebooks must be an int"):
        from_hf(folders["dac"], num_codebooks=True)
    with pytest.raises(ValueError, match="not both"):
        from_hf(folders["xcodec"], bandwidth=1.0, num_codebooks=2)
    with pytest.raises(TypeError, match=r"unknown \['bandwith'\]; accepted: \['bandwidth'\]"):
        from_hf(folders["encodec_24khz"], bandwith=3.0)
    tok = toks["dac"]
    with pytest.raises(ValueError, match="3 codebooks .* has 2"):
        tok.decode(torch.zeros(1, 3, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"in \[0, 1024\)"):
        tok.decode(torch.full((2, 5), 1024))
    with pytest.raises(ValueError, match="chunk_seconds"):
        tok.encode(torch.zeros(3200), sample_rate=16000, chunk_seconds=0)


def test_encodec_48khz_scales(toks):
    """Codes cannot carry the per-chunk RMS of a normalising EnCodec: decode uses DEFAULT_SCALE unless given."""
    tok = toks["encodec_48khz"]
    wave = _noise(2, 3 * 4752 + 100, seed=7)
    codes, scales = tok.encode_with_scales(wave, sample_rate=48000)
    assert torch.equal(codes, tok.encode(wave, sample_rate=48000)) and scales.shape == (1, 4)
    with torch.no_grad():
        out = tok.model.encode(torch.nn.functional.pad(wave, (0, -wave.shape[-1] % 320)), bandwidth=6.0)
        want = tok.model.decode(out.audio_codes, out.audio_scales, last_frame_pad_length=out.last_frame_pad_length)
    assert torch.equal(tok.decode(codes, scales=scales), want.audio_values)
    unit = tok.decode(codes)
    assert unit.shape == want.audio_values.shape and not torch.equal(unit, want.audio_values)


# --------------------------------------------------------------------------------------- HuBERT semantic units
@pytest.fixture(scope="module")
def hubert_folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("hubert") / "hubert"
    torch.manual_seed(0)
    transformers.HubertModel(transformers.HubertConfig(**TINY_HUBERT)).eval().save_pretrained(path)
    return path


def test_hf_hubert_units_fit_save_and_load_without_the_folder(hubert_folder, tmp_path):
    src = tmp_path / "hubert"
    shutil.copytree(hubert_folder, src)
    clips = [_noise(1, 8000 + 640 * i, seed=i)[0, 0] for i in range(3)]
    tok = from_hf(src, layer=1, k=4)
    assert isinstance(tok, SemanticAudioTokenizer) and not tok.fitted
    assert (tok.sample_rate, tok.hop_length, tok.frame_rate, tok.extractor.dim) == (16000, 320, 50.0, 16)
    feats = tok.raw_features(clips[0], sample_rate=16000)
    with torch.no_grad():
        want = tok.extractor.model(clips[0][None], output_hidden_states=True).hidden_states[1]
    assert torch.equal(feats, want) and feats.shape == (1, 24, 16)
    stats = tok.fit(clips, iters=3, sample_rate=16000)
    assert stats["frames"] == 24 + 26 + 28
    units = tok.encode(clips[1], sample_rate=16000)
    assert units.shape == (1, 1, 26)
    out = tok.save_pretrained(tmp_path / "units")
    shutil.rmtree(src)
    saved = json.loads((out / "config.json").read_text())["settings"]["features"]
    assert saved["name"] == "hf_hubert" and saved["checkpoint"] == "features.safetensors" and "path" not in saved
    assert saved["config"]["model_type"] == "hubert" and saved["layer"] == 1
    again = SemanticAudioTokenizer.from_pretrained(out)
    assert torch.equal(again.encode(clips[1], sample_rate=16000), units)
    again.save_pretrained(tmp_path / "units2")  # a loaded one saves again
    assert torch.equal(SemanticAudioTokenizer.from_pretrained(tmp_path / "units2").encode(
        clips[1], sample_rate=16000), units)


def test_hf_hubert_refuses_bad_settings(hubert_folder, folders, tmp_path):
    with pytest.raises(ValueError, match=r"layer must be an int in \[1, 2\]"):
        SemanticAudioTokenizer({"name": "hf_hubert", "path": str(hubert_folder), "layer": 3})
    with pytest.raises(ValueError, match="'mimi' is not a HuBERT"):
        SemanticAudioTokenizer({"name": "hf_hubert", "path": str(folders["mimi"])})
    tok = SemanticAudioTokenizer({"name": "hf_hubert", "path": str(hubert_folder), "layer": 1}, k=2)
    tok.fit([_noise(1, 4000)[0, 0]], iters=1, sample_rate=16000)
    out = tok.save_pretrained(tmp_path / "units")
    cfg = json.loads((out / "config.json").read_text())
    cfg["settings"]["features"]["config"]["hidden_size"] = 1 << 20  # declares a model its weights do not hold
    (out / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(TokenizerLoadError, match="hf_hubert"):
        SemanticAudioTokenizer.from_pretrained(out)


def test_wav2vec2_features_are_the_models_layer(tmp_path):
    path = tmp_path / "w2v"
    torch.manual_seed(0)
    transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**TINY_HUBERT)).save_pretrained(path)
    (path / "preprocessor_config.json").write_text(json.dumps({"sampling_rate": 16000, "do_normalize": True}))
    tok = from_hf(path, layer=2, k=3)
    wave = _noise(1, 6400)[0]
    x = wave - wave.mean()
    x = x / torch.sqrt(x.var(unbiased=False) + 1e-7)
    with torch.no_grad():
        want = tok.extractor.model(x, output_hidden_states=True).hidden_states[2]
    assert tok.extractor.normalize and torch.equal(tok.raw_features(wave, sample_rate=16000), want)


def test_importing_mmtok_does_not_import_transformers():
    code = ("import sys, modalities, modalities.external, modalities.audio_features, modalities.semantic; "
            "from modalities.external import audio_codecs, hubert; assert 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
