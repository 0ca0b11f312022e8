r"""CADD's latent channel: each masked token keeps a noisy copy of its own embedding (Zheng et al., 2510.01329).

Training (§4.1, Alg. 1): :math:`z_0 = w_\theta(x_0)` with the network's own token embedding table; unmasked
positions keep :math:`z_t = z_0`, masked ones get :math:`z_t = a_t z_0 + b_t \varepsilon` (Eq 11, or the
flow-matching path of App. B.1); the network sees the fusion of :math:`z_{disc} = w_\theta(x_t)` and
:math:`z_t` (App. C.3). The loss is the masked cross-entropy of MDLM (Eq 20), optionally plus the
continuous KL term :math:`\|z_0 - \hat z_0\|^2` (Eq 19).

Sampling (§4.3, Alg. 2): K latent particles per sequence, evaluated in one forward pass of B·K rows; the
token distribution is their average π (Eq 5); a position that stays masked moves each particle along the
bridge :math:`\mathcal N(\tilde\mu(\hat z_0, z_t), \tilde\beta)` (Eq 16–17) with :math:`\hat z_0` hard or soft
(Eq 21); a position that unmasks to x sets :math:`z = w_\theta(x)`.

Gradient through :math:`z_0`: Alg. 1 forms :math:`z_t` from :math:`w_\theta(x_0)` with no stop-gradient,
so by default the embedding table also learns through the noisy latent (``z0_grad=True``); ``False`` detaches
it (the table then learns only through :math:`z_{disc}`).

Scale of the latent (the paper leaves it free; defaults keep the paper). With the gradient through
:math:`z_0`, nothing stops the embedding rows from growing until the latent gives :math:`x_0` away through any
noise. ``radius`` R fixes it: the latent uses the rows L2-normalised to norm R (as CDCD, Dieleman et al.
2022), while the token path keeps the raw rows. ``sigma`` scales the noise, :math:`z_t = a_t z_0 + \sigma b_t
\varepsilon`: the path runs on :math:`z/\sigma` (a fine-tuned ``hf:`` model's embedding elements have std
~0.02, where unit noise swamps them). ``fusion="gated"`` adds :math:`g\,z_t` with a learned scalar g that
starts at 0, so step 0 of a fine-tune from MDLM is exactly MDLM (``add`` turns clean inputs into 2w(x)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from augdiff.channels.base import ChannelContext, ChannelInput, LatentChannel, ReverseStep
from augdiff.nn.protocol import TokenNetwork
from augdiff.processes.gaussian import bridge_kl_weight, continuous_kl_weight, gaussian_bridge, gaussian_forward
from augdiff.schedules import MaskSchedule
from augdiff.schedules.gaussian import GaussianSchedule, make_gaussian_schedule

__all__ = [
    "build",
    "CADDSampling",
    "CADDState",
    "CADDChannel",
    "estimate_z0",
    "expected_sq_error",
    "FUSIONS",
    "Z0_ESTIMATES",
]

FUSIONS = ("add", "concat", "reweight", "gated")
Z0_ESTIMATES = ("hard", "soft", "sample")


@dataclass(frozen=True)
class CADDSampling:
    """CADD's sampling options: K latent particles averaged per step (Eq 5) and the ẑ_0 estimate of the
    bridge (Eq 21); the run's ``cadd.k`` and ``cadd.z0_hat`` unless given."""

    k: int
    z0_hat: str

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")
        if self.z0_hat not in Z0_ESTIMATES:
            raise ValueError(f"z0_hat must be one of {Z0_ESTIMATES}, got {self.z0_hat!r}")


@dataclass
class CADDState:
    """Sampling state: K latent particles per sequence ``z`` ``[B, K, L, D]`` at time ``t``, and the options."""

    z: Tensor
    t: float
    options: CADDSampling


def estimate_z0(embedding: Tensor, log_p_x0: Tensor, how: str, generator: torch.Generator | None = None) -> Tensor:
    r""":math:`\hat z_0` from :math:`p_\theta(x_0 \mid \cdot)` (CADD Eq 21; ``sample``: Eq 12 taken literally).

    hard: :math:`w_\theta(\arg\max_v \pi_v)`; soft: :math:`\sum_v \pi_v\, w_{\theta,v}`; sample:
    :math:`w_\theta(\hat x)` with :math:`\hat x \sim \pi`.

    Args:
        embedding: the data tokens' latent rows ``[V, D]``.
        log_p_x0: log-probabilities ``[..., V]``.
    """
    if how == "hard":
        return embedding[log_p_x0.argmax(dim=-1)]
    if how == "sample":
        flat = log_p_x0.reshape(-1, log_p_x0.shape[-1]).float().exp()
        drawn = torch.multinomial(flat, 1, generator=generator).reshape(log_p_x0.shape[:-1])
        return embedding[drawn]
    return log_p_x0.softmax(dim=-1).to(embedding.dtype) @ embedding


def expected_sq_error(embedding: Tensor, log_p_x0: Tensor, z0: Tensor, how: str) -> Tensor:
    r""":math:`\mathbb E\,\|z_0 - \hat z_0\|^2` per position ``[...]`` under the reverse model's choice of
    :math:`\hat z_0`: the plain error for hard and soft, :math:`\sum_v \pi_v \|z_0 - w_v\|^2` for ``sample``.

    For ``sample`` the reverse kernel is the mixture :math:`\sum_v \pi_v\, \mathcal N(\tilde\mu(w_v), \tilde\beta)`,
    and KL is convex in its second argument, so this expectation bounds the mixture's KL from above.
    """
    if how != "sample":
        return ((z0 - estimate_z0(embedding, log_p_x0, how)) ** 2).sum(dim=-1)
    probs = log_p_x0.softmax(dim=-1).to(embedding.dtype)
    sq = (z0**2).sum(-1) - 2.0 * (probs * (z0 @ embedding.T)).sum(-1) + probs @ (embedding**2).sum(-1)
    return sq.clamp_min(0.0)


class CADDChannel(LatentChannel):
    """The continuous augmentation of CADD.

    Args:
        schedule: the Gaussian path of masked latents (flow matching by default, as the paper).
        mask_schedule: the token schedule α(t) (for the reweighted fusion).
        mask_id: id of the mask token (= V).
        hidden_size: embedding width D.
        fusion: ``add`` (z_disc + z_t, the paper's default), ``concat`` (linear map of [z_disc, z_t], started as
            the sum), ``reweight`` (α_t·z_disc + (1−α_t)·z_t, App. C.3 as printed) or ``gated`` (z_disc + g·z_t,
            g learned from 0).
        z0_hat: ``hard``, ``soft`` or ``sample`` estimate of z_0 for the sampling bridge and the MSE term.
        mse_weight: multiplier of the Eq 19 term (0: cross-entropy only, the paper's default).
        mse_weighting: ``constant`` (the plain ‖ẑ_0 − z_0‖², Table 10) or ``elbo`` (−½SNR′(t), Eq 19's limit).
        k: K, latent particles per sequence at sampling (Eq 5).
        z0_grad: let gradients reach the embedding table through z_0.
        radius: latent rows L2-normalised to this norm (``None``: the raw embedding rows, the paper).
        sigma: noise scale of the latent path (``None``: the embedding's RMS, see :meth:`settle`).
    """

    name = "cadd"
    nll_kind = "token term given a latent drawn from q(.|x): not a likelihood (metrics.bound gives one)"
    stateless = False  # z moves every step: the sampler may not reuse p(x_0 | x_t)

    def __init__(
        self,
        schedule: GaussianSchedule,
        mask_schedule: MaskSchedule,
        mask_id: int,
        hidden_size: int,
        *,
        fusion: str = "add",
        z0_hat: str = "hard",
        mse_weight: float = 0.0,
        k: int = 1,
        z0_grad: bool = True,
        mse_weighting: str = "constant",
        radius: float | None = None,
        sigma: float | None = 1.0,
    ) -> None:
        super().__init__()
        assert fusion in FUSIONS and z0_hat in Z0_ESTIMATES and k >= 1 and (sigma is None or sigma > 0)
        assert mse_weighting in ("constant", "elbo") and (radius is None or radius > 0)
        self.schedule = schedule
        self.mask_schedule = mask_schedule
        self.mask_id = mask_id
        self.fusion = fusion
        self.z0_hat = z0_hat
        self.mse_weight = mse_weight
        self.k = k
        self.z0_grad = z0_grad
        self.mse_weighting = mse_weighting
        self.radius = radius
        self.sigma_unset = sigma is None  # measured by settle() when training starts
        self.sigma = 1.0 if sigma is None else sigma
        if fusion == "gated":
            self.gate = nn.Parameter(torch.zeros(()))
        if fusion == "concat":
            self.proj = nn.Linear(2 * hidden_size, hidden_size)
            with torch.no_grad():  # start as the sum, so fine-tuning from MDLM starts where "add" does
                self.proj.weight.copy_(torch.cat([torch.eye(hidden_size), torch.eye(hidden_size)], dim=1))
                self.proj.bias.zero_()

    def settle(self, network: TokenNetwork) -> dict[str, dict[str, Any]]:
        """``sigma=None`` → the RMS of the latent rows' elements (R/√D with a radius), so that noise and signal
        share a scale (an ``hf:`` model's embeddings have element std ~0.02)."""
        if self.sigma_unset:
            self.sigma = float(self._embedding(network).detach().float().pow(2).mean().sqrt())
            self.sigma_unset = False
            return {"cadd": {"sigma": self.sigma}}
        return {}

    def _to_latent(self, rows: Tensor) -> Tensor:
        """Embedding rows → the latent's rows (normalised to ``radius`` when one is set)."""
        if self.radius is None:
            return rows
        return self.radius * rows / rows.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    def _embedding(self, network: TokenNetwork) -> Tensor:
        """The data tokens' latent rows ``[V, D]``."""
        return self._to_latent(network.embedding_weight()[: self.mask_id])

    def latent_of(self, network: TokenNetwork, x: Tensor) -> Tensor:
        """z_0 = w(x) as the latent channel reads it ``[..., D]``."""
        return self._to_latent(network.embed_tokens(x))

    def noised(self, z0: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        r""":math:`a_t z_0 + \sigma b_t \varepsilon` (Eq 11 on the scaled path)."""
        return self.sigma * gaussian_forward(z0 / self.sigma, t, self.schedule, eps)

    def fuse(self, z_disc: Tensor, z_t: Tensor, t: Tensor) -> Tensor:
        """Combine ``w(x_t)`` and ``z_t`` ``[B, L, D]`` into the network input (App. C.3, Table 8)."""
        if self.fusion == "add":
            return z_disc + z_t
        if self.fusion == "gated":
            return z_disc + self.gate.to(z_t.dtype) * z_t
        if self.fusion == "concat":
            return self.proj(torch.cat([z_disc, z_t], dim=-1))
        alpha = self.mask_schedule.alpha(t).to(z_t.dtype).reshape(-1, 1, 1)
        return alpha * z_disc + (1.0 - alpha) * z_t

    # -- training ------------------------------------------------------------------------------------------
    def train_input(
        self,
        network: TokenNetwork,
        x0: Tensor,
        x_t: Tensor,
        t: Tensor,
        generator: torch.Generator | None,
        options: Any = None,
    ) -> ChannelInput:
        emb_x0 = network.embed_tokens(x0)
        z0 = self._to_latent(emb_x0 if self.z0_grad else emb_x0.detach())
        eps = torch.randn(z0.shape, device=z0.device, dtype=z0.dtype, generator=generator)
        masked = (x_t == self.mask_id).unsqueeze(-1)
        z_t = torch.where(masked, self.noised(z0, t, eps), z0)
        # w(x_t) without a second lookup: x_t is x_0 except at masked positions (one gather, one scatter-add less).
        z_disc = torch.where(masked, network.embedding_weight()[self.mask_id], emb_x0)
        return ChannelInput(input_embeds=self.fuse(z_disc, z_t, t), context={"z0": z0})

    def extra_loss(
        self,
        network: TokenNetwork,
        inputs: ChannelInput,
        log_p_x0: Tensor,
        x0: Tensor,
        x_t: Tensor,
        t: Tensor,
        weighting: str,
        head: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor | None:
        r"""Eq 19's :math:`\|z_0 - \hat z_0\|^2` on masked positions times ``mse_weight``, per token: plain
        (``mse_weighting=constant``, Table 10) or weighted by its continuous-time limit
        :math:`-\tfrac12\mathrm{SNR}'(t)/\sigma^2` (``elbo``, ~(1−t)/t³ for the flow path: 10⁹ near t = 0).
        The model's ``weighting`` (of the token loss) does not choose this one."""
        if self.mse_weight == 0.0:
            return None
        z0_hat = estimate_z0(self._embedding(network), log_p_x0, "soft" if self.z0_hat == "sample" else self.z0_hat)
        err = ((z0_hat - inputs.context["z0"]) ** 2).sum(dim=-1) * (x_t == self.mask_id)
        if self.mse_weighting == "elbo":
            weight = continuous_kl_weight(t, self.schedule) / self.sigma**2
        else:
            weight = torch.ones_like(t)
        return self.mse_weight * (weight.to(err.dtype) * err.sum(dim=-1)).sum() / x0.numel()

    # -- the likelihood bound (metrics.bound) ----------------------------------------------------------------
    def latent_kl(
        self, network: TokenNetwork, inputs: ChannelInput, log_p_x0: Tensor, t: Tensor, s: Tensor | None
    ) -> Tensor:
        r"""KL of the latent's reverse step at each position that stays masked ``[B, L]`` (nats).

        Discrete step t → s: :math:`\tfrac12(\mathrm{SNR}(s) - \mathrm{SNR}(t))\,\|z_0 - \hat z_0\|^2/\sigma^2`
        (:func:`~augdiff.processes.gaussian.bridge_kl_weight`, CADD Eq 18–19); ``s=None``: its rate in continuous
        time, :math:`-\tfrac12\mathrm{SNR}'(t)` in place of the SNR difference.
        """
        # float64: the weights reach ~1e9 near t = 0, and the sample form's expansion cancels in float32
        err = expected_sq_error(
            self._embedding(network).double(), log_p_x0.double(), inputs.context["z0"].double(), self.z0_hat
        )
        weight = continuous_kl_weight(t, self.schedule) if s is None else bridge_kl_weight(t, s, self.schedule)
        return weight.to(err.dtype).unsqueeze(-1) * err / self.sigma**2

    def prior_kl(self, network: TokenNetwork, x0: Tensor) -> Tensor:
        r""":math:`\mathrm{KL}(\mathcal N(a_1 z_0, \sigma^2 b_1^2 I) \,\|\, \mathcal N(0, \sigma^2 I))` summed over
        positions ``[B]`` (nats; 0 for the flow path, where a_1 = 0 and b_1 = 1)."""
        z0 = self.latent_of(network, x0).float() / self.sigma
        one = torch.ones((), dtype=torch.float64)
        a, b2 = float(self.schedule.signal(one)), float(self.schedule.noise(one) ** 2)
        per_dim = 0.0 if b2 == 1.0 else 0.5 * (b2 - 1.0 - math.log(b2))
        return (0.5 * a**2 * (z0**2).sum(-1) + per_dim * z0.shape[-1]).sum(-1)

    # -- sampling ------------------------------------------------------------------------------------------
    def num_particles(self, options: CADDSampling | None = None) -> int:
        return (options or self.sampling_options()).k

    def combine(self, log_p: Tensor, head: Tensor | None, state: Any) -> Tensor:
        """CADD Eq 5: π = mean over the K particles of p_θ(x_0 | x_t, z_t^(k)), in probability space."""
        return torch.logsumexp(log_p, dim=1) - math.log(log_p.shape[1])

    def sampling_options(self, *, k: int | None = None, z0_hat: str | None = None) -> CADDSampling:  # type: ignore[override]
        """K particles and the ẑ_0 estimate (defaults: the config's ``cadd.k``, ``cadd.z0_hat``)."""
        return CADDSampling(k=self.k if k is None else k, z0_hat=self.z0_hat if z0_hat is None else z0_hat)

    def init_state(
        self, network: TokenNetwork, x_T: Tensor, generator: torch.Generator | None, options: Any = None
    ) -> CADDState:
        """z_T ~ N(0, σ²I) for masked positions (Alg. 2 line 3); given (prefix/infill) tokens keep w(x)."""
        options = options or self.sampling_options()
        clean = self.latent_of(network, x_T).unsqueeze(1)
        b, l, d = x_T.shape[0], x_T.shape[1], clean.shape[-1]
        noise = self.sigma * torch.randn(
            (b, options.k, l, d), device=clean.device, dtype=clean.dtype, generator=generator
        )
        masked = (x_T == self.mask_id)[:, None, :, None]
        return CADDState(z=torch.where(masked, noise, clean), t=1.0, options=options)

    def sample_input(self, network: TokenNetwork, x_t: Tensor, state: CADDState) -> ChannelInput:
        b, k, l, d = state.z.shape
        z_disc = network.embed_tokens(x_t).repeat_interleave(k, dim=0)
        t = torch.full((b * k,), state.t, device=x_t.device)
        return ChannelInput(input_embeds=self.fuse(z_disc, state.z.reshape(b * k, l, d), t))

    def update_state(
        self, network: TokenNetwork, state: CADDState, step: ReverseStep, generator: torch.Generator | None
    ) -> CADDState:
        """Masked positions move along the bridge towards ẑ_0 (Eq 16–17, 21); unmasked ones hold w(x_s); a token
        a remasking sampler sends back to the mask gets a fresh forward draw of its latent at s (Eq 11)."""
        z0_hat = estimate_z0(self._embedding(network), step.log_p_x0, state.options.z0_hat, generator).unsqueeze(1)
        mean, var = gaussian_bridge(
            state.z / self.sigma, z0_hat.to(state.z.dtype) / self.sigma, step.t, step.s, self.schedule
        )
        noise = torch.randn(state.z.shape, device=state.z.device, dtype=state.z.dtype, generator=generator)
        moved = self.sigma * (mean + var.sqrt() * noise)
        still_masked = (step.x_s == self.mask_id)[:, None, :, None]
        clean = self.latent_of(network, step.x_s).unsqueeze(1)
        z = torch.where(still_masked, moved, clean)
        remasked = ((step.x_t != self.mask_id) & (step.x_s == self.mask_id))[:, None, :, None]
        if remasked.any():  # no extra draw otherwise: the ancestral sampler's random stream is unchanged
            eps = torch.randn(z.shape, device=z.device, dtype=z.dtype, generator=generator)
            s = torch.full((z.shape[0],), step.s, device=z.device)
            fresh = self.noised(self.latent_of(network, step.x_t).unsqueeze(1), s, eps)
            z = torch.where(remasked, fresh, z)
        return CADDState(z=z, t=step.s, options=state.options)


def build(section: Any, context: ChannelContext) -> CADDChannel:
    """CADD's channel from its config section ``cadd.*`` (:class:`augdiff.config.schema.CADDConfig`)."""
    return CADDChannel(
        make_gaussian_schedule(section.schedule),
        context.schedule,
        mask_id=context.vocab_size,
        hidden_size=context.hidden_size,
        fusion=section.fusion,
        z0_hat=section.z0_hat,
        mse_weight=section.mse_weight,
        k=section.k,
        z0_grad=section.z0_grad,
        mse_weighting=section.mse_weighting,
        radius=section.radius,
        sigma=section.sigma,  # None: measured when training starts (LatentChannel.settle)
    )
