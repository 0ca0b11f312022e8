"""The sawtooth task: its probabilities, the analytic oracle and the exact likelihood."""

import math

import numpy as np
import pytest
import torch

from augdiff.data import SawtoothDataset, binary_entropy, sawtooth_oracle_nll, sawtooth_probs
from augdiff.data.sawtooth import sawtooth_log_likelihood


def test_probs_follow_the_definition():
    s = torch.tensor([0.0, 0.3], dtype=torch.float64)
    p = sawtooth_probs(s, d=8, a=0.01)
    for n, shift in enumerate(s.tolist()):
        for i in range(8):
            u = (i / 8 + shift) % 1.0
            v = (2 * u) % 1.0
            assert p[n, i].item() == pytest.approx(0.01 + 0.98 * (1 - abs(2 * v - 1)))
    assert p.min() >= 0.01 and p.max() <= 0.99


def test_tokens_are_bernoulli_of_p_given_s():
    data = SawtoothDataset(seq_len=16)
    sample = data.sample(40_000, torch.Generator().manual_seed(0))
    assert set(sample.x.unique().tolist()) <= {0, 1}
    residual = (sample.x.double() - sample.p).mean(dim=0)
    assert residual.abs().max() < 0.02


def test_oracle_matches_numerical_integration():
    for a in (0.01, 0.1, 0.3):
        w = (np.arange(1_000_000) + 0.5) / 1_000_000
        numeric = binary_entropy(torch.tensor(a + (1 - 2 * a) * w)).mean().item()
        assert sawtooth_oracle_nll(a) == pytest.approx(numeric, abs=1e-6)
    assert sawtooth_oracle_nll(1e-9) == pytest.approx(0.5, abs=1e-6)  # ∫ H(y) dy = 1/2 nats


def test_oracle_is_the_average_conditional_entropy_of_data():
    data = SawtoothDataset()
    sample = data.sample(4000, torch.Generator().manual_seed(1))
    assert binary_entropy(sample.p).mean().item() == pytest.approx(data.oracle_nll(), abs=3e-3)


def test_log_likelihood_matches_brute_force_integral_on_short_sequences():
    x = torch.tensor([[0, 1, 1, 0], [1, 1, 1, 1]])
    s = (torch.arange(200_000, dtype=torch.float64) + 0.5) / 200_000
    p = sawtooth_probs(s, 4)
    for row, got in zip(x, sawtooth_log_likelihood(x, grid=4096), strict=True):
        lik = torch.where(row.bool(), p, 1 - p).prod(dim=1).mean()
        assert got.item() == pytest.approx(math.log(lik.item()), abs=1e-6)


def test_data_entropy_lies_between_oracle_and_one_bit():
    data = SawtoothDataset()
    entropy, stderr = data.entropy_per_token(512)
    assert data.oracle_nll() < entropy - 3 * stderr
    assert entropy < math.log(2)


def test_batches_are_seeded_and_fresh_each_step():
    data = SawtoothDataset()
    a = data.train_batch(seed=0, step=5, global_batch=8)
    assert torch.equal(a, data.train_batch(seed=0, step=5, global_batch=8))
    assert not torch.equal(a, data.train_batch(seed=0, step=6, global_batch=8))
    assert torch.equal(a[2:6], data.train_batch(seed=0, step=5, global_batch=8, rows=slice(2, 6)))


def test_validation_set_is_one_fixed_set_whatever_the_size_asked():
    data = SawtoothDataset(valid_size=64)
    small, full = data.valid_sample(10), data.valid_sample()
    assert torch.equal(small.x, full.x[:10]) and full.x.shape == (64, 128)
    assert torch.equal(SawtoothDataset(valid_size=64).valid_sample().x, full.x)


def test_marginals_are_one_half():
    torch.testing.assert_close(SawtoothDataset(seq_len=16).marginals(), torch.full((16,), 0.5, dtype=torch.float64))
