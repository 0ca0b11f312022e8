r"""The absorbing ("masked") token process: forward marginal, exact reverse bridge, SUBS parameterization.

Notation follows CADD §3–4: time runs from data (t=0) to all-mask (t=1), α_t is the survival
probability, ``mask_id`` is the absorbing state **m**, and ``s < t`` is the next (less noisy) time of a
reverse step. Token ids are ``0..V-1`` for data and ``V`` for the mask, so distributions over
:math:`x_0` have V entries and distributions over :math:`x_s` have V+1.
"""

from __future__ import annotations

import torch
from torch import Tensor

from augdiff.processes.categorical import adjust_log_probs, sample_categorical

__all__ = [
    "forward_mask",
    "flip_keep_ratios",
    "reverse_bridge",
    "subs_log_probs",
    "unmask_step",
]


def _per_row(value: Tensor | float, like: Tensor) -> Tensor:
    """A per-sequence value ``[B]`` (or a scalar) shaped ``[B, 1, ...]`` to broadcast against ``like``."""
    value = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return value.reshape(value.shape + (1,) * (like.dim() - value.dim()))


def forward_mask(x0: Tensor, alpha_t: Tensor, mask_id: int, generator: torch.Generator | None = None) -> Tensor:
    r"""Sample :math:`x_t \sim q(x_t \mid x_0)` (CADD Eq 1 / Eq 10, LADD Eq 43).

    .. math::

        q(x_t^i \mid x_0^i) = \alpha_t\,\delta(x_t^i - x_0^i) + (1-\alpha_t)\,\delta(x_t^i - \mathbf m)

    Each position is masked independently with probability :math:`1-\alpha_t`.

    Args:
        x0: clean tokens ``[B, L]`` (long).
        alpha_t: survival probability per sequence ``[B]`` (or a scalar).
        mask_id: the id of the absorbing state.
        generator: source of randomness (for reproducible training).

    Returns:
        x_t ``[B, L]``.
    """
    keep_prob = _per_row(alpha_t, x0.float())
    u = torch.rand(x0.shape, device=x0.device, generator=generator)
    return torch.where(u < keep_prob, x0, torch.full_like(x0, mask_id))


def flip_keep_ratios(alpha_t: Tensor, alpha_s: Tensor) -> tuple[Tensor, Tensor]:
    r"""Probabilities that a masked token unmasks (flip) or stays masked (keep) between t and s<t.

    CADD Eq 38:

    .. math::

        \rho^{\text{keep}}_t = \frac{1-\alpha_s}{1-\alpha_t},\qquad
        \rho^{\text{flip}}_t = \frac{\alpha_s-\alpha_t}{1-\alpha_t},\qquad
        \rho^{\text{flip}}_t + \rho^{\text{keep}}_t = 1.
    """
    denom = 1.0 - alpha_t
    rho_flip = (alpha_s - alpha_t) / denom
    return rho_flip, 1.0 - rho_flip


def reverse_bridge(x_t: Tensor, x0_probs: Tensor, alpha_t: Tensor, alpha_s: Tensor, mask_id: int) -> Tensor:
    r"""The exact reverse bridge :math:`q(x_s \mid x_t, x_0)` of the masked process (CADD Eq 15, LADD Eq 44).

    .. math::

        q(x_s \mid x_t, x_0) =
        \begin{cases}
          \rho^{\text{flip}}_t\, x_0 + \rho^{\text{keep}}_t\, \mathbf m & x_t = \mathbf m \\
          x_t & x_t \ne \mathbf m
        \end{cases}

    With ``x0_probs`` = :math:`p_\theta(x_0 \mid x_t)` instead of a one-hot :math:`x_0` this is the model's
    reverse transition (LADD Eq 46).

    Args:
        x_t: current tokens ``[B, L]``.
        x0_probs: a distribution over the V data tokens ``[B, L, V]`` (a one-hot for the true bridge).
        alpha_t: α at the current time, per sequence ``[B]`` or scalar.
        alpha_s: α at the next time s < t.
        mask_id: id of the absorbing state (= V).

    Returns:
        Probabilities over V+1 states ``[B, L, V+1]`` (last entry: the mask).
    """
    assert x0_probs.shape[:2] == x_t.shape and x0_probs.shape[-1] == mask_id, (
        f"x0_probs {tuple(x0_probs.shape)} must be [B, L, V] with V = mask_id = {mask_id} for x_t {tuple(x_t.shape)}"
    )
    alpha_t = _per_row(alpha_t, x0_probs)
    alpha_s = _per_row(alpha_s, x0_probs)
    rho_flip, rho_keep = flip_keep_ratios(alpha_t, alpha_s)
    masked_row = torch.cat([rho_flip * x0_probs, rho_keep.expand(*x0_probs.shape[:2], 1)], dim=-1)
    carried = torch.nn.functional.one_hot(x_t, mask_id + 1).to(x0_probs.dtype)
    is_mask = (x_t == mask_id).unsqueeze(-1)
    return torch.where(is_mask, masked_row, carried)


def subs_log_probs(logits: Tensor, x_t: Tensor, mask_id: int) -> Tensor:
    r"""SUBS parameterization of :math:`p_\theta(x_0 \mid x_t)` (MDLM §3.2.3; CADD Eq 13; LADD §2.2).

    Two substitutions on the network's logits over the V+1 states: the mask can never be a clean token
    (its logit is −∞, so it is dropped), and an unmasked position carries its token over
    (:math:`p_\theta(x_0 = x_t \mid x_t) = 1`).

    Args:
        logits: network output ``[B, L, V+1]`` or ``[B, L, V]``.
        x_t: current tokens ``[B, L]``.
        mask_id: id of the mask (= V).

    Returns:
        log-probabilities over the V data tokens ``[B, L, V]``, float32 or wider.
    """
    logits = logits[..., :mask_id].float()
    log_probs = torch.log_softmax(logits, dim=-1)
    unmasked = x_t != mask_id
    carried = torch.full_like(log_probs, float("-inf"))
    carried.scatter_(-1, x_t.clamp(max=mask_id - 1).unsqueeze(-1), 0.0)
    return torch.where(unmasked.unsqueeze(-1), carried, log_probs)


def unmask_step(
    x: Tensor,
    log_p_x0: Tensor,
    alpha_t: float,
    alpha_s: float,
    mask_id: int,
    generator: torch.Generator | None = None,
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    r"""One draw from the model's reverse transition of the masked process (LADD Eq 46, CADD Eq 15 with Eq 38).

    Each masked position unmasks with probability :math:`\rho^{\text{flip}}_t` to a token drawn from
    :math:`p_\theta(x_0 \mid \cdot)`, otherwise stays masked; unmasked positions never change. Used for tokens
    and for Di-LADD's codes alike.

    Args:
        x: current states ``[B, L]``; log_p_x0: ``[B, L, V]`` with V = ``mask_id``.
        alpha_t, alpha_s: α at the current time and at the next time s < t.
    """
    rho_flip, _ = flip_keep_ratios(
        torch.tensor(alpha_t, dtype=torch.float64), torch.tensor(alpha_s, dtype=torch.float64)
    )
    u = torch.rand(x.shape, dtype=torch.float64, device=x.device, generator=generator)
    unmask = (x == mask_id) & (u < float(rho_flip))
    x_next = x.clone()
    if unmask.any():
        probs = adjust_log_probs(log_p_x0[unmask], temperature, top_p, dtype)
        x_next[unmask] = sample_categorical(probs, generator, dtype)
    return x_next
