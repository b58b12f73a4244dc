"""One tokenizer for mixed documents: ``MultimodalTokenizer`` = a registry + one tokenizer per modality.

``encode(parts)`` turns a list of parts (text, images, videos, audio) into one
:class:`~modalities.stream.TokenSequence` of global ids; ``decode(ids)`` gives
the parts back as media. A part is dispatched by type:

* ``str``: text, unless it names an existing file with a media suffix
  (``"cat.png"``, ``"meow.wav"``); a bare name with a media suffix that does
  not exist is an error (wrap real text that looks like a file name in :class:`Text`);
* ``pathlib.Path``: a media file, by suffix;
* ``PIL.Image`` or a tensor ``[C, H, W]``: an image; a tensor ``[T, C, H, W]``: a video;
* audio tensors and arrays need their sample rate: ``Audio(x, sample_rate)``.

The wrappers :class:`Text`, :class:`Image`, :class:`Video`, :class:`Audio` make
the choice explicit and can name which tokenizer to use (``Audio(x, 16000,
name="audio_semantic")``); by default the first tokenizer of that kind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .base import Tokenizer, TokenizerLoadError, inside
from .data.fileio import atomic_write_text, read_json
from .data.io import AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES
from .registry import VocabRegistry
from .stream import Segment, TokenSequence, pack, unpack

__all__ = ["Audio", "Image", "MultimodalTokenizer", "Text", "Video", "read_manifest"]

CONFIG_NAME = "multimodal.json"
REGISTRY_NAME = "registry.json"


@dataclass
class Text:
    """Explicit text part."""

    text: str
    name: str | None = None


@dataclass
class Image:
    """Explicit image part: a tensor ``[C, H, W]``, PIL image or path."""

    data: Any
    name: str | None = None


@dataclass
class Video:
    """Explicit video part: a tensor ``[T, C, H, W]`` or path."""

    data: Any
    name: str | None = None


@dataclass
class Audio:
    """Explicit audio part: a waveform ``[C, T]``/``[T]`` (tensor or array) with its ``sample_rate``, or a path.

    :meth:`MultimodalTokenizer.decode` returns audio as ``Audio(float[T], sample_rate)``.
    """

    data: Any
    sample_rate: int | None = None
    name: str | None = None


_KIND_OF = {Text: "text", Image: "image", Video: "video", Audio: "audio"}
_SUFFIX_KIND = {**{s: "image" for s in IMAGE_SUFFIXES}, **{s: "video" for s in VIDEO_SUFFIXES},
                **{s: "audio" for s in AUDIO_SUFFIXES}}
_WRAP = {"text": Text, "image": Image, "video": Video, "audio": Audio}


def _classes() -> dict[str, type[Tokenizer]]:
    from .audio import SpectrogramTokenizer
    from .external import adapter_classes
    from .image import ImageTokenizer
    from .semantic import SemanticAudioTokenizer
    from .text import TextTokenizer
    from .video import VideoTokenizer

    return {c.__name__: c for c in (TextTokenizer, ImageTokenizer, VideoTokenizer, SpectrogramTokenizer,
                                    SemanticAudioTokenizer)} | adapter_classes()


def as_part(x: Any, what: str = "part") -> Text | Image | Video | Audio:
    """Wraps a bare part in the wrapper its type implies (see the module docstring); raises if it cannot tell."""
    from PIL import Image as PILImage

    if isinstance(x, (Text, Image, Video, Audio)):
        return x
    if isinstance(x, Path):
        kind = _SUFFIX_KIND.get(x.suffix.lower())
        if kind is None:
            raise ValueError(f"{what}: cannot tell the modality of {x} from its suffix; wrap it in Image/Video/Audio")
        return _WRAP[kind](x)
    if isinstance(x, str):
        suffix = Path(x).suffix.lower()
        if suffix in _SUFFIX_KIND and not any(c.isspace() for c in x):
            if Path(x).is_file():
                return _WRAP[_SUFFIX_KIND[suffix]](Path(x))
            raise FileNotFoundError(f"{what}: {x!r} looks like a {_SUFFIX_KIND[suffix]} file but does not exist; "
                                    "wrap it in Text(...) if it is text")
        return Text(x)
    if isinstance(x, PILImage.Image):
        return Image(x)
    if isinstance(x, torch.Tensor) and x.ndim == 3:
        return Image(x)
    if isinstance(x, torch.Tensor) and x.ndim == 4:
        return Video(x)
    if isinstance(x, torch.Tensor):
        raise ValueError(f"{what}: a tensor of shape {tuple(x.shape)} is ambiguous; wrap audio as "
                         "Audio(x, sample_rate) (images are [C, H, W], videos [T, C, H, W])")
    raise TypeError(f"{what}: cannot encode a {type(x).__name__}; pass str, Path, PIL, tensors or a wrapper")


class MultimodalTokenizer:
    """A :class:`~modalities.registry.VocabRegistry` plus one tokenizer per registered modality.

    Args:
        tokenizers: registry name -> tokenizer, in the order their ranges are laid out
            (text first by convention). Names of media tokenizers default to their kind
            (``image``, ``video``, ``audio``); a second tokenizer of a kind needs another name.
        registry: an existing layout to fit into (each range must match its tokenizer);
            by default a new one, laid on the base LLM's vocabulary when a text tokenizer
            comes from :meth:`TextTokenizer.from_hf <modalities.text.TextTokenizer.from_hf>`.
    """

    def __init__(self, tokenizers: dict[str, Tokenizer], registry: VocabRegistry | None = None) -> None:
        if not tokenizers:
            raise ValueError("a MultimodalTokenizer needs at least one tokenizer")
        self.tokenizers = dict(tokenizers)
        # a text tokenizer from a pretrained LLM (TextTokenizer.from_hf) lays the registry on its base:
        # its range goes first, at offset 0, whatever the order of the dict
        bases = [(n, t) for n, t in self.tokenizers.items() if getattr(t, "base_vocab", None) is not None]
        if len(bases) > 1:
            raise ValueError(f"text tokenizers {[n for n, _ in bases]} each wrap a base LLM vocabulary; "
                             f"a registry is laid on at most one")
        self.registry = registry if registry is not None else VocabRegistry(
            base=bases[0][1].base_vocab if bases else None)
        for name, tok in bases + [(n, t) for n, t in self.tokenizers.items() if (n, t) not in bases]:
            tok.register(self.registry, name)

    # ------------------------------------------------------------ dispatch
    def tokenizer_for(self, part: Text | Image | Video | Audio) -> tuple[str, Tokenizer]:
        """The registry name and tokenizer that code ``part``."""
        kind = _KIND_OF[type(part)]
        if part.name is not None:
            tok = self.tokenizers.get(part.name)
            if tok is None or tok.kind != kind:
                raise ValueError(f"no {kind} tokenizer named {part.name!r}; have "
                                 f"{ {n: t.kind for n, t in self.tokenizers.items()} }")
            return part.name, tok
        for name, tok in self.tokenizers.items():
            if tok.kind == kind:
                return name, tok
        raise ValueError(f"this MultimodalTokenizer has no {kind} tokenizer (it has {list(self.tokenizers)})")

    def _codes(self, part: Text | Image | Video | Audio, tok: Tokenizer, what: str) -> Any:
        if isinstance(part, Text):
            return tok.encode(part.text)
        if isinstance(part, Audio):
            return tok.encode(part.data, sample_rate=part.sample_rate)[0]
        codes = tok.encode(part.data)[0]
        if codes.ndim != {"image": 2, "video": 3}[tok.kind]:
            raise ValueError(f"{what}: a {tok.kind} tokenizer with {tok.num_codebooks} codebooks gives codes of "
                             f"shape {tuple(codes.shape)}; the stream holds one codebook for {tok.kind}")
        return codes

    # ------------------------------------------------------- encode/decode
    def encode(self, parts: Sequence[Any], bos: bool = False, eos: bool = False) -> TokenSequence:
        """Global ids and per-position modality of a document given as a list of parts."""
        if isinstance(parts, (str, Path, Text, Image, Video, Audio, torch.Tensor)):
            parts = [parts]
        segments = []
        for i, x in enumerate(parts):
            part = as_part(x, f"part {i}")
            name, tok = self.tokenizer_for(part)
            segments.append(Segment(name, self._codes(part, tok, f"part {i}")))
        return pack(segments, self.registry, bos=bos, eos=eos)

    def decode(self, ids: torch.Tensor | Sequence[int]) -> list[Any]:
        """The parts of a packed document: ``str``, images ``float[3, H, W]``, videos ``float[T, 3, H, W]``,
        audio ``Audio(float[T], sample_rate)``. Malformed ids raise :class:`~modalities.stream.StreamFormatError`."""
        out: list[Any] = []
        for seg in unpack(ids, self.registry):
            tok = self.tokenizers[seg.modality]
            if tok.kind == "text":
                out.append(tok.decode(seg.codes))
            elif tok.kind == "audio":
                out.append(Audio(tok.decode(seg.codes[None])[0], tok.sample_rate, seg.modality))
            else:
                out.append(tok.decode(seg.codes[None])[0])
        return out

    # ----------------------------------------------------------- save/load
    def save_pretrained(self, directory: str | Path) -> Path:
        """Writes ``multimodal.json``, ``registry.json`` and each tokenizer in a subfolder named after it."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, tok in self.tokenizers.items():
            tok.save_pretrained(directory / name)
        self.registry.save(directory / REGISTRY_NAME)
        cfg = {"class": type(self).__name__, "mmtok_version": __version__,
               "registry_fingerprint": self.registry.fingerprint,
               "tokenizers": {n: {"class": type(t).__name__, "kind": t.kind} for n, t in self.tokenizers.items()}}
        atomic_write_text(directory / CONFIG_NAME, json.dumps(cfg, indent=2) + "\n")
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> MultimodalTokenizer:
        """Loads a folder written by :meth:`save_pretrained`; the registry must match every tokenizer."""
        directory = Path(directory)
        try:
            cfg = read_json(directory / CONFIG_NAME, TokenizerLoadError, "multimodal tokenizer config")
        except FileNotFoundError as e:
            raise TokenizerLoadError(f"{e}: not a saved MultimodalTokenizer") from None
        if not isinstance(cfg, dict) or cfg.get("class") != cls.__name__ or "tokenizers" not in cfg:
            raise TokenizerLoadError(f"{directory / CONFIG_NAME} does not describe a {cls.__name__}")
        registry = VocabRegistry.load(directory / REGISTRY_NAME)
        registry.require_fingerprint(cfg.get("registry_fingerprint", ""), f"the tokenizer set in {directory}")
        classes = _classes()
        parts = {}
        if not isinstance(cfg["tokenizers"], dict):
            raise TokenizerLoadError(f"{directory / CONFIG_NAME}: 'tokenizers' must map names to entries")
        for name, entry in cfg["tokenizers"].items():
            field = f"{directory / CONFIG_NAME} tokenizers.{name}"
            klass = classes.get(entry.get("class") if isinstance(entry, dict) else None)
            if klass is None:
                raise TokenizerLoadError(f"{field}.class: unknown tokenizer class {entry!r}; known: {sorted(classes)}")
            parts[name] = klass.from_pretrained(inside(directory, name, field))
        return cls(parts, registry)

    def to(self, device: torch.device | str) -> MultimodalTokenizer:
        for tok in self.tokenizers.values():
            if hasattr(tok, "to"):
                tok.to(device)
        return self

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={type(t).__name__}({t.codebook_size})" for n, t in self.tokenizers.items())
        return f"MultimodalTokenizer({inner}; vocab_size={self.registry.vocab_size})"


def read_manifest(path: str | Path) -> Iterator[list[Text | Image | Video | Audio]]:
    """Documents of a JSONL manifest (see :func:`manifest_lines`)."""
    for _, parts, _ in manifest_lines(path):
        yield parts


def manifest_lines(path: str | Path) -> Iterator[tuple[int, list[Text | Image | Video | Audio], str | None]]:
    """``(line number, parts, source)`` of each document of a JSONL manifest: each line a list of parts
    ``{"text": ...}``, ``{"image": "path"}``, ``{"audio": "path"}``, ``{"video": "path"}`` (optionally with
    ``"name"``), or ``{"parts": [...], "source": "..."}`` naming where the document comes from (``None`` when not
    given); paths are relative to the manifest's folder. A malformed line raises ``ValueError`` naming the file
    and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not valid JSON ({e})") from None
            source = None
            if isinstance(doc, dict):
                if set(doc) - {"parts", "source"}:
                    raise ValueError(f"{where}: a document object has 'parts' and optionally 'source', "
                                     f"got {sorted(doc)}")
                doc, source = doc.get("parts"), doc.get("source")
            if not isinstance(doc, list) or not doc:
                raise ValueError(f"{where}: a document must be a non-empty list of parts (or {{\"parts\": [...]}})")
            parts = [_manifest_part(p, path.parent, f"{where} part {i}") for i, p in enumerate(doc)]
            yield lineno, parts, None if source is None else str(source)


def _manifest_part(p: Any, root: Path, where: str) -> Text | Image | Video | Audio:
    if not isinstance(p, dict):
        raise ValueError(f"{where}: a part must be an object like {{\"text\": ...}}, got {p!r}")
    kinds = [k for k in _WRAP if k in p]
    extra = set(p) - set(_WRAP) - {"name"}
    if len(kinds) != 1 or extra:
        raise ValueError(f"{where}: a part has exactly one of text/image/video/audio (and optionally name), got {sorted(p)}")
    kind, value = kinds[0], p[kinds[0]]
    if not isinstance(value, str):
        raise ValueError(f"{where}: {kind} must be a string, got {type(value).__name__}")
    if kind == "text":
        return Text(value, p.get("name"))
    file = Path(value) if Path(value).is_absolute() else root / value
    return _WRAP[kind](file, name=p.get("name"))
