"""Typed defaults for the Hydra config groups, registered in Hydra's ConfigStore.

Each YAML file under ``conf/`` starts from one of these schemas (``defaults:
[<name>_schema, _self_]``), so a misspelt key or a wrong type on the command
line fails at compose time instead of deep inside a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING

from .text import TextTokenizerConfig


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
    """

    root: Optional[str] = None  # noqa: UP045 (OmegaConf needs typing.Optional)
    text_train: list[str] = field(default_factory=lambda: ["text/corpus/train.txt"])
    text_heldout: list[str] = field(default_factory=lambda: ["text/corpus/heldout.txt"])


def register_configs() -> None:
    """Stores the schemas; call before composing (``train.py`` and the tests do)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(group="task", name="task_schema", node=TaskConfig)
    cs.store(group="data", name="data_schema", node=DataConfig)
    cs.store(group="tokenizer/text", name="bpe_schema", node=TextTokenizerConfig)
