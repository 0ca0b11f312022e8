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


def test_cached_and_plain_sampling_draw_identical_samples():
    """The cache only skips work: with the same seed the two paths give the same tokens, bit for bit."""
    probs = correlated_distribution()
    for schedule in (LinearSchedule(), CosineSchedule()):
        plain, _ = draw(probs, steps=24, cache=False, schedule=schedule, seed=4)
        cached, _ = draw(probs, steps=24, cache=True, schedule=schedule, seed=4)
        assert torch.equal(plain.x, cached.x)
        assert cached.rows_evaluated < plain.rows_evaluated


@pytest.mark.parametrize("schedule", [LinearSchedule(), CosineSchedule()], ids=["linear", "cosine"])
def test_masked_fraction_follows_the_schedule_on_the_grid(schedule):
    """After step k of T, a token is still masked with probability 1 − α(t_k) (ρ_flip, schedule and grid)."""
    probs = correlated_distribution()
    steps, n = 10, 20_000
    out = AncestralSampler(EnumeratedDenoiser(probs, VOCAB, LENGTH), schedule).sample(
        n, LENGTH, steps, return_intermediates=True, generator=torch.Generator().manual_seed(2)
    )
    grid = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    for k, x in enumerate(out.intermediates):
        expected = 1 - schedule.alpha(grid[k]).item()
        assert abs((x == VOCAB).double().mean().item() - expected) < 0.01, (k, expected)


def exact_two_step_law(probs: torch.Tensor, schedule) -> torch.Tensor:
    """Law of the T=2 sampler by enumeration: which positions unmask at step 1 (prob ρ each), their tokens from
    the product of marginals given all-mask, then the rest from the product of conditionals given those."""
    states = all_sequences(VOCAB, LENGTH)
    denoiser = EnumeratedDenoiser(probs, VOCAB, LENGTH)
    a_half = schedule.alpha(torch.tensor(0.5, dtype=torch.float64)).item()
    rho = a_half  # from t=1 (α=0) to t=0.5
    marg = denoiser.x0_log_probs(torch.full((1, LENGTH), VOCAB), torch.ones(1)).exp()[0]
    law = torch.zeros(len(states), dtype=torch.float64)
    for subset in all_sequences(2, LENGTH):  # which positions unmask at step 1
        p_subset = torch.prod(torch.where(subset.bool(), rho, 1 - rho))
        partial = torch.where(subset.bool(), states, VOCAB)  # [S, L] tokens revealed at step 1
        first = torch.prod(torch.where(subset.bool(), marg[torch.arange(LENGTH), states], 1.0), dim=1)
        cond = denoiser.x0_log_probs(partial, torch.ones(len(states))).exp()  # [S, L, V]
        cond_token = cond.gather(-1, states.unsqueeze(-1)).squeeze(-1)  # p(x_i = state_i | revealed), [S, L]
        second = torch.prod(torch.where(subset.bool(), 1.0, cond_token), dim=1)
        law += p_subset * first * second
    return law


@pytest.mark.parametrize("schedule", [LinearSchedule(), CosineSchedule()], ids=["linear", "cosine"])
def test_two_step_sampler_matches_its_exact_law(schedule):
    """A sharper target than the data: the exact distribution of the 2-step sampler, enumerated."""
    probs = correlated_distribution()
    law = exact_two_step_law(probs, schedule)
    assert law.sum().item() == pytest.approx(1.0)
    out, _ = draw(probs, steps=2, cache=False, schedule=schedule, seed=5)
    assert chisquare(empirical(out.x).numpy(), (law / law.sum() * N).numpy()).pvalue > 1e-3
    assert chisquare(empirical(out.x).numpy(), (probs * N).numpy()).pvalue < 1e-6  # and it is not the data law


class TimeDenoiser(EnumeratedDenoiser):
    """p(x0 = 1) = t at every masked position (vocabulary {0, 1}): pins which time the sampler passes."""

    cacheable = False

    def x0_log_probs(self, x_t, t, state=None):
        p1 = t.double()[:, None].expand(x_t.shape)
        return torch.stack([1 - p1, p1], dim=-1).clamp_min(1e-300).log()


def test_the_denoiser_sees_the_current_time_not_the_next():
    """T=2 on the linear grid 1 → ½ → 0: half the tokens unmask at t=1 (all ones), the rest at t=½ (half ones):
    P(1) = ½·1 + ½·½ = ¾. Passing the next time s instead would give ½·½ + ½·0 = ¼."""
    denoiser = TimeDenoiser(torch.ones(4), 2, 2)
    out = AncestralSampler(denoiser, LinearSchedule()).sample(20_000, 2, 2, generator=torch.Generator().manual_seed(3))
    assert out.x.double().mean().item() == pytest.approx(0.75, abs=0.01)


def test_argmax_final_denoise_fills_leftover_masks_with_the_mode():
    probs = correlated_distribution()
    denoiser = EnumeratedDenoiser(probs, VOCAB, LENGTH)
    sampler = AncestralSampler(denoiser, LinearSchedule(), final_denoise="argmax")
    out = sampler.sample(
        3000, LENGTH, 2, t_min=0.7, return_intermediates=True, generator=torch.Generator().manual_seed(6)
    )
    before, after = out.intermediates[-2], out.intermediates[-1]
    assert len(out.intermediates) == 4  # start, 2 steps, final denoise
    mode = denoiser.x0_log_probs(before, torch.zeros(len(before))).argmax(-1)
    left = before == VOCAB
    assert left.any() and torch.equal(after[left], mode[left])
