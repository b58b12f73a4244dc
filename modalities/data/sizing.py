"""How image and video tokenizers bring pixels to a size their model accepts.

Height and width must be multiples of the downsample factor ``f``. The policy
is a tokenizer setting (saved with it):

- ``refuse`` (default): raise, naming the size; nothing is changed behind your back.
- ``pad``: replicate-pad right and bottom up to the next multiple of ``f``;
  ``decode`` returns the padded size (crop with the original size yourself).
- ``center_crop``: crop the centre to ``size`` (or to the largest multiple of ``f``).
- ``resize``: resize the shorter side to ``size`` (antialiased), then centre-crop ``size x size``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

__all__ = ["SIZE_POLICIES", "fit_size"]

SIZE_POLICIES = ("refuse", "pad", "center_crop", "resize")
MAX_SIZE = 16384  # a target side beyond this is a mistake (or a tampered config), not a tokenizer setting


def check_policy(policy: str, size: int | None, multiple: int) -> None:
    if policy not in SIZE_POLICIES:
        raise ValueError(f"unknown size policy {policy!r}; expected one of {list(SIZE_POLICIES)}")
    if policy == "resize" and size is None:
        raise ValueError("size policy 'resize' needs a target size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_SIZE):
        raise ValueError(f"target size must be an int in [1, {MAX_SIZE}], got {size!r}")
    if size is not None and size % multiple:
        raise ValueError(f"target size {size} must be a positive multiple of the downsample factor {multiple}")


def fit_size(x: torch.Tensor, multiple: int, policy: str = "refuse", size: int | None = None,
             what: str = "image") -> torch.Tensor:
    """Applies ``policy`` to pixels ``[..., C, H, W]``; the result has H, W divisible by ``multiple``."""
    check_policy(policy, size, multiple)
    h, w = x.shape[-2:]
    if policy == "resize":
        return v2.CenterCrop(size)(v2.Resize(size, antialias=True)(x))
    if policy == "center_crop":
        th, tw = ((size, size) if size is not None and size <= min(h, w)
                  else (h // multiple * multiple, w // multiple * multiple))
        if th == 0 or tw == 0:
            raise ValueError(f"{what} of size {h}x{w} is smaller than the downsample factor {multiple}")
        return v2.CenterCrop((th, tw))(x)
    if h % multiple == 0 and w % multiple == 0:
        return x
    if policy == "pad":
        ph, pw = -h % multiple, -w % multiple
        flat = x.reshape(-1, *x.shape[-3:])
        return F.pad(flat, (0, pw, 0, ph), mode="replicate").reshape(*x.shape[:-2], h + ph, w + pw)
    raise ValueError(f"{what} size {(h, w)} is not divisible by the downsample factor {multiple}; resize or crop "
                     f"to a multiple of {multiple}, or set the tokenizer's size policy (pad, center_crop, resize)")
