r"""An upper bound on :math:`-\log p_\theta(x_0)` for masked diffusion with a continuous latent (CADD).

CADD's reported "BPC" (its Tables 5–7, App. C.2: "the discrete part") is the token term alone, conditioned on
a latent :math:`z_t \sim q(\cdot \mid x_0)` that carries :math:`x_0`: not a likelihood. The variational bound of
the joint process adds the latent's KL terms (CADD Eq 18, 19, 24, 38). On a grid of T steps
:math:`t_k = k/T`, each position masked at :math:`t_k` either unmasks in the step (probability
:math:`\rho_{flip} = (\alpha_s - \alpha_t)/(1 - \alpha_t)`, paying the cross-entropy of its token) or stays masked
(:math:`\rho_{keep} = (1 - \alpha_s)/(1 - \alpha_t)`, paying the KL between the latent's bridges towards
:math:`z_0` and towards :math:`\hat z_0`):

.. math::

    -\log p(x_0) \le \mathrm{KL}_{prior}
    + \sum_{k=1}^{T} \mathbb E_q \sum_{i:\, x_{t_k}^i = m} \Big[\rho_{flip,k}\,\big(-\log p_\theta(x_0^i \mid x_{t_k},
    z_{t_k})\big) + \rho_{keep,k}\,\tfrac12\big(\mathrm{SNR}(t_{k-1}) - \mathrm{SNR}(t_k)\big)
    \|z_0^i - \hat z_0^i\|^2\Big]

(:func:`~augdiff.processes.gaussian.bridge_kl_weight`). A clean token's latent is :math:`w(x)` under both the
forward and the reverse process, so it costs nothing. With no latent (MDLM) this is MDLM's discrete-time ELBO;
as T → ∞ it tends to the continuous-time bound, the MDLM ELBO plus
:math:`\int -\tfrac12\mathrm{SNR}'(t)\,\mathbb E\|z_0 - \hat z_0\|^2\,dt`, finite only where the model's
:math:`\hat z_0` error falls fast enough as t → 0 (``steps=0`` estimates it on [ε, 1], as MDLM's ELBO does).

The bound is for the sampler with one latent particle (K = 1) and the channel's own :math:`\hat z_0`; as in
MDLM's ELBO, the token prior at t = 1 counts as fully masked (exact for the linear schedule, α(1) = 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from augdiff.errors import AugdiffError
from augdiff.model import DiffusionModel
from augdiff.processes import sample_times

__all__ = ["BoundEstimate", "step_terms", "estimate_bound"]


@dataclass
class BoundEstimate:
    """The bound per token (nats) with its parts and Monte-Carlo standard error.

    Attributes:
        bound: token + latent + prior: an upper bound on the NLL per token.
        token: the token (cross-entropy) part; for MDLM the whole bound.
        latent: the latent's KL terms; prior: the latent's KL at t = 1.
        steps: T of the grid (0: continuous time).
    """

    bound: float
    stderr: float
    token: float
    latent: float
    prior: float
    steps: int
    n_sequences: int
    time_samples: int
    per_sequence: Tensor | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, float | int]:
        ln2 = math.log(2.0)
        return {
            "nll_bound": self.bound,
            "nll_bound_stderr": self.stderr,
            "bpt_bound": self.bound / ln2,
            "bound_token_term": self.token,
            "bound_latent_term": self.latent,
            "bound_prior_term": self.prior,
            "bound_steps": self.steps,
            "n_sequences": self.n_sequences,
            "time_samples": self.time_samples,
        }


def step_terms(
    model: DiffusionModel, x0: Tensor, t: Tensor, s: Tensor | None, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    r"""One draw of the bound's step t → s for each sequence: ``(token, latent)`` sums over positions ``[B]``.

    ``s=None``: the continuous-time integrand at t instead (token weight :math:`-\alpha'_t/(1-\alpha_t)`, latent
    weight :math:`-\tfrac12\mathrm{SNR}'(t)`, :math:`\rho_{keep} = 1`).
    """
    sched = model.schedule(t)
    x_t, inputs, log_p, _ = model.denoise(x0, t, sched.alpha_t, generator)
    masked = x_t == model.mask_id
    if model.pad_id is not None:
        masked = masked & (x0 != model.pad_id)
    ce = -log_p.float().gather(-1, x0.unsqueeze(-1)).squeeze(-1)
    try:
        kl = model.channel.latent_kl(model.network, inputs, log_p, t, s)
    except NotImplementedError as exc:
        raise AugdiffError(f"no likelihood bound for method {model.channel.name}: {exc}") from None
    if s is None:
        flip, keep = sched.elbo_weight.float(), torch.ones_like(t, dtype=torch.float32)
    else:
        alpha_s = model.schedule(s).alpha_t
        flip = (alpha_s - sched.alpha_t) / (1.0 - sched.alpha_t)
        keep = (1.0 - alpha_s) / (1.0 - sched.alpha_t)
    token = (flip.float().unsqueeze(-1) * ce * masked).sum(-1)
    if kl is None:
        return token.double(), torch.zeros_like(token, dtype=torch.float64)
    kept = masked & (keep > 0).unsqueeze(-1)  # ρ_keep = 0 where the bridge's weight is infinite (s = 0)
    latent = torch.where(kept, keep.double().unsqueeze(-1) * kl.double(), 0.0).sum(-1)
    return token.double(), latent


@torch.no_grad()
def estimate_bound(
    model: DiffusionModel,
    batches: Iterable[Tensor],
    *,
    steps: int = 64,
    time_samples: int = 8,
    time_eps: float = 1e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> BoundEstimate:
    """Estimate the bound per token on ``batches`` with ``time_samples`` stratified steps per sequence.

    Each sequence draws ``time_samples`` steps k from a low-discrepancy grid shared by the batch (as
    :func:`~augdiff.metrics.likelihood.estimate_nll`); the sum over the T steps is T times their mean.
    """
    if steps < 0:
        raise AugdiffError(f"bound steps={steps}: use T ≥ 1 grid steps, or 0 for continuous time")
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    totals: list[Tensor] = []
    parts = torch.zeros(3, dtype=torch.float64)
    for x0 in batches:
        x0 = x0.to(device)
        b = x0.shape[0]
        lengths = torch.full((b,), float(x0.shape[1]), dtype=torch.float64, device=device)
        if model.pad_id is not None:
            lengths = x0.ne(model.pad_id).sum(-1).clamp_min(1).double()
        grid = sample_times(b * time_samples, antithetic=True, eps=time_eps if steps == 0 else 0.0, generator=gen)
        grid = grid.to(device)
        token = torch.zeros(b, dtype=torch.float64, device=device)
        latent = torch.zeros_like(token)
        for j in range(time_samples):
            u = grid[j * b : (j + 1) * b]
            if steps == 0:
                tok, lat = step_terms(model, x0, u, None, gen)
            else:
                k = (u * steps).floor().clamp(max=steps - 1)
                tok, lat = step_terms(model, x0, (k + 1) / steps, k / steps, gen)
                tok, lat = steps * tok, steps * lat
            token += tok / time_samples
            latent += lat / time_samples
        prior = model.channel.prior_kl(model.network, x0)
        prior = torch.zeros_like(token) if prior is None else prior.double()
        per_token = torch.stack([token, latent, prior]) / lengths
        parts += per_token.sum(-1).cpu()
        totals.append(per_token.sum(0).cpu())
    model.train(was_training)
    if not totals:
        raise ValueError("estimate_bound got no data")
    values = torch.cat(totals)
    n = values.numel()
    token, latent, prior = (parts / n).tolist()
    stderr = float(values.std(unbiased=True) / math.sqrt(n)) if n > 1 else float("nan")
    return BoundEstimate(
        bound=float(values.mean()),
        stderr=stderr,
        token=token,
        latent=latent,
        prior=prior,
        steps=steps,
        n_sequences=n,
        time_samples=time_samples,
        per_sequence=values,
    )
