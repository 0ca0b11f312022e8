"""Remasking samplers (ReMDM, the flow-matching corrector) against exact small cases."""

import itertools
import math

import pytest
import torch
from dummies import EnumeratedDenoiser
from scipy.stats import chisquare
from test_ancestral_sampler import LENGTH, VOCAB, correlated_distribution, empirical

from augdiff.sampling import AncestralSampler, Remasking
from augdiff.sampling.remasking import (
    dfm_corrector_weights,
    loop_alpha,
    remask_step,
    remdm_unmask_probability,
    sigma_max,
)
from augdiff.schedules import LinearSchedule

N = 20_000


def draw(strategy, steps, seed=0, n=N, probs=None, **kw):
    denoiser = EnumeratedDenoiser(correlated_distribution() if probs is None else probs, VOCAB, LENGTH)
    remasking = None if strategy is None else Remasking(strategy, **kw)
    sampler = AncestralSampler(denoiser, LinearSchedule(), remasking=remasking)
    return sampler.sample(n, LENGTH, steps, generator=torch.Generator().manual_seed(seed), return_intermediates=True)


@pytest.mark.parametrize("strategy", ["cap", "rescale"])
def test_sigma_zero_is_the_ancestral_sampler_exactly(strategy):
    plain = draw(None, steps=6, n=500)
    remask = draw(strategy, steps=6, n=500, eta=0.0)
    assert torch.equal(plain.x, remask.x)
    assert all(torch.equal(a, b) for a, b in zip(plain.intermediates, remask.intermediates, strict=True))


@pytest.mark.parametrize(
    "strategy, kw", [("cap", {"eta": 0.05}), ("rescale", {"eta": 0.05}), ("loop", {"eta": 0.05}), ("dfm", {})]
)
def test_with_an_exact_denoiser_the_samplers_draw_the_data_distribution(strategy, kw):
    """q_σ keeps the forward marginals, so with an exact denoiser and few changes per step (each position drawn
    on its own is exact only then, as for the ancestral sampler) the samplers draw the data law; and they did
    remask (an unmasked token returned to the mask at some step)."""
    out = draw(strategy, steps=300, seed=1, **kw)
    probs = correlated_distribution()
    assert (out.x < VOCAB).all()
    assert chisquare(empirical(out.x).numpy(), (probs * N).numpy()).pvalue > 1e-3
    remasked = sum(int(((a != VOCAB) & (b == VOCAB)).sum()) for a, b in itertools.pairwise(out.intermediates))
    assert remasked > 100


def test_a_wrong_remasking_rule_is_caught_by_the_same_check():
    """Remasking without raising the unmask probability (σ > 0 but ρ_flip for masked positions) leaves many
    masks to the last step, which fills them independently: the chi-square test sees it."""
    denoiser = EnumeratedDenoiser(correlated_distribution(), VOCAB, LENGTH)
    gen = torch.Generator().manual_seed(3)
    x = torch.full((N, LENGTH), VOCAB)
    grid = torch.linspace(1, 0, 31, dtype=torch.float64)
    alphas = LinearSchedule().alpha(grid)
    for k in range(30):
        log_p = denoiser.x0_log_probs(x, grid[k].expand(N))
        flip = remdm_unmask_probability(float(alphas[k]), float(alphas[k + 1]), 0.0)
        x, _ = remask_step(x, log_p, flip, 0.3 if k < 29 else 0.0, VOCAB, gen)
    assert (x < VOCAB).all()
    assert chisquare(empirical(x).numpy(), (correlated_distribution() * N).numpy()).pvalue < 1e-6


def test_given_positions_are_never_remasked():
    denoiser = EnumeratedDenoiser(correlated_distribution(), VOCAB, LENGTH)
    sampler = AncestralSampler(denoiser, LinearSchedule(), remasking=Remasking("rescale", eta=1.0))
    fixed = torch.tensor([[True, False, False]])
    x_init = torch.tensor([[2, 0, 0]])
    out = sampler.sample(
        200, LENGTH, 20, x_init=x_init, fixed=fixed, generator=torch.Generator().manual_seed(0),
        return_intermediates=True,
    )  # fmt: skip
    assert all((x[:, 0] == 2).all() for x in out.intermediates)
    assert any(((a[:, 1:] != VOCAB) & (b[:, 1:] == VOCAB)).any() for a, b in itertools.pairwise(out.intermediates))


def test_sigma_max_keeps_probabilities_valid():
    for alpha_t, alpha_s in [(0.0, 0.1), (0.3, 0.4), (0.9, 0.95), (0.5, 1.0)]:
        top = sigma_max(alpha_t, alpha_s)
        assert 0.0 <= top <= 1.0
        for sigma in (0.0, top / 2, top):
            if alpha_t < 1.0:
                p = remdm_unmask_probability(alpha_t, alpha_s, sigma)
                assert -1e-12 <= p <= 1.0 + 1e-12
                # the marginal: α_t(1−σ) + (1−α_t)·p = α_s
                assert math.isclose(alpha_t * (1 - sigma) + (1 - alpha_t) * p, alpha_s, abs_tol=1e-12)


def test_strategies_choose_sigma_as_the_paper_says():
    assert Remasking("cap", eta=0.05).probabilities(0.5, 0.5, 0.6)[1] == 0.05
    assert Remasking("cap", eta=0.9).probabilities(0.5, 0.5, 0.6)[1] == pytest.approx(0.8)  # capped at σ_max
    assert Remasking("rescale", eta=0.5).probabilities(0.5, 0.5, 0.6)[1] == pytest.approx(0.4)
    conf = torch.tensor([[-0.9, -0.2, -math.inf, -0.5], [-math.inf] * 4])
    p_unmask, sigma = Remasking("conf").probabilities(0.5, 0.5, 0.6, conf)
    assert sigma[0, 2] == 0 and (sigma[1] == 0).all()
    assert float(sigma[0].sum()) == pytest.approx(sigma_max(0.5, 0.6))
    assert sigma[0, 1] > sigma[0, 3] > sigma[0, 0]  # the least confident token is the likeliest to go back
    assert float(p_unmask[0, 2]) == pytest.approx(0.2)  # a masked position: ρ_flip


def test_loop_path_and_phases():
    r = Remasking("loop", eta=0.1, t_on=0.6, t_off=0.2, alpha_on=0.8)
    assert r.alphas(1.0, 0.9, 0, 0) == pytest.approx((0.0, 0.2))
    assert r.alphas(0.7, 0.5, 0, 0) == pytest.approx((0.6, 0.8))  # a step across t_on ends at α_on
    assert r.alphas(0.5, 0.4, 0, 0) == (0.8, 0.8)
    assert r.probabilities(0.5, 0.8, 0.8) == pytest.approx((0.1 * 0.8 / 0.2, 0.1))  # marginal α_on kept
    assert r.alphas(0.3, 0.1, 0, 0) == pytest.approx((0.8, 0.9))  # a step across t_off starts the descent
    assert r.probabilities(0.3, 0.8, 1.0)[1] == 0.0  # σ ≤ σ_max = 0 on the step to α = 1
    assert r.alphas(0.2, 0.0, 0, 0) == pytest.approx((0.8, 1.0))
    assert r.probabilities(0.2, 0.8, 1.0)[1] == 0.0
    assert loop_alpha(0.1, 0.6, 0.2, 0.8) == pytest.approx(0.9)


def test_dfm_corrector_weights():
    for t in (0.0, 0.3, 0.5, 1.0):
        a, b = dfm_corrector_weights(t)
        assert a - b == pytest.approx(1.0)
    assert dfm_corrector_weights(0.5)[0] == pytest.approx(1 + 10 * 0.25**0.25)
    assert Remasking("dfm").probabilities(1.0, 0.0, 0.1) == pytest.approx((0.1, 0.0))


@pytest.mark.parametrize(
    "bad", [{"strategy": "nope"}, {"strategy": "cap", "eta": 2.0}, {"strategy": "loop", "t_on": 0.01}]
)
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        Remasking(**bad)


def test_remasking_and_a_confidence_ordering_do_not_mix():
    denoiser = EnumeratedDenoiser(correlated_distribution(), VOCAB, LENGTH)
    with pytest.raises(ValueError, match="choose one"):
        AncestralSampler(denoiser, LinearSchedule(), remasking=Remasking("cap"), ordering="confidence")
