r"""Which masked positions a step unmasks: at random (the ancestral sampler) or by the model's confidence.

LLaDA's "low-confidence remasking" (Nie et al. 2025, Alg. 5; ``generate.py`` of GitHub ML-GSAI/LLaDA) draws a
candidate token for every masked position, keeps the n most confident and leaves the rest masked. Here n is the
number the ancestral step would unmask in expectation, :math:`\mathrm{round}(\rho_{flip}\cdot \#\text{masked})`
(CADD Eq 38), so with a linear schedule on a uniform grid the masked positions are spread evenly over the
steps, as LLaDA's ``get_num_transfer_tokens`` does, and the last step (α = 1) unmasks all that is left.
Scores: ``confidence`` = p of the drawn token (LLaDA), ``margin`` = p₁ − p₂ of the two likeliest tokens
(Kim et al. 2025), ``entropy`` = −H(p) (lowest entropy first).
"""

from __future__ import annotations

import torch
from torch import Tensor

from augdiff.processes import adjust_log_probs, flip_keep_ratios, sample_categorical

__all__ = ["ORDERINGS", "ordered_unmask_step"]

ORDERINGS = ("random", "confidence", "margin", "entropy")


def _scores(probs: Tensor, drawn: Tensor, how: str) -> Tensor:
    """Per-position confidence ``[N]`` from probabilities ``[N, V]`` and the drawn tokens ``[N]``."""
    if how == "confidence":
        return probs.gather(-1, drawn.unsqueeze(-1)).squeeze(-1)
    if how == "margin":
        top = probs.topk(min(2, probs.shape[-1]), dim=-1).values
        return top[:, 0] - (top[:, 1] if top.shape[-1] > 1 else 0.0)
    return (probs * probs.clamp_min(1e-30).log()).sum(-1)  # −H(p)


def ordered_unmask_step(
    x: Tensor,
    log_p_x0: Tensor,
    alpha_t: float,
    alpha_s: float,
    mask_id: int,
    how: str,
    generator: torch.Generator | None = None,
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """One step t → s that unmasks, in each row, the round(ρ_flip · #masked) most confident masked positions
    (at least one while any is masked) with their drawn tokens; other positions do not change."""
    assert how in ORDERINGS[1:], f"ordering must be one of {ORDERINGS[1:]}, got {how!r}"
    masked = x == mask_id
    if not masked.any():
        return x
    rho_flip, _ = flip_keep_ratios(
        torch.tensor(alpha_t, dtype=torch.float64), torch.tensor(alpha_s, dtype=torch.float64)
    )
    counts = masked.sum(-1)
    quota = (counts.double() * float(rho_flip)).round().long().clamp(min=1)
    quota = torch.minimum(quota, counts)
    drawn = sample_categorical(adjust_log_probs(log_p_x0[masked], temperature, top_p, dtype), generator, dtype)
    score = torch.full(x.shape, -torch.inf, dtype=dtype, device=x.device)
    # scored by the model's own distribution, as LLaDA does: top-p would make every kept-alone token a tie at 1
    score[masked] = _scores(log_p_x0[masked].to(dtype).softmax(-1), drawn, how)
    rank = score.argsort(dim=-1, descending=True).argsort(dim=-1)  # 0 = most confident
    chosen = masked & (rank < quota.unsqueeze(-1))
    candidates = torch.full_like(x, mask_id)
    candidates[masked] = drawn
    return torch.where(chosen, candidates, x)
