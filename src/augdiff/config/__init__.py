"""Run configuration: dataclasses validated at load time.

One name everywhere: the CLI flag ``--batch-size``, the YAML key ``batch_size`` and the dataclass field
``TrainConfig.batch_size`` are the same word. Section keys are dotted on the command line
(``optim.lr=1e-3``) and nested in YAML (``optim: {lr: 1e-3}``).

Example:
    >>> cfg = build_config({"steps": 50}, ["optim.lr=1e-3", "model.dropout=0.1"])
    >>> cfg.optim.lr, cfg.model.dropout, cfg.steps
    (0.001, 0.1, 50)
"""

from augdiff.config.parse import build_config, config_from_dict, config_from_stored, config_to_dict, load_yaml
from augdiff.config.rules import MAX_VOCAB, MIN_BPE_VOCAB
from augdiff.config.schema import (
    CADDConfig,
    DiffusionConfig,
    ImageConfig,
    LADDConfig,
    ModelConfig,
    OptimConfig,
    TextConfig,
    TrainConfig,
)

__all__ = [
    "ModelConfig",
    "DiffusionConfig",
    "OptimConfig",
    "CADDConfig",
    "LADDConfig",
    "TextConfig",
    "ImageConfig",
    "TrainConfig",
    "MAX_VOCAB",
    "MIN_BPE_VOCAB",
    "build_config",
    "config_to_dict",
    "config_from_dict",
    "config_from_stored",
    "load_yaml",
]
