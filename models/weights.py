"""Build a module from a config someone else wrote, and fill it from a ``safetensors`` file, safely.

A saved folder's ``config.json`` declares the model's shape; a tampered or
broken one could declare a codebook of 10^12 entries and exhaust memory before
any weight is read. :func:`build_and_load` therefore builds the module first on
the ``meta`` device (no memory), compares every tensor it declares with the
shapes in the file's header (read without loading data), refuses a mismatch
naming the tensor, refuses a model whose non-saved buffers are far larger than
its weights, and only then builds it for real and loads the weights (strict:
every key, every shape). Nothing here imports or calls anything named by the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

__all__ = ["WeightsMismatchError", "build_and_load", "stored_shapes"]

# A module may hold buffers that are not saved (RoPE tables, an FSQ implicit codebook); they are allowed to
# be this many elements beyond what the file holds, which stops a config from declaring gigabytes of them.
UNSAVED_SLACK = 1 << 26


class WeightsMismatchError(ValueError):
    """A config declares tensors that the weights file does not hold (or holds with other shapes)."""


def stored_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of every tensor in a ``safetensors`` file, read from its header only."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except Exception as e:  # safetensors raises several types for a corrupt header
        raise WeightsMismatchError(f"{path} is not a readable safetensors file: {e}") from None


def _declared(build: Callable[[], nn.Module]) -> tuple[dict[str, tuple[int, ...]], set[str], int]:
    """Shapes of the state dict ``build()`` declares, the names that alias another one (tied weights, which
    ``safetensors`` stores once), and the total elements of parameters and buffers, all on the meta device."""
    with torch.device("meta"):
        meta = build()
    state = meta.state_dict(keep_vars=True)
    groups: dict[int, list[str]] = {}
    for k, v in state.items():
        groups.setdefault(id(v), []).append(k)
    aliases = {k for names in groups.values() if len(names) > 1 for k in names}  # load_model checks one is stored
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    total = sum(t.numel() for t in (*meta.parameters(), *meta.buffers()))
    return shapes, aliases, total


def build_and_load(build: Callable[[], nn.Module], path: str | Path, source: str = "the config",
                   device: str | torch.device = "cpu") -> nn.Module:
    """``build()`` checked against and loaded from the ``safetensors`` file ``path``.

    Args:
        build: makes the module from the (untrusted) declared settings; called twice, first under the
            ``meta`` device.
        path: the weights file.
        source: what declared the shape, for error messages (e.g. ``"config.json settings.quantizer"``).
        device: where the weights are loaded.
    Raises:
        WeightsMismatchError: naming the first tensor whose declared shape differs from the file's, a tensor
            missing on either side, or unsaved buffers beyond :data:`UNSAVED_SLACK` elements.
    """
    from safetensors.torch import load_model

    stored = stored_shapes(path)
    declared, aliases, total = _declared(build)
    for name in sorted(declared.keys() | stored.keys()):
        want, have = declared.get(name), stored.get(name)
        if want != have and not (have is None and name in aliases):
            if want is None:
                raise WeightsMismatchError(f"{path} holds tensor {name!r} {list(have)}, which {source} does not declare")
            if have is None:
                raise WeightsMismatchError(f"{source} declares tensor {name!r} {list(want)}, missing from {path}")
            raise WeightsMismatchError(f"{source} declares tensor {name!r} of shape {list(want)}, but {path} holds "
                                       f"{list(have)}")
    saved = sum(torch.Size(s).numel() for s in stored.values())
    if total > saved + UNSAVED_SLACK:
        raise WeightsMismatchError(f"{source} declares a model of {total:,} elements, {total - saved:,} of them "
                                   f"in buffers that {path} does not hold (at most {UNSAVED_SLACK:,} allowed)")
    model = build()
    try:
        load_model(model, str(path), device=str(device))
    except Exception as e:  # safetensors raises several types for corrupt data
        raise WeightsMismatchError(f"{path} cannot be loaded into the model {source} declares: {e}") from None
    return model
