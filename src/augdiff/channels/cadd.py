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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from augdiff.channels.base import ChannelInput, LatentChannel, ReverseStep
from augdiff.processes.gaussian import continuous_kl_weight, gaussian_bridge, gaussian_forward
from augdiff.schedules import MaskSchedule
from augdiff.schedules.gaussian import GaussianSchedule

__all__ = ["CADDState", "CADDChannel", "estimate_z0", "FUSIONS", "Z0_ESTIMATES"]

FUSIONS = ("add", "concat", "reweight")
Z0_ESTIMATES = ("hard", "soft")


@dataclass
class CADDState:
    """Sampling state: K latent particles per sequence ``z`` ``[B, K, L, D]`` at time ``t``."""

    z: Tensor
    t: float


def estimate_z0(embedding: Tensor, log_p_x0: Tensor, how: str) -> Tensor:
    r""":math:`\hat z_0` from :math:`p_\theta(x_0 \mid \cdot)` (CADD Eq 21).

    hard: :math:`w_\theta(\arg\max_v \pi_v)`; soft: :math:`\sum_v \pi_v\, w_{\theta,v}`.

    Args:
        embedding: the data tokens' embedding rows ``[V, D]``.
        log_p_x0: log-probabilities ``[..., V]``.
    """
    if how == "hard":
        return embedding[log_p_x0.argmax(dim=-1)]
    return log_p_x0.softmax(dim=-1).to(embedding.dtype) @ embedding


class CADDChannel(LatentChannel):
    """The continuous augmentation of CADD.

    Args:
        schedule: the Gaussian path of masked latents (flow matching by default, as the paper).
        mask_schedule: the token schedule α(t) (for the reweighted fusion).
        mask_id: id of the mask token (= V).
        hidden_size: embedding width D.
        fusion: ``add`` (z_disc + z_t, the paper's default), ``concat`` (linear map of [z_disc, z_t], started as
            the sum) or ``reweight`` (α_t·z_disc + (1−α_t)·z_t, App. C.3 as printed).
        z0_hat: ``hard`` or ``soft`` estimate of z_0 for the sampling bridge and the MSE term.
        mse_weight: multiplier of the Eq 19 term (0: cross-entropy only, the paper's default).
        k: K, latent particles per sequence at sampling (Eq 5).
        z0_grad: let gradients reach the embedding table through z_0.
    """

    name = "cadd"
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
    ) -> None:
        super().__init__()
        assert fusion in FUSIONS and z0_hat in Z0_ESTIMATES and k >= 1
        self.schedule = schedule
        self.mask_schedule = mask_schedule
        self.mask_id = mask_id
        self.fusion = fusion
        self.z0_hat = z0_hat
        self.mse_weight = mse_weight
        self.k = k
        self.z0_grad = z0_grad
        if fusion == "concat":
            self.proj = nn.Linear(2 * hidden_size, hidden_size)
            with torch.no_grad():  # start as the sum, so fine-tuning from MDLM starts where "add" does
                self.proj.weight.copy_(torch.cat([torch.eye(hidden_size), torch.eye(hidden_size)], dim=1))
                self.proj.bias.zero_()

    def _embedding(self, network: nn.Module) -> Tensor:
        return network.embedding_weight()[: self.mask_id]

    def fuse(self, z_disc: Tensor, z_t: Tensor, t: Tensor) -> Tensor:
        """Combine ``w(x_t)`` and ``z_t`` ``[B, L, D]`` into the network input (App. C.3, Table 8)."""
        if self.fusion == "add":
            return z_disc + z_t
        if self.fusion == "concat":
            return self.proj(torch.cat([z_disc, z_t], dim=-1))
        alpha = self.mask_schedule.alpha(t).to(z_t.dtype).reshape(-1, 1, 1)
        return alpha * z_disc + (1.0 - alpha) * z_t

    # -- training ------------------------------------------------------------------------------------------
    def train_input(
        self, network: nn.Module, x0: Tensor, x_t: Tensor, t: Tensor, generator: torch.Generator | None
    ) -> ChannelInput:
        emb_x0 = network.embed_tokens(x0)
        z0 = emb_x0 if self.z0_grad else emb_x0.detach()
        eps = torch.randn(z0.shape, device=z0.device, dtype=z0.dtype, generator=generator)
        masked = (x_t == self.mask_id).unsqueeze(-1)
        z_t = torch.where(masked, gaussian_forward(z0, t, self.schedule, eps), z0)
        # w(x_t) without a second lookup: x_t is x_0 except at masked positions (one gather, one scatter-add less).
        z_disc = torch.where(masked, network.embedding_weight()[self.mask_id], emb_x0)
        return ChannelInput(input_embeds=self.fuse(z_disc, z_t, t), context={"z0": z0})

    def extra_loss(
        self,
        network: nn.Module,
        inputs: ChannelInput,
        log_p_x0: Tensor,
        x0: Tensor,
        x_t: Tensor,
        t: Tensor,
        weighting: str,
        head: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor | None:
        r"""Eq 19's :math:`\|z_0 - \hat z_0\|^2` on masked positions, weighted by its continuous-time limit
        :math:`-\tfrac12\mathrm{SNR}'(t)` (``elbo``) or 1 (``constant``), times ``mse_weight``; per token."""
        if self.mse_weight == 0.0:
            return None
        z0_hat = estimate_z0(self._embedding(network), log_p_x0, self.z0_hat)
        err = ((z0_hat - inputs.context["z0"]) ** 2).sum(dim=-1) * (x_t == self.mask_id)
        weight = continuous_kl_weight(t, self.schedule) if weighting == "elbo" else torch.ones_like(t)
        return self.mse_weight * (weight.to(err.dtype) * err.sum(dim=-1)).sum() / x0.numel()

    # -- sampling ------------------------------------------------------------------------------------------
    def num_particles(self) -> int:
        return self.k

    def combine(self, log_p: Tensor, head: Tensor | None, state: Any) -> Tensor:
        """CADD Eq 5: π = mean over the K particles of p_θ(x_0 | x_t, z_t^(k)), in probability space."""
        return torch.logsumexp(log_p, dim=1) - math.log(log_p.shape[1])

    def set_sampling(self, *, k: int | None = None, z0_hat: str | None = None) -> None:
        """Sampling-time options: K particles and the ẑ_0 estimate (both also config keys ``cadd.*``)."""
        if k is not None:
            assert k >= 1, f"k must be at least 1, got {k}"
            self.k = k
        if z0_hat is not None:
            assert z0_hat in Z0_ESTIMATES, f"z0_hat must be one of {Z0_ESTIMATES}"
            self.z0_hat = z0_hat

    def init_state(self, network: nn.Module, x_T: Tensor, generator: torch.Generator | None) -> CADDState:
        """z_T ~ N(0, I) for masked positions (Alg. 2 line 3); given (prefix/infill) tokens keep w(x)."""
        clean = network.embed_tokens(x_T).unsqueeze(1)
        b, l, d = x_T.shape[0], x_T.shape[1], clean.shape[-1]
        noise = torch.randn((b, self.k, l, d), device=clean.device, dtype=clean.dtype, generator=generator)
        masked = (x_T == self.mask_id)[:, None, :, None]
        return CADDState(z=torch.where(masked, noise, clean), t=1.0)

    def sample_input(self, network: nn.Module, x_t: Tensor, state: CADDState) -> ChannelInput:
        b, k, l, d = state.z.shape
        z_disc = network.embed_tokens(x_t).repeat_interleave(k, dim=0)
        t = torch.full((b * k,), state.t, device=x_t.device)
        return ChannelInput(input_embeds=self.fuse(z_disc, state.z.reshape(b * k, l, d), t))

    def update_state(
        self, network: nn.Module, state: CADDState, step: ReverseStep, generator: torch.Generator | None
    ) -> CADDState:
        """Masked positions move along the bridge towards ẑ_0 (Eq 16–17, 21); unmasked ones hold w(x_s)."""
        z0_hat = estimate_z0(self._embedding(network), step.log_p_x0, self.z0_hat).unsqueeze(1)
        mean, var = gaussian_bridge(state.z, z0_hat.to(state.z.dtype), step.t, step.s, self.schedule)
        noise = torch.randn(state.z.shape, device=state.z.device, dtype=state.z.dtype, generator=generator)
        moved = mean + var.sqrt() * noise
        still_masked = (step.x_s == self.mask_id)[:, None, :, None]
        clean = network.embed_tokens(step.x_s).unsqueeze(1)
        return CADDState(z=torch.where(still_masked, moved, clean), t=step.s)
