"""Semi-autoregressive blocks, and the remasking samplers with every method's model (latent state included)."""

import pytest
import torch
from channels.test_cadd_channel import cadd_model
from dummies import EnumeratedDenoiser
from ladd_models import L as LADD_L
from ladd_models import V as LADD_V
from ladd_models import ladd_model
from test_ancestral_sampler import LENGTH, VOCAB, correlated_distribution

from augdiff.channels.base import ReverseStep
from augdiff.config import build_config
from augdiff.methods import build_model
from augdiff.sampling import REMASKING, Remasking, generate, generate_blocks
from augdiff.schedules import LinearSchedule


def enumerated():
    return EnumeratedDenoiser(correlated_distribution(), VOCAB, LENGTH)


@pytest.mark.parametrize("block", [1, 2, 3])
def test_two_windows_at_once_equal_one_then_its_extension(block):
    model, schedule = enumerated(), LinearSchedule()
    opts = {"window": LENGTH, "block": block, "seed": 5, "batch_size": 7}
    both = generate_blocks(model, schedule, 20, 2 * LENGTH + 1, 4, **opts)
    first = generate_blocks(model, schedule, 20, LENGTH, 4, **opts)
    then = generate_blocks(model, schedule, 20, 2 * LENGTH + 1, 4, prefix=first, **opts)
    assert both.shape == (20, 2 * LENGTH + 1)
    assert torch.equal(both, then)
    assert torch.equal(both[:, :LENGTH], first)
    assert (both < VOCAB).all()


def test_each_window_continues_the_clean_context():
    """With block 1 and the exact denoiser of a law where nearly all mass is on 000, 111, 222, each new token
    is drawn given the last two, so whole rows repeat their first token (by chance: 3⁻¹¹)."""
    probs = torch.ones(VOCAB**LENGTH, dtype=torch.float64)
    probs[[0, 13, 26]] = 1000.0  # 000, 111, 222 carry almost all the mass
    model = EnumeratedDenoiser(probs, VOCAB, LENGTH)
    x = generate_blocks(model, LinearSchedule(), 50, 12, 30, window=LENGTH, block=1, seed=0)
    assert (x == x[:, :1]).float().mean() > 0.9


def test_a_given_prefix_is_kept_and_extended():
    prefix = torch.tensor([2, 2, 0, 1])
    x = generate_blocks(enumerated(), LinearSchedule(), 8, 9, 3, window=LENGTH, block=2, prefix=prefix)
    assert (x[:, :4] == prefix).all() and x.shape == (8, 9)


def test_bad_block_sizes_are_refused():
    with pytest.raises(ValueError, match="block"):
        generate_blocks(enumerated(), LinearSchedule(), 2, 6, 2, window=LENGTH, block=LENGTH + 1)


def test_a_remasked_cadd_token_gets_a_fresh_latent_at_s():
    """Back to the mask at time s, the latent is a forward draw a_s·w(x) + σ b_s ε (Eq 11), not the clean row."""
    model = cadd_model()
    channel = model.channel
    n, length = 4000, 6
    x_t = torch.full((n, length), 1)
    state = channel.init_state(model.network, x_t, torch.Generator().manual_seed(0))
    x_s = x_t.clone()
    x_s[:, 2] = channel.mask_id
    log_p = torch.log_softmax(torch.randn(n, length, channel.mask_id), dim=-1)
    new = channel.update_state(model.network, state, ReverseStep(x_t, x_s, log_p, 0.6, 0.5), torch.Generator())
    w = channel.latent_of(model.network, torch.tensor([1]))[0]
    s = torch.tensor([0.5])
    a, b = float(channel.schedule.signal(s)), float(channel.schedule.noise(s))
    z = new.z[:, 0, 2]
    eps = (z - a * w) / (channel.sigma * b)
    assert eps.mean(0).abs().max() < 0.1 and (eps.std(0) - 1).abs().max() < 0.1
    torch.testing.assert_close(new.z[:, 0, 3], w.expand(n, -1))  # the others keep w(x)


def _models():
    mdlm = build_model(build_config({"method": "mdlm", "model_size": "xxs"}), LADD_V).eval()
    return {
        "mdlm": mdlm,
        "cadd": cadd_model(k=2),
        "co-ladd-joint": ladd_model("co-ladd"),
        "co-ladd-seq": ladd_model("co-ladd"),
        "di-ladd": ladd_model("di-ladd"),
    }


@pytest.mark.parametrize("strategy", REMASKING)
def test_every_method_samples_with_every_strategy_and_blocks(strategy):
    for name, model in _models().items():
        opts = model.sampling_options(lag=1.0, latent_steps=4) if name == "co-ladd-seq" else None
        length = LADD_L if "ladd" in name else 12
        remasking = Remasking(strategy, eta=0.2)
        x = generate(model, model.schedule, 3, length, 6, remasking=remasking, seed=1, channel_options=opts)
        assert x.shape == (3, length) and (x < LADD_V).all(), name
        long = generate_blocks(
            model, model.schedule, 2, length + 5, 4, window=length, block=5, remasking=remasking, channel_options=opts
        )
        assert long.shape == (2, length + 5) and (long < LADD_V).all(), name
