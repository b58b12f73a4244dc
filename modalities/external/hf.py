"""Loading a local Hugging Face ``transformers`` folder safely, and the tokenizer face every adapter shares.

:func:`load_hf_model` reads ``config.json``, checks its ``model_type`` against
the class the adapter asked for (a table in code; ``auto_map`` and remote code
are never used), checks that the sizes the config declares fit the
``safetensors`` weights before anything is allocated, and only then calls the
class's ``from_pretrained`` with ``local_files_only=True`` and
``use_safetensors=True``. :class:`HFTokenizer` saves an adapter as an mmtok
folder: mmtok's ``config.json`` (class, ``model_type``, options) plus the
model's own folder in ``hf/`` (its config and ``safetensors``), so it loads
without the original path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..base import Tokenizer, TokenizerLoadError, inside
from ..data.fileio import read_json

__all__ = ["HF_DIR", "HFTokenizer", "hf_model_type", "load_hf_model"]

HF_DIR = "hf"  # the model's own folder inside a saved adapter
# Buffers a transformers model does not save (rotary tables, STFT windows) may exceed its weights by this much.
UNSAVED_SLACK = 1 << 26


def hf_model_type(path: str | Path) -> str:
    """The ``model_type`` in ``path/config.json``; a clear error for a missing folder or file."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no such model folder: {path} (mmtok loads transformers models from local folders "
                                "only; nothing is downloaded)")
    try:
        cfg = read_json(path / "config.json", TokenizerLoadError, "transformers config")
    except FileNotFoundError:
        raise TokenizerLoadError(f"{path / 'config.json'} is missing: not a transformers model folder") from None
    model_type = cfg.get("model_type") if isinstance(cfg, dict) else None
    if not isinstance(model_type, str):
        raise TokenizerLoadError(f"{path / 'config.json'} has no 'model_type' field")
    return model_type


def _stored_elements(path: Path) -> int:
    """Elements in the folder's ``safetensors`` weights (one file or an index of shards), from headers only."""
    from models.weights import stored_shapes

    index = path / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(read_json(index, TokenizerLoadError, "safetensors index").get("weight_map", {}).values()))
        files = [inside(path, f, f"{index} weight_map") for f in files]
    else:
        files = [path / "model.safetensors"]
    missing = [f for f in files if not f.is_file()]
    if missing or not files:
        raise TokenizerLoadError(f"{path}: no safetensors weights ({missing[0] if missing else 'model.safetensors'} "
                                 "is missing); mmtok loads safetensors only, never pickle (.bin) checkpoints")
    return sum(torch.Size(s).numel() for f in files for s in stored_shapes(f).values())


def load_hf_model(path: str | Path, model_class: type, config_class: type, model_types: tuple[str, ...],
                  dtype: torch.dtype | None = None) -> Any:
    """``model_class`` loaded from the local folder ``path`` (eval mode), after checking ``model_type`` is one of
    ``model_types`` and that the declared model is not larger than its ``safetensors`` weights; a file that lacks
    a declared tensor (which ``transformers`` would fill with random values) is refused after loading."""
    path = Path(path)
    found = hf_model_type(path)
    if found not in model_types:
        raise TokenizerLoadError(f"{path} holds a {found!r} model, not {' or '.join(map(repr, model_types))}")
    try:
        config = config_class.from_pretrained(str(path), local_files_only=True)
    except Exception as e:  # a field of the wrong type or value (transformers validates its configs)
        raise TokenizerLoadError(f"{path / 'config.json'}: not a valid {config_class.__name__} ({e})") from None
    stored = _stored_elements(path)
    try:
        with torch.device("meta"):
            meta = model_class(config)
    except Exception as e:  # the config's own validation
        raise TokenizerLoadError(f"{path / 'config.json'}: cannot build a {model_class.__name__} ({e})") from None
    declared = sum(t.numel() for t in (*meta.parameters(), *meta.buffers()))
    if declared > stored + UNSAVED_SLACK:
        raise TokenizerLoadError(f"{path / 'config.json'} declares a model of {declared:,} elements but its weights "
                                 f"hold {stored:,}: the config does not describe these weights")
    model, info = model_class.from_pretrained(str(path), config=config, local_files_only=True, use_safetensors=True,
                                              trust_remote_code=False, output_loading_info=True,
                                              **({"dtype": dtype} if dtype is not None else {}))
    # transformers fills weights missing from the file (or of another shape) with fresh random values and only
    # logs it: a tokenizer with random parts gives codes that look fine and mean nothing, so refuse
    bad = sorted(info.get("missing_keys", ())) + sorted(str(k) for k in info.get("mismatched_keys", ()))
    if bad:
        raise TokenizerLoadError(f"{path}: the safetensors weights lack {len(bad)} tensor(s) the config declares "
                                 f"(or hold them with other shapes): {', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''}")
    return model.eval()


class HFTokenizer(Tokenizer):
    """Base of the adapters: a ``transformers`` model plus the options it was opened with.

    Subclasses set ``model_types`` (accepted ``config.json`` model types), ``model_class`` /
    ``config_class`` (imported lazily through :meth:`classes`) and implement ``encode``/``decode``.
    """

    model_types: ClassVar[tuple[str, ...]]

    def __init__(self, model: Any, **options: Any) -> None:
        self.model = model.eval()
        self.options = options

    # ------------------------------------------------------------ construction
    @classmethod
    def classes(cls) -> tuple[type, type]:
        """``(model_class, config_class)`` from ``transformers``."""
        raise NotImplementedError

    @classmethod
    def from_hf(cls, path: str | Path, **options: Any) -> HFTokenizer:
        """Opens the local ``transformers`` folder ``path`` with adapter ``options``."""
        model_class, config_class = cls.classes()
        return cls(load_hf_model(path, model_class, config_class, cls.model_types), **options)

    # ------------------------------------------------------------ geometry
    @property
    def model_type(self) -> str:
        return self.model.config.model_type

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: torch.device | str) -> HFTokenizer:
        self.model.to(device)
        return self

    # ----------------------------------------------------------- save/load
    def settings(self) -> dict[str, Any]:
        return {"model_type": self.model_type, "options": dict(self.options)}

    def _save_files(self, directory: Path) -> None:
        self.model.save_pretrained(str(directory / HF_DIR), safe_serialization=True)

    @classmethod
    def _load_files(cls, directory: Path, settings: dict[str, Any]) -> HFTokenizer:
        options = settings.get("options", {})
        if not isinstance(options, dict) or not all(isinstance(v, (int, float, str, bool, type(None)))
                                                    for v in options.values()):
            raise TokenizerLoadError(f"{directory}/config.json settings.options must map names to plain values, "
                                     f"got {json.dumps(options)[:200]}")
        try:
            return cls.from_hf(inside(directory, HF_DIR, f"{directory}/config.json"), **options)
        except TokenizerLoadError:
            raise
        except (TypeError, ValueError) as e:  # an unknown option, or a value the adapter refuses
            raise TokenizerLoadError(f"{directory}/config.json settings.options: {e}") from None

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items())
        return f"{type(self).__name__}({self.model_type}{', ' + opts if opts else ''}, codebook_size={self.codebook_size})"
