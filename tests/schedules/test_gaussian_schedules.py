"""Gaussian paths: variance preservation, endpoints, derivatives."""

import math

import pytest
import torch

from augdiff.schedules.gaussian import (
    FlowMatchingSchedule,
    LADDSqrtSchedule,
    VPCosineSchedule,
    VPLinearSchedule,
    VPSqrtSchedule,
    make_gaussian_schedule,
)

VP = [VPLinearSchedule(), VPCosineSchedule(), VPSqrtSchedule(), LADDSqrtSchedule()]
ALL = [FlowMatchingSchedule(), *VP]
IDS = [s.name for s in ALL]


@pytest.mark.parametrize("schedule", VP, ids=[s.name for s in VP])
def test_vp_paths_preserve_variance(schedule):
    t = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
    torch.testing.assert_close(schedule.signal(t) ** 2 + schedule.noise(t) ** 2, torch.ones_like(t))


@pytest.mark.parametrize("schedule", ALL, ids=IDS)
def test_paths_go_from_data_to_noise(schedule):
    t = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
    snr = schedule(t[1:-1]).snr
    assert (snr.diff() < 0).all()
    assert schedule.signal(t[:1]).item() > 0.98 and schedule.noise(t[-1:]).item() > 0.999


@pytest.mark.parametrize("schedule", ALL, ids=IDS)
def test_snr_derivative_matches_finite_differences(schedule):
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    h = 1e-6
    numeric = (schedule(t + h).snr - schedule(t - h).snr) / (2 * h)
    torch.testing.assert_close(schedule(t).d_snr, numeric, rtol=1e-5, atol=1e-6)


def test_interior_values_from_their_definitions():
    half = torch.tensor([0.5], dtype=torch.float64)
    assert FlowMatchingSchedule().signal(half).item() == 0.5 and FlowMatchingSchedule().noise(half).item() == 0.5
    assert VPLinearSchedule().signal(half).item() ** 2 == pytest.approx(math.exp(-0.1 * 0.5 - 0.5 * 19.9 * 0.25))
    cos = math.cos(0.5 * math.pi * 0.508 / 1.008) ** 2 / math.cos(0.5 * math.pi * 0.008 / 1.008) ** 2
    assert VPCosineSchedule().signal(half).item() ** 2 == pytest.approx(cos)
    assert VPSqrtSchedule().signal(half).item() ** 2 == pytest.approx(1 - math.sqrt(0.5001))


# γ̄(t), the signal variance a², written out from each paper.
SQRT_GAMMA_BAR = {
    "ladd-sqrt": lambda t: (1 - 2 * 1e-4) * math.sqrt(1 - t) + 1e-4,  # LADD App. C.3 (the authors' "sqrt")
    "vp-sqrt": lambda t: 1 - math.sqrt(t + 1e-4),  # Diffusion-LM Eq 16
}


@pytest.mark.parametrize("name", list(SQRT_GAMMA_BAR))
@pytest.mark.parametrize("t", [0.0, 0.5, 0.9])
def test_sqrt_schedules_match_their_closed_forms(name, t):
    out = make_gaussian_schedule(name)(torch.tensor([t], dtype=torch.float64))
    gamma_bar = SQRT_GAMMA_BAR[name](t)
    assert out.signal.item() ** 2 == pytest.approx(gamma_bar, rel=1e-12)
    assert out.noise.item() ** 2 == pytest.approx(1 - gamma_bar, rel=1e-12)


def test_ladd_sqrt_keeps_more_signal_at_half_time_than_vp_sqrt():
    """SNR(0.5) = γ̄/(1 − γ̄): 2.41 for the authors' sqrt, 0.41 for Diffusion-LM's — reciprocal up to s and ε."""
    half = torch.tensor([0.5], dtype=torch.float64)
    snr = {name: make_gaussian_schedule(name)(half).snr.item() for name in SQRT_GAMMA_BAR}
    for name, gamma_bar in SQRT_GAMMA_BAR.items():
        assert snr[name] == pytest.approx(gamma_bar(0.5) / (1 - gamma_bar(0.5)), rel=1e-12)
    assert snr["ladd-sqrt"] == pytest.approx(2.41, abs=0.01) and snr["vp-sqrt"] == pytest.approx(0.41, abs=0.01)


def test_unknown_name_is_a_user_error():
    from augdiff.errors import AugdiffError

    with pytest.raises(AugdiffError, match="not known"):
        make_gaussian_schedule("edm")
