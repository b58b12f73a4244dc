"""LPIPS and FID from local weight files: the code path with random backbones, the "not computed" path, bad files.

No test downloads anything: the backbones are randomly initialised here and
saved to a temporary folder. :func:`save_random_backbones` is importable by
other tests (``from tests.test_perceptual import save_random_backbones``).
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
import torch

from modalities.data.io import load_image
from modalities.eval.perceptual import FID_NOT_COMPUTED, LPIPS_NOT_COMPUTED, FIDMetric, LPIPSMetric


def random_inception_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A randomly initialised torch-fidelity ``FeatureExtractorInceptionV3`` state dict (its loader patched out)."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    torch.manual_seed(seed)
    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None):
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    return net.state_dict()


def save_random_backbones(folder: Path, seed: int = 0) -> dict[str, Path]:
    """Random torchvision AlexNet (whole model, ``.pth``) and torch-fidelity Inception (``.safetensors``) weights."""
    import torchvision
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    paths = {"alexnet": folder / "alexnet.pth", "inception": folder / "inception.safetensors"}
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), paths["alexnet"])
    save_file({k: v.contiguous() for k, v in random_inception_state_dict(seed).items()}, str(paths["inception"]))
    return paths


@pytest.fixture(scope="module")
def backbones(tmp_path_factory) -> dict[str, Path]:
    return save_random_backbones(tmp_path_factory.mktemp("backbones"))


@pytest.fixture(scope="module")
def images(samples) -> torch.Tensor:
    """Four 64x64 sample photographs ``[4, 3, 64, 64]``."""
    names = ["astronaut", "coffee", "chelsea", "rocket"]
    return torch.stack([torch.nn.functional.interpolate(load_image(samples / f"images/{n}.png")[None], size=64,
                                                        mode="area")[0] for n in names])


def test_not_computed_without_weights(images):
    lp, fid = LPIPSMetric(None), FIDMetric(None)
    assert not lp.available and lp.reason == LPIPS_NOT_COMPUTED == "not computed (set eval.lpips_weights)"
    assert not fid.available and fid.reason == FID_NOT_COMPUTED == "not computed (set eval.inception_weights)"
    with pytest.raises(RuntimeError, match="not computed"):
        lp(images, images)
    with pytest.raises(RuntimeError, match="not computed"):
        fid.update(images, real=True)


def test_lpips_zero_for_identical_and_positive_for_noise(backbones, images):
    lp = LPIPSMetric(backbones["alexnet"])
    assert lp.available and lp.reason == ""
    same = lp(images, images)
    assert same.shape == (4,) and torch.all(same == 0)
    noisy = (images + 0.1 * torch.randn(images.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    d = lp(noisy, images)
    assert d.shape == (4,) and torch.all(d > 0)
    assert lp(noisy[0], images[0]).shape == (1,)  # a single [3, H, W] image


def test_lpips_accepts_features_only_and_refuses_mismatched_files(tmp_path, images):
    import torchvision

    feats = torchvision.models.alexnet(weights=None).features.state_dict()
    torch.save(feats, tmp_path / "features.pt")
    assert LPIPSMetric(tmp_path / "features.pt")(images[:1], images[:1]).item() == 0
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), tmp_path / "squeeze.pth")
    with pytest.raises(ValueError, match=r"squeeze\.pth.*alexnet"):
        LPIPSMetric(tmp_path / "squeeze.pth", net="alex")
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        LPIPSMetric(tmp_path / "nowhere.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth"):
        LPIPSMetric(tmp_path / "junk.pth")
    with pytest.raises(ValueError, match="unknown net"):
        LPIPSMetric(None, net="resnet")
    with pytest.raises(ValueError, match="shapes differ"):
        LPIPSMetric(tmp_path / "features.pt")(images[:1], images[:2])


def test_fid_refuses_a_foreign_file(tmp_path, backbones):
    with pytest.raises(ValueError, match=r"alexnet\.pth.*FeatureExtractorInceptionV3"):
        FIDMetric(backbones["alexnet"])


def test_fid_code_path_with_a_random_inception(backbones, images):
    """FID of a set with itself is ~0; with a brightened copy it is clearly positive (64-d features: fast)."""
    fid = FIDMetric(backbones["inception"], feature=64)
    assert fid.available
    crops = torch.cat([images, images.flip(-1), images.flip(-2), images.transpose(-1, -2)])  # 16 images
    fid.update(crops, real=True)
    fid.update(crops, real=False)
    same = fid.compute()
    assert same["n_real"] == same["n_fake"] == 16
    fid.reset()
    fid.update(crops, real=True)
    fid.update((crops * 0.6 + 0.4).clamp(0, 1), real=False)
    shifted = fid.compute()["fid"]
    assert shifted > 0 and abs(same["fid"]) < 1e-3 * shifted
    fid.reset()
    fid.update(crops[:1], real=True)
    with pytest.raises(ValueError, match="at least 2"):
        fid.compute()


@pytest.mark.slow
def test_fid_standard_2048_features(backbones, images):
    fid = FIDMetric(backbones["inception"])
    fid.update(images, real=True)
    fid.update(images, real=False)
    out = fid.compute()
    assert out["n_real"] == 4 and abs(out["fid"]) < 1e-2
