"""Mask schedules: α, α′ and the ELBO weight, checked against autograd and brute-force kernel products."""

import math

import pytest
import torch

from augdiff.schedules import (
    CosineSchedule,
    GeometricSchedule,
    LinearSchedule,
    LogLinearSchedule,
    PolynomialSchedule,
    make_mask_schedule,
)

SCHEDULES = [LinearSchedule(), LogLinearSchedule(1e-3), PolynomialSchedule(3.0), GeometricSchedule(), CosineSchedule()]
IDS = [s.name for s in SCHEDULES]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=IDS)
def test_derivative_matches_autograd(schedule):
    t = torch.linspace(0.02, 0.98, 49, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(schedule.alpha(t).sum(), t)
    torch.testing.assert_close(schedule.d_alpha(t.detach()), grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=IDS)
def test_elbo_weight_is_minus_dalpha_over_one_minus_alpha(schedule):
    t = torch.linspace(0.02, 0.98, 49, dtype=torch.float64)
    generic = -schedule.d_alpha(t) / (1.0 - schedule.alpha(t))
    torch.testing.assert_close(schedule.elbo_weight(t), generic, rtol=1e-9, atol=1e-12)
    assert (schedule.elbo_weight(t) > 0).all()


@pytest.mark.parametrize("schedule", SCHEDULES, ids=IDS)
def test_alpha_decreases_from_clean_to_masked(schedule):
    t = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
    alpha = schedule.alpha(t)
    assert (alpha.diff() < 0).all()
    assert alpha[0] > 0.999 and alpha[-1] < 1e-3 + 1e-12


def test_interior_values_from_the_papers_definitions():
    """Values written independently of the implementation, at t = 0.5 and t = 0.2."""
    half = torch.tensor([0.5], dtype=torch.float64)
    assert CosineSchedule().alpha(half).item() == pytest.approx(1 - math.cos(math.pi / 4))
    assert GeometricSchedule(1e-4, 20.0).alpha(half).item() == pytest.approx(math.exp(-math.sqrt(1e-4 * 20.0)))
    assert PolynomialSchedule(3.0).alpha(torch.tensor([0.2], dtype=torch.float64)).item() == pytest.approx(1 - 0.008)
    assert LogLinearSchedule(0.1).alpha(half).item() == pytest.approx(1 - 0.9 * 0.5)  # exp(log(1 - 0.9 t))
    assert LinearSchedule().alpha(half).item() == 0.5


@pytest.mark.parametrize("schedule", SCHEDULES, ids=IDS)
def test_weight_times_masking_probability_integrates_to_the_alpha_drop(schedule):
    """∫₀¹ w(t)(1−α(t)) dt = α(0) − α(1): the expected ELBO of a position whose −log p is 1 (quadrature)."""
    n = 400_000
    t = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    integral = (schedule.elbo_weight(t) * (1 - schedule.alpha(t))).mean().item()
    ends = schedule.alpha(torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert integral == pytest.approx((ends[0] - ends[1]).item(), abs=2e-4)


def test_closed_forms():
    t = torch.tensor([0.25], dtype=torch.float64)
    assert LinearSchedule().alpha(t).item() == pytest.approx(0.75)
    assert LinearSchedule().elbo_weight(t).item() == pytest.approx(4.0)
    assert LogLinearSchedule(1e-3).alpha(torch.tensor([1.0], dtype=torch.float64)).item() == pytest.approx(1e-3)
    assert PolynomialSchedule(2.0).elbo_weight(t).item() == pytest.approx(8.0)
    assert CosineSchedule().alpha(torch.tensor([0.0, 1.0])).tolist() == pytest.approx([1.0, 0.0], abs=1e-7)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=IDS)
def test_marginal_is_product_of_one_step_kernels(schedule):
    """CADD Eq 7 and Eq 10: composing Q_k = (1−β_k) I + β_k 1 mᵀ over a grid gives Q̄_t = α_t I + (1−α_t) 1 mᵀ,
    checked by brute-force matrix products on a 2-token vocabulary plus the mask. (With β_k from α this checks
    the absorbing structure of the process, not the values of α: those are pinned by the tests above.)"""
    states, mask = 3, 2
    grid = torch.linspace(0.0, 0.7, 36, dtype=torch.float64)
    alphas = schedule.alpha(grid)
    q_bar = (
        torch.eye(states, dtype=torch.float64) * alphas[0]
        + (1 - alphas[0]) * torch.nn.functional.one_hot(torch.tensor([mask] * states), states).double()
    )
    for k in range(1, len(grid)):
        beta = 1.0 - alphas[k] / alphas[k - 1]
        q = (1 - beta) * torch.eye(states, dtype=torch.float64)
        q[:, mask] += beta
        q_bar = q_bar @ q
    alpha_t = schedule.alpha(grid[-1])
    expected = alpha_t * torch.eye(states, dtype=torch.float64)
    expected[:, mask] += 1 - alpha_t
    torch.testing.assert_close(q_bar, expected)


def test_unknown_schedule_is_a_user_error():
    from augdiff.errors import AugdiffError

    with pytest.raises(AugdiffError, match="not known"):
        make_mask_schedule("sigmoid")
