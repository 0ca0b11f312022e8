"""Low-discrepancy (antithetic) time sampling."""

import torch

from augdiff.processes import sample_times


def test_antithetic_times_cover_one_stratum_each():
    t = sample_times(64, antithetic=True, eps=0.0, generator=torch.Generator().manual_seed(3))
    counts = torch.histc(t, bins=64, min=0.0, max=1.0)
    assert torch.equal(counts, torch.ones(64))


def test_times_lie_in_eps_one_and_are_uniform_on_average():
    draws = torch.cat([sample_times(16, eps=0.1, generator=torch.Generator().manual_seed(i)) for i in range(500)])
    assert draws.min() >= 0.1 and draws.max() <= 1.0
    assert abs(draws.mean().item() - 0.55) < 0.01


def test_micro_batches_share_one_grid():
    """Slices of a stratified grid (offset/total) reproduce the whole grid when drawn with the same u."""
    whole = sample_times(8, generator=torch.Generator().manual_seed(5), eps=0.0)
    parts = [sample_times(4, generator=torch.Generator().manual_seed(5), eps=0.0, offset=o, total=8) for o in (0, 4)]
    torch.testing.assert_close(torch.cat(parts), whole)
