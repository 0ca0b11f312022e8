"""Prediction targets of a Gaussian latent (y0, ε, v, flow): each inverts to ŷ_0 exactly, and Co-LADD trains on it."""

import pytest
import torch
from ladd_models import L, V, gen, ladd_model

from augdiff.errors import AugdiffError
from augdiff.processes.gaussian import PREDICTION_TARGETS, gaussian_forward, prediction_target, y0_from_prediction
from augdiff.schedules.gaussian import make_gaussian_schedule


@pytest.mark.parametrize("schedule", ["ladd-sqrt", "vp-cosine", "flow"])
@pytest.mark.parametrize("kind", PREDICTION_TARGETS)
def test_each_target_inverts_to_the_clean_latent(schedule, kind):
    sched = make_gaussian_schedule(schedule)
    y0, eps = torch.randn(6, 2, 5, dtype=torch.float64), torch.randn(6, 2, 5, dtype=torch.float64)
    t = torch.tensor([0.05, 0.2, 0.4, 0.6, 0.8, 0.95], dtype=torch.float64)
    y_t = gaussian_forward(y0, t, sched, eps)
    target = prediction_target(y0, y_t, t, sched, kind)
    for i in range(6):  # the sampler asks one time at a time
        torch.testing.assert_close(
            y0_from_prediction(target[i : i + 1], y_t[i : i + 1], float(t[i]), sched, kind), y0[i : i + 1]
        )


def test_targets_have_their_closed_forms():
    sched = make_gaussian_schedule("flow")  # a = 1 − t, b = t
    y0, eps = torch.randn(3, 1, 4, dtype=torch.float64), torch.randn(3, 1, 4, dtype=torch.float64)
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    y_t = gaussian_forward(y0, t, sched, eps)
    torch.testing.assert_close(prediction_target(y0, y_t, t, sched, "eps"), eps)
    torch.testing.assert_close(prediction_target(y0, y_t, t, sched, "flow"), eps - y0)
    a, b = (1 - t).view(-1, 1, 1), t.view(-1, 1, 1)
    torch.testing.assert_close(prediction_target(y0, y_t, t, sched, "v"), a * eps - b * y0)


@pytest.mark.parametrize("kind", PREDICTION_TARGETS)
def test_co_ladd_regresses_its_target_and_samples_with_it(kind):
    model = ladd_model("co-ladd", latent_target=kind)
    ch = model.channel
    y0 = torch.randn(4, 1, ch.latent_dim)
    t = torch.tensor([0.2, 0.4, 0.6, 0.8])
    y_t = ch.noise(y0, t, gen(0))
    perfect = prediction_target(y0, y_t, t, ch.schedule, kind)
    assert float(ch.latent_loss(perfect, y0, y_t, t).abs().max()) < 1e-10
    assert float(ch.latent_loss(perfect + 0.1, y0, y_t, t).min()) > 0
    x = torch.full((2, L), V)
    state = model.init_state(x, gen(1), model.sampling_options(lag=1.0, latent_steps=4))
    assert torch.isfinite(state.y).all()


def test_di_ladd_refuses_a_continuous_target():
    with pytest.raises(AugdiffError, match="latent_target"):
        ladd_model("di-ladd", latent_target="eps")
