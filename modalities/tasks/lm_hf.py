"""Task ``lm_hf``: fine-tune a local Hugging Face causal LM on mmtok shards made on its own tokenizer.

``python train.py task=lm_hf task.model=<HF folder> task.tokens=<task=tokenize output>``:

1. checks that the shards were made on this model's tokenizer (``task=tokenize task.text_base=<model>``; the
   registry's base hash must be the model folder's ``tokenizer.json``), else an error naming both;
2. loads the model (local files, safetensors, no remote code), grows it with
   :func:`~modalities.llm.extend_model` and, with ``task.train=new_rows``, freezes all but the new rows;
3. trains with :class:`~modalities.llm.trainer.PackedTrainer` on :class:`~modalities.llm.PackedShards`
   (``transformers.Trainer``: DDP or FSDP under ``torchrun``, bf16 on CUDA, gradient checkpointing), logging
   the loss overall and per modality to ``<run>/checkpoints`` (``trainer_state.json``) and ``metrics.jsonl``;
   checkpoints every ``task.save_steps``; a killed run started again with the same command resumes from the
   last complete checkpoint;
4. writes ``<run>/model`` (``AutoModelForCausalLM.from_pretrained`` opens it; the base's tokenizer files are
   copied beside the weights) and ``<run>/tokenizer`` (the mmtok tokenizer the shards were made with).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from ..data.fileio import atomic_write_text
from ..multimodal import MultimodalTokenizer
from ..registry import VocabRegistry

log = logging.getLogger("mmtok")


def _registry(tokens: Path) -> VocabRegistry:
    path = tokens / "registry.json"
    if not path.is_file():
        raise FileNotFoundError(f"task.tokens={tokens}: {path.name} is missing; not a folder written by task=tokenize")
    return VocabRegistry.load(path)


def check_model_folder(model_dir: Path, reg: VocabRegistry, tokens: Path) -> None:
    """Refuses a model folder whose tokenizer is not the base the shards were made on (naming both)."""
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"task.model={model_dir}: no config.json (a local Hugging Face model folder; "
                                f"nothing is downloaded)")
    if reg.base is None:
        raise ValueError(f"{tokens} was tokenised with mmtok's own text vocabulary, whose ids mean nothing to "
                         f"{model_dir}; re-tokenise on the model's tokenizer: python train.py task=tokenize "
                         f"task.tokenizer=<mmtok tokenizer> task.text_base={model_dir} task.manifest=...")
    tj = model_dir / "tokenizer.json"
    if tj.is_file():
        sha = hashlib.sha256(tj.read_bytes()).hexdigest()
        if sha != reg.base.sha256:
            raise ValueError(f"{tokens} was tokenised on another base tokenizer ({reg.base.name}, sha256 "
                             f"{reg.base.sha256[:12]}) than {tj} (sha256 {sha[:12]}); re-tokenise with "
                             f"task.text_base={model_dir}")


def _mm_tokenizer(tokens: Path, reg: VocabRegistry) -> MultimodalTokenizer | None:
    for folder in (tokens / "tokenizer", tokens.parent / "tokenizer"):
        if (folder / "multimodal.json").is_file():
            tok = MultimodalTokenizer.from_pretrained(folder)
            if tok.registry.fingerprint == reg.fingerprint:
                return tok
    return None


def _flatten(setting: Any, model: Any) -> bool:
    """``task.flatten``: ``auto`` flattens only for flash-attention kernels (see :class:`PackedCollator`)."""
    if setting == "auto":
        return str(getattr(model.config, "_attn_implementation", "")).startswith("flash")
    if not isinstance(setting, bool):
        raise ValueError(f"task.flatten must be auto, true or false, got {setting!r}")
    return setting


def _checkpointing(args_class: Any, on: bool) -> dict[str, Any]:
    """Activation checkpointing under the argument names of the installed ``transformers`` (5.x renamed them)."""
    import inspect

    names = inspect.signature(args_class).parameters
    key = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    return {key: on, f"{key}_kwargs": {"use_reentrant": False} if on else None}


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM, TrainerCallback, TrainingArguments

    from ..llm import PackedCollator, PackedShards, extend_model
    from ..llm.trainer import PackedTrainer, last_checkpoint, train_new_rows_only

    t = cfg.task
    model_dir, tokens = Path(t.model).expanduser(), Path(t.tokens).expanduser()
    reg = _registry(tokens)
    check_model_folder(model_dir, reg, tokens)
    if t.train not in ("all", "new_rows"):
        raise ValueError(f"task.train must be 'all' or 'new_rows', got {t.train!r}")
    cuda = torch.cuda.is_available() and cfg.trainer.device != "cpu"
    precision = ("bf16" if cuda else "fp32") if t.precision == "auto" else t.precision
    if precision == "bf16" and not cuda:
        raise ValueError("task.precision=bf16 needs CUDA; on the CPU use fp32 (or auto)")
    loss_on = OmegaConf.to_object(t.loss_on) if OmegaConf.is_config(t.loss_on) else t.loss_on
    data = PackedShards(tokens, t.seq_len, loss_on, reg)
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False,
                                                 use_safetensors=True, dtype=torch.float32,
                                                 **({"attn_implementation": t.attn} if t.attn else {}))
    init = OmegaConf.to_object(t.init) if OmegaConf.is_config(t.init) else t.init
    report = extend_model(model, reg, init=init, seed=cfg.seed)
    log.info("extended %s:\n%s", model_dir, report)
    if t.train == "new_rows":
        train_new_rows_only(model, reg.base.size)
        if t.weight_decay:
            raise ValueError("task.train=new_rows needs task.weight_decay=0 (decay would move the frozen rows)")
    ckpt_dir = out_dir / "checkpoints"
    args = TrainingArguments(
        output_dir=str(ckpt_dir), per_device_train_batch_size=t.batch_size, gradient_accumulation_steps=t.grad_accum,
        max_steps=t.max_steps, learning_rate=t.lr, weight_decay=t.weight_decay, warmup_steps=t.warmup_steps,
        lr_scheduler_type=t.schedule, logging_steps=t.log_every, save_steps=t.save_steps, save_total_limit=2,
        bf16=precision == "bf16", **_checkpointing(TrainingArguments, t.gradient_checkpointing),
        fsdp=t.fsdp or "", dataloader_num_workers=t.num_workers, remove_unused_columns=False, report_to=[],
        seed=cfg.seed, use_cpu=not cuda, disable_tqdm=not cfg.show_progress, save_only_model=False)
    metrics_path = out_dir / "metrics.jsonl"

    class _JsonLog(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
            if logs and state.is_world_process_zero:
                with open(metrics_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"step": state.global_step} | logs) + "\n")

    trainer = PackedTrainer(model=model, args=args, train_dataset=data, registry=reg,
                            data_collator=PackedCollator(reg.pad_id, flatten=_flatten(t.flatten, model)),
                            callbacks=[_JsonLog()])
    resume = last_checkpoint(ckpt_dir) if t.resume else None
    if resume is not None:
        log.info("resuming from %s", resume)
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - start
    history = [h for h in trainer.state.log_history if "loss" in h]
    out: dict[str, Any] = {"task": "lm_hf", "steps": trainer.state.global_step, "train_seconds": round(seconds, 1),
                           "resumed_from": resume.name if resume else "", "sequences": len(data),
                           "tokens": data.num_tokens, "train_loss": round(float(result.training_loss), 4)}
    if history:
        out["first_loss"], out["last_loss"] = history[0]["loss"], history[-1]["loss"]
        out |= {k: v for k, v in history[-1].items() if k.startswith("loss_")}
    if int(os.environ.get("RANK", 0)) == 0:
        final = out_dir / "model"
        trainer.save_model(str(final))
        (final / "training_args.bin").unlink(missing_ok=True)  # a pickle: a saved folder holds JSON and safetensors
        for name in ("tokenizer.json", "tokenizer_config.json"):
            if (model_dir / name).is_file():
                shutil.copyfile(model_dir / name, final / name)
        tok = _mm_tokenizer(tokens, reg)
        if tok is not None:
            tok.save_pretrained(out_dir / "tokenizer")
        else:
            reg.save(out_dir / "tokenizer" / "registry.json")
        atomic_write_text(out_dir / "lm_hf.json", json.dumps(out | {"extend": str(report)}, indent=2) + "\n")
    return out
