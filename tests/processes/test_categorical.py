"""Categorical draws in float64, temperature and top-p."""

import torch
from scipy.stats import chisquare

from augdiff.processes import adjust_log_probs, sample_categorical


def test_draws_follow_the_distribution_including_tiny_probabilities():
    probs = torch.tensor([0.5, 0.3, 0.19, 0.01], dtype=torch.float64)
    n = 200_000
    idx = sample_categorical(probs.expand(n, -1), torch.Generator().manual_seed(0))
    counts = torch.bincount(idx, minlength=4).double()
    assert chisquare(counts.numpy(), (probs * n).numpy()).pvalue > 1e-3


def test_zero_probability_tokens_are_never_drawn():
    probs = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]], dtype=torch.float64).repeat(5000, 1)
    idx = sample_categorical(probs, torch.Generator().manual_seed(1)).view(5000, 2)
    assert (idx[:, 0] == 1).all() and (idx[:, 1] != 1).all()


def test_temperature_sharpens_and_flattens():
    log_p = torch.log(torch.tensor([0.6, 0.3, 0.1]))
    cold = adjust_log_probs(log_p, temperature=0.5)
    torch.testing.assert_close(cold, torch.tensor([36.0, 9.0, 1.0], dtype=torch.float64) / 46.0)
    hot = adjust_log_probs(log_p, temperature=1e6)
    torch.testing.assert_close(hot, torch.full((3,), 1 / 3, dtype=torch.float64), atol=1e-5, rtol=0)
    assert cold.dtype == torch.float64


def test_top_p_keeps_the_smallest_nucleus():
    log_p = torch.log(torch.tensor([0.1, 0.5, 0.25, 0.15]))
    torch.testing.assert_close(
        adjust_log_probs(log_p, top_p=0.5), torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    )
    torch.testing.assert_close(
        adjust_log_probs(log_p, top_p=0.7), torch.tensor([0.0, 2 / 3, 1 / 3, 0.0], dtype=torch.float64)
    )
    torch.testing.assert_close(adjust_log_probs(log_p, top_p=1.0), log_p.exp().double())
