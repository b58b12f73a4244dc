"""External wing: pretrained tokenizers of other libraries as mmtok tokenizers.

``from_hf(path, **options)`` opens a local Hugging Face ``transformers``
folder (audio codecs: EnCodec, DAC, Mimi, X-codec; image/video VQ: Emu3,
Janus, Chameleon) and returns an adapter with the face of mmtok's own
tokenizers: ``encode``/``decode`` in mmtok layouts, ``codebook_size``,
geometry, ``register``, ``save_pretrained``/``from_pretrained``, so it joins
a :class:`~modalities.multimodal.MultimodalTokenizer`. The adapter is chosen
by the folder's ``model_type`` through the table below (kept in code);
loading is local, ``safetensors`` only, no remote code. HuBERT / wav2vec2
feature models join through the feature-extractor registry of
:mod:`modalities.audio_features` instead (name ``hf_hubert``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

__all__ = ["ADAPTERS", "FEATURE_MODEL_TYPES", "adapter_classes", "from_config", "from_hf", "is_external"]

# model_type -> (module in this package, adapter class): the only way a folder picks code
ADAPTERS: dict[str, tuple[str, str]] = {}
# image/video VQ models (vq_images.py)
ADAPTERS.update({"emu3_vqgan": ("vq_images", "Emu3VQTokenizer"), "janus_vqgan": ("vq_images", "JanusVQTokenizer"),
                 "chameleon_vqgan": ("vq_images", "ChameleonVQTokenizer")})
# audio codecs (audio_codecs.py)
ADAPTERS.update({"encodec": ("audio_codecs", "EncodecTokenizer"), "dac": ("audio_codecs", "DacTokenizer"),
                 "mimi": ("audio_codecs", "MimiTokenizer"), "xcodec": ("audio_codecs", "XcodecTokenizer")})
# feature models: from_hf gives an unfitted SemanticAudioTokenizer over their layer (hubert.py, extractor hf_hubert)
FEATURE_MODEL_TYPES: tuple[str, ...] = ("hubert", "wav2vec2")
# adapters no model_type picks, reached through an option of another: from_hf(emu3 folder, video=True)
OPTION_ADAPTERS: tuple[tuple[str, str], ...] = (("vq_images", "Emu3VideoTokenizer"),)


def _adapter(module: str, name: str) -> type:
    return getattr(importlib.import_module(f".{module}", __name__), name)


def adapter_classes() -> dict[str, type]:
    """Adapter class name -> class, for loaders that look classes up by name (``MultimodalTokenizer``)."""
    return {name: _adapter(module, name) for module, name in sorted(set(ADAPTERS.values()) | set(OPTION_ADAPTERS))}


def from_hf(path: str | Path, **options: Any) -> Any:
    """The mmtok adapter for the local ``transformers`` folder ``path`` (picked by its ``model_type``).

    Options depend on the model: audio codecs take ``bandwidth=`` (EnCodec, X-codec, kbps) or
    ``num_codebooks=`` (Mimi, DAC, X-codec); see each adapter. A HuBERT or wav2vec 2.0 folder gives an unfitted
    :class:`~modalities.semantic.SemanticAudioTokenizer` over its layer ``layer=`` (default 6) with ``k=`` units
    (default 500): call ``fit``. Image VQ models (Emu3, Janus, Chameleon) take a size policy, ``size_policy=``
    and ``size=`` (as :class:`~modalities.image.ImageTokenizer`); Emu3 takes ``video=True`` for its video
    tokenizer (kind ``video``). Raises ``TokenizerLoadError`` naming the ``model_type`` when no adapter handles it.
    """
    from ..base import TokenizerLoadError
    from .hf import hf_model_type

    model_type = hf_model_type(path)
    if model_type in FEATURE_MODEL_TYPES:
        from ..semantic import SemanticAudioTokenizer

        k = options.pop("k", 500)
        dedup = options.pop("dedup", False)
        return SemanticAudioTokenizer({"name": "hf_hubert", "path": str(path), **options}, k=k, dedup=dedup)
    if model_type not in ADAPTERS:
        raise TokenizerLoadError(f"{path}: no mmtok adapter for model_type {model_type!r}; supported: "
                                 f"{sorted(ADAPTERS.keys() | set(FEATURE_MODEL_TYPES))}")
    return _adapter(*ADAPTERS[model_type]).from_hf(path, **options)


def is_external(node: Any) -> bool:
    """Whether a ``tokenizer/<group>`` config names a pretrained model (``source: hf``, e.g. ``tokenizer/audio=encodec``)."""
    return hasattr(node, "get") and node.get("source") == "hf"


def from_config(node: Any) -> Any:
    """The adapter a ``tokenizer/<group>`` config describes: ``{source: hf, path: <folder>, <options>}``.

    Options left ``null`` are not passed (the adapter's default applies)."""
    from omegaconf import OmegaConf

    spec = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    if spec.pop("source", None) != "hf":
        raise ValueError(f"not a pretrained-model tokenizer config (source: hf): {spec}")
    path = spec.pop("path", None)
    if not path or path == "???":
        raise ValueError("the tokenizer config needs path=<local transformers folder> (nothing is downloaded)")
    return from_hf(path, **{k: v for k, v in spec.items() if v is not None})
