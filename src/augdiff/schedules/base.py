"""The contract of a mask schedule α(t) (survival probability of a token at time t)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from torch import Tensor

__all__ = ["MaskSchedule", "MaskScheduleOutput"]


@dataclass
class MaskScheduleOutput:
    """α(t), α′(t) and the continuous-time ELBO weight at times ``t``.

    Attributes:
        t: times in [0, 1], any shape.
        alpha_t: survival probability α(t) (1 at t=0, ≈0 at t=1).
        d_alpha_t: its derivative α′(t) ≤ 0.
        elbo_weight: −α′(t)/(1−α(t)) (CADD Eq 2, LADD Eq 52), computed in closed form where 0/0 threatens.
    """

    t: Tensor
    alpha_t: Tensor
    d_alpha_t: Tensor
    elbo_weight: Tensor


class MaskSchedule(ABC):
    r"""A masking schedule for the absorbing forward process.

    .. math::

        q(x_t^i \mid x_0^i) = \alpha_t\,\delta_{x_0^i} + (1-\alpha_t)\,\delta_{\mathbf m}

    Subclasses give ``alpha``, ``d_alpha`` and, when the generic quotient is unstable near t=0,
    ``elbo_weight``.

    Example:
        >>> out = LinearSchedule()(torch.tensor([0.25]))
        >>> out.alpha_t, out.elbo_weight
        (tensor([0.7500]), tensor([4.]))
    """

    name: str = "abstract"

    @abstractmethod
    def alpha(self, t: Tensor) -> Tensor:
        """Survival probability α(t)."""

    @abstractmethod
    def d_alpha(self, t: Tensor) -> Tensor:
        """Time derivative α′(t)."""

    def elbo_weight(self, t: Tensor) -> Tensor:
        r"""Continuous-time ELBO weight :math:`-\alpha'(t)/(1-\alpha(t))` (CADD Eq 2, LADD Eq 52)."""
        return -self.d_alpha(t) / (1.0 - self.alpha(t))

    def __call__(self, t: Tensor) -> MaskScheduleOutput:
        return MaskScheduleOutput(
            t=t, alpha_t=self.alpha(t), d_alpha_t=self.d_alpha(t), elbo_weight=self.elbo_weight(t)
        )

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"
