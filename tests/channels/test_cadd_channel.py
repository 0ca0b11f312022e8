"""CADD's channel: the forward marginal of z_t (Prop. 1), K-averaging in one batch, ẑ_0, state updates."""

import math

import pytest
import torch

from augdiff.channels.base import ReverseStep
from augdiff.channels.cadd import CADDChannel, CADDState, estimate_z0
from augdiff.config import build_config
from augdiff.methods import build_model
from augdiff.sampling import AncestralSampler
from augdiff.schedules import LinearSchedule
from augdiff.schedules.gaussian import FlowMatchingSchedule, GaussianSchedule, VPCosineSchedule

V, L, D = 4, 6, 32


def cadd_model(**cadd):
    cfg = build_config({"method": "cadd", "model_size": "xxs", "cadd": cadd})
    torch.manual_seed(0)
    model = build_model(cfg, V)
    with torch.no_grad():  # give the zero-initialized layers weights so every path matters
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.1)
    return model.eval()


@pytest.mark.parametrize("schedule", [FlowMatchingSchedule(), VPCosineSchedule()], ids=["flow", "vp-cosine"])
def test_forward_marginal_of_z_t_given_x_t_and_x0(schedule):
    """Prop. 1 / Eq 11: unmasked → z_t = z_0 exactly; masked → z_t ~ N(a_t z_0, b_t² I) (checked by moments)."""
    model = cadd_model()
    channel = CADDChannel(schedule, LinearSchedule(), mask_id=V, hidden_size=D)
    n = 4000
    x0 = torch.randint(0, V, (n, L), generator=torch.Generator().manual_seed(1))
    x_t = x0.clone()
    x_t[:, ::2] = V
    t = torch.full((n,), 0.6)
    inputs = channel.train_input(model.network, x0, x_t, t, torch.Generator().manual_seed(2))
    z_t = inputs.input_embeds - model.network.embed_tokens(x_t)  # "add" fusion: z_disc + z_t
    z0 = model.network.embed_tokens(x0)
    torch.testing.assert_close(z_t[:, 1::2], z0[:, 1::2])
    a, b = schedule.signal(t[:1]).item(), schedule.noise(t[:1]).item()
    standardized = (z_t[:, ::2] - a * z0[:, ::2]) / b
    assert abs(standardized.mean().item()) < 0.01
    assert standardized.var().item() == pytest.approx(1.0, abs=0.01)
    corr = torch.corrcoef(standardized.reshape(-1, D)[:, :2].T)[0, 1]
    assert abs(corr.item()) < 0.02  # isotropic noise


def test_k_particles_are_one_batched_forward_and_averaged_in_probability():
    model = cadd_model(k=3)
    calls = []
    forward = model.network.forward

    def spy(x_t, t, input_embeds=None):
        calls.append(input_embeds.shape[0])
        return forward(x_t, t, input_embeds=input_embeds)

    model.network.forward = spy
    x_t = torch.tensor([[0, V, V, 1, V, 2], [V, V, V, V, V, V]])
    state = model.init_state(x_t, torch.Generator().manual_seed(0))
    assert state.z.shape == (2, 3, L, model.network.cfg.hidden_size)
    log_pi = model.x0_log_probs(x_t, torch.full((2,), 0.7), state)
    assert calls == [6]  # B·K rows in one pass
    per_particle = []
    for k in range(3):
        single = CADDState(z=state.z[:, k : k + 1], t=state.t, options=state.options)
        per_particle.append(model.x0_log_probs(x_t, torch.full((2,), 0.7), single).exp())
    torch.testing.assert_close(log_pi.exp(), torch.stack(per_particle).mean(dim=0), atol=1e-6, rtol=1e-5)
    assert not torch.allclose(per_particle[0], per_particle[1])  # the particles differ


def test_hard_and_soft_z0_estimates():
    emb = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    log_p = torch.log(torch.tensor([[0.2, 0.5, 0.3]]))
    torch.testing.assert_close(estimate_z0(emb, log_p, "hard"), torch.tensor([[0.0, 2.0]]))
    torch.testing.assert_close(estimate_z0(emb, log_p, "soft"), torch.tensor([[0.2 + 0.9, 1.0 + 0.9]]))


def test_update_moves_masked_particles_along_the_bridge_and_pins_unmasked_ones():
    model = cadd_model(k=2)
    channel = model.channel
    x_t = torch.full((1, L), V)
    state = model.init_state(x_t, torch.Generator().manual_seed(0))
    x_s = x_t.clone()
    x_s[0, 0] = 2  # position 0 unmasks to token 2; the rest stay masked
    log_p = torch.log_softmax(torch.randn(1, L, V), dim=-1)
    new = channel.update_state(
        model.network, state, ReverseStep(x_t, x_s, log_p, 0.8, 0.6), torch.Generator().manual_seed(1)
    )
    emb = model.network.embed_tokens(torch.tensor([2]))[0]
    torch.testing.assert_close(new.z[0, 0, 0], emb)
    torch.testing.assert_close(new.z[0, 1, 0], emb)
    assert new.t == 0.6
    assert not torch.allclose(new.z[0, 0, 1:], new.z[0, 1, 1:])  # particles keep their own noise


def test_prefix_positions_keep_their_embedding_and_tokens():
    model = cadd_model(k=2)
    fixed = torch.tensor([[True, True, False, False, False, False]])
    x_init = torch.tensor([[3, 1, 0, 0, 0, 0]])
    state = model.init_state(torch.where(fixed, x_init, V), torch.Generator().manual_seed(0))
    torch.testing.assert_close(state.z[0, 1, :2], model.network.embed_tokens(x_init[:, :2])[0])
    out = AncestralSampler(model, model.schedule).sample(8, L, 4, x_init=x_init, fixed=fixed, return_intermediates=True)
    assert all((x[:, :2] == x_init[:, :2]).all() for x in out.intermediates)
    assert (out.x < V).all()
    assert out.rows_evaluated == 8 * 2 * out.nfe  # every evaluation pushes B·K rows


def test_cadd_refuses_the_p_x0_cache():
    model = cadd_model()
    assert not model.cacheable
    with pytest.raises(ValueError, match="cache"):
        AncestralSampler(model, model.schedule, cache=True)


def test_fusions():
    model = cadd_model()
    z_disc, z_t = torch.randn(2, L, D), torch.randn(2, L, D)
    t = torch.tensor([0.25, 0.5])
    concat = CADDChannel(FlowMatchingSchedule(), LinearSchedule(), V, D, fusion="concat")
    torch.testing.assert_close(concat.fuse(z_disc, z_t, t), z_disc + z_t)  # starts as the sum
    reweight = CADDChannel(FlowMatchingSchedule(), LinearSchedule(), V, D, fusion="reweight")
    alpha = torch.tensor([0.75, 0.5]).view(2, 1, 1)
    torch.testing.assert_close(reweight.fuse(z_disc, z_t, t), alpha * z_disc + (1 - alpha) * z_t)
    assert model.channel.fuse(z_disc, z_t, t).shape == (2, L, D)


def test_z0_gradient_switch():
    x0 = torch.randint(0, V, (8, L), generator=torch.Generator().manual_seed(3))
    t = torch.full((8,), 0.5)
    grads = {}
    for flag in (True, False):
        model = cadd_model(z0_grad=flag)
        model.train()
        inputs = model.channel.train_input(
            model.network, x0, torch.full_like(x0, V), t, torch.Generator().manual_seed(4)
        )
        inputs.input_embeds.sum().backward()
        grads[flag] = model.network.embed.weight.grad[:V].abs().sum().item()
    assert grads[True] > 0 and grads[False] == 0  # all masked: only z_0 = w(x_0) can carry gradient to token rows


def test_mse_term_of_eq19():
    model = cadd_model(mse_weight=2.0, z0_hat="soft")
    model.train()
    x0 = torch.randint(0, V, (4, L), generator=torch.Generator().manual_seed(5))
    t = torch.full((4,), 0.5)
    with_mse = model.loss(x0, t, torch.Generator().manual_seed(6))
    model.channel.mse_weight = 0.0
    without = model.loss(x0, t, torch.Generator().manual_seed(6))
    extra = with_mse.metrics["channel_loss"].item()
    assert extra > 0 and with_mse.loss.item() == pytest.approx(without.loss.item() + extra, rel=1e-5)


class NoNoise(GaussianSchedule):
    """z_t = z_0: the latent of a masked position is its clean embedding."""

    name = "none"

    def signal(self, t):
        return torch.ones_like(t)

    def noise(self, t):
        return torch.full_like(t, 1e-6)


def test_with_noise_free_latents_cadd_reads_masked_tokens_off_the_latent():
    """Sanity: when z_t = z_0 for masked positions, x_0 is recoverable; a short training run gets the masked
    cross-entropy of random tokens far below log V, which MDLM (no latent) cannot."""
    from augdiff.processes import sample_times

    torch.manual_seed(0)
    model = build_model(build_config({"method": "cadd", "model_size": "xxs"}), 8)
    model.channel.schedule = NoNoise()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        x0 = torch.randint(0, 8, (32, 8), generator=g)
        out = model.loss(x0, sample_times(32, generator=g), g)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    x0 = torch.randint(0, 8, (256, 8), generator=g)
    nll = model.loss(x0, sample_times(256, generator=g), g).nll.item()
    assert nll < 0.1 * math.log(8), nll  # random tokens: MDLM's floor is log 8 = 2.08 nats
