"""Run configuration: dataclasses validated at load time.

One name everywhere: the CLI flag ``--batch-size``, the YAML key ``batch_size`` and the dataclass field
``TrainConfig.batch_size`` are the same word. Section keys are dotted on the command line
(``optim.lr=1e-3``) and nested in YAML (``optim: {lr: 1e-3}``).

Example:
    >>> cfg = build_config({"steps": 50}, ["optim.lr=1e-3", "model.dropout=0.1"])
    >>> cfg.optim.lr, cfg.model.dropout, cfg.steps
    (0.001, 0.1, 50)
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from augdiff.errors import AugdiffError

__all__ = [
    "ModelConfig",
    "DiffusionConfig",
    "OptimConfig",
    "CADDConfig",
    "LADDConfig",
    "TextConfig",
    "TrainConfig",
    "build_config",
    "config_to_dict",
    "config_from_dict",
    "load_yaml",
]


@dataclass
class ModelConfig:
    """Backbone overrides; ``None`` takes the value of the ``model_size`` preset."""

    hidden_size: int | None = None
    n_layers: int | None = None
    n_heads: int | None = None
    mlp_ratio: int = 4
    dropout: float = 0.0
    # MDLM and LADD drop time conditioning from the token denoiser; it also makes the sampler's cache exact.
    time_conditioning: bool = False


@dataclass
class DiffusionConfig:
    """Token-channel masked diffusion: schedule, loss weighting, time sampling."""

    schedule: str = "loglinear"
    schedule_eps: float = 1e-3
    schedule_power: float = 2.0
    geometric_sigma_min: float = 1e-4
    geometric_sigma_max: float = 20.0
    loss_weighting: str = "elbo"
    antithetic: bool = True
    time_eps: float = 1e-3


@dataclass
class CADDConfig:
    """CADD's latent channel (``method: cadd``); names follow the paper (App. B.1, C.3)."""

    schedule: str = "flow"
    fusion: str = "add"
    z0_hat: str = "hard"
    mse_weight: float = 0.0
    k: int = 1
    z0_grad: bool = True


@dataclass
class LADDConfig:
    """Co-LADD / Di-LADD latent channel (``method: co-ladd | di-ladd``); names follow LADD §3, App. C–E."""

    stage: int = 1
    latent_len: int = 1
    latent_dim: int = 32
    encoder: str = "dit"
    encoder_path: str | None = None
    encoder_size: str = "xxs"
    pool: str = "last"
    encoder_noise: float = 0.0
    normalize: bool = True
    schedule: str = "auto"
    codebook_size: int = 512
    vq_decay: float = 0.99
    commitment_weight: float = 0.25
    dead_code_threshold: float = 2.0
    kmeans_init: bool = True
    lambda_x: float = 1.0
    lambda_y: float = 1.0
    latent_weighting: str = "constant"
    p_cf: float = 0.1
    p_drop: float = 0.0
    independent_t: bool = False
    p_seq: float = 0.5
    prior: str = "auto"
    prior_hidden: int = 128
    prior_layers: int = 3


@dataclass
class TextConfig:
    """Text data (``--data text:PATH | hf:NAME``): the tokenizer and how documents become rows (``data/text.py``).

    ``tokenizer``: ``auto`` (the corpus's own characters for ``text:PATH``, each hub corpus's usual choice for
    ``hf:NAME``), ``char``, ``text8`` (27 symbols a–z and space), ``bpe`` (trained on the training split) or a
    path to a ``tokenizer.json`` or a GPT-2 / Qwen3 tokenizer directory. ``packing``: ``auto`` (``none`` for
    characters, ``wrap`` for BPE, ``pad`` for sentence corpora), ``wrap`` (MDLM), ``pad`` or ``none``.
    """

    tokenizer: str = "auto"
    bpe_vocab_size: int = 4096
    packing: str = "auto"


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then constant learning rate, gradient clipping and weight EMA."""

    lr: float = 3e-4
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.9999


@dataclass
class TrainConfig:
    """Everything a training run needs; saved next to every checkpoint."""

    method: str = "mdlm"
    data: str = "sawtooth"
    seq_len: int | None = None
    vocab_size: int | None = None
    model_size: str = "xs"
    steps: int = 1000
    batch_size: int = 64
    grad_accum: int = 1
    seed: int = 0
    precision: str = "auto"
    device: str = "auto"
    log_every: int = 50
    ckpt_every: int = 1000
    keep_checkpoints: int = 2
    tensorboard: bool = True
    progress: bool = True
    init_from: str | None = None
    # dit, or hf:PATH: a local transformers model as the denoiser (mdlm, cadd; nn/hf_backbone.py)
    backbone: str = "dit"
    compile: bool = False  # torch.compile the network (Trainer); the saved weights are the same
    strategy: str = "auto"  # auto | ddp | fsdp, under torchrun (train/distributed.py)
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    cadd: CADDConfig = field(default_factory=CADDConfig)
    ladd: LADDConfig = field(default_factory=LADDConfig)
    text: TextConfig = field(default_factory=TextConfig)

    def __post_init__(self) -> None:
        _validate(self)


_CHOICES: dict[str, tuple[Any, ...]] = {
    "method": ("mdlm", "cadd", "co-ladd", "di-ladd", "ar"),
    "model_size": ("xxs", "xs", "tiny", "small"),
    "precision": ("auto", "fp32", "bf16"),
    "strategy": ("auto", "ddp", "fsdp"),
    "diffusion.schedule": ("linear", "loglinear", "polynomial", "geometric", "cosine"),
    "diffusion.loss_weighting": ("elbo", "constant"),
    "cadd.schedule": ("flow", "vp-linear", "vp-cosine", "vp-sqrt"),
    "cadd.fusion": ("add", "concat", "reweight"),
    "cadd.z0_hat": ("hard", "soft"),
    "ladd.stage": (1, 2),
    "ladd.encoder": ("dit", "pretrained"),
    "ladd.encoder_size": ("xxs", "xs", "tiny", "small"),
    "ladd.pool": ("last", "none", "mean", "patch"),
    "ladd.schedule": ("auto", "vp-sqrt", "vp-linear", "vp-cosine", "linear", "loglinear", "polynomial", "cosine"),
    "ladd.latent_weighting": ("constant", "elbo"),
    "ladd.prior": ("auto", "mlp", "dit"),
    "text.packing": ("auto", "wrap", "pad", "none"),
}
MAX_VOCAB = 10_000_000
# A byte-level BPE starts from the 256 byte symbols and adds [BOS], [EOS], [PAD] (``data/tokenizer.py``).
MIN_BPE_VOCAB = 256 + 3

_POSITIVE_INT = "a positive integer"
# key → (test, what the value must be). NaN fails every test, so it is refused too.
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "steps": (lambda v: v >= 1, _POSITIVE_INT),
    "batch_size": (lambda v: v >= 1, _POSITIVE_INT),
    "grad_accum": (lambda v: v >= 1, _POSITIVE_INT),
    "log_every": (lambda v: v >= 1, _POSITIVE_INT),
    "ckpt_every": (lambda v: v >= 1, _POSITIVE_INT),
    "keep_checkpoints": (lambda v: v >= 1, _POSITIVE_INT),
    "seq_len": (lambda v: v is None or v >= 1, "a positive integer (or null for the data's own length)"),
    "vocab_size": (lambda v: v is None or 1 <= v <= MAX_VOCAB, f"between 1 and {MAX_VOCAB:,} (or null)"),
    "model.hidden_size": (lambda v: v is None or v >= 1, "a positive integer (or null for the preset's)"),
    "model.n_layers": (lambda v: v is None or v >= 1, "a positive integer (or null for the preset's)"),
    "model.n_heads": (lambda v: v is None or v >= 1, "a positive integer (or null for the preset's)"),
    "model.mlp_ratio": (lambda v: v >= 1, _POSITIVE_INT),
    "model.dropout": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "diffusion.schedule_eps": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "diffusion.schedule_power": (lambda v: 0.0 < v < math.inf, "positive"),
    "diffusion.geometric_sigma_min": (lambda v: 0.0 < v < math.inf, "positive"),
    "diffusion.time_eps": (lambda v: 0.0 < v < 1.0, "in (0, 1): at t=0 the ELBO weight is infinite"),
    "optim.lr": (lambda v: 0.0 < v < math.inf, "positive"),
    "optim.weight_decay": (lambda v: 0.0 <= v < math.inf, "≥ 0"),
    "optim.beta1": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "optim.beta2": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "optim.warmup_steps": (lambda v: v >= 0, "≥ 0"),
    "optim.grad_clip": (lambda v: 0.0 <= v < math.inf, "≥ 0 (0 turns clipping off)"),
    "optim.ema_decay": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "cadd.mse_weight": (lambda v: 0.0 <= v < math.inf, "≥ 0 (0: cross-entropy only)"),
    "cadd.k": (lambda v: v >= 1, _POSITIVE_INT),
    "ladd.latent_len": (lambda v: v >= 1, _POSITIVE_INT),
    "ladd.latent_dim": (lambda v: v >= 1, _POSITIVE_INT),
    "ladd.encoder_noise": (lambda v: 0.0 <= v < math.inf, "≥ 0"),
    "ladd.codebook_size": (lambda v: v >= 2, "an integer ≥ 2"),
    "ladd.vq_decay": (lambda v: 0.0 < v < 1.0, "in (0, 1)"),
    "ladd.commitment_weight": (lambda v: 0.0 <= v < math.inf, "≥ 0"),
    "ladd.dead_code_threshold": (lambda v: v >= 0, "≥ 0 (0 turns dead-code replacement off)"),
    "ladd.lambda_x": (lambda v: 0.0 <= v < math.inf, "≥ 0"),
    "ladd.lambda_y": (lambda v: 0.0 <= v < math.inf, "≥ 0"),
    "ladd.p_cf": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "ladd.p_drop": (lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    "ladd.p_seq": (lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    "ladd.prior_hidden": (lambda v: v >= 1, _POSITIVE_INT),
    "ladd.prior_layers": (lambda v: v >= 1, _POSITIVE_INT),
    "text.tokenizer": (lambda v: bool(v.strip()), "auto, char, text8, bpe or a path to tokenizer files"),
    "text.bpe_vocab_size": (
        lambda v: MIN_BPE_VOCAB <= v <= MAX_VOCAB,
        f"between {MIN_BPE_VOCAB} (256 bytes + 3 special tokens) and {MAX_VOCAB:,}",
    ),
}


def _validate(cfg: TrainConfig) -> None:
    for key, allowed in _CHOICES.items():
        value = _get(cfg, key)
        if value not in allowed:
            raise AugdiffError(f"{key}={value!r} is not known (choose one of: {', '.join(map(str, allowed))})")
    for key, (test, what) in _RULES.items():
        value = _get(cfg, key)
        if not test(value):
            raise AugdiffError(f"{key}={value} must be {what}")
    if cfg.batch_size % cfg.grad_accum:
        raise AugdiffError(
            f"batch_size={cfg.batch_size} is not divisible by grad_accum={cfg.grad_accum} "
            "(batch_size is the global batch; pick a multiple of grad_accum)"
        )
    _validate_ladd(cfg)
    if cfg.backbone != "dit" and not (cfg.backbone.startswith("hf:") and cfg.backbone[3:].strip()):
        raise AugdiffError(
            f"backbone={cfg.backbone!r} is not known (use dit, or hf:PATH of a local transformers model)"
        )
    d = cfg.diffusion
    if not d.geometric_sigma_max > d.geometric_sigma_min:
        raise AugdiffError(
            f"diffusion.geometric_sigma_max={d.geometric_sigma_max} must exceed "
            f"diffusion.geometric_sigma_min={d.geometric_sigma_min}"
        )


_CO_SCHEDULES = ("auto", "vp-sqrt", "vp-linear", "vp-cosine")


def _validate_ladd(cfg: TrainConfig) -> None:
    if cfg.method not in ("co-ladd", "di-ladd"):
        return
    lc = cfg.ladd
    co = cfg.method == "co-ladd"
    if co != (lc.schedule in _CO_SCHEDULES) and lc.schedule != "auto":
        allowed = _CO_SCHEDULES if co else ("auto", "linear", "loglinear", "polynomial", "cosine")
        raise AugdiffError(
            f"ladd.schedule={lc.schedule!r} does not fit {cfg.method} (choose one of: {', '.join(allowed)})"
        )
    if lc.encoder == "pretrained" and lc.stage == 1:
        raise AugdiffError("ladd.encoder=pretrained is frozen, so there is no stage 1: train with ladd.stage=2")
    if lc.encoder == "pretrained" and lc.p_drop > 0:
        raise AugdiffError("ladd.p_drop blanks the inputs of a trainable encoder: use it with ladd.encoder=dit")
    if lc.pool == "none" and cfg.seq_len is not None and lc.latent_len != cfg.seq_len:
        raise AugdiffError(
            f"ladd.pool=none keeps one latent per token, so ladd.latent_len={lc.latent_len} must equal "
            f"seq_len={cfg.seq_len} (or choose ladd.pool=mean|patch)"
        )


def _get(cfg: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


_BOOL_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; strings from the command line are parsed."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _BOOL_WORDS:
            return _BOOL_WORDS[value.lower()]
    elif tp in (int, float) and not isinstance(value, bool):
        if isinstance(value, (int, float) if tp is float else int):
            return tp(value)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return tp(value)
    elif tp is str and isinstance(value, str):
        return value
    raise AugdiffError(f"{key}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def _unknown_key(key: str, known: list[str]) -> AugdiffError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(known))}"
    return AugdiffError(f"unknown config key {key!r} ({hint})")


def _from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        norm = key.replace("-", "_")
        if norm not in names:
            known = [prefix + n for n in names]
            raise _unknown_key(prefix + key, known)
        tp = hints[norm]
        if _is_section(tp):
            if not isinstance(value, dict):
                raise AugdiffError(f"{prefix}{norm}: expected a mapping of keys, got {value!r}")
            kwargs[norm] = _from_dict(tp, value, prefix=f"{prefix}{norm}.")
        else:
            kwargs[norm] = _coerce(value, tp, prefix + norm)
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Validate a nested mapping (as from YAML) and build the :class:`TrainConfig`."""
    return _from_dict(TrainConfig, data)


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The nested plain-Python form of a config, as written to ``config.yaml``."""
    return dataclasses.asdict(cfg)


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.replace("-", "_").split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise AugdiffError(f"{dotted}: {part} is a value, not a section")
        node = child
    node[parts[-1]] = value


def build_config(base: dict[str, Any] | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Merge ``key=value`` overrides (dotted for sections) into ``base`` and validate.

    Args:
        base: nested mapping, e.g. from a YAML file and the CLI flags.
        overrides: strings of the form ``optim.lr=1e-3``.
    """
    tree = _deep_copy(base or {})
    for item in overrides or []:
        if "=" not in item:
            raise AugdiffError(f"override {item!r} is not of the form key=value (e.g. optim.lr=1e-3)")
        key, value = item.split("=", 1)
        _set_dotted(tree, key.strip(), value.strip())
    return config_from_dict(tree)


def _deep_copy(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in tree.items()}


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing or malformed file is a user error."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "file not found"
        raise AugdiffError(f"--config {path}: {what} (give a path to a YAML file of config keys)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise AugdiffError(f"--config {path}: not a UTF-8 text file (give a YAML file of config keys)") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise AugdiffError(f"--config {path}: not valid YAML{where} (fix the syntax)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AugdiffError(f"--config {path}: expected a mapping of config keys at the top level")
    return data
