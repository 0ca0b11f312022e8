"""Methods as compositions: ``method`` name → (mask schedule, latent channel, network).

Every part that differs between methods comes from the method's :class:`~augdiff.specs.MethodSpec`: its
channel module's ``build(section, context)``, its network kind (a DiT, or an MM-DiT whose latent stream the
channel module sizes). MDLM is the empty channel on a DiT. The autoregressive reference ``ar`` is the same DiT
with causal attention (:class:`augdiff.ar.ARModel`).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from torch import Tensor, nn

from augdiff.ar import ARModel
from augdiff.channels import ChannelContext, LatentChannel
from augdiff.config import TrainConfig
from augdiff.errors import AugdiffError
from augdiff.model import DiffusionModel
from augdiff.nn import DiT, DiTConfig, model_shape
from augdiff.nn.hf_backbone import HFBackbone, hf_backbone_path
from augdiff.nn.mmdit import MMDiT, MMDiTConfig
from augdiff.nn.unet import UNet, unet_config
from augdiff.schedules import MaskSchedule, make_mask_schedule
from augdiff.specs import HF_METHODS, LADD_METHODS, METHODS, method_spec

Decode = Callable[[Tensor], list[str]]

__all__ = [
    "METHODS",
    "LADD_METHODS",
    "build_model",
    "build_ar_model",
    "build_channel",
    "channel_module",
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
        norm_affine=m.norm_affine,
        **shape,
    )


def channel_module(method: str) -> ModuleType:
    """The module of ``method``'s latent channel (its ``build`` and, for an MM-DiT, ``head_width``)."""
    spec = method_spec(method)
    assert spec.channel is not None, f"{method} has no latent channel"
    return importlib.import_module(spec.channel)


def _section(cfg: TrainConfig) -> Any:
    """The method's own config section (``cfg.cadd``, ``cfg.ladd``; ``None`` for MDLM)."""
    section = method_spec(cfg.method).section
    return None if section is None else getattr(cfg, section)


def build_channel(
    cfg: TrainConfig,
    schedule: MaskSchedule,
    vocab_size: int,
    hidden_size: int,
    seq_len: int | None = None,
    decode: Decode | None = None,
) -> LatentChannel:
    """The latent channel of ``cfg.method``: the only part that differs between methods, made by the
    ``build(section, context)`` of the module its :class:`~augdiff.specs.MethodSpec` names."""
    length = seq_len if seq_len is not None else cfg.seq_len
    sections = {name: getattr(cfg, name) for name in method_spec(cfg.method).also_reads}
    context = ChannelContext(schedule, vocab_size, hidden_size, length, decode, sections)
    channel: LatentChannel = channel_module(cfg.method).build(_section(cfg), context)
    return channel


#: ``model_size`` → U-Net size (``backbone: unet``); ``small`` is ADM's CIFAR-10 network (a GPU's)
UNET_SIZE_OF = {"xxs": "xxs", "xs": "xs", "small": "cifar"}


def _unet(cfg: TrainConfig, vocab_size: int, image_shape: tuple[int, ...] | None) -> UNet:
    """ADM's U-Net over pixel tokens (CADD §5.2) for image data, for every diffusion method; a LADD method's
    latent conditions it as ADM conditions on a class (:class:`augdiff.nn.unet.LatentStream`)."""
    if image_shape is None:
        raise AugdiffError("backbone=unet needs image data (--data image:digits | image:cifar10 | image:FOLDER)")
    if cfg.model_size not in UNET_SIZE_OF:
        raise AugdiffError(f"backbone=unet comes in model_size {' | '.join(UNET_SIZE_OF)}, not {cfg.model_size}")
    m = cfg.model
    size = UNET_SIZE_OF[cfg.model_size]
    stream: dict[str, int] = {}
    if method_spec(cfg.method).network == "mmdit":
        section = _section(cfg)
        width = channel_module(cfg.method).head_width(section)
        stream = {"latent_len": section.latent_len, "latent_in": section.latent_dim, "latent_out": width}
    shape = unet_config(
        size, vocab_size + 1, image_shape, dropout=m.dropout, time_conditioning=m.time_conditioning, **stream
    )
    return UNet(shape)


def build_network(cfg: TrainConfig, vocab_size: int, image_shape: tuple[int, ...] | None = None) -> nn.Module:
    """A DiT, or for LADD the MM-DiT joint denoiser with a latent stream (App. D); with ``backbone: hf:PATH``
    a local transformers model (:class:`augdiff.nn.hf_backbone.HFBackbone`; ``model_size``, ``model.*`` unused);
    with ``backbone: unet`` ADM's U-Net over the pixel tokens of images of ``image_shape`` (H, W, C)."""
    if cfg.backbone == "unet":
        return _unet(cfg, vocab_size, image_shape)
    hf_path = hf_backbone_path(cfg.backbone)
    if hf_path is not None:
        if cfg.method not in HF_METHODS:
            raise AugdiffError(
                f"backbone={cfg.backbone} works with method={' | '.join(HF_METHODS)} only, not {cfg.method} "
                "(use backbone=dit)"
            )
        return HFBackbone(hf_path, vocab_size, trust_remote_code=cfg.trust_remote_code)
    net_cfg = build_network_config(cfg, vocab_size)
    if method_spec(cfg.method).network == "dit":
        return DiT(net_cfg)
    section = _section(cfg)  # an MM-DiT's latent stream: the shape of the method's latent
    return MMDiT(
        MMDiTConfig(
            **dataclasses.asdict(net_cfg),
            latent_len=section.latent_len,
            latent_in=section.latent_dim,
            latent_out=channel_module(cfg.method).head_width(section),
            latent_embed=section.latent_embed,
            latent_positions=section.latent_positions,
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
    image_shape: tuple[int, ...] | None = None,
) -> DiffusionModel | ARModel:
    """The model of ``cfg.method`` over ``vocab_size`` data tokens.

    ``seq_len`` (the data's length) and ``decode`` (ids → texts) are needed only by LADD encoders that pool
    by patches or read text (the pretrained sentence encoder). ``pad_id``: the padding of padded sentence
    rows, which the loss and the NLL leave out (:func:`augdiff.data.padding_id`). ``image_shape``: (H, W, C) of
    image data, for ``backbone: unet``.
    """
    if cfg.method not in METHODS:
        raise AugdiffError(f"method={cfg.method!r} is not known (choose one of: {', '.join(METHODS)})")
    if not method_spec(cfg.method).diffusion:
        if cfg.backbone != "dit":
            raise AugdiffError(f"backbone={cfg.backbone} is a diffusion denoiser, not for method=ar (use backbone=dit)")
        model = build_ar_model(cfg, vocab_size)
        model.pad_id = pad_id
        return model
    network = build_network(cfg, vocab_size, image_shape)
    schedule = build_schedule(cfg)
    channel = build_channel(cfg, schedule, vocab_size, network.cfg.hidden_size, seq_len, decode)
    weighting = cfg.diffusion.loss_weighting
    return DiffusionModel(network, schedule, vocab_size, channel=channel, loss_weighting=weighting, pad_id=pad_id)
