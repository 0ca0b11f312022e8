"""The autoregressive reference (``method: ar``): causal likelihood, sampling, training and restoring a run."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from dummies import all_sequences

from augdiff.ar import ARModel, generate_ar
from augdiff.config import build_config
from augdiff.errors import AugdiffError
from augdiff.methods import build_model
from augdiff.metrics import estimate_nll
from augdiff.nn import DiT, DiTConfig
from augdiff.runs import load_run
from augdiff.train import Trainer


def tiny_ar(vocab: int = 3) -> ARModel:
    net = DiT(DiTConfig(vocab_size=vocab + 1, hidden_size=32, n_layers=2, n_heads=2, causal=True))
    return ARModel(net, vocab).eval()


def randomized(model: ARModel) -> ARModel:
    """Give the zero-initialized (adaLN-zero) layers weights, so that every position and path matters; small
    enough (std 0.1: next-token probabilities within ≈[0.1, 0.7]) that no distribution is degenerate."""
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1)
    return model


def next_token_log_probs(model: ARModel, seen: torch.Tensor) -> torch.Tensor:
    """By hand: one forward over [start token, seen...]; the last position's distribution over the V tokens."""
    inputs = torch.cat([torch.full((seen.shape[0], 1), model.vocab_size), seen], dim=1)
    logits = model.network(inputs, torch.zeros(seen.shape[0])).logits[:, -1, : model.vocab_size]
    return F.log_softmax(logits.float(), dim=-1)


# -- likelihood ---------------------------------------------------------------------------------------------
def test_log_probs_are_normalized_over_the_data_tokens():
    model = randomized(tiny_ar())
    log_p = model.log_probs(torch.randint(0, 3, (4, 6)))
    assert log_p.shape == (4, 6, 3) and log_p.dtype == torch.float32
    torch.testing.assert_close(log_p.logsumexp(dim=-1), torch.zeros(4, 6), atol=1e-6, rtol=0)


def test_changing_a_token_changes_only_the_predictions_after_it():
    """Brute force over j: p(x_i | x_<i) for i ≤ j does not read x_j; some later one does."""
    model = randomized(tiny_ar())
    x = torch.randint(0, 3, (1, 6))
    log_p = model.log_probs(x)
    for j in range(6):
        y = x.clone()
        y[0, j] = (x[0, j] + 1) % 3
        changed = model.log_probs(y)
        torch.testing.assert_close(changed[:, : j + 1], log_p[:, : j + 1])
        if j < 5:
            assert not torch.allclose(changed[:, j + 1 :], log_p[:, j + 1 :])


def test_sequence_probabilities_sum_to_one():
    """exp(−L · nll) over all 3⁴ sequences is a distribution: the start token and the shift are right."""
    model = randomized(tiny_ar())
    x = all_sequences(3, 4)
    log_px = -4 * model.nll(x).double()
    torch.testing.assert_close(log_px.exp().sum(), torch.tensor(1.0, dtype=torch.float64), atol=1e-5, rtol=0)


def test_nll_is_the_chain_rule_of_separate_forwards():
    model = randomized(tiny_ar())
    x = torch.randint(0, 3, (3, 5))
    log_px = sum(next_token_log_probs(model, x[:, :i]).gather(-1, x[:, i : i + 1]).squeeze(-1) for i in range(5))
    torch.testing.assert_close(model.nll(x), -log_px / 5, atol=1e-5, rtol=1e-5)


def test_hidden_states_are_what_the_head_reads():
    """Row i has read x_0..x_i: the head on it gives p(x_{i+1} | x_≤i)."""
    model = randomized(tiny_ar())
    x = torch.randint(0, 3, (2, 6))
    h = model.hidden_states(x)
    assert h.shape == (2, 6, 32)
    from_features = F.log_softmax(model.network.head(h)[..., :3], dim=-1)
    torch.testing.assert_close(from_features[:, :-1], model.log_probs(x)[:, 1:], atol=1e-5, rtol=1e-5)


def test_loss_is_the_exact_nll_and_ignores_the_diffusion_time():
    model = randomized(tiny_ar())
    x = torch.randint(0, 3, (4, 6))
    a, b = model.loss(x, torch.full((4,), 0.1)), model.loss(x, torch.full((4,), 0.9))
    torch.testing.assert_close(a.loss, b.loss)
    torch.testing.assert_close(a.nll_per_sequence, model.nll(x).detach())
    torch.testing.assert_close(a.loss.detach(), a.nll)
    assert a.loss.requires_grad and not a.nll_per_sequence.requires_grad


def test_estimate_nll_is_exact_for_an_ar_model():
    model = randomized(tiny_ar())
    x = torch.randint(0, 3, (10, 6))
    est = estimate_nll(model, x.split(4), time_samples=8)
    per_seq = model.nll(x).double().detach()
    assert est.time_samples == 0 and est.n_sequences == 10
    assert est.nll == pytest.approx(float(per_seq.mean()), rel=1e-6)
    assert est.stderr == pytest.approx(float(per_seq.std() / math.sqrt(10)), rel=1e-5)


# -- sampling -----------------------------------------------------------------------------------------------
def test_tiny_top_p_and_low_temperature_are_greedy_decoding():
    model = randomized(tiny_ar())
    x = torch.zeros(4, 7, dtype=torch.long)
    for i in range(7):  # argmax decoding by hand, one full forward per token
        x[:, i] = next_token_log_probs(model, x[:, :i]).argmax(dim=-1)
    assert torch.equal(model.generate(4, 7, top_p=1e-9), x)
    assert torch.equal(model.generate(4, 7, temperature=1e-4), x)


def test_cached_and_uncached_generation_draw_the_same_tokens():
    model = randomized(tiny_ar())
    draw = [model.generate(8, 10, generator=torch.Generator().manual_seed(3), cache=c) for c in (True, False)]
    assert torch.equal(draw[0], draw[1])


def test_samples_follow_the_model_distribution():
    """Empirical frequencies of 20 000 draws of all 2³ sequences match exp(−L · nll) within 5 σ."""
    model = randomized(tiny_ar(vocab=2))
    states = all_sequences(2, 3)
    probs = (-3 * model.nll(states).double()).exp().detach()
    samples = model.generate(20_000, 3, generator=torch.Generator().manual_seed(0))
    index = (samples * torch.tensor([4, 2, 1])).sum(dim=1)  # binary number of the sequence, as all_sequences
    freq = torch.bincount(index, minlength=8).double() / 20_000
    sigma = (probs * (1 - probs) / 20_000).sqrt()
    assert ((freq - probs).abs() < 5 * sigma + 1e-4).all(), (freq, probs)


def test_generation_starts_with_the_prefix():
    model = randomized(tiny_ar())
    out = model.generate(3, 8, prefix=torch.tensor([2, 0, 1]), generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 8) and (out[:, :3] == torch.tensor([2, 0, 1])).all()
    rows = torch.tensor([[1, 1], [0, 2], [2, 2]])
    assert torch.equal(model.generate(3, 5, prefix=rows)[:, :2], rows)
    assert torch.equal(model.generate(1, 3, prefix=torch.tensor([1, 2, 0])), torch.tensor([[1, 2, 0]]))
    with pytest.raises(ValueError):
        model.generate(1, 3, prefix=torch.tensor([3]))  # id 3 is the start token, not data


def test_batched_generation_is_seeded():
    model = tiny_ar()  # fresh: uniform next-token distributions
    a, b = generate_ar(model, 5, 6, batch_size=2, seed=1), generate_ar(model, 5, 6, batch_size=2, seed=1)
    assert a.shape == (5, 6) and torch.equal(a, b)
    assert not torch.equal(a, generate_ar(model, 5, 6, batch_size=2, seed=2))


# -- the method: matched size, training, checkpoints ----------------------------------------------------------
def test_ar_method_is_the_diffusion_dit_made_causal():
    ar = build_model(build_config({"method": "ar", "model_size": "xxs"}), 11)
    mdlm = build_model(build_config({"method": "mdlm", "model_size": "xxs"}), 11)
    assert isinstance(ar, ARModel) and ar.network.cfg.causal and not mdlm.network.cfg.causal
    assert sum(p.numel() for p in ar.parameters()) == sum(p.numel() for p in mdlm.parameters())
    with pytest.raises(AugdiffError, match="time_conditioning"):
        build_model(build_config({"method": "ar", "model": {"time_conditioning": True}}), 11)


PATTERN_V, PATTERN_L = 8, 16


def pattern_config(path, steps: int) -> dict:
    """A tiny AR on rows that count up modulo 8 from a random start: only the first token is uncertain."""
    return {
        "method": "ar",
        "data": f"tokens:{path}",
        "model_size": "xxs",
        "steps": steps,
        "batch_size": 16,
        "device": "cpu",
        "progress": False,
        "tensorboard": False,
        "log_every": 50,
        "model": {"hidden_size": 32, "n_layers": 2, "n_heads": 2},
        "optim": {"lr": 3e-3, "warmup_steps": 10, "ema_decay": 0.9},
    }


@pytest.fixture(scope="module")
def pattern_file(tmp_path_factory):
    starts = np.tile(np.arange(PATTERN_V), 20)
    rows = (starts[:, None] + np.arange(PATTERN_L)[None]) % PATTERN_V
    path = tmp_path_factory.mktemp("pattern") / "rows.npy"
    np.save(path, rows.astype(np.int64))
    return path


@pytest.fixture(scope="module")
def trained(pattern_file, tmp_path_factory):
    trainer = Trainer(build_config(pattern_config(pattern_file, 150)), tmp_path_factory.mktemp("ar") / "run")
    trainer.fit()
    return trainer


def test_training_drops_the_nll_well_below_uniform(trained):
    """Uniform: log 8 = 2.08 nats per token; floor: log 8 / 16 = 0.13 (only the first token is uncertain)."""
    model = trained.model.eval()
    est = estimate_nll(model, trained.dataset.valid_batches(8))
    assert est.nll < math.log(PATTERN_V) / PATTERN_L + 0.05, est
    with torch.no_grad():
        greedy = model.generate(4, PATTERN_L, prefix=torch.tensor([5]), top_p=1e-9)
    assert torch.equal(greedy[0], (5 + torch.arange(PATTERN_L)) % PATTERN_V)


@pytest.mark.parametrize("weights", ["raw", "ema"])
def test_a_saved_run_restores_identical_log_probs(trained, weights):
    loaded = load_run(trained.run_dir, weights=weights)
    assert isinstance(loaded.model, ARModel) and loaded.config.method == "ar"
    reference = tiny_ar(PATTERN_V)
    reference.load_state_dict(trained.model.state_dict() if weights == "raw" else trained.ema.state_dict())
    x = next(trained.dataset.valid_batches(8))
    with torch.no_grad():
        assert torch.equal(loaded.model.log_probs(x), reference.eval().log_probs(x))


def test_resumed_training_gives_the_same_weights(pattern_file, tmp_path):
    straight = Trainer(build_config(pattern_config(pattern_file, 4)), tmp_path / "straight")
    straight.fit()
    half = Trainer(build_config(pattern_config(pattern_file, 2)), tmp_path / "resumed")
    half.fit()
    resumed = Trainer.resume(tmp_path / "resumed", steps=4)
    resumed.fit()
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    for key, value in straight.ema.state_dict().items():
        assert torch.equal(value, resumed.ema.state_dict()[key]), key


def test_padding_is_left_out_of_the_ar_nll_and_loss():
    torch.manual_seed(0)
    model = randomized(tiny_ar())
    x = torch.randint(0, 2, (3, 10))  # real tokens 0, 1
    x[:, 6:] = 2  # pad id 2
    model.pad_id = 2
    per_token = model.token_nll(x)
    torch.testing.assert_close(model.nll(x), per_token[:, :6].mean(-1))
    out = model.loss(x, torch.rand(3))
    torch.testing.assert_close(out.loss, per_token[:, :6].mean())
    model.pad_id = None
    assert not torch.allclose(model.nll(x), per_token[:, :6].mean(-1))
