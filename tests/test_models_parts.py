"""Discriminator and hinge losses, k-means, the perceptual loss from a local file, the pixel-patch baseline."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from modalities.eval.baselines import image_to_patches, kmeans_patch_baseline, patches_to_image
from models.discriminator import DiscriminatorConfig, PatchDiscriminator, hinge_d_loss, hinge_g_loss
from models.kmeans import KMeans
from models.nearest import nearest


def test_patch_discriminator_shapes():
    d = PatchDiscriminator(3, DiscriminatorConfig(channels=8, layers=3))
    assert d(torch.rand(2, 3, 64, 64)).shape == (2, 1, 6, 6)
    assert d(torch.rand(2, 3, 5, 64, 64)).shape == (10, 1, 6, 6)  # video: every frame scored


def test_hinge_losses_exact():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    # relu(1 - real) = [0, 0.5] -> 0.25; relu(1 + fake) = [0, 1] -> 0.5; halved sum 0.375
    assert hinge_d_loss(real, fake).item() == pytest.approx(0.375)
    assert hinge_g_loss(fake).item() == pytest.approx(1.0)


def test_kmeans_recovers_separated_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    labels = torch.randint(4, (800,), generator=g)
    x = centres[labels] + 0.1 * torch.randn(800, 2, generator=g)
    km = KMeans(4, 2).fit(x, seed=1)
    order = km.centroids[:, 0].mul(100).add(km.centroids[:, 1]).argsort()  # same order as ``centres``
    assert torch.allclose(km.centroids[order[[0, 2, 1, 3]]], centres, atol=0.05)
    pred = km.predict(x)
    assert all(len(set(pred[labels == i].tolist())) == 1 for i in range(4))  # one cluster per true centre
    assert torch.equal(km.decode(pred), km.centroids[pred])
    with pytest.raises(ValueError, match="at least 5 points"):
        KMeans(5, 2).fit(x[:4])
    with pytest.raises(ValueError, match="expects \\[N, 2\\] features, got shape \\(3,\\)"):
        km.predict(torch.zeros(3))
    with pytest.raises(ValueError, match="k-means id 4 at position \\(0,\\) is out of range \\[0, 4\\)"):
        km.decode(torch.tensor([4]))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 40), k=st.integers(1, 12), d=st.integers(1, 5), budget=st.integers(1, 64),
       seed=st.integers(0, 2**16))
def test_nearest_matches_brute_force_in_any_chunking(n, k, d, budget, seed):
    g = torch.Generator().manual_seed(seed)
    x, c = torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(k, d, generator=g, dtype=torch.float64)
    full = ((x[:, None] - c[None]) ** 2).sum(-1)
    dist, index = nearest(x, c, max_elements=budget)  # budget < k: one row per chunk
    assert dist.shape == index.shape == (n,)
    assert torch.allclose(dist, full.min(1).values, atol=1e-9)
    assert torch.allclose(full.gather(1, index[:, None]).squeeze(1), full.min(1).values, atol=1e-9)
    with pytest.raises(ValueError, match="nearest needs x\\[N, D\\] and c\\[K, D\\]"):
        nearest(x, c[:, :0] if d > 1 else torch.zeros(k, 2))


def test_kmeans_seeding_in_rounds_picks_distinct_points_and_covers_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(40, 8, generator=g) * 20
    x = centres.repeat_interleave(50, 0) + 0.01 * torch.randn(2000, 8, generator=g)
    km = KMeans(40, 8)
    seeds = km._seed(x, torch.Generator().manual_seed(0), rounds=5)  # 8 centres a round
    assert seeds.shape == (40, 8) and len(torch.unique(seeds, dim=0)) == 40
    # D^2 draws in rounds still land in most clusters: one centre per cluster for at least 30 of the 40
    assert len(set(nearest(seeds, centres)[1].tolist())) >= 30
    km.fit(x, seed=0)
    assert km.inertia(x) < 1.0  # Lloyd then settles: inertia near the noise, not the cluster spread (~3200)
    dup = torch.zeros(30, 2)
    dup[:3, 0] = torch.arange(3.0)  # three distinct points among thirty: every one becomes a centre
    assert len(torch.unique(KMeans(5, 2)._seed(dup, torch.Generator().manual_seed(0), rounds=2), dim=0)) == 3


def test_patches_roundtrip_and_baseline_improves_with_k():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 24, generator=g)
    p = image_to_patches(x, 8)
    assert p.shape == (2 * 2 * 3, 3 * 64)
    assert torch.equal(patches_to_image(p, tuple(x.shape), 8), x)
    smooth = torch.nn.functional.interpolate(torch.rand(6, 3, 8, 8, generator=g), size=32, mode="bilinear")
    imgs = [smooth[i] for i in range(4)]
    small = kmeans_patch_baseline(imgs, [smooth[4:5], smooth[5:6]], patch=4, k=4)
    large = kmeans_patch_baseline(imgs, [smooth[4:5], smooth[5:6]], patch=4, k=64)
    assert large["baseline_psnr"] > small["baseline_psnr"] > 10
    assert large["baseline_bpp"] == pytest.approx(6 / 16)


def test_perceptual_loss_from_local_file(tmp_path):
    from safetensors.torch import save_file
    from torchvision.models import vgg16

    from models.perceptual import PerceptualLoss

    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in vgg16(weights=None).features.state_dict().items()}
    save_file(state, str(tmp_path / "vgg16.safetensors"))
    loss = PerceptualLoss.from_file(tmp_path / "vgg16.safetensors")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert loss(x, x).item() == 0.0
    assert loss(x, x.flip(-1)).item() > 0
    with pytest.raises(FileNotFoundError, match="perceptual loss weights not found"):
        PerceptualLoss.from_file(tmp_path / "none.safetensors")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="does not hold VGG16 weights"):
        PerceptualLoss.from_file(tmp_path / "other.safetensors")
