"""Perceptual image metrics (LPIPS, FID) whose network weights come from local files only.

Both metrics need ImageNet-trained networks that no machine here can download,
so each takes the path of a weights file the user provides, and without one it
is *not computed*: ``.available`` is False and ``.reason`` is the string a
report prints in place of a number (``"not computed (set eval.lpips_weights)"``,
``"not computed (set eval.inception_weights)"``). Nothing here ever downloads.

The implementations are torchmetrics' own:

* :class:`LPIPSMetric` builds torchmetrics' ``_NoTrainLpips`` with a randomly
  initialised backbone (``pnet_rand=True``, ``pretrained=False``), then loads

  - the backbone from the user's file: a torchvision state dict of
    ``alexnet`` (LPIPS' default), ``vgg16`` or ``squeezenet1_1``, either the
    whole model (``features.0.weight``, ..., ``classifier.*`` ignored) or its
    ``features`` part alone (``0.weight``, ...), as ``.pth``/``.pt`` (read with
    ``torch.load(weights_only=True)``) or ``.safetensors``. For AlexNet the
    expected keys are ``features.{0,3,6,8,10}.{weight,bias}``;
  - the LPIPS linear heads (v0.1, a few kB) that ship inside the torchmetrics
    package (``torchmetrics/functional/image/lpips_models/{alex,vgg,squeeze}.pth``),
    unless the user's file carries its own ``lin{k}.model.1.weight`` keys.

  Missing, unexpected or mis-shaped keys are refused with an error naming the
  file. Inputs are images in [0, 1] (mapped to [-1, 1] inside); the result is
  one distance per image, 0 for identical images, lower is better.

* :class:`FIDMetric` wraps torchmetrics' ``FrechetInceptionDistance`` with
  torch-fidelity's ``FeatureExtractorInceptionV3`` (the TF-Inception port used
  by the reference FID code). The user's file is torch-fidelity's
  ``weights-inception-2015-12-05-6726825d.pth`` (or the same state dict as
  ``.safetensors``): keys ``Conv2d_1a_3x3.conv.weight``, ..., ``Mixed_7c.*``,
  ``fc.weight``, ``fc.bias``. It is read here with ``weights_only=True`` /
  safetensors and handed to torch-fidelity as an in-memory buffer, so
  torch-fidelity's own unrestricted ``torch.load`` only ever sees tensors we
  serialised. Images are quantised to 8 bits (rounded) before the network, and
  resized to 299x299 the way TF1 did (``antialias=False``), as the reference
  implementation does. rFID = FID between the reconstructions (``real=False``)
  and their originals (``real=True``); it is biased by the number of images, so
  compare values only at equal counts.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import torch

from .metrics import _image_pair, quantize8

__all__ = ["FID_NOT_COMPUTED", "LPIPS_NOT_COMPUTED", "FIDMetric", "LPIPSMetric", "load_state_dict_file"]

LPIPS_NOT_COMPUTED = "not computed (set eval.lpips_weights)"
FID_NOT_COMPUTED = "not computed (set eval.inception_weights)"

_LPIPS_NETS = {"alex": "alex", "alexnet": "alex", "vgg": "vgg", "vgg16": "vgg", "squeeze": "squeeze",
               "squeezenet": "squeeze", "squeezenet1_1": "squeeze"}
_TV_NAMES = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}
_SLICE = re.compile(r"^(?:slice\d+|slices\.\d+)\.")


def load_state_dict_file(path: str | Path, what: str) -> dict[str, torch.Tensor]:
    """Reads a state dict from ``.safetensors`` (safetensors) or anything else (``torch.load(weights_only=True)``).

    ``what`` names the weights in errors. Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a
    file that is not a flat mapping of names to tensors.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what} weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd: Any = load_file(str(path), device="cpu")
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 -- any reader failure is a bad file
        raise ValueError(f"cannot read {what} weights {path}: {type(e).__name__}: {e}") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise ValueError(f"{what} weights {path} are not a state dict (a mapping of names to tensors)")
    return sd


def _key_report(missing: set[str], unexpected: set[str], shapes: list[str]) -> str:
    parts = []
    for label, keys in (("missing", sorted(missing)), ("unexpected", sorted(unexpected)), ("wrong shape", shapes)):
        if keys:
            parts.append(f"{label} {len(keys)}: {', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''}")
    return "; ".join(parts)


class LPIPSMetric:
    """LPIPS distance per image, with the backbone read from a local torchvision state dict.

    ``weights``: path of the backbone weights (see the module docstring), or
    ``None`` for "not computed". ``net``: ``"alex"`` (default, the LPIPS
    paper's choice), ``"vgg"`` or ``"squeeze"`` (torchvision names accepted too).
    ``device``: where the network runs.

    ``metric(pred, target)`` with float ``[B, 3, H, W]`` (or ``[3, H, W]``) in
    [0, 1] returns float ``[B]`` on the CPU. Images should be at least 32x32
    (AlexNet's pooling).
    """

    def __init__(self, weights: str | Path | None, net: str = "alex", device: str | torch.device = "cpu") -> None:
        if net not in _LPIPS_NETS:
            raise ValueError(f"LPIPSMetric: unknown net {net!r}; choose one of {sorted(_LPIPS_NETS)}")
        self.net_name = _LPIPS_NETS[net]
        self.device = torch.device(device)
        self.weights = None if weights is None or str(weights) == "" else Path(weights)
        self.model: torch.nn.Module | None = None
        self.reason = LPIPS_NOT_COMPUTED
        if self.weights is not None:
            self.model = self._build(self.weights).to(self.device)
            self.reason = ""

    @property
    def available(self) -> bool:
        """True when a weights file was given and loaded."""
        return self.model is not None

    def _build(self, path: Path) -> torch.nn.Module:
        from torchmetrics.functional.image import lpips as tm_lpips

        sd = load_state_dict_file(path, f"LPIPS backbone ({_TV_NAMES[self.net_name]})")
        heads = {k: v for k, v in sd.items() if re.match(r"^lin\d+\.", k)}
        backbone = {k.removeprefix("features."): v for k, v in sd.items()
                    if k not in heads and not k.startswith("classifier.")}
        model = tm_lpips._NoTrainLpips(pretrained=False, net=self.net_name, pnet_rand=True)
        expected = {_SLICE.sub("", k): (k, v.shape) for k, v in model.net.state_dict().items()}
        missing, unexpected = set(expected) - set(backbone), set(backbone) - set(expected)
        shapes = [f"{k} {tuple(backbone[k].shape)} != {tuple(expected[k][1])}" for k in set(expected) & set(backbone)
                  if backbone[k].shape != expected[k][1]]
        if missing or unexpected or shapes:
            raise ValueError(f"LPIPS backbone weights {path} do not match torchvision {_TV_NAMES[self.net_name]} "
                             f"features ({_key_report(missing, unexpected, shapes)}); expected a torchvision "
                             f"state dict with keys like 'features.{next(iter(expected))}'")
        model.net.load_state_dict({expected[k][0]: v for k, v in backbone.items()})
        if not heads:
            head_file = Path(tm_lpips.__file__).parent / "lpips_models" / f"{self.net_name}.pth"
            heads = load_state_dict_file(head_file, "LPIPS linear heads (torchmetrics)")
        want = {k for k in model.state_dict() if re.match(r"^lin\d+\.", k)}
        if set(heads) != want:
            raise ValueError(f"LPIPS linear heads do not match net {self.net_name!r} "
                             f"({_key_report(want - set(heads), set(heads) - want, [])})")
        model.load_state_dict(heads, strict=False)
        return model.eval().requires_grad_(False)

    @torch.inference_mode()
    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """LPIPS of each image pair: float ``[B]`` (CPU) from ``[B, 3, H, W]`` in [0, 1]."""
        if self.model is None:
            raise RuntimeError(f"LPIPS is {self.reason}: pass LPIPSMetric(weights=...) the path of a torchvision "
                               f"{_TV_NAMES[self.net_name]} state dict")
        p, t = _image_pair(pred, target, "LPIPS")
        if p.shape[1] != 3:
            raise ValueError(f"LPIPS: images need 3 channels, got shape {tuple(pred.shape)}")
        p, t = p.clamp(0, 1).to(self.device), t.clamp(0, 1).to(self.device)
        try:
            out = self.model(p, t, normalize=True)
        except RuntimeError as e:
            raise ValueError(f"LPIPS ({self.net_name}) failed on images of shape {tuple(p.shape)}: {e}") from None
        return out.reshape(-1).float().cpu()


class FIDMetric:
    """Fréchet Inception Distance between a "real" and a "fake" image set, Inception weights from a local file.

    ``weights``: torch-fidelity's Inception-v3 state dict (see the module
    docstring) or ``None`` for "not computed". ``feature``: which Inception
    layer (2048, the standard, or 768/192/64). ``update(images, real)`` takes
    float ``[B, 3, H, W]`` (or ``[3, H, W]``) in [0, 1] of any size;
    ``compute()`` returns ``{"fid": float, "n_real": int, "n_fake": int}`` and
    needs at least two images of each kind.
    """

    def __init__(self, weights: str | Path | None, device: str | torch.device = "cpu", feature: int = 2048) -> None:
        self.device = torch.device(device)
        self.weights = None if weights is None or str(weights) == "" else Path(weights)
        self.feature = feature
        self.metric: Any = None
        self.reason = FID_NOT_COMPUTED
        if self.weights is not None:
            self.metric = self._build(self.weights).to(self.device)
            self.reason = ""

    @property
    def available(self) -> bool:
        """True when a weights file was given and loaded."""
        return self.metric is not None

    def _build(self, path: Path) -> Any:
        from torchmetrics.image.fid import FrechetInceptionDistance

        sd = load_state_dict_file(path, "FID Inception-v3 (torch-fidelity)")
        for key in ("Conv2d_1a_3x3.conv.weight", "Mixed_7c.branch_pool.conv.weight", "fc.weight"):
            if key not in sd:
                raise ValueError(f"FID Inception weights {path} are not torch-fidelity's FeatureExtractorInceptionV3 "
                                 f"state dict (no key {key!r}; expected e.g. "
                                 "weights-inception-2015-12-05-6726825d.pth)")
        buf = io.BytesIO()
        torch.save({k: v.contiguous() for k, v in sd.items()}, buf)  # tensors only: torch-fidelity reads this buffer
        buf.seek(0)
        try:
            return FrechetInceptionDistance(feature=self.feature, normalize=False, antialias=False,
                                            feature_extractor_weights_path=buf)  # type: ignore[arg-type]
        except RuntimeError as e:
            raise ValueError(f"FID Inception weights {path} do not fit torch-fidelity's "
                             f"FeatureExtractorInceptionV3: {e}") from None

    def _require(self) -> Any:
        if self.metric is None:
            raise RuntimeError(f"FID is {self.reason}: pass FIDMetric(weights=...) the path of torch-fidelity's "
                               "Inception-v3 weights (weights-inception-2015-12-05-6726825d.pth)")
        return self.metric

    @torch.no_grad()
    def update(self, images: torch.Tensor, real: bool) -> None:
        """Adds images (float ``[B, 3, H, W]`` or ``[3, H, W]`` in [0, 1]) to the real or the fake set."""
        metric = self._require()
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"FID: images must be [B, 3, H, W] or [3, H, W], got shape {tuple(images.shape)}")
        metric.update((quantize8(images) * 255).round().to(torch.uint8).to(self.device), real=bool(real))

    @torch.no_grad()
    def compute(self) -> dict[str, float | int]:
        """``{"fid", "n_real", "n_fake"}`` over everything added since construction or :meth:`reset`."""
        metric = self._require()
        n_real, n_fake = int(metric.real_features_num_samples), int(metric.fake_features_num_samples)
        if n_real < 2 or n_fake < 2:
            raise ValueError(f"FID needs at least 2 real and 2 fake images, got {n_real} real and {n_fake} fake")
        return {"fid": float(metric.compute()), "n_real": n_real, "n_fake": n_fake}

    def reset(self) -> None:
        """Forgets both image sets."""
        self._require().reset()
