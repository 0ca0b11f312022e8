r"""Co-LADD: a continuous latent with Gaussian VP diffusion and y_0-prediction (LADD §3, App. B.1, C.1).

:math:`y_0 = E_\phi(x_0)`, left free (the authors' sawtooth code), on the unit sphere per latent vector (Eq 75,
against latent blow-up) or on a sphere of radius R, optionally plus fixed encoder noise σε;
:math:`y_t = a_t y_0 + b_t\varepsilon` with a VP schedule (the authors' sqrt by default); the latent head
predicts :math:`\hat y_0` and is trained by the regression of Eq 72; sampling moves y by DDIM with
stochasticity η (Eq 39–41).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augdiff.channels.base import ChannelContext
from augdiff.channels.ladd import LADDChannel, ladd_parts
from augdiff.processes.gaussian import (
    PREDICTION_TARGETS,
    continuous_kl_weight,
    ddim_step,
    gaussian_forward,
    prediction_target,
    y0_from_prediction,
)
from augdiff.schedules.gaussian import GaussianSchedule, make_gaussian_schedule

__all__ = [
    "build",
    "head_width",
    "CoLADDChannel",
    "unit_normalize",
    "project_latent",
    "latent_regression_loss",
    "NORMALIZATIONS",
]

NORMALIZATIONS = ("none", "unit", "radius")


def unit_normalize(y: Tensor, eps: float = 1e-6) -> Tensor:
    r"""LADD Eq 75: every latent vector on the unit sphere, :math:`\|y_0^{i}\|_2 = 1`."""
    return F.normalize(y, dim=-1, eps=eps)


def project_latent(y: Tensor, normalize: str, radius: float = 1.0) -> Tensor:
    r"""The latent's normalization: ``none`` (the authors' sawtooth config, ``normalize_embeddings: false``),
    ``unit`` (Eq 75) or ``radius``: :math:`R\, y/\|y\|` per latent vector, a middle ground whose per-coordinate
    scale :math:`R/\sqrt{d'}` sets the latent's signal against unit-variance noise."""
    if normalize == "none":
        return y
    return unit_normalize(y) * (radius if normalize == "radius" else 1.0)


def latent_regression_loss(y0_hat: Tensor, y0: Tensor, weight: Tensor, reduce: str = "mean") -> Tensor:
    r"""LADD Eq 72 (with Eq 35–36): :math:`w(t)\,\|\hat y_0 - y_0\|^2`, per sequence ``[B]``, averaged over the
    L′ latent positions. ``reduce="mean"`` averages over the width d′ (the authors' code: ``mse(...).mean()``),
    ``"sum"`` sums it (Eq 72 as written: d′ times heavier). ``weight`` is 1 (constant, the paper's default) or
    the ELBO weight :math:`-\tfrac12\mathrm{SNR}'(t)`."""
    sq = (y0_hat.float() - y0.float()) ** 2
    per_vector = sq.mean(dim=-1) if reduce == "mean" else sq.sum(dim=-1)
    return weight * per_vector.mean(dim=-1)


class CoLADDChannel(LADDChannel):
    """Continuous latents ``[B, L′, d′]`` (see the module docstring)."""

    name = "co-ladd"

    def __init__(
        self,
        encoder: nn.Module,
        prior: nn.Module,
        schedule: GaussianSchedule,
        *,
        normalize: str = "unit",
        radius: float = 1.0,
        latent_mse: str = "mean",
        encoder_noise: float = 0.0,
        target: str = "y0",
        **kwargs: object,
    ) -> None:
        super().__init__(encoder, prior, **kwargs)  # type: ignore[arg-type]
        assert normalize in NORMALIZATIONS, f"normalize={normalize!r}"
        assert latent_mse in ("mean", "sum"), f"latent_mse={latent_mse!r}"
        assert target in PREDICTION_TARGETS, f"target={target!r}"
        self.target = target  # what the latent heads regress: y0 (the paper), eps, v or flow
        self.schedule = schedule
        self.normalize, self.radius = normalize, radius
        self.latent_mse = latent_mse
        self.encoder_noise = encoder_noise

    def encode(self, x0: Tensor, blank: Tensor | None) -> tuple[Tensor, Tensor | None, Tensor | None]:
        y = self.encoder(x0, blank) if blank is not None else self.encoder(x0)
        y = project_latent(y, self.normalize, self.radius)
        if self.encoder_noise > 0:
            y = y + self.encoder_noise * torch.randn_like(y)
        return y.float(), None, None

    def null_latent(self, y0: Tensor) -> Tensor:
        """The zero vector (the authors' null): off the sphere when latents are normalized, and fed un-noised."""
        return torch.zeros_like(y0)

    def noise(self, y0: Tensor, t_y: Tensor, generator: torch.Generator | None) -> Tensor:
        """VP forward; t_y = 0 is the clean latent itself (VP-sqrt's α(0) = 1 − √s < 1 would still add noise of
        std 0.1, comparable to a unit vector's coordinates at d′ = 32)."""
        eps = torch.randn(y0.shape, device=y0.device, dtype=y0.dtype, generator=generator)
        clean = (t_y == 0).view(-1, *[1] * (y0.dim() - 1))
        return torch.where(clean, y0, gaussian_forward(y0, t_y, self.schedule, eps))

    def latent_input(self, y_t: Tensor, clean: Tensor | None = None) -> Tensor:
        return y_t

    def latent_loss(self, head: Tensor, y0: Tensor, y_t: Tensor, t_y: Tensor) -> Tensor:
        if self.latent_weighting == "elbo":
            weight = continuous_kl_weight(t_y.clamp_min(1e-3), self.schedule).float()
        else:
            weight = torch.ones_like(t_y, dtype=torch.float32)
        target = prediction_target(y0.float(), y_t.float(), t_y, self.schedule, self.target)
        return latent_regression_loss(head, target, weight, self.latent_mse)

    def terminal(self, batch: int, device: torch.device, generator: torch.Generator | None) -> Tensor:
        shape = (batch, self.prior.latent_len, self.latent_dim)
        return torch.randn(shape, device=device, generator=generator)

    @property
    def latent_dim(self) -> int:
        return self.prior.latent_out

    def reverse(
        self, y: Tensor, head: Tensor, t: float, s: float, generator: torch.Generator | None, eta: float = 0.0
    ) -> Tensor:
        """DDIM (Eq 39–41) towards ŷ_0, projected on the sphere when latents are normalized."""
        y0_hat = y0_from_prediction(head.float(), y.float(), t, self.schedule, self.target)
        y0_hat = project_latent(y0_hat, self.normalize, self.radius)
        if s <= 0.0:
            return y0_hat
        noise = torch.randn(y.shape, device=y.device, dtype=y.dtype, generator=generator)
        return ddim_step(y, y0_hat, t, s, self.schedule, eta, noise).to(y.dtype)


def head_width(section: Any) -> int:
    """The latent head predicts ŷ_0: width d′."""
    return int(section.latent_dim)


def build(section: Any, context: ChannelContext) -> CoLADDChannel:
    """Co-LADD from the ``ladd.*`` section; schedule ``auto`` is the authors' sqrt (LADD App. C.3)."""
    encoder, prior, common = ladd_parts(section, context, head_width(section))
    schedule = "ladd-sqrt" if section.schedule == "auto" else section.schedule
    return CoLADDChannel(
        encoder,
        prior,
        make_gaussian_schedule(schedule),
        normalize=section.normalize,
        radius=section.radius,
        latent_mse=section.latent_mse,
        encoder_noise=section.encoder_noise,
        target=section.latent_target,
        **common,
    )
