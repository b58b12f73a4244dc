"""Causal 3-D autoencoder and VideoTokenizer: causality, shapes, PyAV files, save/load, bad input."""

from __future__ import annotations

import warnings

import pytest
import torch

from modalities import ImageTokenizer, Segment, TokenizerLoadError, VideoTokenizer, VocabRegistry, pack, unpack
from modalities.data.io import load_video
from models.quantizer import QUANTIZER_KINDS, QuantizerConfig
from models.vqae import VQAEConfig
from models.vqae3d import CausalVQAutoencoder, VQAE3DConfig

warnings.filterwarnings("ignore", category=UserWarning, module="vector_quantize_pytorch")


def _tiny(td: int = 2) -> VQAE3DConfig:
    return VQAE3DConfig(channels=[8, 16, 16], z_dim=8, groups=4, temporal_downsample=td)


def _q(kind: str = "fsq") -> QuantizerConfig:
    return QuantizerConfig(kind=kind, codebook_size=64, levels=[4, 4, 4], num_quantizers=2)


@pytest.fixture(scope="module")
def tok() -> VideoTokenizer:
    torch.manual_seed(0)
    return VideoTokenizer.from_configs(_tiny(), _q())


@pytest.mark.parametrize("td", [1, 2, 4])
def test_causal_first_frame_is_coded_alone(td):
    torch.manual_seed(0)
    model = CausalVQAutoencoder(_tiny(td), _q()).eval()
    x = torch.rand(2, 3, 1 + 2 * td, 16, 16) * 2 - 1
    with torch.no_grad():
        codes = model.encode(x)
        assert codes.shape == (2, 3, 4, 4)
        assert torch.allclose(model.encoder(x)[:, :, :1], model.encoder(x[:, :, :1]), atol=1e-5)
        assert torch.equal(codes[:, :1], model.encode(x[:, :, :1]))  # an image is a one-frame video
        video = model.decode(codes)
        assert video.shape == x.shape
        assert torch.allclose(video[:, :, :1], model.decode(codes[:, :1]), atol=1e-5)
        # changing a later frame never changes earlier codes
        y = x.clone()
        y[:, :, -1] = -y[:, :, -1]
        assert torch.equal(model.encode(y)[:, :-1], codes[:, :-1])


@pytest.mark.parametrize("kind", QUANTIZER_KINDS)
def test_every_quantizer_trains_one_step(kind):
    torch.manual_seed(0)
    model = CausalVQAutoencoder(_tiny(), _q(kind))
    out = model(torch.rand(2, 3, 5, 16, 16) * 2 - 1)
    out.loss.backward()
    assert out.recon.shape == (2, 3, 5, 16, 16) and set(out.losses) == {"recon", "quant"}
    assert out.codes.shape == ((2, 3, 4, 4, 2) if kind == "rvq" else (2, 3, 4, 4))
    assert 0 < out.metrics["usage"] <= 1 and out.metrics["perplexity"] >= 1
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_model_refuses_bad_shapes():
    model = CausalVQAutoencoder(_tiny(), _q())
    with pytest.raises(ValueError, match="number of frames must be 1 \\+ k \\* 2"):
        model(torch.rand(1, 3, 4, 16, 16))
    with pytest.raises(ValueError, match="divisible by the downsample factor 4"):
        model(torch.rand(1, 3, 3, 18, 16))
    with pytest.raises(ValueError, match="temporal_downsample must be 1, 2 or 4"):
        CausalVQAutoencoder(VQAE3DConfig(channels=[8, 16], groups=4, temporal_downsample=4), _q())


def test_encode_file_tensor_and_uint8_agree(tok, samples):
    path = samples / "video/bikes.mp4"
    with pytest.warns(UserWarning, match="40 frames is not 1 \\+ k \\* 2; dropping the last 1"):
        codes = tok.encode(path)
    assert codes.shape == (1, 20, 32, 32) and codes.dtype == torch.long
    v = load_video(path, 9)
    assert v.shape == (9, 3, 128, 128)
    assert torch.equal(tok.encode(v), codes[:, :5])
    assert torch.equal(tok.encode((v * 255).round().to(torch.uint8)), codes[:, :5])
    out = tok.decode(codes[:, :5])
    assert out.shape == (1, 9, 3, 128, 128) and float(out.min()) >= 0 and float(out.max()) <= 1


def test_save_load_same_codes(tok, tmp_path, samples):
    loaded = VideoTokenizer.from_pretrained(tok.save_pretrained(tmp_path / "vid"))
    v = load_video(samples / "video/pan_coffee.mp4", 5)
    assert torch.equal(loaded.encode(v), tok.encode(v))
    assert (loaded.mode, loaded.temporal_downsample, loaded.downsample) == ("causal", 2, 4)
    with pytest.raises(TokenizerLoadError, match="holds a 'VideoTokenizer', not a ImageTokenizer"):
        ImageTokenizer.from_pretrained(tmp_path / "vid")


def test_per_frame_mode(tmp_path, samples):
    torch.manual_seed(0)
    img = ImageTokenizer.from_configs(VQAEConfig(channels=[8, 16], z_dim=8, groups=4), _q())
    tok = VideoTokenizer.per_frame(img)
    v = load_video(samples / "video/zoom_chelsea.mp4", 3)
    codes = tok.encode(v)
    assert codes.shape == (1, 3, 64, 64) and tok.temporal_downsample == 1
    assert torch.equal(codes[0, 1], img.encode(v[1])[0])
    assert tok.decode(codes).shape == (1, 3, 3, 128, 128)
    loaded = VideoTokenizer.from_pretrained(tok.save_pretrained(tmp_path / "pf"))
    assert loaded.mode == "per_frame" and torch.equal(loaded.encode(v), codes)


def test_stream_roundtrip_decodes_to_pixels(tok, samples):
    reg = VocabRegistry()
    reg.add_modality("text", 10)
    reg.add_modality("video", tok.codebook_size)
    codes = tok.encode(load_video(samples / "video/bigbuckbunny.mp4", 5)[:, :, :64, :32])[0]
    assert codes.shape == (3, 16, 8)
    (seg,) = unpack(pack([Segment("video", codes)], reg).ids, reg)
    assert torch.equal(seg.codes, codes)
    assert torch.equal(tok.decode(seg.codes), tok.decode(codes))


def test_bad_input(tok, tmp_path):
    with pytest.raises(ValueError, match="video 0 has 4 frames; the tokenizer needs 1 \\+ k \\* 2"):
        tok.encode(torch.rand(4, 3, 16, 16))
    with pytest.raises(ValueError, match="must be \\[B, T, C, H, W\\] or \\[T, C, H, W\\]"):
        tok.encode(torch.rand(3, 16, 16))
    bad = torch.rand(1, 3, 16, 16)
    bad[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="video 0: contains NaN or inf"):
        tok.encode(bad)
    with pytest.raises(ValueError, match="empty video batch"):
        tok.encode(torch.zeros(0, 1, 3, 16, 16))
    with pytest.raises(ValueError, match="not divisible by the downsample factor 4"):
        tok.encode(torch.rand(1, 3, 18, 16))
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    with pytest.raises(ValueError, match="cannot read video .*broken.mp4"):
        tok.encode(tmp_path / "broken.mp4")
    with pytest.raises(FileNotFoundError, match="video file not found"):
        tok.encode(tmp_path / "none.mp4")
    with pytest.raises(ValueError, match="code 64 at position"):
        tok.decode(torch.full((1, 1, 2, 2), 64))


def test_truncated_video_file(tmp_path, samples):
    data = (samples / "video/bikes.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 3])
    try:
        v = load_video(tmp_path / "cut.mp4")
    except ValueError as e:  # the index (moov) may sit at the end: then nothing decodes
        assert "cut.mp4" in str(e)
    else:  # or the decodable prefix comes back, never garbage past the cut
        assert 0 < len(v) < 40
