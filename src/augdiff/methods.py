"""Methods as compositions: ``method`` name → (mask schedule, latent channel, network).

MDLM is the empty channel on a DiT; CADD, Co-LADD and Di-LADD add their channel here and nowhere else.
"""

from __future__ import annotations

from augdiff.channels import NoChannel
from augdiff.config import TrainConfig
from augdiff.errors import AugdiffError
from augdiff.model import DiffusionModel
from augdiff.nn import DiT, DiTConfig, model_shape
from augdiff.schedules import MaskSchedule, make_mask_schedule

__all__ = ["METHODS", "build_model", "build_schedule", "build_network_config"]

METHODS = ("mdlm",)


def build_schedule(cfg: TrainConfig) -> MaskSchedule:
    d = cfg.diffusion
    return make_mask_schedule(
        d.schedule,
        eps=d.schedule_eps,
        power=d.schedule_power,
        sigma_min=d.geometric_sigma_min,
        sigma_max=d.geometric_sigma_max,
    )


def build_network_config(cfg: TrainConfig, vocab_size: int) -> DiTConfig:
    """The DiT shape: the ``model_size`` preset with ``model.*`` overrides; the mask adds one state."""
    m = cfg.model
    shape = model_shape(cfg.model_size, hidden_size=m.hidden_size, n_layers=m.n_layers, n_heads=m.n_heads)
    if shape["hidden_size"] % shape["n_heads"] or (shape["hidden_size"] // shape["n_heads"]) % 2:
        raise AugdiffError(
            f"model.hidden_size={shape['hidden_size']} must split into model.n_heads={shape['n_heads']} heads of "
            "even width (rotary embeddings rotate pairs)"
        )
    return DiTConfig(
        vocab_size=vocab_size + 1,
        mlp_ratio=m.mlp_ratio,
        dropout=m.dropout,
        time_conditioning=m.time_conditioning,
        **shape,
    )


def build_model(cfg: TrainConfig, vocab_size: int) -> DiffusionModel:
    """The model of ``cfg.method`` over ``vocab_size`` data tokens."""
    if cfg.method not in METHODS:
        raise AugdiffError(f"method={cfg.method!r} is not known (choose one of: {', '.join(METHODS)})")
    network = DiT(build_network_config(cfg, vocab_size))
    return DiffusionModel(
        network, build_schedule(cfg), vocab_size, channel=NoChannel(), loss_weighting=cfg.diffusion.loss_weighting
    )
