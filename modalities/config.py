"""Typed defaults for the Hydra config groups, registered in Hydra's ConfigStore.

Each YAML file under ``conf/`` starts from one of these schemas (``defaults:
[<name>_schema, _self_]``), so a misspelt key or a wrong type on the command
line fails at compose time instead of deep inside a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING

from models.melspec import MelConfig
from models.melvq import MelVQConfig
from models.quantizer import QuantizerConfig
from models.transformer import TransformerConfig
from models.vqae import VQAEConfig
from models.vqae3d import VQAE3DConfig

from .data.waveform import AudioInputConfig
from .text import TextTokenizerConfig
from .training.trainer import TrainerConfig


@dataclass
class TaskConfig:
    """What ``python train.py task=<name>`` runs.

    Attributes:
        name: task name (the file name under ``conf/task/``).
        run: dotted path of a function ``run(cfg, out_dir) -> dict`` of metrics.
    """

    name: str = MISSING
    run: str = MISSING


@dataclass
class DataConfig:
    """Where the data lives.

    Attributes:
        root: data folder; ``None`` means the bundled ``samples/`` folder
            (or ``$MMTOK_SAMPLES``). Patterns below are relative to it.
        text_train: glob patterns of the text training corpus.
        text_heldout: glob patterns of held-out text (never trained on).
        images: folder of images for ``task=image`` (relative to ``root`` or absolute);
            ``None`` means ``root/images`` if it exists, else ``root`` itself.
        videos: folder of videos for ``task=video``, the same way (``root/video``).
        audio: folder of audio files for the audio tasks, the same way (``root/audio``).
        documents: JSONL manifest of mixed documents for ``task=demo`` (relative to ``root`` or absolute).
    """

    root: Optional[str] = None  # noqa: UP045 (OmegaConf needs typing.Optional)
    text_train: list[str] = field(default_factory=lambda: ["text/corpus/train.txt"])
    text_heldout: list[str] = field(default_factory=lambda: ["text/corpus/heldout.txt"])
    images: Optional[str] = None  # noqa: UP045
    videos: Optional[str] = None  # noqa: UP045
    audio: Optional[str] = None  # noqa: UP045
    documents: str = "documents.jsonl"


@dataclass
class ImageTaskConfig(TaskConfig):
    """``task=image``: train an image VQ tokenizer.

    Attributes:
        batch_size: crops per step.
        crop_size: side of the random training crops (a multiple of the downsample factor).
        flip: random horizontal flips.
        val_fraction: share of the files held out for validation (by file name hash).
        val_size: validation images are centre-cropped to at most this side.
        cache: keep decoded training images in memory.
        baseline: also fit the k-means-on-pixel-patches baseline and report it.
    """

    batch_size: int = 16
    crop_size: int = 128
    flip: bool = True
    val_fraction: float = 0.15
    val_size: int = 256
    cache: bool = True
    baseline: bool = True


@dataclass
class VideoTaskConfig(TaskConfig):
    """``task=video``: train the causal 3-D video VQ tokenizer.

    Attributes:
        batch_size: clips per step.
        crop_size: side of the random crops.
        clip_frames: frames per training clip, ``1 + k * temporal_downsample``.
        val_frames: frames per validation clip (the first frames of each held-out video).
        flip: random horizontal flips.
        val_fraction: share of the files held out for validation.
        val_size: validation frames are centre-cropped to at most this side.
    """

    batch_size: int = 4
    crop_size: int = 64
    clip_frames: int = 9
    val_frames: int = 17
    flip: bool = True
    val_fraction: float = 0.25
    val_size: int = 128


@dataclass
class AudioTaskConfig(TaskConfig):
    """``task=audio_spectrogram``: train the spectrogram VQ tokenizer.

    Attributes:
        batch_size: crops per step.
        crop_seconds: length of the random training crops (rounded down to whole tokens).
        val_fraction: share of the files held out for validation (by file name hash).
        val_seconds: held-out files are cut to at most this long (whole tokens).
        baseline: also fit residual k-means on raw mel frames at the same bits per second.
    """

    batch_size: int = 8
    crop_seconds: float = 2.0
    val_fraction: float = 0.15
    val_seconds: float = 4.0
    baseline: bool = True


@dataclass
class SemanticTaskConfig(TaskConfig):
    """``task=audio_semantic``: fit k-means units on frame features.

    Attributes:
        val_fraction: share of the files held out (usage and inertia are also reported on them).
        kmeans_iters: passes over the frames (mini-batch) or Lloyd iterations (full batch).
        kmeans_batch_size: mini-batch size; ``None`` runs full-batch Lloyd.
    """

    val_fraction: float = 0.15
    kmeans_iters: int = 20
    kmeans_batch_size: Optional[int] = 4096  # noqa: UP045


@dataclass
class TokenizeTaskConfig(TaskConfig):
    """``task=tokenize``: pre-tokenise a JSONL manifest of documents into shards.

    Attributes:
        tokenizer: folder of a saved MultimodalTokenizer (optional when ``external`` is given).
        external: tokenizer groups whose config names a pretrained model (``source: hf``, e.g.
            ``tokenizer/audio=encodec``) to join to the set; the joined set is saved in ``<run>/tokenizer``.
        manifest: JSONL file, one document (a list of parts) per line.
        shard_docs: documents per shard.
        out: output folder (relative to the run directory unless absolute).
        num_workers: DataLoader worker processes decoding media files (0: in the main process).
    """

    tokenizer: Optional[str] = None  # noqa: UP045
    external: list[str] = field(default_factory=list)
    manifest: str = MISSING
    shard_docs: int = 256
    out: str = "tokens"
    num_workers: int = 2


@dataclass
class DemoSteps:
    """Training steps of the demo's stages (each overrides that stage's ``trainer.max_steps``)."""

    image: int = 1000
    audio: int = 1000
    lm: int = 600


@dataclass
class DemoGenerateConfig:
    """What the demo's trained transformer is asked for, with constrained decoding.

    Attributes:
        image_prompt: text followed by an image of the tokenizer's size (text-to-image).
        audio_prompt: text followed by ``audio_seconds`` of audio (text-to-speech).
        temperature / top_k / top_p: sampling (``temperature=0``: greedy).
        max_new_tokens: the generation budget after the prompt (an open segment is always finished).
    """

    image_prompt: str = "A photograph of a cat sitting on a wooden table."
    audio_prompt: str = "The quick brown fox jumps over the lazy dog."
    audio_seconds: float = 3.0
    temperature: float = 0.9
    top_k: Optional[int] = 100  # noqa: UP045
    top_p: Optional[float] = 0.95  # noqa: UP045
    max_new_tokens: int = 16


@dataclass
class DemoTaskConfig(TaskConfig):
    """``task=demo`` (the default): the whole pipeline on ``data.documents``, each stage in a subfolder.

    Attributes:
        text / image / audio: overrides of ``python train.py`` for each tokenizer stage.
        lm: overrides of ``task=lm`` for the transformer stage (``task.data`` is set by the demo).
        steps: training steps per stage.
        image_size: images are resized and centre-cropped to this square in the documents.
        shard_docs: documents per token shard.
        num_workers: DataLoader workers decoding media while pre-tokenising.
        generate: the samples asked of the trained transformer.
    """

    text: list[str] = field(default_factory=lambda: ["experiment=text_debug"])
    image: list[str] = field(default_factory=lambda: ["experiment=image_debug", "task.baseline=false"])
    audio: list[str] = field(default_factory=lambda: ["experiment=audio_debug", "task.baseline=false"])
    lm: list[str] = field(default_factory=list)
    steps: DemoSteps = field(default_factory=DemoSteps)
    image_size: int = 128
    shard_docs: int = 32
    num_workers: int = 2
    generate: DemoGenerateConfig = field(default_factory=DemoGenerateConfig)


@dataclass
class LMTaskConfig(TaskConfig):
    """``task=lm``: train the transformer on pre-tokenised shards (schedule, steps, logging from ``trainer``).

    Attributes:
        data: folder written by ``task=tokenize``.
        block_size: tokens per training sequence.
        batch_size: sequences per micro-batch (per rank).
        grad_accum: micro-batches per optimiser step.
        lr: peak AdamW learning rate.
        weight_decay: AdamW weight decay.
        fsdp: shard parameters, gradients and optimiser state across ranks (FSDP2 ``fully_shard``,
            one unit per block) instead of replicating them with DDP; for models too big for one device.
        peak_tflops: the device's peak dense bf16 TFLOP/s for model FLOPs utilisation (null: looked up
            from the CUDA device name; no MFU on CPU).
        model: transformer size (``vocab_size`` comes from the data's registry).
    """

    data: str = MISSING
    block_size: int = 128
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 1e-3
    weight_decay: float = 0.1
    fsdp: bool = False
    peak_tflops: Optional[float] = None  # noqa: UP045 (OmegaConf needs typing.Optional)
    model: TransformerConfig = field(default_factory=lambda: TransformerConfig(dim=128, n_layers=4, n_heads=4,
                                                                                  max_seq_len=512))


@dataclass
class SpectrogramTokenizerConfig:
    """``tokenizer/audio``: the spectrogram tokenizer (input handling, mel front end, autoencoder)."""

    audio: AudioInputConfig = field(default_factory=AudioInputConfig)
    mel: MelConfig = field(default_factory=MelConfig)
    autoencoder: MelVQConfig = field(default_factory=MelVQConfig)


@dataclass
class SemanticTokenizerConfig:
    """``tokenizer/audio_semantic``: the semantic unit tokenizer.

    Attributes:
        audio: input handling.
        features: the frame feature extractor: ``name`` (registered in :mod:`modalities.audio_features`:
            ``mfcc``, ``hubert`` or your own) plus its settings.
        k: number of units.
        dedup: run-length deduplicate units in the mixed stream.
    """

    audio: AudioInputConfig = field(default_factory=AudioInputConfig)
    features: Any = field(default_factory=lambda: {"name": "mfcc"})
    k: int = 500
    dedup: bool = False


def register_configs() -> None:
    """Stores the schemas; call before composing (``train.py`` and the tests do)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(group="task", name="task_schema", node=TaskConfig)
    cs.store(group="task", name="image_task_schema", node=ImageTaskConfig)
    cs.store(group="task", name="video_task_schema", node=VideoTaskConfig)
    cs.store(group="task", name="audio_task_schema", node=AudioTaskConfig)
    cs.store(group="task", name="semantic_task_schema", node=SemanticTaskConfig)
    cs.store(group="task", name="tokenize_task_schema", node=TokenizeTaskConfig)
    cs.store(group="task", name="lm_task_schema", node=LMTaskConfig)
    cs.store(group="task", name="demo_task_schema", node=DemoTaskConfig)
    cs.store(group="tokenizer/audio", name="spectrogram_schema", node=SpectrogramTokenizerConfig)
    cs.store(group="tokenizer/audio_semantic", name="semantic_schema", node=SemanticTokenizerConfig)
    cs.store(group="tokenizer/image", name="image_ae_schema", node=VQAEConfig)
    cs.store(group="tokenizer/video", name="video_ae_schema", node=VQAE3DConfig)
    cs.store(group="quantizer", name="quantizer_schema", node=QuantizerConfig)
    cs.store(group="trainer", name="trainer_schema", node=TrainerConfig)
    cs.store(group="data", name="data_schema", node=DataConfig)
    cs.store(group="tokenizer/text", name="bpe_schema", node=TextTokenizerConfig)
