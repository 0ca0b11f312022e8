"""The token-channel objective: weighted masked cross-entropy (continuous-time ELBO or constant weight)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = ["LossOutput", "masked_diffusion_nll"]


@dataclass
class LossOutput:
    """What one loss evaluation returns.

    Attributes:
        loss: the scalar to back-propagate (training weighting), per token.
        nll: the ELBO-weighted token term per token in nats (whatever the training weighting), detached. For
            MDLM it is the ELBO, an upper bound on −log p(x); for a latent channel it is the token term given the
            channel's latent, which is not a likelihood of x (``metrics.bound.nll_kind`` names it;
            ``metrics.bound.estimate_bound`` gives CADD's bound).
        nll_per_sequence: the same per sequence ``[B]`` in nats per token, detached (for standard errors).
        metrics: extra scalars to log (detached).
    """

    loss: Tensor
    nll: Tensor
    nll_per_sequence: Tensor
    metrics: dict[str, Tensor] = field(default_factory=dict)

    @property
    def bits_per_token(self) -> float:
        return float(self.nll) / math.log(2.0)

    @property
    def perplexity(self) -> float:
        return math.exp(float(self.nll))


def masked_diffusion_nll(
    log_p_x0: Tensor, x0: Tensor, x_t: Tensor, weight: Tensor, mask_id: int, counted: Tensor | None = None
) -> Tensor:
    r"""Weighted masked cross-entropy per sequence: the continuous-time masked-diffusion ELBO integrand.

    MDLM Eq 10, CADD Eq 2 and Eq 20, LADD Eq 6 / Eq 52:

    .. math::

        \mathcal L(x_0; t) = w(t) \sum_{i:\,x_t^i = \mathbf m} -\log p_\theta(x_0^i \mid x_t),
        \qquad w(t) = \frac{-\alpha_t'}{1-\alpha_t}\ \text{(ELBO)}\ \text{or}\ 1\ \text{(constant)}.

    Averaged over :math:`t \sim U[0,1]` and :math:`x_t \sim q(x_t\mid x_0)` it bounds
    :math:`-\log p_\theta(x_0)` from above (with ELBO weights and α(0)=1, α(1)=0).

    Args:
        log_p_x0: SUBS log-probabilities ``[B, L, V]``.
        x0: clean tokens ``[B, L]``.
        x_t: noisy tokens ``[B, L]``.
        weight: per-sequence weight ``[B]``.
        mask_id: id of the mask.
        counted: positions that are part of the data ``[B, L]`` (``None``: all). Padding of sentence rows is
            left out, as MDLM masks it out of its loss: it is not text the model should be scored on.

    Returns:
        ``[B]``: the weighted sum over masked positions (nats per sequence).
    """
    assert log_p_x0.shape[:2] == x0.shape == x_t.shape, (
        f"log_p_x0 {tuple(log_p_x0.shape)}, x0 {tuple(x0.shape)} and x_t {tuple(x_t.shape)} disagree"
    )
    log_p = torch.gather(log_p_x0, -1, x0.unsqueeze(-1)).squeeze(-1)
    masked = x_t == mask_id
    if counted is not None:
        masked = masked & counted
    ce = torch.where(masked, -log_p, torch.zeros_like(log_p)).sum(dim=-1)
    # A sequence with nothing masked contributes 0 even where the weight is infinite (t → 0).
    return torch.where(masked.any(dim=-1), weight.to(ce.dtype) * ce, torch.zeros_like(ce))
