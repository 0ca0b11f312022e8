"""Sliced Wasserstein distance against SciPy's one-dimensional W1."""

import torch
from scipy.stats import wasserstein_distance

from augdiff.metrics import sliced_wasserstein, wasserstein_1d


def test_w1_matches_scipy_for_equal_and_unequal_sizes():
    g = torch.Generator().manual_seed(0)
    for n, m in [(50, 50), (37, 91)]:
        a = torch.randn(n, 3, generator=g, dtype=torch.float64)
        b = torch.randn(m, 3, generator=g, dtype=torch.float64) * 2 + 1
        got = wasserstein_1d(a, b)
        for j in range(3):
            assert abs(got[j].item() - wasserstein_distance(a[:, j].numpy(), b[:, j].numpy())) < 1e-10


def test_swd_of_a_sample_with_itself_is_zero_and_grows_with_a_shift():
    x = (torch.rand(500, 16, generator=torch.Generator().manual_seed(1)) < 0.5).long()
    assert sliced_wasserstein(x, x) == 0.0
    shifted = x.double() + 1.0
    # shifting every point by the vector c moves each projection by θ·c: SW = E|θ·c|, c = 1 in 16 dims
    gen = torch.Generator().manual_seed(2)
    theta = torch.randn(16, 20_000, generator=gen, dtype=torch.float64)
    expected = (theta / theta.norm(dim=0)).sum(dim=0).abs().mean().item()
    assert abs(sliced_wasserstein(x, shifted, n_directions=20_000) - expected) < 0.02


def test_swd_separates_correlated_from_independent_bits():
    g = torch.Generator().manual_seed(3)
    same = torch.rand(2000, 1, generator=g).lt(0.5).long().expand(-1, 8)  # all bits equal
    indep = torch.rand(2000, 8, generator=g).lt(0.5).long()
    other_same = torch.rand(2000, 1, generator=g).lt(0.5).long().expand(-1, 8)
    assert sliced_wasserstein(same, indep) > 3 * sliced_wasserstein(same, other_same)
