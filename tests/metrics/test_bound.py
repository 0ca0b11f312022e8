"""The likelihood bound of masked diffusion with CADD's latent (metrics.bound): the bridge KL weight, one step's
latent KL, and the whole bound on models whose exact NLL is known (context-free logits, the exact denoiser of a
correlated distribution)."""

import itertools
import math

import pytest
import torch
from dummies import EnumeratedDenoiser, FixedLogits, all_sequences
from ladd_models import METHODS, ladd_model
from torch import nn

from augdiff.channels.base import ChannelInput
from augdiff.channels.cadd import CADDChannel
from augdiff.config import build_config
from augdiff.errors import AugdiffError
from augdiff.methods import build_model
from augdiff.metrics.bound import estimate_bound, step_terms
from augdiff.metrics.likelihood import estimate_nll
from augdiff.model import DiffusionModel
from augdiff.nn.protocol import NetworkOutput
from augdiff.processes.gaussian import bridge_kl_weight, gaussian_bridge
from augdiff.schedules import LinearSchedule
from augdiff.schedules.gaussian import FlowMatchingSchedule, make_gaussian_schedule

V, L, D = 2, 3, 4
PAIRS = [(1.0, 0.5), (0.9, 0.6), (0.5, 0.25), (0.3, 0.29), (0.05, 0.01)]


def gen(seed):
    return torch.Generator().manual_seed(seed)


class ContextFree(FixedLogits):
    """Fixed per-position logits whatever the input (so p(x_0) = ∏_i softmax(logits_i)[x_0^i] exactly), with an
    embedding table for CADD's latent, which the prediction then ignores."""

    def __init__(self, logits, hidden=D):
        super().__init__(logits)
        self.embed = nn.Embedding(logits.shape[-1], hidden)

    def embed_tokens(self, x):
        return self.embed(x)

    def embedding_weight(self):
        return self.embed.weight


class ExactNetwork(nn.Module):
    """The exact denoiser of a distribution over all V**L sequences, as network logits (mask logit dropped)."""

    time_conditioned = False

    def __init__(self, probs):
        super().__init__()
        self.denoiser = EnumeratedDenoiser(probs, V, L)

    def forward(self, x_t, t, input_embeds=None):
        log_p = self.denoiser.x0_log_probs(x_t, t).float()
        return NetworkOutput(torch.cat([log_p, torch.zeros_like(log_p[..., :1])], dim=-1))


def context_free(channel=False, sigma=1.0):
    logits = torch.cat([torch.randn(L, V, generator=gen(0)), torch.zeros(L, 1)], dim=-1)
    net = ContextFree(logits)
    cadd = None
    if channel:
        cadd = CADDChannel(FlowMatchingSchedule(), LinearSchedule(), V, D, z0_hat="soft", sigma=sigma)
    return DiffusionModel(net, LinearSchedule(), V, channel=cadd).eval()


def exact_nll(model, x0):
    """−log p(x_0) of the context-free model: each position is drawn on its own, whatever the order."""
    log_p = model.network.logits[:, :V].log_softmax(-1)
    return -log_p.gather(-1, x0.reshape(L, 1)).sum().item()


def step_means(model, x0, steps, rows):
    """Σ_k E[step_terms(t_k → t_{k−1})] by Monte Carlo over masks and latents at every k: ``(token, latent)`` sums
    per sequence and their standard errors."""
    x = x0.expand(rows, -1)
    means, variances = torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    for k in range(1, steps + 1):
        t, s = torch.full((rows,), k / steps), torch.full((rows,), (k - 1) / steps)
        terms = torch.stack(step_terms(model, x, t, s, gen(k)))
        means += terms.mean(1)
        variances += terms.var(1) / rows
    (token, latent), (token_se, latent_se) = means.tolist(), variances.sqrt().tolist()
    return token, latent, token_se, latent_se


# -- the latent's KL for one step ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["flow", "vp-cosine", "vp-linear"])
def test_bridge_kl_weight_is_c_squared_over_twice_the_bridge_variance(name):
    """½(SNR(s) − SNR(t)) = c²/(2β̃) with c the z_0 coefficient and β̃ the variance of gaussian_bridge."""
    schedule = make_gaussian_schedule(name)
    t = torch.tensor([p[0] for p in PAIRS], dtype=torch.float64)
    s = torch.tensor([p[1] for p in PAIRS], dtype=torch.float64)
    c, var = gaussian_bridge(torch.zeros(len(PAIRS), 1), torch.ones(len(PAIRS), 1), t, s, schedule)
    expected = c[:, 0].double() ** 2 / (2.0 * var[:, 0].double())
    torch.testing.assert_close(bridge_kl_weight(t, s, schedule), expected, rtol=1e-6, atol=0.0)


@pytest.mark.parametrize("name", ["flow", "vp-cosine"])
def test_kl_between_bridges_to_z0_and_to_z0_hat_is_the_weight_times_the_squared_error(name):
    """KL(N(μ̃(z_0), β̃I) ‖ N(μ̃(ẑ_0), β̃I)) in D dims, by torch.distributions, = bridge_kl_weight·‖z_0 − ẑ_0‖²."""
    schedule = make_gaussian_schedule(name)
    g = gen(1)
    z_t, z0, z0_hat = (torch.randn(len(PAIRS), 5, generator=g, dtype=torch.float64) for _ in range(3))
    t = torch.tensor([p[0] for p in PAIRS], dtype=torch.float64)
    s = torch.tensor([p[1] for p in PAIRS], dtype=torch.float64)
    mean_q, var = gaussian_bridge(z_t, z0, t, s, schedule)
    mean_p, _ = gaussian_bridge(z_t, z0_hat, t, s, schedule)
    std = var.sqrt().expand_as(mean_q)
    q = torch.distributions.Independent(torch.distributions.Normal(mean_q, std), 1)
    p = torch.distributions.Independent(torch.distributions.Normal(mean_p, std), 1)
    expected = torch.distributions.kl_divergence(q, p)
    got = bridge_kl_weight(t, s, schedule) * ((z0 - z0_hat) ** 2).sum(-1)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-9)


def test_channel_latent_kl_is_the_kl_between_the_samplers_bridges_on_the_sigma_scaled_path():
    """CADDChannel.latent_kl (hard ẑ_0, σ = 0.3) = KL between the bridge kernels the sampler uses, towards z_0 and
    towards w(argmax π): both are σ·bridge(z/σ), so the weight is divided by σ²."""
    sigma = 0.3
    model = context_free(channel=True, sigma=sigma)
    channel = model.channel
    channel.z0_hat = "hard"
    x0 = torch.tensor([[0, 1, 1], [1, 0, 1]])
    z0 = channel.latent_of(model.network, x0)
    log_p = torch.randn(2, L, V, generator=gen(2)).log_softmax(-1)
    t, s = torch.tensor([0.7, 0.4]), torch.tensor([0.5, 0.1])
    got = channel.latent_kl(model.network, ChannelInput(context={"z0": z0}), log_p, t, s)
    z0_hat = model.network.embedding_weight()[log_p.argmax(-1)]
    z_t = torch.randn(2, L, D, generator=gen(3))
    kernels = []
    for target in (z0, z0_hat):
        mean, var = gaussian_bridge(z_t / sigma, target / sigma, t, s, channel.schedule)
        std = (sigma * var.sqrt()).expand_as(mean)
        kernels.append(torch.distributions.Independent(torch.distributions.Normal(sigma * mean, std), 1))
    expected = torch.distributions.kl_divergence(*kernels)
    assert (got > 0).any()
    torch.testing.assert_close(got.double(), expected.double(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["vp-linear", "flow"])
def test_prior_kl_is_the_gaussian_kl_of_z1_to_the_prior(name):
    """prior_kl = Σ_i KL(N(a_1 z_0^i, σ²b_1² I) ‖ N(0, σ² I)) (0 on the flow path, where a_1 = 0, b_1 = 1)."""
    sigma = 0.05
    channel = CADDChannel(make_gaussian_schedule(name), LinearSchedule(), V, D, sigma=sigma)
    net = ContextFree(torch.zeros(L, V + 1))
    x0 = torch.tensor([[0, 1, 1], [1, 1, 1]])
    z0 = net.embed_tokens(x0).double()
    one = torch.ones((), dtype=torch.float64)
    a, b = channel.schedule.signal(one), channel.schedule.noise(one)
    q = torch.distributions.Normal(a * z0, sigma * b)
    prior = torch.distributions.Normal(torch.zeros_like(z0), sigma)
    expected = torch.distributions.kl_divergence(q, prior).sum((-1, -2))
    got = channel.prior_kl(net, x0).double()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-9)
    assert (got > 0).all() if name != "flow" else (got == 0).all()


# -- the whole bound on a context-free model ---------------------------------------------------------------------
def test_mdlm_discrete_bound_of_a_context_free_model_is_its_exact_nll():
    """No latent: Σ_k E[step_terms] = Σ_i −log softmax(logits_i)[x_0^i] at any T (Σ_k (α_{k−1} − α_k) = 1), and
    estimate_bound agrees within its Monte-Carlo error; the latent and prior parts are 0."""
    model = context_free()
    x0 = torch.tensor([[0, 1, 1]])
    nll = exact_nll(model, x0)
    token, latent, token_se, _ = step_means(model, x0, steps=4, rows=4000)
    assert latent == 0.0
    assert token == pytest.approx(nll, abs=5 * token_se)
    est = estimate_bound(model, [x0.expand(64, L)], steps=8, time_samples=16, seed=0)
    assert est.latent == 0.0 and est.prior == 0.0 and est.bound == est.token
    assert est.bound == pytest.approx(nll / L, abs=5 * est.stderr)


def test_cadd_bound_of_a_context_free_model_is_its_nll_plus_the_latent_kl():
    """CADD on a network that ignores the latent: the token part is the exact NLL again, the latent part is
    Σ_{k≥2} Σ_i (1 − α_{k−1}) ½(SNR_{k−1} − SNR_k) ‖z_0^i − ẑ_0^i‖² > 0 (soft ẑ_0 ≠ z_0), so bound > NLL."""
    steps = 8
    model = context_free(channel=True)
    x0 = torch.tensor([[0, 1, 1]])
    nll = exact_nll(model, x0)
    with torch.no_grad():
        z0 = model.network.embed_tokens(x0)[0]
        z0_hat = model.network.logits[:, :V].softmax(-1) @ model.network.embedding_weight()[:V]
        err = ((z0 - z0_hat) ** 2).sum().item()
    sched = model.channel.schedule
    snr = [(sched.signal(u) / sched.noise(u)).item() ** 2 for u in torch.arange(steps + 1, dtype=torch.float64) / steps]
    latent_exact = err * sum((k - 1) / steps * 0.5 * (snr[k - 1] - snr[k]) for k in range(2, steps + 1))
    token, latent, token_se, latent_se = step_means(model, x0, steps=steps, rows=4000)
    assert token == pytest.approx(nll, abs=5 * token_se)
    assert latent == pytest.approx(latent_exact, abs=5 * latent_se)
    est = estimate_bound(model, [x0.expand(64, L)], steps=steps, time_samples=16, seed=0)
    assert est.prior == 0.0  # flow: a_1 = 0, b_1 = 1
    assert est.latent > 0 and est.bound > nll / L
    assert est.bound == pytest.approx(est.token + est.latent + est.prior, rel=1e-9)
    assert est.bound == pytest.approx((nll + latent_exact) / L, abs=5 * est.stderr)


def test_padding_adds_nothing_to_the_bound():
    """With pad_id set, padding positions add neither token nor latent terms: a context-free CADD model over the
    tokens {0, 1, PAD} scores [x, PAD, PAD] as the same model without padding scores x; per token, it divides by
    the real tokens alone."""
    base = context_free(channel=True)
    pad, mask = V, V + 1
    logits = torch.full((L + 2, V + 2), -1e4)  # PAD never predicted: the real tokens keep their softmax
    logits[:L, :V] = base.network.logits.detach()[:, :V]
    net = ContextFree(logits)
    with torch.no_grad():
        net.embed.weight[:V] = base.network.embed.weight[:V]
    channel = CADDChannel(FlowMatchingSchedule(), LinearSchedule(), mask, D, z0_hat="soft")
    padded = DiffusionModel(net, LinearSchedule(), V + 1, channel=channel, pad_id=pad).eval()
    x0 = torch.tensor([[0, 1, 1]])
    x0_padded = torch.tensor([[0, 1, 1, pad, pad]])
    token, latent, token_se, latent_se = step_means(base, x0, steps=4, rows=4000)
    token_p, latent_p, token_se_p, latent_se_p = step_means(padded, x0_padded, steps=4, rows=4000)
    assert token_p == pytest.approx(token, abs=5 * math.hypot(token_se, token_se_p))
    assert latent_p == pytest.approx(latent, abs=5 * math.hypot(latent_se, latent_se_p))
    est = estimate_bound(base, [x0.expand(64, L)], steps=4, time_samples=8, seed=0)
    est_p = estimate_bound(padded, [x0_padded.expand(64, L + 2)], steps=4, time_samples=8, seed=0)
    assert est_p.bound == pytest.approx(est.bound, abs=5 * math.hypot(est.stderr, est_p.stderr))


# -- the whole bound on the exact denoiser of a correlated distribution ------------------------------------------
def correlated():
    probs = torch.rand(V**L, generator=gen(4)) + 0.1
    probs[0] = probs[-1] = 6.0  # 000 and 111 likely: the positions are strongly correlated
    probs = probs / probs.sum()
    model = DiffusionModel(ExactNetwork(probs), LinearSchedule(), V).eval()
    return model, probs.double()


def p_weighted(est, probs, rows):
    """E_{x ~ p} of the bound per sequence from the per-sequence values of all sequences repeated ``rows`` times."""
    per = est.per_sequence.double().reshape(rows, V**L).T * L
    mean = (probs * per.mean(1)).sum().item()
    stderr = math.sqrt((probs**2 * per.var(1) / rows).sum().item())
    return mean, stderr


def brute_force_discrete(probs, steps):
    """E_{x_0 ~ p} Σ_k Σ_{masked sets M} q_k(M) Σ_{i ∈ M} ρ_flip,k · (−log p(x_0^i | x_0 outside M))."""
    states = all_sequences(V, L)
    total = 0.0
    for x0, p_x in zip(states, probs, strict=True):
        for k in range(1, steps + 1):
            a_t, a_s = 1.0 - k / steps, 1.0 - (k - 1) / steps
            flip = (a_s - a_t) / (1.0 - a_t)
            for mask in itertools.product([False, True], repeat=L):
                q = math.prod((1.0 - a_t) if m else a_t for m in mask)
                agree = torch.ones(len(states), dtype=torch.bool)
                for i, m in enumerate(mask):
                    if not m:
                        agree &= states[:, i] == x0[i]
                p_rest = probs[agree].sum()
                for i, m in enumerate(mask):
                    if m:
                        p_i = probs[agree & (states[:, i] == x0[i])].sum()
                        total += p_x.item() * q * flip * -math.log(p_i / p_rest)
    return total


def test_the_one_step_bound_of_the_exact_denoiser_is_the_sum_of_marginal_nlls():
    """T = 1: every position unmasks at once from p(x_0^i) alone, so the bound is Σ_i −log p_i(x_0^i) with no
    Monte-Carlo error, above the entropy H(p) of a correlated p."""
    model, probs = correlated()
    states = all_sequences(V, L)
    est = estimate_bound(model, [states], steps=1, time_samples=2, seed=0)
    marginals = torch.stack([torch.stack([probs[states[:, i] == v].sum() for v in range(V)]) for i in range(L)])
    expected = -marginals.log().gather(1, states.T).sum(0) / L
    torch.testing.assert_close(est.per_sequence.double(), expected, rtol=1e-5, atol=1e-6)
    entropy = -(probs * probs.log()).sum().item()
    assert (probs * expected).sum().item() * L > entropy + 0.1


def test_the_discrete_bound_of_the_exact_denoiser_matches_a_brute_force_sum_and_tends_to_the_entropy():
    """E_{x_0 ~ p} of the bound: at T = 4 the brute-force sum over steps and mask sets, above H(p); at T = 256
    and in continuous time (steps=0) the entropy H(p) itself (the exact denoiser's ELBO is tight)."""
    model, probs = correlated()
    entropy = -(probs * probs.log()).sum().item()
    rows = 1024
    data = all_sequences(V, L).repeat(rows, 1)  # interleaved: each sequence's times spread over the grid
    exact_4 = brute_force_discrete(probs, 4)
    assert exact_4 > entropy + 0.05
    mean_4, stderr_4 = p_weighted(estimate_bound(model, [data], steps=4, time_samples=16, seed=1), probs, rows)
    assert mean_4 == pytest.approx(exact_4, abs=5 * stderr_4)
    for steps in (256, 0):
        mean, stderr = p_weighted(estimate_bound(model, [data], steps=steps, time_samples=16, seed=2), probs, rows)
        assert mean == pytest.approx(entropy, abs=5 * stderr + 0.005), steps  # T = 256: O(1/T) above H(p)
        assert mean < exact_4 - 5 * stderr


# -- against MDLM's ELBO -----------------------------------------------------------------------------------------
def test_continuous_bound_without_a_latent_is_mdlms_elbo_estimate():
    """NoChannel, steps=0: the same estimator as estimate_nll; with the same seed and time samples it draws the
    same times and masks, so the per-sequence values agree."""
    model, _ = correlated()
    data = all_sequences(V, L).repeat(4, 1)
    bound = estimate_bound(model, [data], steps=0, time_samples=4, time_eps=1e-3, seed=3)
    nll = estimate_nll(model, [data], time_samples=4, time_eps=1e-3, seed=3)
    torch.testing.assert_close(bound.per_sequence.double(), nll.per_sequence.double(), rtol=1e-5, atol=1e-6)
    assert bound.bound == pytest.approx(nll.nll, rel=1e-5) and bound.latent == 0.0


# -- refusals ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_ladd_has_no_bound(method):
    """LADD's channels have no latent KL derived: estimate_bound raises AugdiffError naming the method."""
    model = ladd_model(method)
    with pytest.raises(AugdiffError, match=method):
        estimate_bound(model, [torch.randint(0, 4, (2, 16), generator=gen(0))], steps=4, time_samples=1)


def test_has_bound_names_the_models_estimate_bound_accepts():
    """has_bound: MDLM and CADD (their channels derive latent_kl), not LADD, not AR (no channel: its NLL is exact)."""
    assert context_free().has_bound and context_free(channel=True).has_bound
    assert not any(ladd_model(method).has_bound for method in METHODS)
    assert not build_model(build_config({"method": "ar", "model_size": "xxs"}), V).has_bound


def test_negative_steps_are_refused():
    """steps < 0 is no grid: AugdiffError (0 is continuous time, T ≥ 1 a grid)."""
    with pytest.raises(AugdiffError, match="steps"):
        estimate_bound(context_free(), [torch.zeros(1, L, dtype=torch.long)], steps=-1)
