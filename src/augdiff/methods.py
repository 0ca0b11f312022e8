"""Methods as compositions: ``method`` name → (mask schedule, latent channel, network).

MDLM is the empty channel on a DiT; CADD, Co-LADD and Di-LADD add their channel here and nowhere else. The
autoregressive reference ``ar`` is the same DiT with causal attention (:class:`augdiff.ar.ARModel`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from augdiff.ar import ARModel
from augdiff.channels import LatentChannel, NoChannel
from augdiff.channels.cadd import CADDChannel
from augdiff.config import TrainConfig
from augdiff.errors import AugdiffError
from augdiff.model import DiffusionModel
from augdiff.nn import DiT, DiTConfig, model_shape
from augdiff.nn.hf_backbone import HFBackbone, hf_backbone_path
from augdiff.nn.latent import LatentDenoiser, LatentEncoder
from augdiff.nn.mmdit import MMDiT, MMDiTConfig
from augdiff.schedules import MaskSchedule, make_mask_schedule
from augdiff.schedules.gaussian import make_gaussian_schedule
from augdiff.specs import HF_METHODS, LADD_METHODS, METHODS

Decode = Callable[[Tensor], list[str]]

__all__ = [
    "METHODS",
    "LADD_METHODS",
    "build_model",
    "build_ar_model",
    "build_channel",
    "build_schedule",
    "build_network_config",
]


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
        local_mixer=m.local_mixer,
        **shape,
    )


def build_channel(
    cfg: TrainConfig,
    schedule: MaskSchedule,
    vocab_size: int,
    hidden_size: int,
    seq_len: int | None = None,
    decode: Decode | None = None,
) -> LatentChannel:
    """The latent channel of ``cfg.method``: the only part that differs between methods."""
    if cfg.method == "mdlm":
        return NoChannel()
    if cfg.method in LADD_METHODS:
        return build_ladd_channel(cfg, vocab_size, seq_len, decode)
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
        mse_weighting=c.mse_weighting,
        radius=c.radius,
        sigma=c.sigma,  # None: measured when training starts (LatentChannel.settle)
    )


def _latent_head_width(cfg: TrainConfig) -> int:
    """Co-LADD predicts ŷ_0 (width d′); Di-LADD predicts logits over the codes and the latent mask."""
    return cfg.ladd.latent_dim if cfg.method == "co-ladd" else cfg.ladd.codebook_size + 1


def _encoder(cfg: TrainConfig, vocab_size: int, seq_len: int | None, decode: Decode | None) -> nn.Module:
    lc = cfg.ladd
    if lc.encoder == "pretrained":
        from augdiff.nn.pretrained import PretrainedEncoder  # sentence-transformers is only needed here

        if decode is None:
            raise AugdiffError("ladd.encoder=pretrained reads text: use text data (text:PATH), not token ids")
        return PretrainedEncoder(lc.encoder_path, lc.latent_len, lc.latent_dim, decode)
    length = seq_len if seq_len is not None else cfg.seq_len
    if lc.pool in ("none", "patch") and length is None:
        raise AugdiffError(f"ladd.pool={lc.pool} needs the sequence length: set seq_len")
    try:
        return LatentEncoder(
            vocab_size,
            length or lc.latent_len,
            lc.latent_len,
            lc.latent_dim,
            model_shape(lc.encoder_size),
            lc.pool,
            readout=lc.encoder_readout,
            dropout=lc.encoder_dropout,
        )
    except ValueError as exc:
        raise AugdiffError(f"ladd.pool={lc.pool}: {exc}") from None


def ladd_schedule_name(cfg: TrainConfig) -> str:
    """The latent schedule; ``auto`` is the authors' code: their sqrt for Co-LADD, α = 1 − t² for Di-LADD."""
    if cfg.ladd.schedule != "auto":
        return cfg.ladd.schedule
    return "ladd-sqrt" if cfg.method == "co-ladd" else "polynomial"


def build_ladd_channel(cfg: TrainConfig, vocab_size: int, seq_len: int | None, decode: Decode | None) -> LatentChannel:
    """Co-LADD or Di-LADD: encoder, latent-only denoiser and the latent process (LADD §3, App. C–D)."""
    from augdiff.channels.co_ladd import CoLADDChannel
    from augdiff.channels.di_ladd import DiLADDChannel

    lc = cfg.ladd
    kind = lc.prior if lc.prior != "auto" else ("mlp" if lc.latent_len == 1 else "dit")
    prior = LatentDenoiser(
        lc.latent_len, lc.latent_dim, _latent_head_width(cfg), kind, lc.prior_hidden, lc.prior_layers
    )
    common: dict[str, Any] = dict(
        mask_id=vocab_size,
        stage=lc.stage,
        lambda_x=lc.lambda_x,
        lambda_y=lc.lambda_y,
        p_cf=lc.p_cf,
        p_drop=lc.p_drop,
        independent_t=lc.independent_t,
        p_seq=lc.p_seq,
        latent_weighting=lc.latent_weighting,
    )
    encoder = _encoder(cfg, vocab_size, seq_len, decode)
    if cfg.method == "co-ladd":
        return CoLADDChannel(
            encoder,
            prior,
            make_gaussian_schedule(ladd_schedule_name(cfg)),
            normalize=lc.normalize,
            radius=lc.radius,
            latent_mse=lc.latent_mse,
            encoder_noise=lc.encoder_noise,
            **common,
        )
    return DiLADDChannel(
        encoder,
        prior,
        make_mask_schedule(ladd_schedule_name(cfg)),
        latent_dim=lc.latent_dim,
        codebook_size=lc.codebook_size,
        vq_decay=lc.vq_decay,
        commitment_weight=lc.commitment_weight,
        dead_code_threshold=lc.dead_code_threshold,
        kmeans_init=lc.kmeans_init,
        **common,
    )


def build_network(cfg: TrainConfig, vocab_size: int) -> nn.Module:
    """A DiT, or for LADD the MM-DiT joint denoiser with a latent stream (App. D); with ``backbone: hf:PATH``
    a local transformers model (:class:`augdiff.nn.hf_backbone.HFBackbone`; ``model_size``, ``model.*`` unused)."""
    hf_path = hf_backbone_path(cfg.backbone)
    if hf_path is not None:
        if cfg.method not in HF_METHODS:
            raise AugdiffError(
                f"backbone={cfg.backbone} works with method={' | '.join(HF_METHODS)} only, not {cfg.method} "
                "(use backbone=dit)"
            )
        return HFBackbone(hf_path, vocab_size, trust_remote_code=cfg.trust_remote_code)
    net_cfg = build_network_config(cfg, vocab_size)
    if cfg.method not in LADD_METHODS:
        return DiT(net_cfg)
    return MMDiT(
        MMDiTConfig(
            **dataclasses.asdict(net_cfg),
            latent_len=cfg.ladd.latent_len,
            latent_in=cfg.ladd.latent_dim,
            latent_out=_latent_head_width(cfg),
            latent_embed=cfg.ladd.latent_embed,
            latent_positions=cfg.ladd.latent_positions,
        )
    )


def build_ar_model(cfg: TrainConfig, vocab_size: int) -> ARModel:
    """The AR reference of matched size: the DiT of the same preset and ``model.*`` overrides, made causal.

    The ``diffusion``, ``cadd`` and ``ladd`` sections do not apply and are ignored.
    """
    if cfg.model.time_conditioning:
        raise AugdiffError("model.time_conditioning does not apply to method=ar (it has no diffusion time): drop it")
    # no local mixer: a KV-cached step sees only the new tokens, and the AR model reads its left context anyway
    net_cfg = dataclasses.replace(build_network_config(cfg, vocab_size), causal=True, local_mixer=0)
    return ARModel(DiT(net_cfg), vocab_size)


def build_model(
    cfg: TrainConfig,
    vocab_size: int,
    seq_len: int | None = None,
    decode: Decode | None = None,
    pad_id: int | None = None,
) -> DiffusionModel | ARModel:
    """The model of ``cfg.method`` over ``vocab_size`` data tokens.

    ``seq_len`` (the data's length) and ``decode`` (ids → texts) are needed only by LADD encoders that pool
    by patches or read text (the pretrained sentence encoder). ``pad_id``: the padding of padded sentence
    rows, which the loss and the NLL leave out (:func:`augdiff.data.padding_id`).
    """
    if cfg.method not in METHODS:
        raise AugdiffError(f"method={cfg.method!r} is not known (choose one of: {', '.join(METHODS)})")
    if cfg.method == "ar":
        if cfg.backbone != "dit":
            raise AugdiffError(f"backbone={cfg.backbone} works with method=mdlm | cadd only, not ar (use backbone=dit)")
        model = build_ar_model(cfg, vocab_size)
        model.pad_id = pad_id
        return model
    network = build_network(cfg, vocab_size)
    schedule = build_schedule(cfg)
    channel = build_channel(cfg, schedule, vocab_size, network.cfg.hidden_size, seq_len, decode)
    weighting = cfg.diffusion.loss_weighting
    return DiffusionModel(network, schedule, vocab_size, channel=channel, loss_weighting=weighting, pad_id=pad_id)
