"""CADD's options for the latent's scale and use: ``radius``, ``sigma``, gated fusion, sampled ẑ_0, the MSE
term's weighting, and their config keys."""

import pytest
import torch

from augdiff.channels.cadd import CADDChannel, estimate_z0, expected_sq_error
from augdiff.config import build_config
from augdiff.config.parse import config_from_stored, config_to_dict
from augdiff.errors import AugdiffError
from augdiff.methods import build_model
from augdiff.processes.gaussian import continuous_kl_weight
from augdiff.schedules import LinearSchedule
from augdiff.schedules.gaussian import make_gaussian_schedule

V, L = 4, 8


def gen(seed):
    return torch.Generator().manual_seed(seed)


def config(method="cadd", **cadd):
    return build_config({"method": method, "data": "sawtooth", "model_size": "xxs", "seq_len": L, "cadd": cadd})


def tiny(method="cadd", **cadd):
    """A tiny model whose network's zero-initialized layers get weights, so that every input path matters (the
    channel's own parameters, such as the gate, keep their initial values)."""
    torch.manual_seed(0)
    model = build_model(config(method, **cadd), V, L)
    with torch.no_grad():
        for p in model.network.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.1)
    return model.eval()


def half_masked(n=4):
    x0 = torch.randint(0, V, (n, L), generator=gen(1))
    x_t = x0.clone()
    x_t[:, ::2] = V
    return x0, x_t


# -- radius ------------------------------------------------------------------------------------------------------
def test_radius_normalises_the_latent_rows_but_not_the_token_path():
    """radius=R: latent_of(x) has norm R; unmasked z_t = z_0 has norm R and masked z_t is a_t z_0 + b_t ε around
    it, while embed_tokens (z_disc, the token path) keeps the raw rows."""
    model = tiny(radius=2.0)
    net, channel = model.network, model.channel
    x0, x_t = half_masked()
    raw = net.embed.weight[x0]
    torch.testing.assert_close(net.embed_tokens(x0), raw)
    assert not torch.allclose(raw.norm(dim=-1), torch.full((4, L), 2.0), atol=0.1)  # the raw rows are not at R
    z0 = channel.latent_of(net, x0)
    torch.testing.assert_close(z0.norm(dim=-1), torch.full((4, L), 2.0))
    torch.testing.assert_close(z0, 2.0 * raw / raw.norm(dim=-1, keepdim=True))
    t = torch.full((4,), 0.4)
    inputs = channel.train_input(net, x0, x_t, t, gen(2))
    z_t = inputs.input_embeds - net.embed_tokens(x_t)  # "add" fusion: z_disc + z_t with the raw z_disc
    torch.testing.assert_close(z_t[:, 1::2], z0[:, 1::2])
    eps = torch.randn(z0.shape, generator=gen(2))
    torch.testing.assert_close(z_t[:, ::2], channel.noised(z0, t, eps)[:, ::2])
    torch.testing.assert_close(inputs.context["z0"], z0)


# -- sigma -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["flow", "vp-cosine"])
def test_sigma_scales_the_noise_and_not_the_signal(name):
    """noised(z_0, t, ε) = a_t z_0 + σ b_t ε."""
    schedule = make_gaussian_schedule(name)
    channel = CADDChannel(schedule, LinearSchedule(), V, 16, sigma=0.02)
    z0, eps = torch.randn(3, L, 16, generator=gen(3)), torch.randn(3, L, 16, generator=gen(4))
    t = torch.tensor([0.1, 0.5, 0.9])
    a, b = schedule.signal(t).view(3, 1, 1), schedule.noise(t).view(3, 1, 1)
    torch.testing.assert_close(channel.noised(z0, t, eps), a * z0 + 0.02 * b * eps)


def test_settle_measures_sigma_from_the_embedding_once():
    """sigma=None: settle() sets σ to the RMS of the data tokens' embedding elements (not the mask row) and
    reports it; a second call changes nothing and reports {}; a given σ is never replaced."""
    model = tiny(sigma=None)
    net, channel = model.network, model.channel
    with torch.no_grad():  # a fine-tuned model's scale (an hf: model's elements have std ~0.02) ...
        net.embed.weight.mul_(0.02 / net.embed.weight.std())
        net.embed.weight[V] = 100.0  # ... and a mask row that must not count
    rms = net.embed.weight[:V].pow(2).mean().sqrt().item()
    assert channel.sigma_unset
    settled = channel.settle(net)
    assert settled == {"cadd": {"sigma": pytest.approx(rms)}} and channel.sigma == pytest.approx(rms)
    assert channel.settle(net) == {} and channel.sigma == pytest.approx(rms)
    fixed = tiny(sigma=0.5).channel
    assert fixed.settle(net) == {} and fixed.sigma == 0.5


# -- gated fusion ------------------------------------------------------------------------------------------------
def test_gated_fusion_starts_as_mdlm_and_learns_its_gate():
    """fusion=gated: g = 0 at init, so the fused input is z_disc exactly and a CADD model with MDLM's weights gives
    MDLM's loss on the same x_0, t and seed; one backward gives g a nonzero gradient, and g ≠ 0 changes the loss."""
    mdlm, cadd = tiny("mdlm"), tiny(fusion="gated")
    cadd.network.load_state_dict(mdlm.network.state_dict())
    z_disc, z_t = torch.randn(2, L, 32, generator=gen(5)), torch.randn(2, L, 32, generator=gen(6))
    assert torch.equal(cadd.channel.fuse(z_disc, z_t, torch.rand(2)), z_disc)
    x0, t = torch.randint(0, V, (8, L), generator=gen(7)), torch.rand(8, generator=gen(8)) * 0.9 + 0.05
    out_mdlm = mdlm.loss(x0, t, gen(9))
    out_cadd = cadd.loss(x0, t, gen(9))
    torch.testing.assert_close(out_cadd.loss, out_mdlm.loss)
    torch.testing.assert_close(out_cadd.nll_per_sequence, out_mdlm.nll_per_sequence)
    cadd.train()
    cadd.loss(x0, t, gen(9)).loss.backward()
    assert cadd.channel.gate.grad is not None and cadd.channel.gate.grad.abs().item() > 0
    with torch.no_grad():
        cadd.channel.gate.fill_(1.0)
    assert not torch.allclose(cadd.loss(x0, t, gen(9)).loss, out_mdlm.loss)


# -- sampled ẑ_0 -------------------------------------------------------------------------------------------------
def test_sampled_z0_hat_of_a_one_hot_is_that_row_and_averages_to_the_soft_estimate():
    """z0_hat=sample: ẑ_0 = w(x̂), x̂ ~ π: a one-hot π gives its row; many draws average to Σ_v π_v w_v."""
    emb = torch.randn(V, 5, generator=gen(10))
    one_hot = torch.full((3, V), -torch.inf)
    one_hot[torch.arange(3), torch.tensor([2, 0, 3])] = 0.0
    torch.testing.assert_close(estimate_z0(emb, one_hot, "sample", gen(11)), emb[[2, 0, 3]])
    log_p = torch.randn(V, generator=gen(12)).log_softmax(-1).expand(20000, V)
    draws = estimate_z0(emb, log_p, "sample", gen(13))
    torch.testing.assert_close(draws.mean(0), estimate_z0(emb, log_p[:1], "soft")[0], atol=0.05, rtol=0)


def test_expected_sq_error_of_each_z0_estimate():
    """sample: Σ_v π_v ‖z_0 − w_v‖² (brute force), above the soft estimate's error (Jensen); hard and soft: the
    plain error of their estimate."""
    emb = torch.randn(V, 5, generator=gen(14))
    log_p = torch.randn(2, L, V, generator=gen(15)).log_softmax(-1)
    z0 = torch.randn(2, L, 5, generator=gen(16))
    probs = log_p.exp()
    brute = sum(probs[..., v] * ((z0 - emb[v]) ** 2).sum(-1) for v in range(V))
    sampled = expected_sq_error(emb, log_p, z0, "sample")
    torch.testing.assert_close(sampled, brute, rtol=1e-5, atol=1e-5)
    for how in ("hard", "soft"):
        plain = ((z0 - estimate_z0(emb, log_p, how)) ** 2).sum(-1)
        torch.testing.assert_close(expected_sq_error(emb, log_p, z0, how), plain)
    assert (sampled > expected_sq_error(emb, log_p, z0, "soft")).all()


# -- the MSE term's weighting ------------------------------------------------------------------------------------
@pytest.mark.parametrize("z0_hat", ["hard", "soft"])
def test_mse_weighting_constant_and_elbo(z0_hat):
    """mse_weight=1: ``constant`` = Σ over masked positions of ‖ẑ_0 − z_0‖² / numel whatever t and the token loss's
    weighting; ``elbo`` multiplies each sequence's sum by −½SNR′(t)/σ²."""
    sigma = 0.5
    model = tiny(mse_weight=1.0, z0_hat=z0_hat, sigma=sigma)
    net, channel = model.network, model.channel
    x0, x_t = half_masked()
    t = torch.tensor([0.2, 0.4, 0.6, 0.8])
    inputs = channel.train_input(net, x0, x_t, t, gen(17))
    log_p = torch.randn(4, L, V, generator=gen(18)).log_softmax(-1)
    z0_hat_ = estimate_z0(net.embedding_weight()[:V], log_p, z0_hat)
    per_seq = (((z0_hat_ - inputs.context["z0"]) ** 2).sum(-1) * (x_t == V)).sum(-1)
    extra = lambda times, weighting: channel.extra_loss(net, inputs, log_p, x0, x_t, times, weighting)  # noqa: E731
    constant = extra(t, "elbo")
    torch.testing.assert_close(constant, per_seq.sum() / x0.numel())
    torch.testing.assert_close(extra(t.flip(0), "constant"), constant)
    channel.mse_weighting = "elbo"
    weight = continuous_kl_weight(t, channel.schedule) / sigma**2
    torch.testing.assert_close(extra(t, "constant"), (weight * per_seq).sum() / x0.numel())
    assert not torch.allclose(extra(t.flip(0), "constant"), extra(t, "constant"))


# -- config ------------------------------------------------------------------------------------------------------
def test_config_accepts_the_new_cadd_keys_and_build_model_passes_them():
    """cadd.radius, sigma=null, fusion=gated, z0_hat=sample and mse_weighting=elbo reach the channel."""
    cfg = build_config(
        {"method": "cadd", "model_size": "xxs"},
        ["cadd.radius=2", "cadd.sigma=null", "cadd.fusion=gated", "cadd.z0_hat=sample", "cadd.mse_weighting=elbo"],
    )
    assert (cfg.cadd.radius, cfg.cadd.sigma, cfg.cadd.fusion) == (2.0, None, "gated")
    assert (cfg.cadd.z0_hat, cfg.cadd.mse_weighting) == ("sample", "elbo")
    channel = build_model(cfg, V).channel
    assert channel.radius == 2.0 and channel.sigma_unset and channel.fusion == "gated"
    assert channel.z0_hat == "sample" and channel.mse_weighting == "elbo"
    assert isinstance(channel.gate, torch.nn.Parameter) and channel.gate.item() == 0.0


@pytest.mark.parametrize(
    "override", ["cadd.radius=0", "cadd.radius=-1", "cadd.sigma=-1", "cadd.sigma=0", "cadd.mse_weighting=snr"]
)
def test_config_rejects_bad_cadd_values(override):
    """radius and sigma must be > 0 (or null), mse_weighting constant | elbo: an AugdiffError naming the key."""
    key = override.split("=")[0]
    with pytest.raises(AugdiffError, match=key):
        build_config({"method": "cadd"}, [override])


@pytest.mark.parametrize("loss_weighting", ["constant", "elbo"])
def test_a_stored_config_without_mse_weighting_keeps_the_token_losss_weighting(loss_weighting):
    """Checkpoints from before cadd.mse_weighting weighted the MSE term as the token loss: loading one takes
    diffusion.loss_weighting; a stored mse_weighting is kept; stored configs without radius/sigma get the paper's."""
    stored = config_to_dict(build_config({"method": "cadd"}))
    stored["diffusion"]["loss_weighting"] = loss_weighting
    for key in ("mse_weighting", "radius", "sigma"):
        del stored["cadd"][key]
    cfg = config_from_stored(stored)
    assert cfg.cadd.mse_weighting == loss_weighting
    assert cfg.cadd.radius is None and cfg.cadd.sigma == 1.0
    other = "elbo" if loss_weighting == "constant" else "constant"
    stored["cadd"]["mse_weighting"] = other
    assert config_from_stored(stored).cadd.mse_weighting == other
