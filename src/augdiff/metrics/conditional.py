r"""Log-likelihood of a continuation given a context under a masked diffusion model (LLaDA's estimator).

For a context c and a continuation r of C tokens, LLaDA (Nie et al. 2025, Eq 6; its ``get_log_likelihood``)
bounds :math:`\log p_\theta(r \mid c)` from below by

.. math::

    \mathbb E_{l \sim U\{1..C\}}\; \mathbb E_{M \subset r,\, |M| = l}\;
    \frac{C}{l} \sum_{i \in M} \log p_\theta(r_i \mid c, r_{\setminus M}),

the masked-diffusion ELBO restricted to the continuation, with the context always visible. Each Monte-Carlo
sample draws l, then l continuation positions; the estimate is the mean over ``samples`` draws, and its
standard error is reported (LLaDA uses 128 samples; the variance falls as 1/samples).

Only a model whose token term is a bound can give one: MDLM (and an ``hf:`` backbone trained as MDLM, e.g.
LLaDA). CADD's and LADD's token terms read a latent that carries the tokens themselves, so they are refused. An
autoregressive model gives log p(r | c) exactly, by the chain rule (no samples, standard error 0): the reference
the bound is compared with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor

from augdiff.ar import ARModel
from augdiff.errors import AugdiffError
from augdiff.model import DiffusionModel

__all__ = ["ContinuationLogLikelihood", "continuation_log_likelihood", "is_greedy"]


@dataclass
class ContinuationLogLikelihood:
    """``log_likelihood``: the estimate of the lower bound on log p(r | c) (nats, summed over r's tokens);
    ``stderr``: its Monte-Carlo standard error; ``samples``: draws averaged."""

    log_likelihood: float
    stderr: float
    samples: int


@torch.no_grad()
def _exact(model: DiffusionModel | ARModel, context: Tensor, continuation: Tensor) -> ContinuationLogLikelihood:
    """The chain rule: Σ_i log p(r_i | c, r_<i) from one teacher-forced pass."""
    model = cast(ARModel, model)
    if continuation.numel() == 0:
        raise AugdiffError("the continuation is empty: nothing to score")
    device = next(model.parameters()).device
    x = torch.cat([context.reshape(-1), continuation.reshape(-1)]).to(device).unsqueeze(0)
    c_len = context.numel()
    log_p = model.log_probs(x)[0, c_len:].gather(-1, x[0, c_len:].unsqueeze(-1))
    return ContinuationLogLikelihood(float(log_p.double().sum()), 0.0, 0)


def _masked_rows(r_len: int, samples: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """``samples`` masks over the continuation: l ~ U{1..C} positions each, uniformly; returns (mask ``[S, C]``, l)."""
    l = torch.randint(1, r_len + 1, (samples,), generator=gen)
    scores = torch.rand(samples, r_len, generator=gen)
    rank = scores.argsort(dim=1).argsort(dim=1)
    return rank < l.unsqueeze(1), l


@torch.no_grad()
def continuation_log_likelihood(
    model: DiffusionModel | ARModel,
    context: Tensor,
    continuation: Tensor,
    *,
    samples: int = 128,
    batch_size: int = 64,
    seed: int = 0,
) -> ContinuationLogLikelihood:
    """LLaDA's Monte-Carlo lower bound on log p(``continuation`` | ``context``) (ids ``[P]`` and ``[C]``)."""
    if model.exact_likelihood:
        return _exact(model, context, continuation)
    if not model.token_term_is_bound:
        raise AugdiffError(
            "a conditional log-likelihood needs a masked diffusion model whose token term is a bound (mdlm); this "
            f"model's is not ({model.nll_kind})"
        )
    if continuation.numel() == 0:
        raise AugdiffError("the continuation is empty: nothing to score")
    device = next(model.parameters()).device
    c_len, r_len = context.numel(), continuation.numel()
    x0 = torch.cat([context.reshape(-1), continuation.reshape(-1)]).to(device)
    gen = torch.Generator().manual_seed(seed)
    mask, l = _masked_rows(r_len, samples, gen)
    values = []
    for start in range(0, samples, batch_size):
        m, ll = mask[start : start + batch_size].to(device), l[start : start + batch_size].to(device)
        x_t = x0.expand(m.shape[0], -1).clone()
        x_t[:, c_len:] = torch.where(m, model.mask_id, x_t[:, c_len:])
        t = ll.double() / r_len  # the masked fraction, the time of a linear schedule
        log_p = model.x0_log_probs(x_t, t.float(), model.init_state(x_t))[:, c_len:]
        token = log_p.gather(-1, x0[c_len:].expand(m.shape[0], -1).unsqueeze(-1)).squeeze(-1).double()
        values.append((token * m).sum(-1) * r_len / ll.double())
    per_sample = torch.cat(values)
    stderr = float(per_sample.std() / math.sqrt(samples)) if samples > 1 else float("nan")
    return ContinuationLogLikelihood(float(per_sample.mean()), stderr, samples)


@torch.no_grad()
def is_greedy(model: DiffusionModel | ARModel, context: Tensor, continuation: Tensor) -> bool:
    """Whether ``continuation`` is the model's greedy answer after ``context``: the argmax at every position of
    the teacher-forced chain (AR), or of the one-step denoiser with the whole continuation masked (diffusion)."""
    device = next(model.parameters()).device
    if model.exact_likelihood:
        x = torch.cat([context, continuation]).to(device).unsqueeze(0)
        log_p = cast(ARModel, model).log_probs(x)[0, context.numel() :]
    else:
        diffusion = cast(DiffusionModel, model)
        x = torch.cat([context, torch.full_like(continuation, diffusion.mask_id)]).unsqueeze(0).to(device)
        log_p = diffusion.x0_log_probs(x, torch.ones(1, device=device), diffusion.init_state(x))[0, context.numel() :]
    return bool((log_p.argmax(-1).cpu() == continuation).all())
