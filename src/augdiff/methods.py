"""Methods as compositions: ``method`` name → (mask schedule, latent channel, network).

MDLM is the empty channel on a DiT; CADD, Co-LADD and Di-LADD add their channel here and nowhere else.
"""

from __future__ import annotations

from augdiff.channels import LatentChannel, NoChannel
from augdiff.channels.cadd import CADDChannel
from augdiff.config import TrainConfig
from augdiff.errors import AugdiffError
from augdiff.model import DiffusionModel
from augdiff.nn import DiT, DiTConfig, model_shape
from augdiff.schedules import MaskSchedule, make_mask_schedule
from augdiff.schedules.gaussian import make_gaussian_schedule

__all__ = ["METHODS", "build_model", "build_channel", "build_schedule", "build_network_config"]

METHODS = ("mdlm", "cadd")


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


def build_channel(cfg: TrainConfig, schedule: MaskSchedule, vocab_size: int, hidden_size: int) -> LatentChannel:
    """The latent channel of ``cfg.method``: the only part that differs between methods."""
    if cfg.method == "mdlm":
        return NoChannel()
    c = cfg.cadd
    return CADDChannel(
        make_gaussian_schedule(c.schedule),
        schedule,
        mask_id=vocab_size,
        hidden_size=hidden_size,
        fusion=c.fusion,
        z0_hat=c.z0_hat,
        mse_weight=c.mse_weight,
        k=c.k,
        z0_grad=c.z0_grad,
    )


def build_model(cfg: TrainConfig, vocab_size: int) -> DiffusionModel:
    """The model of ``cfg.method`` over ``vocab_size`` data tokens."""
    if cfg.method not in METHODS:
        raise AugdiffError(f"method={cfg.method!r} is not known (choose one of: {', '.join(METHODS)})")
    net_cfg = build_network_config(cfg, vocab_size)
    schedule = build_schedule(cfg)
    channel = build_channel(cfg, schedule, vocab_size, net_cfg.hidden_size)
    return DiffusionModel(
        DiT(net_cfg), schedule, vocab_size, channel=channel, loss_weighting=cfg.diffusion.loss_weighting
    )
