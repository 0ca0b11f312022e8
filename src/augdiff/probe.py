"""What does a CADD model read from a noisy latent? (CADD App. C.3, Table 12.)

The probed position is masked and its latent is the true token's embedding pushed along the Gaussian path to
noise level t; the model's prediction there is reported for each t: at small t the latent gives the token away,
at t=1 only the context is left.

Context (``context``):

- ``matched`` (default): the input is a state the model met in training at time t. Besides the probed position,
  every other position is masked with probability 1−α(t), so about (1−α(t))·L are, and each masked position
  carries its own true token's latent at level t (z_t = a_t·w(x_0) + b_t·ε, as ``CADDChannel.train_input``).
  This matters most with time conditioning off (the default): the network then infers t only from how much of
  the text is masked, and a lone masked position in clean text reads as t≈0 whatever the latent's level.
- ``clean``: only the probed position is masked, the rest of the text is clean (the probe before ``matched``).

Positions the text itself masks (true token unknown) are masked at every level with pure-noise latents (t=1).
One draw, shared by all levels, fixes the noise ε and a uniform u per position (masked where u < 1−α(t), so the
masked set grows with t): for a given seed the rows differ only through t.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from augdiff.channels.cadd import CADDChannel, CADDState
from augdiff.errors import AugdiffError
from augdiff.model import DiffusionModel

__all__ = ["CONTEXTS", "ProbeRow", "probe_latent"]

CONTEXTS = ("matched", "clean")


@dataclass
class ProbeRow:
    """The model's top predictions at the probed position for one noise level."""

    noise: float
    top: list[tuple[int, float]]
    masked: int  # positions masked in the input, the probed one included


@torch.no_grad()
def probe_latent(
    model: DiffusionModel,
    tokens: Tensor,
    position: int,
    true_token: int,
    noise_levels: list[float],
    *,
    top: int = 3,
    seed: int = 0,
    context: str = "matched",
) -> list[ProbeRow]:
    """Predictions at ``position`` of ``tokens`` ``[L]`` when its latent is the true token's at each noise level.

    ``context`` is ``matched`` (mask ≈ (1−α(t))·L positions, as in training) or ``clean`` (mask only
    ``position``); see the module docstring.
    """
    channel = _cadd_channel(model)
    if not 0 <= position < tokens.numel():
        raise AugdiffError(f"--position {position} is outside the text's {tokens.numel()} tokens (0-based)")
    if context not in CONTEXTS:
        raise AugdiffError(f"--context {context!r}: choose one of {', '.join(CONTEXTS)}")
    model.eval()
    device = next(model.parameters()).device
    text = tokens.to(device).unsqueeze(0)
    x0 = text.clone()
    x0[0, position] = true_token
    z0 = channel.latent_of(model.network, x0)
    gen = torch.Generator(device=device).manual_seed(seed)
    # ε first: the same draw as the probe before `matched` (and as train_input from a generator seeded alike).
    eps = torch.randn(z0.shape, device=device, dtype=z0.dtype, generator=gen)
    u = torch.rand(text.shape, device=device, generator=gen)
    rows = []
    for level in noise_levels:
        t = torch.tensor([level], device=device)
        masked = _masked(model, text, position, u, t, context)
        x_t = torch.where(masked, model.mask_id, text)
        z_t = _latent(channel, z0, eps, masked, x0 != model.mask_id, t)
        log_p = model.x0_log_probs(
            x_t, t, CADDState(z=z_t.unsqueeze(1), t=level, options=channel.sampling_options(k=1))
        )[0, position]
        values, index = log_p.exp().topk(min(top, log_p.numel()))
        pairs = list(zip(index.tolist(), values.tolist(), strict=True))
        rows.append(ProbeRow(noise=level, top=pairs, masked=int(masked.sum())))
    return rows


def _cadd_channel(model: DiffusionModel) -> CADDChannel:
    channel = getattr(model, "channel", None)  # an autoregressive model has none
    if not isinstance(channel, CADDChannel):
        kind = channel.name if channel is not None else "ar"
        raise AugdiffError(f"probe needs a model with a continuous latent (method cadd); this one is {kind}")
    return channel


def _masked(model: DiffusionModel, text: Tensor, position: int, u: Tensor, t: Tensor, context: str) -> Tensor:
    """Positions masked at time ``t`` ``[1, L]``: the probed one, the text's own masks and, if matched, u < 1−α(t)."""
    masked = text == model.mask_id
    masked[0, position] = True
    if context == "matched":
        masked |= u < 1.0 - model.schedule(t).alpha_t
    return masked


def _latent(channel: CADDChannel, z0: Tensor, eps: Tensor, masked: Tensor, known: Tensor, t: Tensor) -> Tensor:
    """z_t ``[1, L, D]`` as in training: a_t·z0 + σ·b_t·ε where masked, z0 where clean.

    Where x_0 is unknown (``known`` false: the text's own masks) there is no z0 to noise, so the latent is σ·ε
    alone, the pure-noise latent of t=1.
    """
    noisy = channel.noised(z0, t, eps)
    return torch.where(masked.unsqueeze(-1), torch.where(known.unsqueeze(-1), noisy, channel.sigma * eps), z0)
