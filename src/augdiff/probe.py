"""What does a CADD model read from a noisy latent? (CADD App. C.3, Table 12.)

One position is masked; its latent is the true token's embedding pushed along the Gaussian path to noise
level t; everything else is as in the text. The model's prediction at that position is reported for each t:
at small t the latent gives the token away, at t=1 only the context is left.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from augdiff.channels.cadd import CADDChannel, CADDState
from augdiff.errors import AugdiffError
from augdiff.model import DiffusionModel
from augdiff.processes.gaussian import gaussian_forward

__all__ = ["ProbeRow", "probe_latent"]


@dataclass
class ProbeRow:
    """The model's top predictions at the probed position for one noise level."""

    noise: float
    top: list[tuple[int, float]]


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
) -> list[ProbeRow]:
    """Predictions at ``position`` of ``tokens`` ``[L]`` when its latent is the true token's at each noise level.

    Other masked positions in ``tokens`` get pure-noise latents (t=1). One noise draw ε is shared by all levels,
    so the rows differ only by t.
    """
    channel = getattr(model, "channel", None)  # an autoregressive model has none
    if not isinstance(channel, CADDChannel):
        kind = channel.name if channel is not None else "ar"
        raise AugdiffError(f"probe needs a model with a continuous latent (method cadd); this one is {kind}")
    if not 0 <= position < tokens.numel():
        raise AugdiffError(f"--position {position} is outside the text's {tokens.numel()} tokens (0-based)")
    model.eval()
    device = next(model.parameters()).device
    x_t = tokens.to(device).clone().unsqueeze(0)
    x_t[0, position] = model.mask_id
    gen = torch.Generator(device=device).manual_seed(seed)
    rows = []
    for level in noise_levels:
        t = torch.tensor([level], device=device)
        clean = model.network.embed_tokens(x_t)
        noise = torch.randn(clean.shape, device=device, generator=gen.manual_seed(seed))
        z = torch.where((x_t == model.mask_id).unsqueeze(-1), noise, clean)
        z0 = model.network.embed_tokens(torch.tensor([[true_token]], device=device))
        z[0, position] = gaussian_forward(z0, t, channel.schedule, noise[:, position : position + 1])[0, 0]
        log_p = model.x0_log_probs(x_t, t, CADDState(z=z.unsqueeze(1), t=level))[0, position]
        values, index = log_p.exp().topk(min(top, log_p.numel()))
        rows.append(ProbeRow(noise=level, top=list(zip(index.tolist(), values.tolist(), strict=True))))
    return rows
