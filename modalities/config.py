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
from models.vocoder import VocoderConfig
from models.vqae import VQAEConfig
from models.vqae3d import VQAE3DConfig

from .data.speech_augment import AugmentConfig
from .data.waveform import AudioInputConfig
from .text import TextTokenizerConfig
from .training.trainer import TrainerConfig
from .training.vocoder_trainer import VocoderLossConfig


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
            (or ``$MMTOK_SAMPLES``). A relative path below is looked for first in the directory the command
            was started in, then under ``root`` (the defaults live there); one found in neither is an error
            naming both places (:func:`modalities.data.samples.resolve_data_path`).
        text_train: glob patterns of the text training corpus.
        text_heldout: glob patterns of held-out text (never trained on).
        images: folder of images for ``task=image`` (relative to ``root`` or absolute);
            ``None`` means ``root/images`` if it exists, else ``root`` itself.
        videos: folder of videos for ``task=video``, the same way (``root/video``).
        audio: folder of audio files for the audio tasks, the same way (``root/audio``).
        documents: JSONL manifest of mixed documents for ``task=demo`` (relative to ``root`` or absolute).
        images, videos and audio may instead name WebDataset tar shards: a brace pattern or glob
            (``/data/train-{00000..00127}.tar``), a list of them, or a ``pipe:`` command (see
            :mod:`modalities.data.tars`); each rank and loader worker then reads its own shards.
        val_images / val_videos / val_audio: held-out data for tar input (a folder or tar shards); ``None``
            holds out the last shard of the expanded list. Only for tar input (a folder is split by
            ``task.val_fraction``).
        shuffle_buffer: members held in the shuffle buffer of tar input (still encoded; more mixes shards better).
    """

    root: Optional[str] = None  # noqa: UP045 (OmegaConf needs typing.Optional)
    text_train: list[str] = field(default_factory=lambda: ["text/corpus/train.txt"])
    text_heldout: list[str] = field(default_factory=lambda: ["text/corpus/heldout.txt"])
    images: Any = None  # a folder, or tar shards (a pattern or a list of them)
    videos: Any = None
    audio: Any = None
    val_images: Any = None
    val_videos: Any = None
    val_audio: Any = None
    shuffle_buffer: int = 1000
    documents: str = "documents.jsonl"


@dataclass
class ImageTaskConfig(TaskConfig):
    """``task=image``: train an image VQ tokenizer.

    Attributes:
        batch_size: crops per step (per rank under torchrun).
        crop_size: side of the random training crops (a multiple of the downsample factor).
        flip: random horizontal flips.
        val_fraction: share of the sources held out for validation with all their files (modalities.data.sources).
        val_size: validation images are centre-cropped to at most this side.
        cache: keep decoded training images in memory.
        baseline: also fit the k-means-on-pixel-patches baseline and report it.
        zoom: ``[lo, hi]``: training crops at a random scale, log-uniform in ``[lo, hi]`` (0.5: a crop shows twice
            the side of the scene, downscaled; see ``modalities.data.datasets.ZoomCrop``); null: the files' own
            scale. Folder input only.
        refit_crops: after training, refit the codebook (Lloyd iterations, ``Quantizer.refit``) on the encoder
            outputs of this many training crops, then validate again; 0: keep the EMA codebook as trained.
            Folder input and the ``vq`` quantiser only.
        colour: ``[brightness, saturation, hue]``: colour jitter of every training crop
            (``modalities.data.datasets.ColourJitter``: brightness scaled by a factor in ``[1 - b, 1 + b]``,
            saturation by one in ``[1 - s, 1 + s]``, hue turned by up to ``hue`` of a full turn, 0.5 being any
            hue), so the tokenizer meets colours its photographs lack; null: none. Folder input only.
        split: ``heldout``: train on the training sources, validate on the held-out ones (the figures to
            report); ``validation``: split the training sources again and validate on that part, to choose a
            recipe without looking at the held-out sources. Folder input only.
    """

    batch_size: int = 16
    crop_size: int = 128
    flip: bool = True
    val_fraction: float = 0.4
    val_size: int = 256
    cache: bool = True
    baseline: bool = True
    zoom: Optional[list[float]] = None  # noqa: UP045 (OmegaConf needs typing.Optional)
    refit_crops: int = 0
    colour: Optional[list[float]] = None  # noqa: UP045
    split: str = "heldout"


@dataclass
class VideoTaskConfig(TaskConfig):
    """``task=video``: train the causal 3-D video VQ tokenizer.

    Attributes:
        batch_size: clips per step (per rank under torchrun).
        crop_size: side of the random crops.
        clip_frames: frames per training clip, ``1 + k * temporal_downsample``.
        val_frames: frames per validation clip (the first frames of each held-out video).
        flip: random horizontal flips.
        val_fraction: share of the sources held out for validation with all their files (modalities.data.sources).
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
        batch_size: crops per step (per rank under torchrun).
        crop_seconds: length of the random training crops (rounded down to whole tokens).
        val_fraction: share of the sources held out for validation with all their files (modalities.data.sources).
        val_seconds: held-out files are cut to at most this long (whole tokens).
        baseline: also fit residual k-means on raw mel frames at the same bits per second.
        augment: per-crop augmentation of the training speech, as ``task=vocoder``'s
            (:class:`~modalities.data.speech_augment.AugmentConfig`; folder input only). Default: off.
    """

    batch_size: int = 8
    crop_seconds: float = 2.0
    val_fraction: float = 0.15
    val_seconds: float = 4.0
    baseline: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class SemanticTaskConfig(TaskConfig):
    """``task=audio_semantic``: fit k-means units on frame features.

    Attributes:
        val_fraction: share of the sources held out with all their files (usage and inertia are also reported on them).
        kmeans_iters: passes over the frames (mini-batch) or Lloyd iterations (full batch).
        kmeans_batch_size: mini-batch size; ``None`` runs full-batch Lloyd.
    """

    val_fraction: float = 0.15
    kmeans_iters: int = 20
    kmeans_batch_size: Optional[int] = 4096  # noqa: UP045


@dataclass
class VocoderTaskConfig(TaskConfig):
    """``task=vocoder``: train the learned mel -> waveform vocoder (``models/vocoder.py``).

    Attributes:
        tokenizer: folder of a saved SpectrogramTokenizer: train for its mel settings, also score vocoding its
            decoded mels, and save it with the vocoder in ``<run>/tokenizer/audio``. ``None``: the
            ``tokenizer/audio`` group's mel settings, saved as a standalone ``<run>/vocoder`` folder.
        max_steps: optimiser steps (``None``: ``trainer.max_steps``, whose default suits the VQ tokenizers). 4000:
            chosen over 2000 on the validation split (both seeds, every group; ``docs/audio.md``).
        lr / betas: the AdamW peak learning rate and betas (the rest of the schedule is ``trainer.*``).
        batch_size: crops per step.
        crop_seconds: length of the random training crops (whole mel frames).
        val_fraction: share of the sources (sentences, for the samples) held out with all their files.
        val_seconds: held-out files are cut to at most this long.
        examples: held-out clips written as WAV (original, vocoder, Griffin-Lim) into ``<run>/heldout``.
        model: the vocoder's shape.
        loss: the training losses.
        augment: per-crop augmentation of the training speech (speed, level, telephone band, noise, reverb;
            :class:`~modalities.data.speech_augment.AugmentConfig`). Default: speed and pitch in ``1 ± 0.1``
            only, chosen on the validation split and checked on held-out voices (``docs/audio.md``).
        decoded_share: share of each training batch whose vocoder input is ``task.tokenizer``'s reconstruction of
            the mel (its tokens, decoded) rather than the true mel; the targets stay the true speech, so the vocoder
            learns to fill in what the tokens lose. ``0``: true mels only. Needs ``task.tokenizer``. 0.5 lost to 0 on
            the validation split with ``experiment=audio_small``'s tokens, from tokens too (``docs/audio.md``).
    """

    tokenizer: Optional[str] = None  # noqa: UP045
    max_steps: Optional[int] = 4000  # noqa: UP045
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.8, 0.99])
    batch_size: int = 8
    crop_seconds: float = 1.0
    val_fraction: float = 0.15
    val_seconds: float = 4.0
    examples: int = 4
    model: VocoderConfig = field(default_factory=VocoderConfig)
    loss: VocoderLossConfig = field(default_factory=VocoderLossConfig)
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(speed=0.1))
    decoded_share: float = 0.0


@dataclass
class TokenizeTaskConfig(TaskConfig):
    """``task=tokenize``: pre-tokenise a JSONL manifest or WebDataset tar shards of documents into shards.

    Attributes:
        tokenizer: folder of a saved MultimodalTokenizer (optional when ``external`` is given).
        external: tokenizer groups whose config names a pretrained model (``source: hf``, e.g.
            ``tokenizer/audio=encodec``) to join to the set; the joined set is saved in ``<run>/tokenizer``.
        manifest: JSONL file, one document (a list of parts) per line; or tar shards of interleaved documents
            (``/data/docs-{00000..00099}.tar``, a glob, a list, ``pipe:`` commands; see
            :mod:`modalities.data.interleaved`), one output shard per input shard.
        shard_docs: documents per shard (JSONL input).
        out: output folder (relative to the run directory unless absolute).
        num_workers: DataLoader worker processes decoding media files (0: in the main process).
        batch_size: documents encoded together; media of equal shape go through the tokenizer in one call
            (1: one document at a time; in fp32 the shards are the same bytes for any batch size).
        precision: ``fp32`` or ``bf16`` (autocast; CUDA only, codes may differ from fp32).
        text_base: a local Hugging Face model or tokenizer folder (with ``tokenizer.json``): its tokenizer
            replaces the set's text tokenizer (:meth:`TextTokenizer.from_hf`) and the vocabulary is laid on
            it, so the shards can train that model (``task=lm_hf``).
    """

    tokenizer: Optional[str] = None  # noqa: UP045
    external: list[str] = field(default_factory=list)
    text_base: Optional[str] = None  # noqa: UP045
    manifest: Any = MISSING  # a path, a tar pattern, or a list of tar patterns
    shard_docs: int = 256
    out: str = "tokens"
    num_workers: int = 2
    batch_size: int = 32
    precision: str = "fp32"


@dataclass
class PackTaskConfig(TaskConfig):
    """``task=pack``: write WebDataset tar shards of documents from a media folder or a JSONL manifest.

    Attributes:
        source: a media folder (one document per image, audio or video file) or a JSONL manifest of
            documents (a list of parts per line, or ``{"parts": [...], "source": "..."}``).
        out: output folder (relative to the run directory unless absolute).
        shard_size: documents per tar shard (a source's documents are never split across shards, so a shard
            holding a larger source has more).
        max_shard_bytes: start a new shard before one grows past this many bytes of members.
        prefix: shard file names ``<prefix>-000000.tar``.
    """

    source: str = MISSING
    out: str = "shards"
    shard_size: int = 1000
    max_shard_bytes: int = 1_000_000_000
    prefix: str = "docs"


@dataclass
class DemoSteps:
    """Training steps of the demo's stages (each overrides that stage's ``trainer.max_steps``, the vocoder's
    ``task.max_steps``; the tokenizer and vocoder stages also validate only at that step:
    :func:`modalities.tasks.demo.steps_overrides`)."""

    image: int = 1000
    audio: int = 600
    vocoder: int = 3000
    lm: int = 300


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
        text / image / audio / vocoder: overrides of ``python train.py`` for each tokenizer stage (the vocoder
            stage trains for the audio tokenizer's mels and saves it with the vocoder inside; ``steps.vocoder=0``
            skips it and audio decodes through Griffin-Lim).
        lm: overrides of ``task=lm`` for the transformer stage (``task.data`` is set by the demo).
        steps: training steps per stage.
        image_size: images are resized and centre-cropped to this square in the documents.
        shard_docs: documents per token shard.
        num_workers: DataLoader workers decoding media while pre-tokenising.
        generate: the samples asked of the trained transformer.
        report_items: held-out images and clips shown in ``report/index.html``.
    """

    text: list[str] = field(default_factory=lambda: ["experiment=text_debug"])
    image: list[str] = field(default_factory=lambda: ["experiment=image_demo", "task.baseline=false"])
    audio: list[str] = field(default_factory=lambda: ["experiment=audio_debug", "task.baseline=false"])
    vocoder: list[str] = field(default_factory=lambda: ["task=vocoder", "task.crop_seconds=0.5", "task.lr=2.0e-3"])
    lm: list[str] = field(default_factory=list)
    steps: DemoSteps = field(default_factory=DemoSteps)
    image_size: int = 128
    shard_docs: int = 32
    num_workers: int = 2
    generate: DemoGenerateConfig = field(default_factory=DemoGenerateConfig)
    report_items: int = 4


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
class LMHFTaskConfig(TaskConfig):
    """``task=lm_hf``: fine-tune a local Hugging Face causal LM on shards made on its own tokenizer.

    Attributes:
        model: local folder of an ``AutoModelForCausalLM`` (config, safetensors weights, ``tokenizer.json``).
        tokens: folder written by ``task=tokenize task.text_base=<model>`` (shards, ``registry.json``,
            ``tokenizer/``).
        seq_len: ids per packed sequence.
        batch_size: sequences per device per micro-batch.
        grad_accum: micro-batches per optimiser step.
        max_steps: optimiser steps.
        lr, weight_decay, warmup_steps, schedule: AdamW and its schedule (``transformers`` scheduler names).
        loss_on: ``null`` (every position), a modality name or a list (``special`` for ``<bos>``/``<eos>``).
        train: ``all`` parameters, or ``new_rows``: only the rows ``extend_model`` added (input and output
            embeddings; the base rows and every other weight stay bit-identical).
        init: rule for the new rows (``mean``, ``normal``, ``zeros``, or a per-modality dict).
        gradient_checkpointing: recompute activations in the backward pass.
        precision: ``auto`` (bf16 on CUDA, fp32 on CPU), ``bf16`` or ``fp32``.
        fsdp: ``transformers``' FSDP option string under torchrun (``"full_shard auto_wrap"``); empty for DDP.
        flatten: ``auto`` (one flattened row per batch for flash-attention kernels, padded rows otherwise),
            ``true`` or ``false`` (see :class:`~modalities.llm.PackedCollator`).
        attn: the model's attention implementation (``sdpa``, ``eager``, ``flash_attention_2``...; empty: the
            model's default).
        save_steps: checkpoint every this many steps (the last two are kept).
        log_every: log loss (overall and per modality) every this many steps.
        resume: continue from the last complete checkpoint in ``<run>/checkpoints``.
        num_workers: DataLoader workers.
    """

    model: str = MISSING
    tokens: str = MISSING
    seq_len: int = 512
    batch_size: int = 4
    grad_accum: int = 1
    max_steps: int = 500
    lr: float = 5e-4
    weight_decay: float = 0.0
    warmup_steps: int = 20
    schedule: str = "cosine"
    loss_on: Any = None
    train: str = "all"
    init: Any = "mean"
    gradient_checkpointing: bool = False
    precision: str = "auto"
    fsdp: str = ""
    flatten: Any = "auto"
    attn: str = ""
    save_steps: int = 100
    log_every: int = 10
    resume: bool = True
    num_workers: int = 0


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


@dataclass
class EvalRates:
    """Extra rates at which the classical codecs run (besides each tokenizer's own), for rate–distortion curves."""

    image: list[float] = field(default_factory=lambda: [0.1, 0.25, 0.5, 1.0])  # bits per pixel (JPEG, WebP)
    audio: list[float] = field(default_factory=lambda: [6000.0, 12000.0, 24000.0])  # bits per second (Opus)
    video: list[float] = field(default_factory=lambda: [0.02, 0.05, 0.1])  # bits per pixel per frame (H.264)


@dataclass
class EvalBaselines:
    """Classical baselines run beside the tokenizers, per modality."""

    image: list[str] = field(default_factory=lambda: ["kmeans", "jpeg", "webp"])
    audio: list[str] = field(default_factory=lambda: ["opus"])
    video: list[str] = field(default_factory=lambda: ["h264"])


@dataclass
class EvalSplit:
    """Share of the sources held out by the training tasks (must equal their ``task.val_fraction``)."""

    image: float = 0.4
    audio: float = 0.15
    video: float = 0.25


@dataclass
class EvaluateTaskConfig(TaskConfig):
    """``task=evaluate``: reconstruction quality of saved or pretrained tokenizers against classical codecs.

    Attributes:
        tokenizer: a saved tokenizer folder (image, video, audio, or a ``MultimodalTokenizer`` set).
        tokenizers: more saved folders to compare.
        external: tokenizer groups configured as pretrained models (``tokenizer/image=emu3 ...``).
        split: ``heldout`` (the held-out sources of the training split) or ``all`` (every file of the folder).
        val_fraction: the training tasks' held-out share per modality (for ``split=heldout``).
        max_items: evaluate at most this many files per modality (``None``: all).
        image_size: images and video frames are centre-cropped to at most this side.
        batch_size: images per encode call.
        fps: frame rate given to H.264 (affects only its bitrate bookkeeping).
        baselines: classical baselines per modality.
        rates: extra codec rates for the rate–distortion curves.
        report_items: items per modality shown, original beside each reconstruction, in ``report/index.html``.
    """

    tokenizer: Optional[str] = None  # noqa: UP045
    tokenizers: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    split: str = "heldout"
    val_fraction: EvalSplit = field(default_factory=EvalSplit)
    max_items: Optional[int] = None  # noqa: UP045
    image_size: int = 256
    batch_size: int = 8
    fps: float = 10.0
    baselines: EvalBaselines = field(default_factory=EvalBaselines)
    rates: EvalRates = field(default_factory=EvalRates)
    report_items: int = 4


@dataclass
class EvalConfig:
    """Weights of the learned metrics, from local files only (nothing is downloaded); unset -> "not computed".

    Attributes:
        lpips_weights: torchvision backbone weights for LPIPS (``alexnet``/``vgg16``/``squeezenet1_1`` state dict,
            ``.pth`` or ``.safetensors``).
        lpips_net: ``alex``, ``vgg`` or ``squeeze``.
        inception_weights: the FID Inception network of torch-fidelity (``pt_inception-2015-12-05``) state dict.
    """

    lpips_weights: Optional[str] = None  # noqa: UP045
    lpips_net: str = "alex"
    inception_weights: Optional[str] = None  # noqa: UP045


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
    cs.store(group="task", name="pack_task_schema", node=PackTaskConfig)
    cs.store(group="task", name="vocoder_task_schema", node=VocoderTaskConfig)
    cs.store(group="task", name="lm_task_schema", node=LMTaskConfig)
    cs.store(group="task", name="lm_hf_task_schema", node=LMHFTaskConfig)
    cs.store(group="task", name="demo_task_schema", node=DemoTaskConfig)
    cs.store(group="task", name="evaluate_task_schema", node=EvaluateTaskConfig)
    cs.store(group="eval", name="eval_schema", node=EvalConfig)
    cs.store(group="tokenizer/audio", name="spectrogram_schema", node=SpectrogramTokenizerConfig)
    cs.store(group="tokenizer/audio_semantic", name="semantic_schema", node=SemanticTokenizerConfig)
    cs.store(group="tokenizer/image", name="image_ae_schema", node=VQAEConfig)
    cs.store(group="tokenizer/video", name="video_ae_schema", node=VQAE3DConfig)
    cs.store(group="quantizer", name="quantizer_schema", node=QuantizerConfig)
    cs.store(group="trainer", name="trainer_schema", node=TrainerConfig)
    cs.store(group="data", name="data_schema", node=DataConfig)
    cs.store(group="tokenizer/text", name="bpe_schema", node=TextTokenizerConfig)
