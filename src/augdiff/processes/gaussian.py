r"""The Gaussian latent process of CADD: forward marginal, reverse bridge, and the continuous-KL weight.

For any path :math:`z_t = a_t z_0 + b_t \varepsilon` (:mod:`augdiff.schedules.gaussian`), the Markov forward
kernel with these marginals is, for s < t,

.. math::

    q(z_t \mid z_s) = \mathcal N\big(a_{t|s} z_s,\ \sigma^2_{t|s} I\big),\qquad
    a_{t|s} = a_t / a_s,\quad \sigma^2_{t|s} = b_t^2 - a_{t|s}^2 b_s^2,

and Bayes' rule gives the bridge :math:`q(z_s \mid z_t, z_0) = \mathcal N(\tilde\mu, \tilde\beta I)` with

.. math::

    \tilde\beta = \frac{\sigma^2_{t|s}\, b_s^2}{b_t^2},\qquad
    \tilde\mu = \frac{a_s\,\sigma^2_{t|s}}{b_t^2}\, z_0 + \frac{a_{t|s}\, b_s^2}{b_t^2}\, z_t .

For VP paths (:math:`a^2 + b^2 = 1`, :math:`a_{t|s}^2 = \gamma_t`) this is exactly CADD Eq 17. For the
flow-matching path (a = 1−t, b = t) it gives :math:`a_{t|s} = \tfrac{1-t}{1-s}`,
:math:`\sigma^2_{t|s} = t^2 - \big(\tfrac{(1-t)s}{1-s}\big)^2`, which the paper does not print.
"""

from __future__ import annotations

import torch
from torch import Tensor

from augdiff.schedules.gaussian import GaussianSchedule

__all__ = [
    "gaussian_forward",
    "gaussian_bridge",
    "bridge_kl_weight",
    "continuous_kl_weight",
    "ddim_step",
    "PREDICTION_TARGETS",
    "prediction_target",
    "y0_from_prediction",
]


def _col(value: Tensor, like: Tensor) -> Tensor:
    """Per-sequence ``[B]`` (or scalar) coefficients shaped to broadcast against ``like`` ``[B, ...]``."""
    value = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return value.reshape(value.shape + (1,) * (like.dim() - value.dim()))


def gaussian_forward(z0: Tensor, t: Tensor, schedule: GaussianSchedule, eps: Tensor) -> Tensor:
    r""":math:`z_t = a_t z_0 + b_t \varepsilon` — the masked-position marginal of CADD Eq 11 (Prop. 1).

    Args:
        z0: clean embeddings ``[B, L, D]``.
        t: times ``[B]``.
        eps: standard normal noise shaped like ``z0``.
    """
    return _col(schedule.signal(t), z0) * z0 + _col(schedule.noise(t), z0) * eps


def gaussian_bridge(
    z_t: Tensor, z0: Tensor, t: Tensor | float, s: Tensor | float, schedule: GaussianSchedule
) -> tuple[Tensor, Tensor]:
    r"""Mean and variance of :math:`q(z_s \mid z_t, z_0)` for s < t (CADD Eq 16–17, any Gaussian path).

    Args:
        z_t: latents at time t ``[B, ..., D]``.
        z0: the clean latent (or its estimate :math:`\hat z_0`, Eq 21) of the same shape.
        t, s: current and next time, scalars or ``[B]``.

    Returns:
        ``(mean, var)``: mean shaped like ``z_t``; variance broadcastable to it (one value per sequence).
    """
    t = torch.as_tensor(t, dtype=torch.float64)
    s = torch.as_tensor(s, dtype=torch.float64)
    a_t, b_t = schedule.signal(t), schedule.noise(t)
    a_s, b_s = schedule.signal(s), schedule.noise(s)
    a_ts = a_t / a_s
    var_ts = (b_t**2 - a_ts**2 * b_s**2).clamp_min(0.0)
    var = var_ts * b_s**2 / b_t**2
    coef_z0 = a_s * var_ts / b_t**2
    coef_zt = a_ts * b_s**2 / b_t**2
    mean = _col(coef_z0, z_t) * z0 + _col(coef_zt, z_t) * z_t
    return mean, _col(var, z_t)


def bridge_kl_weight(t: Tensor, s: Tensor, schedule: GaussianSchedule) -> Tensor:
    r"""Weight of :math:`\|z_0 - \hat z_0\|^2` in the KL of one reverse step t → s (CADD Eq 18–19).

    Both kernels are bridges with the same variance :math:`\tilde\beta`, and their means differ by
    :math:`c\,(z_0 - \hat z_0)` with c the bridge's z_0 coefficient, so the KL is
    :math:`c^2/(2\tilde\beta)\,\|z_0 - \hat z_0\|^2`; with :func:`gaussian_bridge`'s coefficients
    :math:`c^2/\tilde\beta = \mathrm{SNR}(s) - \mathrm{SNR}(t)` for any path (Kingma et al. 2021, Eq 13).
    Returns :math:`\tfrac12(\mathrm{SNR}(s) - \mathrm{SNR}(t))` ``[B]`` (∞ at s = 0 on paths with b(0) = 0).
    """
    t = torch.as_tensor(t, dtype=torch.float64)
    s = torch.as_tensor(s, dtype=torch.float64)
    snr = lambda u: schedule.signal(u) ** 2 / schedule.noise(u) ** 2  # noqa: E731
    return 0.5 * (snr(s) - snr(t))


def continuous_kl_weight(t: Tensor, schedule: GaussianSchedule) -> Tensor:
    r"""Continuous-time limit of CADD Eq 19's weight on :math:`\|z_0 - \hat z_0\|^2`.

    Summing Eq 19's per-step :math:`a_t^2 / (2\tilde\beta_t)` over a grid whose spacing goes to 0 gives the
    Gaussian ELBO of Kingma et al. 2021: :math:`\int -\tfrac12 \mathrm{SNR}'(t)\, \|z_0 - \hat z_0\|^2\, dt`
    with :math:`\mathrm{SNR} = a^2/b^2` (and ρ_keep → 1). Returns :math:`-\tfrac12 \mathrm{SNR}'(t)` ``[B]``.
    """
    return -0.5 * schedule(t).d_snr


def ddim_step(
    y_t: Tensor,
    y0_hat: Tensor,
    t: float,
    s: float,
    schedule: GaussianSchedule,
    eta: float,
    noise: Tensor,
) -> Tensor:
    r"""One DDIM move from t to s < t with stochasticity η (Song et al. 2021; LADD Eq 39–41).

    With :math:`\hat\varepsilon = (y_t - a_t \hat y_0)/b_t` and :math:`\sigma^2 = \eta^2 \tilde\beta` (the
    bridge variance of :func:`gaussian_bridge`),

    .. math::

        y_s = a_s \hat y_0 + \sqrt{b_s^2 - \sigma^2}\, \hat\varepsilon + \sigma \xi,\qquad \xi \sim \mathcal N(0, I).

    η = 1 is the ancestral bridge step (same mean and variance); η = 0 is the deterministic DDIM path. Every η
    keeps the marginals of the forward process.
    """
    t64 = torch.as_tensor(t, dtype=torch.float64)
    s64 = torch.as_tensor(s, dtype=torch.float64)
    a_t, b_t = schedule.signal(t64), schedule.noise(t64)
    a_s, b_s = schedule.signal(s64), schedule.noise(s64)
    _, var = gaussian_bridge(y_t[:1], y0_hat[:1], t64, s64, schedule)
    sigma2 = eta**2 * var.reshape(-1)[0]
    eps_hat = (y_t - _col(a_t, y_t) * y0_hat) / _col(b_t, y_t)
    direction = (b_s**2 - sigma2).clamp_min(0.0).sqrt()
    return _col(a_s, y_t) * y0_hat + _col(direction, y_t) * eps_hat + _col(sigma2.sqrt(), y_t) * noise


PREDICTION_TARGETS = ("y0", "eps", "v", "flow")
FLOW_T_MARGIN = 1e-4  # the flow target reads a′, b′ at t in [1e-4, 1 − 1e-4] (the sqrt schedules' slope is ∞ at 1)


def prediction_target(y0: Tensor, y_t: Tensor, t: Tensor, schedule: GaussianSchedule, kind: str) -> Tensor:
    r"""What a network regresses at :math:`y_t = a_t y_0 + b_t\varepsilon` (t > 0), for each parameterization:

    ``y0`` the clean value (LADD Eq 35–36); ``eps`` the noise :math:`\varepsilon = (y_t - a_t y_0)/b_t` (Ho et al.
    2020); ``v`` :math:`a_t\varepsilon - b_t y_0` (Salimans & Ho 2022); ``flow`` the path's velocity
    :math:`\dot y_t = a'_t y_0 + b'_t\varepsilon` (flow matching; for the flow path a = 1−t, b = t it is ε − y_0;
    the slopes are read at t clamped to [1e-4, 1 − 1e-4], where a square-root schedule's is finite).
    """
    out = schedule(torch.as_tensor(t, dtype=torch.float64))
    a, b = _col(out.signal, y0), _col(out.noise, y0)
    if kind == "y0":
        return y0
    eps = (y_t - a * y0) / b
    if kind == "eps":
        return eps
    if kind == "v":
        return a * eps - b * y0
    assert kind == "flow", f"prediction target must be one of {PREDICTION_TARGETS}, got {kind!r}"
    velocity = schedule(_flow_time(torch.as_tensor(t, dtype=torch.float64)))
    return _col(velocity.d_signal, y0) * y0 + _col(velocity.d_noise, y0) * eps


def y0_from_prediction(pred: Tensor, y_t: Tensor, t: Tensor | float, schedule: GaussianSchedule, kind: str) -> Tensor:
    r""":math:`\hat y_0` from a prediction of :func:`prediction_target` — the 2×2 system of (y_t, target) in
    (y_0, ε) solved: ``eps`` :math:`(y_t - b\hat\varepsilon)/a`; ``v`` :math:`(a y_t - b\hat v)/(a^2+b^2)`;
    ``flow`` :math:`(b' y_t - b\hat u)/(a b' - b a')`."""
    if kind == "y0":
        return pred
    out = schedule(torch.as_tensor(t, dtype=torch.float64).reshape(-1))
    a, b = _col(out.signal.reshape(-1), y_t), _col(out.noise.reshape(-1), y_t)
    if kind == "eps":
        return (y_t - b * pred) / a
    if kind == "v":
        return (a * y_t - b * pred) / (a**2 + b**2)
    assert kind == "flow", f"prediction target must be one of {PREDICTION_TARGETS}, got {kind!r}"
    velocity = schedule(_flow_time(torch.as_tensor(t, dtype=torch.float64).reshape(-1)))
    da, db = _col(velocity.d_signal, y_t), _col(velocity.d_noise, y_t)
    return (db * y_t - b * pred) / (a * db - b * da)


def _flow_time(t: Tensor) -> Tensor:
    """Times for the path's derivatives, kept off the ends where a square-root schedule's slope is infinite."""
    return t.clamp(FLOW_T_MARGIN, 1.0 - FLOW_T_MARGIN)
