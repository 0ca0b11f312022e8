"""Mask schedules α(t): linear, log-linear (MDLM), polynomial, geometric, cosine.

Every schedule has α(0)=1 except ``geometric`` (α(0)=exp(−σ_min)) and α(1)≈0 except ``loglinear``
(α(1)=ε, MDLM's choice to keep log α finite). Names are the ones accepted by ``diffusion.schedule``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from augdiff.errors import AugdiffError
from augdiff.schedules.base import MaskSchedule

__all__ = [
    "LinearSchedule",
    "LogLinearSchedule",
    "PolynomialSchedule",
    "GeometricSchedule",
    "CosineSchedule",
    "make_mask_schedule",
]


class LinearSchedule(MaskSchedule):
    r"""α(t) = 1 − t (LADD §C.3 "Linear"); ELBO weight 1/t."""

    name = "linear"

    def alpha(self, t: Tensor) -> Tensor:
        return 1.0 - t

    def d_alpha(self, t: Tensor) -> Tensor:
        return -torch.ones_like(t)

    def elbo_weight(self, t: Tensor) -> Tensor:
        return 1.0 / t


class LogLinearSchedule(MaskSchedule):
    r"""MDLM's log-linear schedule: σ(t) = −log(1 − (1−ε)t), so α(t) = 1 − (1−ε)t; ELBO weight 1/t.

    Sahoo et al. 2024, §3.5 / App. E.1, with ε = 1e-3.
    """

    name = "loglinear"

    def __init__(self, eps: float = 1e-3) -> None:
        if not 0.0 <= eps < 1.0:
            raise AugdiffError(f"diffusion.schedule_eps={eps} must lie in [0, 1)")
        self.eps = eps

    def alpha(self, t: Tensor) -> Tensor:
        return 1.0 - (1.0 - self.eps) * t

    def d_alpha(self, t: Tensor) -> Tensor:
        return torch.full_like(t, -(1.0 - self.eps))

    def elbo_weight(self, t: Tensor) -> Tensor:
        return 1.0 / t


class PolynomialSchedule(MaskSchedule):
    r"""α(t) = 1 − tⁿ (LADD Table 7 "Polynomial"); ELBO weight n/t."""

    name = "polynomial"

    def __init__(self, power: float = 2.0) -> None:
        if power <= 0:
            raise AugdiffError(f"diffusion.schedule_power={power} must be positive")
        self.power = power

    def alpha(self, t: Tensor) -> Tensor:
        return 1.0 - t**self.power

    def d_alpha(self, t: Tensor) -> Tensor:
        return -self.power * t ** (self.power - 1.0)

    def elbo_weight(self, t: Tensor) -> Tensor:
        return self.power / t


class GeometricSchedule(MaskSchedule):
    r"""MDLM's geometric noise: σ(t) = σ_min^{1−t} σ_max^{t}, α(t) = exp(−σ(t)) (LADD Table 7 "Geometric").

    α′(t) = −σ(t) log(σ_max/σ_min) α(t); the ELBO weight is σ(t) log(σ_max/σ_min) / expm1(σ(t)).
    """

    name = "geometric"

    def __init__(self, sigma_min: float = 1e-4, sigma_max: float = 20.0) -> None:
        if not 0.0 < sigma_min < sigma_max:
            raise AugdiffError(
                f"diffusion.geometric_sigma_min={sigma_min}, geometric_sigma_max={sigma_max}: "
                "need 0 < sigma_min < sigma_max"
            )
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max

    def _sigma(self, t: Tensor) -> Tensor:
        return self.sigma_min ** (1.0 - t) * self.sigma_max**t

    def alpha(self, t: Tensor) -> Tensor:
        return torch.exp(-self._sigma(t))

    def d_alpha(self, t: Tensor) -> Tensor:
        sigma = self._sigma(t)
        return -sigma * math.log(self.sigma_max / self.sigma_min) * torch.exp(-sigma)

    def elbo_weight(self, t: Tensor) -> Tensor:
        sigma = self._sigma(t)
        return sigma * math.log(self.sigma_max / self.sigma_min) / torch.expm1(sigma)


class CosineSchedule(MaskSchedule):
    r"""α(t) = 1 − cos(π/2 · (1−t)) (MaskGIT's cosine masking ratio, as in Shi et al. 2024 / MD4).

    α′(t) = −(π/2) sin(π/2 · (1−t)); the ELBO weight is (π/2) tan(π/2 · (1−t)).
    """

    name = "cosine"

    def alpha(self, t: Tensor) -> Tensor:
        return 1.0 - torch.cos(0.5 * math.pi * (1.0 - t))

    def d_alpha(self, t: Tensor) -> Tensor:
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * (1.0 - t))

    def elbo_weight(self, t: Tensor) -> Tensor:
        return 0.5 * math.pi * torch.tan(0.5 * math.pi * (1.0 - t))


def make_mask_schedule(
    name: str,
    *,
    eps: float = 1e-3,
    power: float = 2.0,
    sigma_min: float = 1e-4,
    sigma_max: float = 20.0,
) -> MaskSchedule:
    """Build a schedule by its config name (``diffusion.schedule``)."""
    if name == "linear":
        return LinearSchedule()
    if name == "loglinear":
        return LogLinearSchedule(eps)
    if name == "polynomial":
        return PolynomialSchedule(power)
    if name == "geometric":
        return GeometricSchedule(sigma_min, sigma_max)
    if name == "cosine":
        return CosineSchedule()
    raise AugdiffError(f"diffusion.schedule={name!r} is not known (linear, loglinear, polynomial, geometric, cosine)")
