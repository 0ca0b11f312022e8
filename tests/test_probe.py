"""The latent probe (CADD Table 12): matched context masks ≈ (1−α(t))·L positions as in training; clean masks one."""

import pytest
import torch

from augdiff.channels.cadd import CADDState
from augdiff.config import build_config
from augdiff.errors import AugdiffError
from augdiff.methods import build_model
from augdiff.probe import probe_latent
from augdiff.processes.gaussian import gaussian_forward

V = 6
LEVELS = [0.0, 0.2, 0.5, 0.8, 1.0]


def cadd_model(**cadd):
    cfg = build_config({"method": "cadd", "model_size": "xxs", "cadd": cadd})
    torch.manual_seed(0)
    model = build_model(cfg, V)
    with torch.no_grad():  # give the zero-initialized layers weights so the latent matters
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.1)
    return model.eval()


def spy_inputs(model):
    """Record the (x_t, input_embeds) of every forward pass of ``model.network``."""
    seen = []
    forward = model.network.forward

    def spy(x_t, t, input_embeds=None):
        seen.append((x_t.clone(), input_embeds.clone()))
        return forward(x_t, t, input_embeds=input_embeds)

    model.network.forward = spy
    return seen


def text(length, seed=1):
    return torch.randint(0, V, (length,), generator=torch.Generator().manual_seed(seed))


def old_probe(model, tokens, position, true_token, noise_levels, *, top=3, seed=0):
    """The probe before ``context`` (one masked position, the rest clean), kept verbatim as the reference."""
    channel = model.channel
    x_t = tokens.clone().unsqueeze(0)
    x_t[0, position] = model.mask_id
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for level in noise_levels:
        t = torch.tensor([level])
        clean = model.network.embed_tokens(x_t)
        noise = torch.randn(clean.shape, generator=gen.manual_seed(seed))
        z = torch.where((x_t == model.mask_id).unsqueeze(-1), noise, clean)
        z0 = model.network.embed_tokens(torch.tensor([[true_token]]))
        z[0, position] = gaussian_forward(z0, t, channel.schedule, noise[:, position : position + 1])[0, 0]
        log_p = model.x0_log_probs(x_t, t, CADDState(z=z.unsqueeze(1), t=level, options=channel.sampling_options(k=1)))[
            0, position
        ]
        values, index = log_p.exp().topk(min(top, log_p.numel()))
        rows.append(list(zip(index.tolist(), values.tolist(), strict=True)))
    return rows


def test_matched_masks_about_one_minus_alpha_of_a_long_text_nested_as_t_grows():
    model = cadd_model()
    seen = spy_inputs(model)
    n, position = 1000, 400
    tokens = text(n)
    rows = probe_latent(model, tokens, position, int(tokens[position]), LEVELS)
    masks = [x_t[0] == model.mask_id for x_t, _ in seen]
    assert [r.masked for r in rows] == [int(m.sum()) for m in masks]
    for level, row in zip(LEVELS, rows, strict=True):
        p = 1.0 - model.schedule(torch.tensor([level])).alpha_t.item()
        expected, sd = 1 + p * (n - 1), (p * (1 - p) * (n - 1)) ** 0.5
        assert abs(row.masked - expected) <= 4 * sd + 1, (level, row.masked, expected)
    assert rows[0].masked == 1 and rows[-1].masked > 0.95 * n  # t=0: the probed position alone
    counts = [r.masked for r in rows]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)
    # One u per position, shared by all levels: the masked set only grows with t.
    for smaller, larger in zip(masks[:-1], masks[1:], strict=True):
        assert not (smaller & ~larger).any()


@pytest.mark.parametrize("context", ["matched", "clean"])
def test_the_probed_position_is_always_masked(context):
    model = cadd_model()
    seen = spy_inputs(model)
    tokens = text(40)
    for seed in range(3):
        probe_latent(model, tokens, 7, int(tokens[7]), LEVELS, seed=seed, context=context)
    assert len(seen) == 3 * len(LEVELS) and all(x_t[0, 7] == model.mask_id for x_t, _ in seen)


@pytest.mark.parametrize("fusion", ["add", "reweight"])
def test_matched_input_is_what_training_feeds_the_network(fusion):
    """Every masked position carries its own token's latent at t: the network input of CADDChannel.train_input."""
    model = cadd_model(fusion=fusion)
    seen = spy_inputs(model)
    tokens = text(64)
    levels = [0.2, 0.5, 0.8]
    probe_latent(model, tokens, 10, int(tokens[10]), levels, seed=5)
    for level, (x_t, embeds) in zip(levels, seen, strict=True):
        assert 1 < int((x_t == model.mask_id).sum()) < 64  # context positions are masked and some are clean
        t = torch.tensor([level])
        # train_input draws ε first from its generator, as the probe does: same seed, same ε.
        inputs = model.channel.train_input(model.network, tokens[None], x_t, t, torch.Generator().manual_seed(5))
        torch.testing.assert_close(embeds, inputs.input_embeds)


def test_clean_reproduces_the_one_position_probe():
    model = cadd_model()
    tokens = text(30)
    tokens[3] = model.mask_id  # a [MASK] of the text: unknown token, pure-noise latent in both
    rows = probe_latent(model, tokens, 12, 2, LEVELS, seed=4, context="clean")
    assert [r.top for r in rows] == old_probe(model, tokens, 12, 2, LEVELS, seed=4)
    assert [r.masked for r in rows] == [2] * len(LEVELS)
    matched = probe_latent(model, tokens, 12, 2, LEVELS, seed=4)
    assert [r.top for r in matched] != [r.top for r in rows]  # the context changes what the model predicts


def test_a_seed_fixes_the_draw_and_the_rows_differ_only_through_t():
    model = cadd_model()
    tokens = text(80)
    rows = probe_latent(model, tokens, 20, int(tokens[20]), LEVELS, seed=3)
    assert probe_latent(model, tokens, 20, int(tokens[20]), LEVELS, seed=3) == rows
    # The draw does not depend on which levels are asked for: each row is a function of (seed, t) alone.
    assert probe_latent(model, tokens, 20, int(tokens[20]), LEVELS[::-2], seed=3) == rows[::-2]
    other = probe_latent(model, tokens, 20, int(tokens[20]), LEVELS, seed=4)
    assert [r.masked for r in other] != [r.masked for r in rows]


def test_unknown_context_is_refused():
    model = cadd_model()
    with pytest.raises(AugdiffError, match="--context 'noisy'"):
        probe_latent(model, text(8), 0, 1, [0.5], context="noisy")
