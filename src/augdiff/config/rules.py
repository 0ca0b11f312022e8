"""What each config value may be: choices, ranges and the rules that tie keys together."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from augdiff.errors import AugdiffError
from augdiff.specs import LADD_METHODS, METHODS, method_spec

if TYPE_CHECKING:
    from augdiff.config.schema import TrainConfig

__all__ = ["MAX_VOCAB", "MIN_BPE_VOCAB", "validate"]

_CHOICES: dict[str, tuple[Any, ...]] = {
    "method": METHODS,
    "model_size": ("xxs", "xs", "tiny", "small"),
    "precision": ("auto", "fp32", "bf16"),
    "strategy": ("auto", "ddp", "fsdp"),
    "diffusion.schedule": ("linear", "loglinear", "polynomial", "geometric", "cosine"),
    "diffusion.loss_weighting": ("elbo", "constant"),
    "optim.lr_schedule": ("constant", "cosine"),
    "cadd.schedule": ("flow", "vp-linear", "vp-cosine", "vp-sqrt", "ladd-sqrt"),
    "cadd.fusion": ("add", "concat", "reweight", "gated"),
    "cadd.z0_hat": ("hard", "soft", "sample"),
    "cadd.mse_weighting": ("constant", "elbo"),
    "ladd.stage": (1, 2),
    "ladd.encoder": ("dit", "pretrained"),
    "ladd.encoder_size": ("xxs", "xs", "tiny", "small"),
    "ladd.pool": ("last", "none", "mean", "patch"),
    "ladd.encoder_readout": ("adaln", "linear"),
    "ladd.normalize": ("none", "unit", "radius"),
    "ladd.schedule": (
        "auto",
        "ladd-sqrt",
        "vp-sqrt",
        "vp-linear",
        "vp-cosine",
        "linear",
        "loglinear",
        "polynomial",
        "cosine",
    ),
    "ladd.latent_weighting": ("constant", "elbo"),
    "ladd.latent_mse": ("mean", "sum"),
    "ladd.latent_target": ("y0", "eps", "v", "flow"),
    "ladd.latent_embed": ("mlp", "linear"),
    "ladd.latent_positions": ("after", "restart"),
    "ladd.prior": ("auto", "mlp", "dit"),
    "text.packing": ("auto", "wrap", "pad", "none"),
}
MAX_VOCAB = 10_000_000
# A byte-level BPE starts from the 256 byte symbols and adds [BOS], [EOS], [PAD] (``data/tokenizer.py``).
MIN_BPE_VOCAB = 256 + 3

_POSITIVE_INT = "a positive integer"
# key → (test, what the value must be). NaN fails every test, so it is refused too.
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "steps": (lambda v: v >= 0, "≥ 0 (0: no training — an hf: model or an init_from run, saved as it is)"),
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
    "model.local_mixer": (lambda v: v == 0 or (v >= 1 and v % 2 == 1), "0 (none) or an odd kernel size"),
    "diffusion.schedule_eps": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "diffusion.schedule_power": (lambda v: 0.0 < v < math.inf, "positive"),
    "diffusion.geometric_sigma_min": (lambda v: 0.0 < v < math.inf, "positive"),
    "diffusion.time_eps": (lambda v: 0.0 < v < 1.0, "in (0, 1): at t=0 the ELBO weight is infinite"),
    "optim.lr": (lambda v: 0.0 < v < math.inf, "positive"),
    "optim.weight_decay": (lambda v: 0.0 <= v < math.inf, "≥ 0"),
    "optim.beta1": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "optim.beta2": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "optim.warmup_steps": (lambda v: v >= 0, "≥ 0"),
    "optim.min_lr_ratio": (lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    "image.flip": (lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    "image.rotate": (lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    "optim.grad_clip": (lambda v: 0.0 <= v < math.inf, "≥ 0 (0 turns clipping off)"),
    "optim.ema_decay": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "cadd.mse_weight": (lambda v: 0.0 <= v < math.inf, "≥ 0 (0: cross-entropy only)"),
    "cadd.k": (lambda v: v >= 1, _POSITIVE_INT),
    "cadd.radius": (lambda v: v is None or 0.0 < v < math.inf, "> 0 (or null: raw embedding rows)"),
    "cadd.sigma": (lambda v: v is None or 0.0 < v < math.inf, "> 0 (or null: the embedding's RMS)"),
    "ladd.latent_len": (lambda v: v >= 1, _POSITIVE_INT),
    "ladd.latent_dim": (lambda v: v >= 1, _POSITIVE_INT),
    "ladd.encoder_noise": (lambda v: 0.0 <= v < math.inf, "≥ 0"),
    "ladd.encoder_dropout": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "ladd.radius": (lambda v: 0.0 < v < math.inf, "positive"),
    "ladd.codebook_size": (lambda v: v >= 2, "an integer ≥ 2"),
    "ladd.vq_decay": (lambda v: 0.0 < v < 1.0, "in (0, 1)"),
    "ladd.commitment_weight": (lambda v: 0.0 <= v < math.inf, "≥ 0"),
    "ladd.dead_code_threshold": (lambda v: v >= 0, "≥ 0 (0 turns dead-code replacement off)"),
    "ladd.lambda_x": (lambda v: 0.0 <= v < math.inf, "≥ 0"),
    "ladd.lambda_y": (lambda v: 0.0 <= v < math.inf, "≥ 0"),
    "ladd.p_cf": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "ladd.p_drop": (lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    "ladd.p_seq": (lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    "ladd.lag": (lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    "ladd.latent_steps": (lambda v: v >= 1, _POSITIVE_INT),
    "ladd.eta": (lambda v: 0.0 <= v < math.inf, "≥ 0"),
    "ladd.guidance": (lambda v: abs(v) < math.inf, "a finite number"),
    "ladd.prior_hidden": (lambda v: v >= 1, _POSITIVE_INT),
    "ladd.prior_layers": (lambda v: v >= 1, _POSITIVE_INT),
    "text.tokenizer": (lambda v: bool(v.strip()), "auto, char, text8, bpe or a path to tokenizer files"),
    "text.bpe_vocab_size": (
        lambda v: MIN_BPE_VOCAB <= v <= MAX_VOCAB,
        f"between {MIN_BPE_VOCAB} (256 bytes + 3 special tokens) and {MAX_VOCAB:,}",
    ),
}


def validate(cfg: TrainConfig) -> None:
    """Refuse a value outside its choices or range, with one line naming the key and what it must be."""
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
    if cfg.backbone not in ("dit", "unet") and not (cfg.backbone.startswith("hf:") and cfg.backbone[3:].strip()):
        raise AugdiffError(
            f"backbone={cfg.backbone!r} is not known (use dit, unet for images, or hf:PATH of a local model)"
        )
    if cfg.backbone == "unet" and (cfg.ladd.latent_embed, cfg.ladd.latent_positions) != ("mlp", "after"):
        raise AugdiffError(
            "ladd.latent_embed and ladd.latent_positions shape the MM-DiT's latent stream; the U-Net's has its own "
            "(drop them, or use backbone=dit)"
        )
    if cfg.model.norm_affine and (cfg.backbone != "dit" or method_spec(cfg.method).network != "dit"):
        raise AugdiffError("model.norm_affine applies to augdiff's DiT (mdlm, cadd, ar), not an MM-DiT or hf: backbone")
    if cfg.model.local_mixer and (cfg.backbone != "dit" or not method_spec(cfg.method).diffusion):
        raise AugdiffError(
            f"model.local_mixer={cfg.model.local_mixer} applies to augdiff's diffusion DiT and MM-DiT, not "
            f"{cfg.backbone if cfg.backbone != 'dit' else 'the ar model'} (set model.local_mixer=0)"
        )
    d = cfg.diffusion
    if not d.geometric_sigma_max > d.geometric_sigma_min:
        raise AugdiffError(
            f"diffusion.geometric_sigma_max={d.geometric_sigma_max} must exceed "
            f"diffusion.geometric_sigma_min={d.geometric_sigma_min}"
        )


def _validate_ladd(cfg: TrainConfig) -> None:
    if cfg.method not in LADD_METHODS:
        return
    lc = cfg.ladd
    allowed = method_spec(cfg.method).latent_schedules
    if lc.schedule not in allowed:
        raise AugdiffError(
            f"ladd.schedule={lc.schedule!r} does not fit {cfg.method} (choose one of: {', '.join(allowed)})"
        )
    if lc.guidance != 1.0 and "guidance" not in method_spec(cfg.method).sampling_options:
        raise AugdiffError(f"ladd.guidance={lc.guidance} is not offered for {cfg.method} (set ladd.guidance=1)")
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
