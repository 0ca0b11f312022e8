"""The ancestral sampler with exact denoisers: it recovers a non-product distribution, with or without cache."""

import pytest
import torch
from dummies import EnumeratedDenoiser, all_sequences
from scipy.stats import chisquare

from augdiff.sampling import AncestralSampler
from augdiff.schedules import CosineSchedule, GeometricSchedule, LinearSchedule

VOCAB, LENGTH, N = 3, 3, 30_000


def correlated_distribution() -> torch.Tensor:
    """A distribution over 27 sequences that is far from the product of its marginals."""
    states = all_sequences(VOCAB, LENGTH)
    weights = torch.ones(len(states), dtype=torch.float64)
    weights[(states[:, 0] == states[:, 1]) & (states[:, 1] == states[:, 2])] = 12.0  # 000, 111, 222
    weights[(states[:, 0] == 0) & (states[:, 2] == 2)] = 4.0
    return weights / weights.sum()


def empirical(samples: torch.Tensor) -> torch.Tensor:
    index = (samples * torch.tensor([VOCAB**2, VOCAB, 1])).sum(-1)
    return torch.bincount(index, minlength=VOCAB**LENGTH).double()


def product_of_marginals(probs: torch.Tensor) -> torch.Tensor:
    states = all_sequences(VOCAB, LENGTH)
    marg = [torch.bincount(states[:, i], weights=probs, minlength=VOCAB) for i in range(LENGTH)]
    return torch.stack([marg[0][s[0]] * marg[1][s[1]] * marg[2][s[2]] for s in states])


def draw(probs, steps, cache, schedule=None, seed=0):
    denoiser = EnumeratedDenoiser(probs, VOCAB, LENGTH)
    sampler = AncestralSampler(denoiser, schedule or LinearSchedule(), cache=cache)
    out = sampler.sample(N, LENGTH, steps, generator=torch.Generator().manual_seed(seed))
    return out, denoiser


@pytest.mark.parametrize("cache", [False, True], ids=["plain", "cached"])
def test_many_steps_recover_the_joint_distribution(cache):
    probs = correlated_distribution()
    out, _ = draw(probs, steps=400, cache=cache)
    assert (out.x < VOCAB).all()
    p_value = chisquare(empirical(out.x).numpy(), (probs * N).numpy()).pvalue
    assert p_value > 1e-3, p_value


def test_cosine_schedule_also_recovers_it():
    probs = correlated_distribution()
    out, _ = draw(probs, steps=400, cache=True, schedule=CosineSchedule(), seed=1)
    assert chisquare(empirical(out.x).numpy(), (probs * N).numpy()).pvalue > 1e-3


def test_one_step_gives_the_product_of_marginals_not_the_joint():
    """The factorization limit (LADD Prop. 2.1): one step from all-mask samples positions independently.
    This is also the check that the chi-square test above can fail."""
    probs = correlated_distribution()
    out, _ = draw(probs, steps=1, cache=False)
    counts = empirical(out.x).numpy()
    assert chisquare(counts, (probs * N).numpy()).pvalue < 1e-10
    assert chisquare(counts, (product_of_marginals(probs) * N).numpy()).pvalue > 1e-3


def test_cache_skips_rows_whose_tokens_did_not_change():
    probs = correlated_distribution()
    plain, den_plain = draw(probs, steps=200, cache=False)
    cached, den_cached = draw(probs, steps=200, cache=True)
    assert plain.rows_evaluated == 200 * N
    # With 3 tokens over 200 steps a sequence changes in at most 3 steps: ≤ 4 evaluations per sequence.
    assert cached.rows_evaluated <= 4 * N
    assert den_cached.rows == cached.rows_evaluated


def test_same_seed_same_samples():
    probs = correlated_distribution()
    a, _ = draw(probs, steps=16, cache=True, seed=9)
    b, _ = draw(probs, steps=16, cache=True, seed=9)
    assert torch.equal(a.x, b.x)


def test_prefix_and_infill_positions_are_never_changed():
    probs = correlated_distribution()
    denoiser = EnumeratedDenoiser(probs, VOCAB, LENGTH)
    sampler = AncestralSampler(denoiser, LinearSchedule(), cache=True)
    fixed = torch.tensor([[True, False, True]])
    x_init = torch.tensor([[0, 0, 2]])
    out = sampler.sample(
        5000,
        LENGTH,
        50,
        x_init=x_init,
        fixed=fixed,
        return_intermediates=True,
        generator=torch.Generator().manual_seed(0),
    )
    for x in out.intermediates:
        assert (x[:, 0] == 0).all() and (x[:, 2] == 2).all()
    # the free middle token follows the conditional p(x1 | x0=0, x2=2): uniform here
    freq = torch.bincount(out.x[:, 1], minlength=VOCAB).double() / 5000
    torch.testing.assert_close(freq, torch.full((VOCAB,), 1 / 3, dtype=torch.float64), atol=0.03, rtol=0)


def test_intermediates_only_ever_unmask():
    probs = correlated_distribution()
    denoiser = EnumeratedDenoiser(probs, VOCAB, LENGTH)
    out = AncestralSampler(denoiser, LinearSchedule()).sample(200, LENGTH, 10, return_intermediates=True)
    assert len(out.intermediates) == 11
    for before, after in zip(out.intermediates, out.intermediates[1:], strict=False):
        was_set = before != VOCAB
        assert torch.equal(after[was_set], before[was_set])
    assert (out.intermediates[0] == VOCAB).all() and (out.intermediates[-1] != VOCAB).all()


@pytest.mark.parametrize("mode", ["sample", "argmax"])
def test_final_denoise_resolves_masks_left_by_the_grid(mode):
    """Geometric α(0) < 1 and a grid ending at t_min > 0 both leave masks for the final step."""
    probs = correlated_distribution()
    denoiser = EnumeratedDenoiser(probs, VOCAB, LENGTH)
    sampler = AncestralSampler(denoiser, GeometricSchedule(), final_denoise=mode)
    out = sampler.sample(2000, LENGTH, 4, t_min=0.6, generator=torch.Generator().manual_seed(0))
    assert (out.x != VOCAB).all()


def test_cache_is_refused_for_time_conditioned_denoisers():
    class TimeDependent(EnumeratedDenoiser):
        cacheable = False

    with pytest.raises(ValueError, match="cache"):
        AncestralSampler(TimeDependent(correlated_distribution(), VOCAB, LENGTH), LinearSchedule(), cache=True)
