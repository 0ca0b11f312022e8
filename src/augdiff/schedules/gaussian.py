r"""Gaussian paths for continuous latents: :math:`z_t = a(t)\, z_0 + b(t)\, \varepsilon`.

Variance-preserving (VP) schedules have :math:`a = \sqrt{\bar\gamma_t},\ b = \sqrt{1-\bar\gamma_t}` (CADD Eq 3 and
Eq 11, LADD Eq 20); the flow-matching path has :math:`a = 1-t,\ b = t` (CADD App. B.1, Lipman et al. 2022).
Each schedule also gives a′ and b′, from which the signal-to-noise ratio and its derivative follow.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor

from augdiff.errors import AugdiffError

__all__ = [
    "GaussianScheduleOutput",
    "GaussianSchedule",
    "FlowMatchingSchedule",
    "VPLinearSchedule",
    "VPCosineSchedule",
    "VPSqrtSchedule",
    "LADDSqrtSchedule",
    "GAUSSIAN_SCHEDULES",
    "make_gaussian_schedule",
]


@dataclass
class GaussianScheduleOutput:
    """Coefficients of :math:`z_t = a z_0 + b \\varepsilon` at times ``t`` and their time derivatives."""

    t: Tensor
    signal: Tensor
    noise: Tensor
    d_signal: Tensor
    d_noise: Tensor

    @property
    def snr(self) -> Tensor:
        """a² / b²."""
        return self.signal**2 / self.noise**2

    @property
    def d_snr(self) -> Tensor:
        """d(a²/b²)/dt = 2 a (a′ b − a b′) / b³."""
        return 2.0 * self.signal * (self.d_signal * self.noise - self.signal * self.d_noise) / self.noise**3


class GaussianSchedule(ABC):
    """A Gaussian path from the data (t=0) to noise (t=1)."""

    name: str = "abstract"

    @abstractmethod
    def signal(self, t: Tensor) -> Tensor:
        """a(t)."""

    @abstractmethod
    def noise(self, t: Tensor) -> Tensor:
        """b(t)."""

    def derivatives(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """(a′(t), b′(t)); autograd by default, closed forms where a subclass gives them."""
        with torch.enable_grad():
            tt = t.detach().double().requires_grad_(True)
            d_a = torch.autograd.grad(self.signal(tt).sum(), tt)[0]
            d_b = torch.autograd.grad(self.noise(tt).sum(), tt)[0]
        return d_a.to(t.dtype), d_b.to(t.dtype)

    def __call__(self, t: Tensor) -> GaussianScheduleOutput:
        d_a, d_b = self.derivatives(t)
        return GaussianScheduleOutput(t=t, signal=self.signal(t), noise=self.noise(t), d_signal=d_a, d_noise=d_b)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class FlowMatchingSchedule(GaussianSchedule):
    r"""The linear flow-matching path :math:`z_t = (1-t) z_0 + t \varepsilon` (CADD App. B.1, its default)."""

    name = "flow"

    def signal(self, t: Tensor) -> Tensor:
        return 1.0 - t

    def noise(self, t: Tensor) -> Tensor:
        return t

    def derivatives(self, t: Tensor) -> tuple[Tensor, Tensor]:
        return -torch.ones_like(t), torch.ones_like(t)


class _VPSchedule(GaussianSchedule):
    """VP: a = √γ̄(t), b = √(1 − γ̄(t)); subclasses give γ̄."""

    @abstractmethod
    def gamma_bar(self, t: Tensor) -> Tensor:
        """γ̄(t), from ≈1 at t=0 to ≈0 at t=1."""

    def signal(self, t: Tensor) -> Tensor:
        return torch.sqrt(self.gamma_bar(t))

    def noise(self, t: Tensor) -> Tensor:
        return torch.sqrt(1.0 - self.gamma_bar(t))


class VPLinearSchedule(_VPSchedule):
    r"""DDPM's linear β in continuous time (Song et al. 2021).

    :math:`\bar\gamma(t) = \exp(-\beta_0 t - (\beta_1-\beta_0) t^2/2)` with β₀ = 0.1, β₁ = 20.
    """

    name = "vp-linear"

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0) -> None:
        self.beta_min, self.beta_max = beta_min, beta_max

    def gamma_bar(self, t: Tensor) -> Tensor:
        return torch.exp(-self.beta_min * t - 0.5 * (self.beta_max - self.beta_min) * t**2)


class VPCosineSchedule(_VPSchedule):
    r"""Nichol & Dhariwal's cosine schedule.

    :math:`\bar\gamma(t) = \cos^2(\tfrac\pi2 \tfrac{t+s}{1+s}) / \cos^2(\tfrac\pi2 \tfrac{s}{1+s})` with s = 0.008.
    """

    name = "vp-cosine"

    def __init__(self, s: float = 0.008) -> None:
        self.s = s

    def gamma_bar(self, t: Tensor) -> Tensor:
        f = torch.cos(0.5 * math.pi * (t + self.s) / (1.0 + self.s)) ** 2
        return (f / math.cos(0.5 * math.pi * self.s / (1.0 + self.s)) ** 2).clamp(0.0, 1.0)


class VPSqrtSchedule(_VPSchedule):
    r"""Diffusion-LM's sqrt schedule (Li et al. 2022, Eq 16 there).

    :math:`\bar\gamma(t) = 1 - \sqrt{t + s}` with s = 1e-4. Its SNR is low early: γ̄(0.5) = 0.29.
    Not the schedule the LADD authors' code calls "sqrt" (that one is :class:`LADDSqrtSchedule`).
    """

    name = "vp-sqrt"

    def __init__(self, s: float = 1e-4) -> None:
        self.s = s

    def gamma_bar(self, t: Tensor) -> Tensor:
        return (1.0 - torch.sqrt(t + self.s)).clamp_min(0.0)


class LADDSqrtSchedule(_VPSchedule):
    r"""The LADD authors' "sqrt" schedule (LADD App. C.3 and Table 7 "VP-Sqrt"; their
    ``SqrtContinuousNoiseSampling``, GitHub darioShar/LADD), the Co-LADD default.

    :math:`\bar\gamma(t) = (1 - 2\epsilon)\sqrt{1 - t} + \epsilon` with ε = 1e-4: the signal variance
    :math:`a^2`. γ̄(0.5) = 0.707 (SNR 2.41, against 0.41 for :class:`VPSqrtSchedule`): the latent keeps its signal
    longer, so it is "denoised slightly faster" than the tokens (App. C.3).
    """

    name = "ladd-sqrt"

    def __init__(self, eps: float = 1e-4) -> None:
        self.eps = eps

    def gamma_bar(self, t: Tensor) -> Tensor:
        return (1.0 - 2.0 * self.eps) * torch.sqrt((1.0 - t).clamp_min(0.0)) + self.eps


GAUSSIAN_SCHEDULES: dict[str, type[GaussianSchedule]] = {
    "flow": FlowMatchingSchedule,
    "vp-linear": VPLinearSchedule,
    "vp-cosine": VPCosineSchedule,
    "vp-sqrt": VPSqrtSchedule,
    "ladd-sqrt": LADDSqrtSchedule,
}


def make_gaussian_schedule(name: str) -> GaussianSchedule:
    """Build a Gaussian path by its config name (``cadd.schedule``)."""
    if name not in GAUSSIAN_SCHEDULES:
        raise AugdiffError(f"Gaussian schedule {name!r} is not known (choose one of: {', '.join(GAUSSIAN_SCHEDULES)})")
    return GAUSSIAN_SCHEDULES[name]()
