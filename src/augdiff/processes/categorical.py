"""Categorical sampling in explicit precision, with temperature and nucleus (top-p) filtering.

Sampling runs in float64 by default: Gumbel-max in float32 truncates the noise tail and so lowers the
effective temperature (Zheng et al. 2024, "Masked diffusion models are secretly time-agnostic ...", the bug
in MDLM's published sampler).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["sample_categorical", "adjust_log_probs"]

# Rows per chunk when turning [N, V] log-probabilities into float64 samples, to bound memory at large V.
_CHUNK_ELEMENTS = 1 << 25


def adjust_log_probs(
    log_probs: Tensor, temperature: float = 1.0, top_p: float = 1.0, dtype: torch.dtype = torch.float64
) -> Tensor:
    """Probabilities ``[..., V]`` in ``dtype`` after temperature scaling and top-p filtering.

    Args:
        log_probs: log-probabilities (or logits) ``[..., V]``.
        temperature: > 0; the distribution is ∝ p^{1/temperature}.
        top_p: keep the smallest set of most-likely tokens whose mass reaches ``top_p`` (1 keeps all).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must lie in (0, 1], got {top_p}")
    probs = torch.softmax(log_probs.to(dtype) / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        mass_before = sorted_p.cumsum(dim=-1) - sorted_p
        sorted_p = torch.where(mass_before < top_p, sorted_p, torch.zeros_like(sorted_p))
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


def sample_categorical(
    probs: Tensor, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64
) -> Tensor:
    r"""Draw one index per row of ``probs`` ``[..., V]`` by the exponential race in ``dtype``.

    :math:`\arg\max_v p_v / E_v` with :math:`E_v \sim \mathrm{Exp}(1)` is exactly categorical(p); it is the
    Gumbel-max trick without the logarithm.
    """
    shape = probs.shape[:-1]
    flat = probs.reshape(-1, probs.shape[-1])
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // max(1, flat.shape[-1]))
    out = torch.empty(flat.shape[0], dtype=torch.long, device=probs.device)
    for start in range(0, flat.shape[0], rows_per_chunk):
        chunk = flat[start : start + rows_per_chunk].to(dtype)
        race = torch.empty_like(chunk).exponential_(generator=generator)
        # p = 0 must lose even against a zero exponential draw (0/0 would be NaN and win the argmax).
        score = torch.where(chunk > 0, chunk / race, torch.full_like(chunk, -1.0))
        out[start : start + rows_per_chunk] = score.argmax(dim=-1)
    return out.reshape(shape)
