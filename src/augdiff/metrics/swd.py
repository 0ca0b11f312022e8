r"""Sliced Wasserstein distance (LADD App. E.4, Eq 85–88).

.. math::

    \mathrm{SW}_1(\mu, \nu) = \mathbb E_{\theta \sim U(S^{d-1})}\, W_1(\theta_\# \mu, \theta_\# \nu),\qquad
    W_1 = \int_0^1 |F^{-1}(q) - G^{-1}(q)|\,dq,

estimated with random Gaussian directions normalized to the sphere, on empirical measures.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["random_directions", "wasserstein_1d", "sliced_wasserstein"]


def random_directions(dim: int, n_directions: int, generator: torch.Generator | None = None) -> Tensor:
    """Directions θ uniform on the unit sphere ``[dim, n_directions]`` (normalized Gaussians, LADD Eq 85)."""
    theta = torch.randn(dim, n_directions, dtype=torch.float64, generator=generator)
    return theta / theta.norm(dim=0, keepdim=True)


def wasserstein_1d(a: Tensor, b: Tensor) -> Tensor:
    r"""W₁ between the empirical measures of the columns of ``a`` ``[N, P]`` and ``b`` ``[M, P]`` → ``[P]``.

    LADD Eq 87–88. For N = M this is :math:`\frac1N\sum_k |a_{(k)} - b_{(k)}|` on sorted samples; for N ≠ M it
    is :math:`\int |F_a(x) - F_b(x)|\,dx`, computed exactly on the merged sorted support.
    """
    assert a.dim() == 2 and b.dim() == 2 and a.shape[1] == b.shape[1], f"shapes {a.shape} and {b.shape}"
    if a.shape[0] == b.shape[0]:
        return (a.sort(dim=0).values - b.sort(dim=0).values).abs().mean(dim=0)
    values = torch.cat([a, b], dim=0)
    steps = torch.cat([torch.full_like(a, 1.0 / a.shape[0]), torch.full_like(b, -1.0 / b.shape[0])], dim=0)
    values, order = values.sort(dim=0)
    cdf_gap = torch.gather(steps, 0, order).cumsum(dim=0)[:-1]
    return (cdf_gap.abs() * values.diff(dim=0)).sum(dim=0)


def sliced_wasserstein(
    x: Tensor, y: Tensor, n_directions: int = 1000, generator: torch.Generator | None = None
) -> float:
    """Monte-Carlo sliced W₁ between samples ``x`` ``[N, d]`` and ``y`` ``[M, d]`` (LADD Eq 86).

    Both are flattened to vectors and compared in float64 (0/1 token vectors for the sawtooth).
    """
    x = x.reshape(x.shape[0], -1).double()
    y = y.reshape(y.shape[0], -1).double()
    assert x.shape[1] == y.shape[1], f"samples of dimension {x.shape[1]} and {y.shape[1]}"
    theta = random_directions(x.shape[1], n_directions, generator)
    return float(wasserstein_1d(x @ theta, y @ theta).mean())
