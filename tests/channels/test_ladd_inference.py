"""LADD inference: sequential and joint schedules, the lag λ coupling latent and token time, classifier-free
latent guidance (LADD §3.4, App. D)."""

import math

import pytest
import torch
from ladd_models import METHODS, D, K, L, V, gen, ladd_model, spy

from augdiff.channels.ladd import guided_log_probs
from augdiff.errors import AugdiffError
from augdiff.processes import subs_log_probs
from augdiff.sampling import AncestralSampler


# -- inference schedules -----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_sequential_inference_resolves_the_latent_without_reading_the_tokens(method):
    model = ladd_model(method, normalize="unit")  # Co-LADD: the last latent step lands on the unit sphere
    seq = model.sampling_options(lag=1.0, latent_steps=5)
    network_calls, prior_calls = spy(model.network), spy(model.channel.prior)
    all_masked = torch.full((6, L), V)
    with_prefix = all_masked.clone()
    with_prefix[:, :5] = torch.tensor([0, 1, 2, 3, 0])
    a = model.init_state(all_masked, gen(7), seq)
    assert len(network_calls) == 0 and len(prior_calls) == 5
    b = model.init_state(with_prefix, gen(7), seq)
    assert len(network_calls) == 0 and len(prior_calls) == 10
    assert torch.equal(a.y, b.y) and a.t_y == b.t_y == 0.0
    other = model.init_state(all_masked, gen(8), seq)
    if method == "co-ladd":
        assert not torch.allclose(other.y, a.y)  # a real draw from the prior, not a constant
        torch.testing.assert_close(a.y.norm(dim=-1), torch.ones(6, 1))
    else:
        assert (a.y < K).all()  # every code resolved at t_y = 0


@pytest.mark.parametrize("method", METHODS)
def test_lag_sets_the_length_of_the_latent_only_phase(method):
    model = ladd_model(method)
    prior_calls = spy(model.channel.prior)
    x_T = torch.full((2, L), V)
    state = model.init_state(x_T, gen(0), model.sampling_options(lag=0.5, latent_steps=8))
    assert len(prior_calls) == 4 and state.t_y == 0.5
    times = [args[1][0].item() for args, _ in prior_calls]
    assert times == pytest.approx([1.0, 0.875, 0.75, 0.625])
    prior_calls.clear()
    state = model.init_state(x_T, gen(0), model.sampling_options(lag=0.0))
    assert not prior_calls and state.t_y == 1.0
    if method == "di-ladd":
        assert (state.y == K).all()  # the latent starts fully masked
    else:
        assert state.y.shape == (2, 1, D)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("lag", [1.0, 0.5, 0.0])
def test_sampler_couples_latent_time_to_token_time(method, lag):
    """t_y = (1 − λ)·t at every network call; with λ = 1 the tokens see one clean latent throughout."""
    model = ladd_model(method)
    options = model.sampling_options(lag=lag, latent_steps=4)
    calls = spy(model.network)
    out = AncestralSampler(model, model.schedule, channel_options=options).sample(4, L, 6, generator=gen(0))
    assert (out.x < V).all() and len(calls) == out.nfe >= 6
    for args, kwargs in calls:
        torch.testing.assert_close(kwargs["latent_t"], (1.0 - lag) * args[1])
    latents = [kwargs["latent"] for _, kwargs in calls]
    unchanged = all(torch.equal(latents[0], z) for z in latents[1:])
    assert unchanged == (lag == 1.0)


# -- guidance ----------------------------------------------------------------------------------------------
def test_guided_log_probs():
    c = torch.log_softmax(torch.randn(2, 5, 6, generator=gen(0)), dim=-1)
    u = torch.log_softmax(torch.randn(2, 5, 6, generator=gen(1)), dim=-1)
    torch.testing.assert_close(guided_log_probs(c, u, 1.0), c)
    torch.testing.assert_close(guided_log_probs(c, u, 0.0), u)
    w = guided_log_probs(c, u, 2.0)
    torch.testing.assert_close(w, torch.log_softmax(u + 2.0 * (c - u), dim=-1))
    torch.testing.assert_close(w.exp().sum(dim=-1), torch.ones(2, 5))
    carried = torch.full((6,), -math.inf)
    carried[3] = 0.0  # SUBS: position 0 is unmasked with token 3, in both rows
    c[:, 0], u[:, 0] = carried, carried
    w = guided_log_probs(c, u, 2.0)
    assert torch.equal(w[:, 0], c[:, 0])
    assert torch.isfinite(w[:, 1:]).all()
    u[:, 0] = torch.log_softmax(torch.randn(6, generator=gen(2)), dim=-1)  # even if the other row disagrees
    assert torch.equal(guided_log_probs(c, u, 3.0)[:, 0], c[:, 0])


@pytest.mark.parametrize("method", METHODS)
def test_guidance_evaluates_both_rows_in_one_network_call(method):
    model = ladd_model(method)
    guided = model.sampling_options(lag=0.0, guidance=2.0)
    assert model.channel.num_particles(guided) == 2 and model.particles(guided) == 2 and model.particles() == 1
    x_t = torch.full((3, L), V)
    x_t[:, :4] = torch.tensor([1, 0, 3, 2])
    state = model.init_state(x_t, gen(0), guided)
    assert state.null is not None
    calls = spy(model.network)
    t = torch.full((3,), 0.8)
    log_p = model.x0_log_probs(x_t, t, state)
    assert len(calls) == 1 and calls[0][1]["latent"].shape[0] == 6
    assert log_p.shape == (3, L, V)
    torch.testing.assert_close(log_p.exp().sum(dim=-1), torch.ones(3, L))
    null = torch.zeros(3, 1, D) if method == "co-ladd" else model.channel.mask_embedding.detach().expand(3, 1, D)
    assert torch.equal(state.null, null)  # the unconditional row reads the exact null latent, as in training
    t_y = torch.full((3,), state.t_y)
    with torch.no_grad():
        cond = model.network(x_t, t, latent=model.channel.latent_input(state.y), latent_t=t_y).logits
        uncond = model.network(x_t, t, latent=state.null, latent_t=t_y).logits
    expected = guided_log_probs(subs_log_probs(cond, x_t, V), subs_log_probs(uncond, x_t, V), 2.0)
    torch.testing.assert_close(log_p, expected)
    assert torch.equal(log_p[:, :4].argmax(dim=-1), x_t[:, :4])  # carried tokens stay
    plain = model.sampling_options(guidance=1.0)
    assert model.particles(plain) == 1 and model.init_state(x_t, gen(0), plain).null is None
    out = AncestralSampler(model, model.schedule, channel_options=guided).sample(3, L, 4, generator=gen(1))
    assert out.rows_evaluated == 2 * 3 * out.nfe and (out.x < V).all()


@pytest.mark.parametrize("method", METHODS)
def test_sampling_a_stage_1_model_is_refused(method):
    model = ladd_model(method, stage=1)
    with pytest.raises(AugdiffError, match="stage 2"):
        AncestralSampler(model, model.schedule).sample(2, L, 4, generator=gen(0))


# -- recon at evaluation -----------------------------------------------------------------------------------
def test_recon_of_an_independent_time_model_does_not_depend_on_the_lag():
    """A model trained with independent t_x, t_y alone (p_seq = 0) reports its training loss (t_y drawn) for
    every λ (LADD Table 1's Di-LADD rows); a coupled model's, or one that also trained the sequential
    conditioning, reads the latent at t_y = (1 − λ)·t."""
    x0 = torch.randint(0, V, (16, L), generator=gen(1))
    t = torch.linspace(0.1, 0.9, 16)

    def recon(model, lag):
        with torch.no_grad():
            return model.loss(x0, t, gen(5), model.sampling_options(lag=lag)).nll.item()

    independent = ladd_model("di-ladd", independent_t=True, p_seq=0.0)
    assert not independent.training
    assert recon(independent, 0.0) == recon(independent, 0.5) == recon(independent, 1.0)
    coupled = ladd_model("di-ladd", independent_t=False, p_seq=0.0)
    assert recon(coupled, 0.0) != recon(coupled, 1.0)
    mixed = ladd_model("di-ladd", independent_t=True, p_seq=0.5)
    assert recon(mixed, 0.0) != recon(mixed, 1.0)


@pytest.mark.parametrize("method", METHODS)
def test_given_tokens_inform_the_joint_latent_but_not_the_sequential_one(method):
    """Infilling: in joint inference the latent head reads the given tokens at every step, so its predictions
    (which move the latent) depend on them; sequential inference draws the latent before any token is read,
    and holds it: it does not depend on them."""

    def heads_and_latents(given, lag):
        x_init = torch.full((1, L), V)
        x_init[0, :6] = given
        fixed = torch.zeros(1, L, dtype=torch.bool)
        fixed[0, :6] = True
        options = model.sampling_options(lag=lag, latent_steps=4)
        states = []
        original = model.update_state

        def keep(state, step, generator=None):
            states.append((state.head, state.y))  # the head's prediction at this step (set by combine), the latent
            return original(state, step, generator)

        model.update_state = keep
        sampler = AncestralSampler(model, model.schedule, channel_options=options)
        sampler.sample(3, L, 4, x_init=x_init, fixed=fixed, generator=gen(0))
        del model.update_state
        return torch.stack([h for h, _ in states]), torch.stack([y for _, y in states])

    model = ladd_model(method)
    a, b = torch.tensor([0, 1, 2, 3, 0, 1]), torch.tensor([3, 3, 3, 3, 3, 3])
    assert not torch.equal(heads_and_latents(a, 0.0)[0], heads_and_latents(b, 0.0)[0])  # joint: the head reads them
    assert torch.equal(heads_and_latents(a, 1.0)[1], heads_and_latents(b, 1.0)[1])  # sequential: the latent never does


def test_the_configs_sampling_keys_are_the_defaults_the_cli_and_api_override():
    """ladd.lag / latent_steps / eta / guidance in the YAML are what sampling uses unless --lag … (or
    sampling_options(lag=…)) says otherwise: the CLI, the config and the API use the same words."""
    model = ladd_model("co-ladd", lag=1.0, latent_steps=3, guidance=2.0)
    options = model.sampling_options()
    assert (options.lag, options.latent_steps, options.eta, options.guidance) == (1.0, 3, 0.0, 2.0)
    assert model.particles() == 2  # the guidance default doubles the rows
    prior_calls = spy(model.channel.prior)
    assert model.init_state(torch.full((2, L), V), gen(0)).t_y == 0.0 and len(prior_calls) == 3
    assert model.sampling_options(lag=0.0).lag == 0.0 and model.sampling_options(lag=0.0).latent_steps == 3


@pytest.mark.parametrize("method", METHODS)
def test_a_lagged_latent_can_be_encoded_from_the_given_tokens(method):
    """latent_from=encoder: sequential inference starts from the encoder's reading of the given tokens (free
    positions blanked), so different given tokens give different latents, and no prior step runs."""
    model = ladd_model(method, normalize="unit") if method == "co-ladd" else ladd_model(method)
    options = model.sampling_options(lag=1.0, latent_steps=4, latent_from="encoder")
    prior_calls = spy(model.channel.prior)

    def latent(given):
        x = torch.full((2, L), V)
        x[:, :6] = given
        return model.init_state(x, gen(0), options).y

    a, b = latent(torch.tensor([0, 1, 2, 3, 0, 1])), latent(torch.tensor([3, 3, 3, 3, 3, 3]))
    assert not torch.equal(a, b) and not prior_calls
    free = torch.full((2, L), V)
    with pytest.raises(AugdiffError, match="given tokens"):
        model.init_state(free, gen(0), options)
