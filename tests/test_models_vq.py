"""Quantiser factory and the 2-D VQ autoencoder: shapes, code round-trips, a tiny overfit."""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models.quantizer import QUANTIZER_KINDS, Quantizer, QuantizerConfig
from models.vqae import VQAEConfig, VQAutoencoder

warnings.filterwarnings("ignore", category=UserWarning)
TINY = VQAEConfig(channels=[16, 16, 32, 32], z_dim=8, groups=8)


def _qcfg(kind: str) -> QuantizerConfig:
    return QuantizerConfig(kind=kind, codebook_size=64, levels=[4, 4, 4], num_quantizers=2)


@pytest.mark.parametrize("kind", QUANTIZER_KINDS)
def test_quantizer_codes_decode_to_quantized(kind):
    torch.manual_seed(0)
    q = Quantizer(8, _qcfg(kind))
    z = torch.randn(3, 8, 4, 5)
    q(z)  # first call may run k-means init
    q.eval()
    out = q(z)
    assert out.quantized.shape == z.shape
    assert out.codes.shape == ((3, 4, 5, 2) if kind == "rvq" else (3, 4, 5)) and out.codes.dtype == torch.long
    assert int(out.codes.min()) >= 0 and int(out.codes.max()) < q.codebook_size == 64
    assert torch.allclose(q.decode_codes(out.codes), out.quantized, atol=1e-5)
    assert q.bits_per_code == (12.0 if kind == "rvq" else 6.0)


def test_cosine_codes_decode_to_quantized_unit_vectors():
    """Cosine lookup (``use_cosine_sim``): codes decode to the same unit-length vectors the forward pass gives,
    and each latent's code is the one of highest cosine similarity (its length does not matter)."""
    torch.manual_seed(0)
    q = Quantizer(8, QuantizerConfig(kind="vq", codebook_size=64, use_cosine_sim=True))
    z = torch.randn(3, 8, 4, 5)
    q(z)
    q.eval()
    out = q(z)
    assert torch.allclose(q.decode_codes(out.codes), out.quantized, atol=1e-5)
    assert torch.allclose(out.quantized.norm(dim=1), torch.ones(3, 4, 5), atol=1e-4)
    assert torch.equal(q(3.0 * z).codes, out.codes)  # scale-free lookup
    book = q.decode_codes(torch.arange(64)[None]).squeeze(0).T  # [64, D]
    zn = torch.nn.functional.normalize(z.permute(0, 2, 3, 1).reshape(-1, 8), dim=-1)
    assert torch.equal((zn @ book.T).argmax(-1), out.codes.flatten())


def test_quantizer_bad_config_and_codes():
    with pytest.raises(ValueError, match="unknown quantizer kind 'pq'"):
        Quantizer(8, QuantizerConfig(kind="pq"))
    with pytest.raises(ValueError, match="power of two"):
        Quantizer(8, QuantizerConfig(kind="lfq", codebook_size=100))
    with pytest.raises(ValueError, match="levels"):
        Quantizer(8, QuantizerConfig(kind="fsq", levels=[1, 4]))
    q = Quantizer(8, _qcfg("fsq"))
    with pytest.raises(ValueError, match="code 64 at position \\(0, 1, 0\\) is out of range \\[0, 64\\)"):
        q.decode_codes(torch.tensor([[[0], [64]]]))
    with pytest.raises(ValueError, match="expects \\[B, 8, \\*spatial\\]"):
        q(torch.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match="cannot be combined with fsq_preserve_symmetry"):
        Quantizer(8, QuantizerConfig(kind="fsq", levels=[4, 4], fsq_entropy_weight=0.1, fsq_preserve_symmetry=True))
    with pytest.raises(ValueError, match="fsq_entropy_temperature must be > 0"):
        Quantizer(8, QuantizerConfig(kind="fsq", levels=[4, 4], fsq_entropy_weight=0.1, fsq_entropy_temperature=0))


@pytest.mark.parametrize("levels", [[8, 8, 4], [5, 3], [7, 4, 4, 3]])
def test_fsq_entropy_loss_matches_the_hard_codes(levels):
    """At a tiny temperature the soft assignment is the library's rounding: no per-latent entropy, and the
    batch term is exactly the entropy of the histogram of the codes FSQ emits."""
    from models.quantizer import code_histogram, fsq_entropy_loss

    torch.manual_seed(0)
    q = Quantizer(6, QuantizerConfig(kind="fsq", levels=levels, fsq_entropy_weight=1.0)).eval()
    seq = torch.randn(4, 300, 6) * 2
    codes = q(seq.transpose(1, 2)).codes
    p = code_histogram(codes, q.codebook_size).double() / codes.numel()
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    loss = fsq_entropy_loss(q.q, seq, temperature=1e-4)
    assert loss.item() == pytest.approx(-entropy.item(), abs=1e-3)
    # the loss is part of the quantiser's loss in training only, and has gradients towards the encoder
    q.train()
    z = seq.transpose(1, 2).clone().requires_grad_(True)
    out = q(z)
    assert out.loss.item() == pytest.approx(fsq_entropy_loss(q.q, seq).item(), rel=1e-5)
    out.loss.backward()
    assert z.grad.abs().sum() > 0
    assert q.eval()(z).loss.item() == 0.0


@pytest.mark.parametrize("kind", QUANTIZER_KINDS)
def test_autoencoder_shapes_and_decode(kind):
    torch.manual_seed(0)
    model = VQAutoencoder(TINY, _qcfg(kind))
    assert model.downsample == 8
    x = torch.rand(2, 3, 32, 48)
    out = model(x)
    assert out.recon.shape == x.shape and out.loss.ndim == 0
    model.eval()
    with torch.inference_mode():
        codes = model.encode(x)
        assert codes.shape[:3] == (2, 4, 6)
        assert torch.allclose(model.decode(codes), model(x).recon, atol=1e-5)


def test_autoencoder_bad_input():
    model = VQAutoencoder(TINY, _qcfg("fsq"))
    with pytest.raises(ValueError, match="divisible by the downsample factor 8, got \\(30, 32\\)"):
        model.encode(torch.rand(1, 3, 30, 32))
    with pytest.raises(ValueError, match="expected input \\[B, 3, H, W\\]"):
        model.encode(torch.rand(1, 4, 32, 32))
    with pytest.raises(ValueError, match="divisible by groups"):
        VQAutoencoder(VQAEConfig(channels=[12, 16], groups=8), _qcfg("fsq"))


def test_tiny_autoencoder_learns(samples):
    """60 steps on one sample crop must cut the L1 error by more than half."""
    import numpy as np
    from PIL import Image

    torch.manual_seed(0)
    img = np.array(Image.open(samples / "images/chelsea.png").convert("RGB"))[96:160, 96:160]
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    model = VQAutoencoder(TINY, _qcfg("fsq"))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        out = model(x)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        first = first if first is not None else out.losses["recon"].item()
    assert out.losses["recon"].item() < 0.5 * first, (first, out.losses["recon"].item())


def _reseeded_per_step(cfg: QuantizerConfig, steps: int = 5) -> list[int]:
    """Codes whose vector changed at each training step of a vq quantiser fed fixed clustered data."""
    torch.manual_seed(0)
    q = Quantizer(4, cfg).train()
    centres = torch.randn(cfg.codebook_size, 4)
    changed = []
    for step in range(steps + 1):
        z = centres[torch.randint(0, len(centres), (256,))] + 0.01 * torch.randn(256, 4)
        before = q.q._codebook.embed[0].clone()
        q(z.T.reshape(1, 4, 16, 16))
        if step:  # step 0 is the k-means init
            changed.append(int(((q.q._codebook.embed[0] - before).abs().amax(1) > 0.05).sum()))
    return changed


def test_dead_code_share_follows_the_batch(caplog):
    """4096 codes on 256 vectors a batch (f16): the absolute default threshold (2.0) lies far above the uniform
    usage (0.0625), so most codes are re-seeded at every step and a warning says so; with dead_code_share the
    threshold is share x 256/4096 and, once k-means has set the codebook, no code is re-seeded."""
    with caplog.at_level("WARNING", logger="models.quantizer"):
        absolute = _reseeded_per_step(QuantizerConfig(kind="vq", codebook_size=4096, threshold_ema_dead_code=2.0))
    assert min(absolute) >= 200, absolute  # up to 256 (one per batch vector) every step
    assert any("re-seeded from the batch at every step" in r.message for r in caplog.records)
    caplog.clear()
    cfg = QuantizerConfig(kind="vq", codebook_size=256, dead_code_share=0.1)
    with caplog.at_level("WARNING", logger="models.quantizer"):
        shared = _reseeded_per_step(cfg)
    assert max(shared) <= 2, shared
    assert not caplog.records
    q = Quantizer(4, cfg).train()
    q(torch.randn(2, 4, 8, 8))
    assert q.q._codebook.threshold_ema_dead_code == pytest.approx(0.1 * 128 / 256)
    assert q.q._codebook.reset_cluster_size == pytest.approx(128 / 256)
    rvq = Quantizer(4, QuantizerConfig(kind="rvq", codebook_size=64, num_quantizers=2, dead_code_share=0.5)).train()
    rvq(torch.randn(2, 4, 8, 8))
    assert [b.threshold_ema_dead_code for b in rvq._codebooks()] == [pytest.approx(0.5 * 128 / 64)] * 2
    with pytest.raises(ValueError, match="dead_code_share"):
        Quantizer(4, QuantizerConfig(dead_code_share=-1))


@settings(max_examples=10, deadline=None)
@given(levels=st.integers(1, 3), h=st.integers(1, 3), w=st.integers(1, 3), scale=st.floats(0.25, 4.0),
       seed=st.integers(0, 2**16))
def test_mean_colour_channels_are_the_patch_means(levels, h, w, scale, seed):
    """``mean_colour``: the latent's last C channels are each patch's mean times the scale, exactly; the rest is
    learned."""
    torch.manual_seed(seed)
    cfg = VQAEConfig(channels=[8] * (levels + 1), groups=4, z_dim=6, mean_colour=scale)
    m = VQAutoencoder(cfg, QuantizerConfig(kind="vq", codebook_size=16, dead_code_share=0.1))
    f = m.downsample
    x = torch.rand(2, 3, h * f, w * f) * 2 - 1
    z = m.encoder(x)
    assert z.shape == (2, 6, h, w)
    means = x.reshape(2, 3, h, f, w, f).mean((3, 5))
    torch.testing.assert_close(z[:, 3:], scale * means)


def test_mean_colour_decoder_adds_detail_to_the_code_colour():
    """The decoder's output is its network's plus each code's colour channels, unscaled and upsampled: with the
    network's last layer zeroed a code decodes to a flat patch of exactly its colour, however saturated."""
    torch.manual_seed(0)
    cfg = VQAEConfig(channels=[8, 8, 8], groups=4, z_dim=5, mean_colour=2.0)
    m = VQAutoencoder(cfg, QuantizerConfig(kind="vq", codebook_size=4, kmeans_init=False))
    last = m.decoder.net[-1]
    torch.nn.init.zeros_(last.weight), torch.nn.init.zeros_(last.bias)
    colours = torch.tensor([[1.0, -0.2, -1.0], [-1.0, 1.0, -1.0], [0.0, 0.0, 0.0], [-0.5, -0.5, 1.0]])
    z = torch.cat([torch.randn(4, 2), 2.0 * colours], dim=1)  # learned part, then the scaled colour
    out = m.decoder(z.view(4, 5, 1, 1))
    assert out.shape == (4, 3, 4, 4)
    torch.testing.assert_close(out, colours.view(4, 3, 1, 1).expand(4, 3, 4, 4))


@pytest.mark.parametrize("bad", [dict(mean_colour=-1.0), dict(mean_colour=1.0, z_dim=3)])
def test_mean_colour_bad_config(bad):
    cfg = VQAEConfig(**{**dict(channels=[8, 8], groups=4, z_dim=6), **bad})
    with pytest.raises(ValueError, match="mean_colour"):
        VQAutoencoder(cfg, QuantizerConfig(kind="vq", codebook_size=16))
