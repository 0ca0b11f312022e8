r"""Remasking samplers: ReMDM's four strategies and the discrete flow-matching corrector.

An ancestral step never touches a position once it is unmasked. A remasking step (ReMDM, Wang et al. 2025,
"Remasking Discrete Diffusion Models with Inference-Time Scaling", Eq 8; ``_ddpm_caching_update`` of GitHub
kuleshov-group/remdm) may send an unmasked token back to the mask with probability :math:`\sigma_t`, and unmasks a
masked one with a probability raised to keep the marginal α(s) of the forward process:

.. math::

    q_\sigma(z_s \mid z_t, x) =
    \begin{cases}
      (1-\sigma_t)\,x + \sigma_t\,\mathbf m & z_t \ne \mathbf m\\[2pt]
      \dfrac{\alpha_s - (1-\sigma_t)\alpha_t}{1-\alpha_t}\,x +
      \dfrac{1-\alpha_s-\sigma_t\alpha_t}{1-\alpha_t}\,\mathbf m & z_t = \mathbf m
    \end{cases}
    \qquad 0 \le \sigma_t \le \sigma_t^{max} = \min\!\Big(1, \frac{1-\alpha_s}{\alpha_t}\Big).

σ = 0 is the ancestral step. The strategies choose σ (ReMDM §4.1): ``cap`` min(η, σ_max); ``rescale`` η·σ_max;
``conf`` σ_max times a softmax over the unmasked positions of minus the probability each token had when it was
drawn (the least confident tokens are remasked first; masked positions keep σ = 0); ``loop`` ancestral steps while
α rises linearly to α_on (t from 1 to t_on), then remasking with σ = η at constant α = α_on until t_off, then
ancestral steps to α = 1. The model sees the sampler's clock t in every phase, as the reference does.

``dfm`` is the corrector of discrete flow matching (Gat et al. 2024, Eq 26 and App. D; ``_dfm_caching_update`` of
the ReMDM code): the forward-and-backward velocities mixed as :math:`a_t u^{\rightarrow} - b_t u^{\leftarrow}` with
:math:`a_t = 1 + 10\,t^{1/4}(1-t)^{1/4}`, :math:`b_t = a_t - 1`, so a masked position unmasks with probability
:math:`a_t\rho^{flip}_t` and an unmasked one is remasked with :math:`b_t(\alpha_s/\alpha_t - 1)`. The reference
shortens the step where these exceed 1; on augdiff's fixed grid of T steps they are clipped to 1 instead. With a
linear schedule the remask probability of step k is about 10·T^(−1/4)/k, above 1 in the first few steps for any
practical T (10 steps at T = 64, 6 at T = 256): there the clipped corrector remasks less than the reference's
and the unmasked fraction runs ahead of α(t) — a weaker corrector early on, exact later.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from augdiff.processes import adjust_log_probs, sample_categorical

__all__ = [
    "REMASKING",
    "Remasking",
    "sigma_max",
    "remdm_unmask_probability",
    "loop_alpha",
    "dfm_corrector_weights",
    "remask_step",
]

REMASKING = ("cap", "rescale", "conf", "loop", "dfm")


def sigma_max(alpha_t: float, alpha_s: float) -> float:
    r"""The largest remasking probability that keeps the marginal α(s): :math:`\min(1, (1-\alpha_s)/\alpha_t)`
    (ReMDM Eq 9; 1 at α_t = 0, where nothing is unmasked yet)."""
    return 1.0 if alpha_t <= 0.0 else min(1.0, (1.0 - alpha_s) / alpha_t)


def remdm_unmask_probability(alpha_t: float, alpha_s: float, sigma: Tensor | float) -> Tensor | float:
    r"""Probability that a masked position unmasks under :math:`q_\sigma` (ReMDM Eq 8):
    :math:`(\alpha_s - (1-\sigma)\alpha_t)/(1-\alpha_t)`; with σ = 0 it is ρ_flip (CADD Eq 38)."""
    return (alpha_s - (1.0 - sigma) * alpha_t) / (1.0 - alpha_t)


def loop_alpha(t: float, t_on: float, t_off: float, alpha_on: float) -> float:
    r"""α at time t on ReMDM-loop's path (the ``remdm-loop`` branch of the reference):
    :math:`(1-t)\,\alpha_{on}/(1-t_{on})` for t > t_on, α_on on [t_off, t_on], :math:`1 - t(1-\alpha_{on})/t_{off}`
    for t < t_off. A step of a coarse grid that crosses t_on or t_off ends on the next phase's value."""
    if t > t_on:
        return (1.0 - t) * alpha_on / (1.0 - t_on)
    if t < t_off:
        return 1.0 - t * (1.0 - alpha_on) / t_off
    return alpha_on


def dfm_corrector_weights(t: float) -> tuple[float, float]:
    r"""The corrector schedule of Gat et al. 2024 (App. D): :math:`a_t = 1 + 10\,t^{1/4}(1-t)^{1/4}`,
    :math:`b_t = a_t - 1` (forward and backward velocity weights; a − b = 1 keeps the marginals)."""
    a = 1.0 + 10.0 * (t * (1.0 - t)) ** 0.25
    return a, a - 1.0


@dataclass(frozen=True)
class Remasking:
    """A remasking strategy and its settings (ReMDM's defaults from its ``scripts/remdm-*.sh``).

    Attributes:
        strategy: ``cap``, ``rescale``, ``conf``, ``loop`` or ``dfm`` (see the module docstring).
        eta: η of ``cap`` (a cap on σ), ``rescale`` (a fraction of σ_max) and ``loop`` (σ in the loop).
        t_on, t_off: the loop phase of ``loop`` (t_on > t_off).
        alpha_on: α held during the loop.
    """

    strategy: str
    eta: float = 0.02
    t_on: float = 0.55
    t_off: float = 0.05
    alpha_on: float = 0.9

    def __post_init__(self) -> None:
        if self.strategy not in REMASKING:
            raise ValueError(f"remasking strategy must be one of {REMASKING}, got {self.strategy!r}")
        if not 0.0 <= self.eta <= 1.0:
            raise ValueError(f"remasking eta must lie in [0, 1], got {self.eta}")
        if not 0.0 < self.t_off < self.t_on < 1.0:
            raise ValueError(f"remasking needs 0 < t_off < t_on < 1, got t_off={self.t_off}, t_on={self.t_on}")
        if not 0.0 < self.alpha_on < 1.0:
            raise ValueError(f"remasking alpha_on must lie in (0, 1), got {self.alpha_on}")

    def alphas(self, t: float, s: float, alpha_t: float, alpha_s: float) -> tuple[float, float]:
        """α at the step's two times: the schedule's, or the loop's own path."""
        if self.strategy == "loop":
            return tuple(loop_alpha(u, self.t_on, self.t_off, self.alpha_on) for u in (t, s))  # type: ignore[return-value]
        return alpha_t, alpha_s

    def probabilities(
        self, t: float, alpha_t: float, alpha_s: float, conf: Tensor | None = None
    ) -> tuple[Tensor | float, Tensor | float]:
        """``(p_unmask, p_remask)`` of one step: for masked positions and for unmasked ones (scalars, or
        ``[B, L]`` for ``conf``, which needs the confidences ``conf`` ``[B, L]``, −∞ where nothing can be remasked).
        ``alpha_t``, ``alpha_s`` come from :meth:`alphas`."""
        if self.strategy == "dfm":
            if alpha_t <= 0.0:  # the first step from all-mask: nothing to correct yet
                return remdm_unmask_probability(alpha_t, alpha_s, 0.0), 0.0
            a, b = dfm_corrector_weights(t)
            flip = remdm_unmask_probability(alpha_t, alpha_s, 0.0)
            back = 0.0 if alpha_s >= 1.0 else min(1.0, b * (alpha_s / alpha_t - 1.0))  # none on the step to data
            return min(1.0, a * float(flip)), back
        if self.strategy == "loop":
            in_loop = self.t_off < t <= self.t_on
            sigma = min(self.eta, sigma_max(alpha_t, alpha_s)) if in_loop else 0.0
        elif self.strategy == "cap":
            sigma = min(self.eta, sigma_max(alpha_t, alpha_s))
        elif self.strategy == "rescale":
            sigma = self.eta * sigma_max(alpha_t, alpha_s)
        else:
            assert conf is not None, "the conf strategy needs the tokens' confidences"
            return self._conf_probabilities(alpha_t, alpha_s, conf)
        return remdm_unmask_probability(alpha_t, alpha_s, sigma), sigma

    @staticmethod
    def _conf_probabilities(alpha_t: float, alpha_s: float, conf: Tensor) -> tuple[Tensor, Tensor]:
        """ReMDM-conf: σ_ℓ = σ_max · softmax(conf)_ℓ over the rows' remaskable positions, 0 elsewhere."""
        # −∞ scores (masked or given positions) get weight 0; a row with none remaskable gets σ = 0 everywhere
        any_row = torch.isfinite(conf).any(dim=-1, keepdim=True)
        eta = torch.where(any_row, conf.softmax(dim=-1), torch.zeros_like(conf))
        sigma = eta * sigma_max(alpha_t, alpha_s)
        return remdm_unmask_probability(alpha_t, alpha_s, sigma), sigma  # type: ignore[return-value]


def remask_step(
    x: Tensor,
    log_p_x0: Tensor,
    p_unmask: Tensor | float,
    p_remask: Tensor | float,
    mask_id: int,
    generator: torch.Generator | None = None,
    *,
    frozen: Tensor | None = None,
    temperature: float = 1.0,
    top_p: float = 1.0,
    dtype: torch.dtype = torch.float64,
) -> tuple[Tensor, Tensor]:
    r"""One draw from :math:`q_\sigma` (ReMDM Eq 8) with the denoiser's :math:`p_\theta(x_0\mid x_t)` for x.

    Masked positions unmask with probability ``p_unmask`` to a token drawn from
    :math:`p_\theta(x_0 \mid x_t)`; unmasked ones (but not ``frozen`` ones: prefix and infill tokens) return
    to the mask with probability ``p_remask``. The random numbers are drawn as :func:`unmask_step` draws them,
    and none more when nothing can be remasked, so σ = 0 reproduces the ancestral sampler exactly.

    Returns:
        ``(x_s, probs)``: the new tokens ``[B, L]`` and, at the positions that unmasked, the probability each
        drawn token had ``[B, L]`` (0 elsewhere; ReMDM-conf's confidence).
    """
    masked = x == mask_id
    u = torch.rand(x.shape, dtype=torch.float64, device=x.device, generator=generator)
    unmask = masked & (u < torch.as_tensor(p_unmask, dtype=torch.float64, device=x.device))
    x_next = x.clone()
    drawn_p = torch.zeros(x.shape, dtype=dtype, device=x.device)
    if unmask.any():
        probs = adjust_log_probs(log_p_x0[unmask], temperature, top_p, dtype)
        tokens = sample_categorical(probs, generator, dtype)
        x_next[unmask] = tokens
        drawn_p[unmask] = probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    remaskable = ~masked if frozen is None else ~masked & ~frozen.expand_as(x)
    p_remask = torch.as_tensor(p_remask, dtype=torch.float64, device=x.device)
    if bool((p_remask > 0).any()) and remaskable.any():
        v = torch.rand(x.shape, dtype=torch.float64, device=x.device, generator=generator)
        x_next[remaskable & (v < p_remask)] = mask_id
    return x_next, drawn_p
