"""The masked-diffusion ELBO: exact for the exact denoiser of a product distribution."""

import math

import pytest
import torch
from dummies import FixedLogits

from augdiff.losses import masked_diffusion_nll
from augdiff.model import DiffusionModel
from augdiff.processes import sample_times
from augdiff.schedules import CosineSchedule, LinearSchedule, LogLinearSchedule

VOCAB, LENGTH = 3, 4


def product_model(schedule, weighting="elbo"):
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25]])
    logits = torch.cat([probs.log(), torch.zeros(LENGTH, 1)], dim=-1)  # the mask logit is dropped by SUBS
    return DiffusionModel(FixedLogits(logits), schedule, VOCAB, loss_weighting=weighting), probs


def elbo_estimate(model, x0, n, eps):
    rep = x0.expand(n, -1)
    t = sample_times(n, eps=eps, generator=torch.Generator().manual_seed(0))
    out = model.loss(rep, t, torch.Generator().manual_seed(1))
    per_seq = out.nll_per_sequence * LENGTH
    return per_seq.mean().item(), per_seq.std().item() / math.sqrt(n)


@pytest.mark.parametrize("schedule", [LinearSchedule(), CosineSchedule()], ids=["linear", "cosine"])
def test_elbo_equals_exact_nll_for_product_distribution(schedule):
    """E_t E_{x_t}[w(t) Σ_masked −log p_i(x0^i)] = Σ_i −log p_i(x0^i)·(α(0) − α(1)) = the exact NLL."""
    model, probs = product_model(schedule)
    x0 = torch.tensor([[0, 2, 1, 0]])
    exact = -sum(math.log(probs[i, x0[0, i]]) for i in range(LENGTH))
    est, stderr = elbo_estimate(model, x0, 200_000, eps=1e-6)
    assert abs(est - exact) < 4 * stderr + 1e-3, (est, exact, stderr)


def test_loglinear_elbo_misses_the_eps_mass():
    """With α(1)=ε the bound covers (1−ε) of the NLL (MDLM drops the prior term)."""
    model, probs = product_model(LogLinearSchedule(0.2))
    x0 = torch.tensor([[1, 2, 2, 0]])
    exact = -sum(math.log(probs[i, x0[0, i]]) for i in range(LENGTH))
    est, stderr = elbo_estimate(model, x0, 200_000, eps=1e-6)
    assert abs(est - 0.8 * exact) < 4 * stderr + 1e-3, (est, exact, stderr)


def test_constant_weighting_changes_the_training_loss_but_not_the_reported_nll():
    model_elbo, _ = product_model(LinearSchedule(), "elbo")
    model_const, _ = product_model(LinearSchedule(), "constant")
    x0 = torch.tensor([[0, 2, 1, 0]]).expand(64, -1)
    t = sample_times(64, generator=torch.Generator().manual_seed(2))
    a = model_elbo.loss(x0, t, torch.Generator().manual_seed(3))
    b = model_const.loss(x0, t, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a.nll, b.nll)
    assert not torch.isclose(a.loss, b.loss)


def test_masked_nll_counts_only_masked_positions():
    log_p = torch.log(torch.tensor([[[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]]]))
    x0 = torch.tensor([[0, 1, 1]])
    x_t = torch.tensor([[2, 1, 2]])
    got = masked_diffusion_nll(log_p, x0, x_t, torch.tensor([3.0]), mask_id=2)
    torch.testing.assert_close(got, torch.tensor([3.0 * (-math.log(0.5) - math.log(0.8))]))


def test_estimate_nll_matches_the_exact_nll_with_an_honest_standard_error():
    from augdiff.metrics import estimate_nll

    model, probs = product_model(LinearSchedule())
    g = torch.Generator().manual_seed(7)
    x = torch.stack([torch.multinomial(probs[i], 400, replacement=True, generator=g) for i in range(LENGTH)], dim=1)
    exact = -sum(torch.log(probs[i, x[:, i]]) for i in range(LENGTH)).mean().item() / LENGTH
    est = estimate_nll(model, x.split(100), time_samples=16, time_eps=1e-5)
    assert est.n_sequences == 400 and est.time_samples == 16
    assert abs(est.nll - exact) < 4 * est.stderr, (est.nll, exact, est.stderr)
    assert est.bpt == pytest.approx(est.nll / math.log(2))


def test_estimate_nll_stratifies_each_sequences_times():
    """Sequence i of a batch gets K times spaced exactly 1/K apart (one stratum each)."""
    from augdiff.metrics import estimate_nll

    model, _ = product_model(LinearSchedule())
    seen = []
    original = model.loss

    def recording_loss(x0, t, generator=None, options=None):
        seen.append(t.clone())
        return original(x0, t, generator, options)

    model.loss = recording_loss
    estimate_nll(model, [torch.zeros(5, LENGTH, dtype=torch.long)], time_samples=4, time_eps=0.0)
    times = torch.stack(seen, dim=1)  # [B, K]
    gaps = torch.remainder(times.diff(dim=1), 1.0)
    torch.testing.assert_close(gaps, torch.full_like(gaps, 0.25), atol=1e-6, rtol=0)


def test_masked_nll_leaves_out_positions_that_are_not_counted():
    log_p = torch.log(torch.tensor([[[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]]]))
    x0, x_t = torch.tensor([[0, 1, 1]]), torch.tensor([[2, 2, 2]])
    counted = torch.tensor([[True, False, True]])
    got = masked_diffusion_nll(log_p, x0, x_t, torch.tensor([2.0]), mask_id=2, counted=counted)
    torch.testing.assert_close(got, torch.tensor([2.0 * (-math.log(0.5) - math.log(0.8))]))


def test_padding_is_left_out_of_the_elbo_and_its_length():
    """Rows ``[0, 2, PAD, PAD]`` (pad id 1): the ELBO per token is the exact NLL of the two real tokens / 2."""
    model, probs = product_model(LinearSchedule())
    model.pad_id = 1
    x0 = torch.tensor([[0, 2, 1, 1]])
    exact = -(math.log(probs[0, 0]) + math.log(probs[1, 2])) / 2
    n = 100_000
    t = sample_times(n, eps=1e-6, generator=torch.Generator().manual_seed(0))
    out = model.loss(x0.expand(n, -1), t, torch.Generator().manual_seed(1))
    est, stderr = out.nll_per_sequence.mean().item(), out.nll_per_sequence.std().item() / math.sqrt(n)
    assert abs(est - exact) < 4 * stderr + 1e-3, (est, exact, stderr)
    assert abs(out.loss.item() - exact) < 4 * stderr + 1e-3  # the training loss pools over real tokens only
    all_pad = model.loss(torch.ones(4, LENGTH, dtype=torch.long), torch.full((4,), 0.5))
    assert torch.all(all_pad.nll_per_sequence == 0)
