"""mmtok: turn text, images, video and audio into ids of one shared vocabulary and back.

Public API (imported lazily, so ``import modalities`` stays cheap)::

    from modalities import VocabRegistry, TextTokenizer, Segment, pack, unpack
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mmtok")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

_EXPORTS = {
    "VocabRegistry": "registry",
    "Modality": "registry",
    "RegistryError": "registry",
    "VocabMismatchError": "registry",
    "Segment": "stream",
    "TokenSequence": "stream",
    "StreamFormatError": "stream",
    "pack": "stream",
    "unpack": "stream",
    "canonical": "stream",
    "TextTokenizer": "text",
    "ImageTokenizer": "image",
    "VideoTokenizer": "video",
    "SpectrogramTokenizer": "audio",
    "SemanticAudioTokenizer": "semantic",
    "MultimodalTokenizer": "multimodal",
    "TokenizerLoadError": "base",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'modalities' has no attribute {name!r}")
