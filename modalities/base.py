"""Common face of every tokenizer: encode/decode plus a self-describing folder on disk.

A saved tokenizer is a folder with ``config.json`` (class name, mmtok version,
kind of modality, resolved settings) beside its data files (``safetensors``
weights for neural tokenizers, ``tokenizer.json`` for text). Loading checks the
class name and never unpickles anything.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from . import __version__
from .data.fileio import atomic_path, atomic_write_text, read_json

CONFIG_NAME = "config.json"
WEIGHTS = "model.safetensors"


class TokenizerLoadError(ValueError):
    """A saved tokenizer folder is missing, corrupt, or holds another class."""


class Tokenizer(ABC):
    """Base class of the modality tokenizers.

    Subclasses set ``kind`` (a registry kind) and implement ``encode``,
    ``decode``, ``codebook_size``, ``settings`` and the two file hooks.
    """

    kind: ClassVar[str]

    @property
    @abstractmethod
    def codebook_size(self) -> int:
        """Number of distinct local codes (the registry range size)."""

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """Resolved settings, JSON-serialisable, enough to rebuild the tokenizer."""

    @abstractmethod
    def _save_files(self, directory: Path) -> None:
        """Writes everything but ``config.json``."""

    @classmethod
    @abstractmethod
    def _load_files(cls, directory: Path, settings: dict[str, Any]) -> Tokenizer:
        """Rebuilds the tokenizer from its folder and saved settings."""

    def register(self, registry: Any, name: str | None = None) -> Any:
        """Adds this tokenizer's range to a :class:`~modalities.registry.VocabRegistry` as ``name``
        (default: its kind) and returns the :class:`~modalities.registry.Modality`; if ``name`` is
        already there it must have this tokenizer's size and kind, else ``RegistryError``."""
        from .registry import RegistryError

        name = name or self.kind
        if name in registry:
            m = registry.modality(name)
            if (m.size, m.kind) != (self.codebook_size, self.kind):
                raise RegistryError(f"modality {name!r} has {m.size} ids of kind {m.kind} in the registry, "
                                    f"this {type(self).__name__} needs {self.codebook_size} of kind {self.kind}")
            return m
        return registry.add_modality(name, self.codebook_size, kind=self.kind)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Writes ``config.json`` and the data files into ``directory`` (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._save_files(directory)
        cfg = {"class": type(self).__name__, "mmtok_version": __version__, "kind": self.kind,
               "codebook_size": self.codebook_size, "settings": self.settings()}
        atomic_write_text(directory / CONFIG_NAME, json.dumps(cfg, indent=2) + "\n")
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Tokenizer:
        """Loads a folder written by :meth:`save_pretrained` of this class."""
        directory = Path(directory)
        cfg = read_config(directory)
        if cfg.get("class") != cls.__name__:
            raise TokenizerLoadError(f"{directory} holds a {cfg.get('class')!r}, not a {cls.__name__}")
        return cls._load_files(directory, cfg.get("settings", {}))


class VQTokenizer(Tokenizer):
    """A tokenizer around a VQ autoencoder: codebook size, codebooks, downsample and device come from it."""

    @property
    def vq_model(self) -> Any:
        """The :class:`models.vqae.VQModel` that encodes and decodes."""
        return self.model

    @property
    def codebook_size(self) -> int:
        return self.vq_model.quantizer.codebook_size

    @property
    def num_codebooks(self) -> int:
        return self.vq_model.quantizer.num_codebooks

    @property
    def downsample(self) -> int:
        """Spatial (for spectrograms: time and mel) downsample factor."""
        return self.vq_model.downsample

    @property
    def device(self) -> Any:
        return next(self.vq_model.parameters()).device

    def to(self, device: Any) -> VQTokenizer:
        """Moves the model to ``device``; returns self."""
        self.vq_model.to(device)
        return self


def read_config(directory: Path) -> dict[str, Any]:
    """Reads and checks ``config.json`` of a saved tokenizer folder."""
    path = directory / CONFIG_NAME
    if not directory.is_dir():
        raise TokenizerLoadError(f"tokenizer folder not found: {directory}")
    try:
        cfg = read_json(path, TokenizerLoadError, "tokenizer config")
    except FileNotFoundError:
        raise TokenizerLoadError(f"{path} is missing: not a saved mmtok tokenizer") from None
    if not isinstance(cfg, dict) or "class" not in cfg:
        raise TokenizerLoadError(f"{path} has no 'class' field: not a saved mmtok tokenizer")
    return cfg


def save_weights(model: Any, directory: Path) -> None:
    """Writes ``model``'s weights to ``directory/model.safetensors`` atomically."""
    from safetensors.torch import save_model

    with atomic_path(directory / WEIGHTS) as tmp:
        save_model(model, str(tmp))


def load_model(build: Callable[[], Any], directory: Path, what: str) -> Any:
    """``build()`` (a module from the folder's declared settings) filled from ``directory/model.safetensors``.

    The declared shapes are checked against the file's header before any memory is allocated (see
    :func:`models.weights.build_and_load`), so a folder declaring a huge model fails fast. Bad settings,
    a missing or mismatched file are a :class:`TokenizerLoadError` naming the file and the field.
    """
    from models.weights import WeightsMismatchError, build_and_load

    path = directory / WEIGHTS
    if not path.is_file():
        raise TokenizerLoadError(f"{path} is missing")
    try:
        return build_and_load(build, path, f"{directory / CONFIG_NAME} settings")
    except WeightsMismatchError as e:
        raise TokenizerLoadError(str(e)) from None
    except (KeyError, TypeError, ValueError) as e:
        raise TokenizerLoadError(f"{directory / CONFIG_NAME}: bad {what} settings ({type(e).__name__}: {e})") from None


def inside(directory: Path, name: Any, field: str) -> Path:
    """``directory / name`` for a relative ``name`` read from a saved file, refusing one that leaves the folder
    (absolute, ``..``, or a symlink pointing out); ``field`` names where the value came from."""
    if not isinstance(name, str) or not name or Path(name).is_absolute():
        raise TokenizerLoadError(f"{field}: {name!r} is not a relative path inside {directory}")
    path = directory / name
    root = directory.resolve()
    if not path.resolve().is_relative_to(root):
        raise TokenizerLoadError(f"{field}: {name!r} points outside {directory}")
    return path


def batched_codes(codes: Any, axes: str, num_codebooks: int) -> Any:
    """Checks integer ``codes`` laid out as ``[B, <axes>]`` (``[..., K]`` when ``num_codebooks > 1``).

    ``axes`` names the per-item axes, e.g. ``"h, w"``; a missing batch axis is added.
    """
    import torch

    if not isinstance(codes, torch.Tensor) or codes.dtype.is_floating_point:
        raise ValueError("codes must be an integer tensor")
    names = axes + (", K" if num_codebooks > 1 else "")
    want = 1 + len(names.split(","))
    if codes.ndim == want - 1:
        codes = codes[None]
    if codes.ndim != want:
        raise ValueError(f"codes must be [B, {names}], got shape {tuple(codes.shape)}")
    return codes.long()
