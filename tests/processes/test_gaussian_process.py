"""The Gaussian latent process: bridge vs Bayes, Eq 17, marginals recovered by the bridge, Eq 19's limit."""

import math

import pytest
import torch

from augdiff.processes.gaussian import continuous_kl_weight, gaussian_bridge, gaussian_forward
from augdiff.schedules.gaussian import FlowMatchingSchedule, VPCosineSchedule, VPLinearSchedule, VPSqrtSchedule

ALL = [FlowMatchingSchedule(), VPLinearSchedule(), VPCosineSchedule(), VPSqrtSchedule()]
IDS = [s.name for s in ALL]


def numerical_bayes(z0: float, z_t: float, t: float, s: float, schedule) -> tuple[float, float]:
    """Posterior of z_s given z_0 and z_t on a fine 1-D grid: prior N(a_s z0, b_s²) × kernel N(z_t; a_t|s z_s, σ²)."""
    tt, ss = torch.tensor(t, dtype=torch.float64), torch.tensor(s, dtype=torch.float64)
    a_t, b_t = schedule.signal(tt).item(), schedule.noise(tt).item()
    a_s, b_s = schedule.signal(ss).item(), schedule.noise(ss).item()
    a_ts = a_t / a_s
    var_ts = b_t**2 - a_ts**2 * b_s**2
    grid = torch.linspace(a_s * z0 - 8 * b_s, a_s * z0 + 8 * b_s, 200_001, dtype=torch.float64)
    log_w = -((grid - a_s * z0) ** 2) / (2 * b_s**2) - (z_t - a_ts * grid) ** 2 / (2 * var_ts)
    w = torch.softmax(log_w, dim=0)
    mean = (w * grid).sum().item()
    return mean, (w * (grid - mean) ** 2).sum().item()


@pytest.mark.parametrize("schedule", ALL, ids=IDS)
@pytest.mark.parametrize("t,s", [(0.9, 0.6), (0.5, 0.45), (0.3, 0.05)])
def test_bridge_matches_numerical_bayes(schedule, t, s):
    z0, z_t = 0.7, -0.4
    mean, var = gaussian_bridge(
        torch.tensor([[z_t]], dtype=torch.float64), torch.tensor([[z0]], dtype=torch.float64), t, s, schedule
    )
    ref_mean, ref_var = numerical_bayes(z0, z_t, t, s, schedule)
    assert mean.item() == pytest.approx(ref_mean, abs=1e-6)
    assert var.item() == pytest.approx(ref_var, rel=1e-4)


def test_vp_bridge_is_cadd_eq_17():
    """β̃ = (1−γ̄_s)(1−γ_t)/(1−γ̄_t), μ̃ = √γ̄_s(1−γ_t)/(1−γ̄_t) z0 + √γ_t(1−γ̄_s)/(1−γ̄_t) z_t, with γ_t = γ̄_t/γ̄_s."""
    schedule = VPLinearSchedule()
    t, s = 0.4, 0.3
    gb_t, gb_s = (
        schedule.gamma_bar(torch.tensor(t, dtype=torch.float64)),
        schedule.gamma_bar(torch.tensor(s, dtype=torch.float64)),
    )
    g_t = gb_t / gb_s
    z0, z_t = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    mean, var = gaussian_bridge(z_t, z0, t, s, schedule)
    expected_mean = (gb_s.sqrt() * (1 - g_t) / (1 - gb_t)) * z0 + (g_t.sqrt() * (1 - gb_s) / (1 - gb_t)) * z_t
    torch.testing.assert_close(mean, expected_mean)
    assert var.item() == pytest.approx(((1 - gb_s) * (1 - g_t) / (1 - gb_t)).item())


@pytest.mark.parametrize("schedule", [FlowMatchingSchedule(), VPCosineSchedule()], ids=["flow", "vp-cosine"])
def test_ancestral_bridge_with_true_z0_recovers_the_forward_marginals(schedule):
    """Start at z_1 ~ q(z_1|z_0), step down a grid with the exact bridge: z_t keeps the law N(a_t z_0, b_t²)."""
    g = torch.Generator().manual_seed(0)
    n, z0 = 200_000, torch.tensor(1.5, dtype=torch.float64)
    grid = torch.linspace(1.0, 0.2, 9, dtype=torch.float64)
    z = gaussian_forward(
        z0.expand(n, 1), grid[:1].expand(n), schedule, torch.randn(n, 1, dtype=torch.float64, generator=g)
    )
    for t, s in zip(grid[:-1], grid[1:], strict=True):
        mean, var = gaussian_bridge(z, z0.expand(n, 1), float(t), float(s), schedule)
        z = mean + var.sqrt() * torch.randn(n, 1, dtype=torch.float64, generator=g)
        a, b = schedule.signal(s).item(), schedule.noise(s).item()
        assert z.mean().item() == pytest.approx(a * 1.5, abs=0.01)
        assert z.std().item() == pytest.approx(b, rel=0.01)


@pytest.mark.parametrize("schedule", [FlowMatchingSchedule(), VPLinearSchedule()], ids=["flow", "vp-linear"])
def test_eq19_weights_sum_to_the_continuous_limit(schedule):
    """Σ_k a_k²/(2β̃_k) over a fine grid (Eq 19, one per step) → ∫ −½ SNR′ dt = ½ (SNR(t0) − SNR(t1))."""
    t0, t1, steps = 0.3, 0.8, 4000
    grid = torch.linspace(t1, t0, steps + 1, dtype=torch.float64)
    total = 0.0
    for t, s in zip(grid[:-1], grid[1:], strict=True):
        one, zero = torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
        mean_one, var = gaussian_bridge(zero, one, float(t), float(s), schedule)  # coefficient of z0 = a_k
        total += (mean_one.item() ** 2) / (2 * var.item())
    snr = schedule(torch.tensor([t0, t1], dtype=torch.float64)).snr
    assert total == pytest.approx(0.5 * (snr[0] - snr[1]).item(), rel=2e-3)
    integral = continuous_kl_weight(torch.linspace(t0, t1, 200_001, dtype=torch.float64), schedule).mean().item() * (
        t1 - t0
    )
    assert integral == pytest.approx(total, rel=2e-3)


def test_bridge_endpoints():
    schedule = FlowMatchingSchedule()
    z_t, z0 = torch.randn(3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    mean, var = gaussian_bridge(z_t, z0, 0.5, 0.0, schedule)  # to s = 0: the clean latent itself
    torch.testing.assert_close(mean, z0)
    assert var.item() == 0.0
    mean, var = gaussian_bridge(z_t, z0, 1.0, 0.4, schedule)  # from pure noise: the forward marginal at s
    torch.testing.assert_close(mean, 0.6 * z0)
    assert var.item() == pytest.approx(0.16)
    assert math.isfinite(continuous_kl_weight(torch.tensor([0.5]), schedule).item())
