"""LLaDA's conditional log-likelihood estimator against exact small cases."""

import math

import pytest
import torch
from dummies import EnumeratedDenoiser, all_sequences
from torch import nn

from augdiff.channels import NoChannel
from augdiff.config import build_config
from augdiff.errors import AugdiffError
from augdiff.methods import build_model
from augdiff.metrics.conditional import continuation_log_likelihood, is_greedy

V, L = 3, 3


class Exact(nn.Module):
    """The enumerated exact denoiser as a model with MDLM's empty channel."""

    def __init__(self, probs):
        super().__init__()
        self.inner = EnumeratedDenoiser(probs, V, L)
        self.channel = NoChannel()
        self.token_term_is_bound = True
        self.exact_likelihood = False
        self.nll_kind = self.channel.nll_kind
        self.mask_id = V
        self.anchor = nn.Parameter(torch.zeros(1))  # a device to read

    def init_state(self, x_T, generator=None):
        return None

    def x0_log_probs(self, x_t, t, state=None):
        return self.inner.x0_log_probs(x_t, t)


def law():
    states = all_sequences(V, L)
    w = torch.ones(len(states), dtype=torch.float64)
    w[(states[:, 0] == states[:, 1]) & (states[:, 1] == states[:, 2])] = 9.0
    w[(states[:, 1] == 2) & (states[:, 2] == 0)] = 5.0
    return w / w.sum()


def conditional(probs, fixed):
    """log p(x_i = v for (i, v) in ``fixed``) from the enumerated law."""
    states = all_sequences(V, L)
    keep = torch.ones(len(states), dtype=torch.bool)
    for i, v in fixed.items():
        keep &= states[:, i] == v
    return math.log(float(probs[keep].sum()))


def test_one_token_is_scored_exactly():
    probs = law()
    est = continuation_log_likelihood(Exact(probs), torch.tensor([1, 1]), torch.tensor([1]), samples=8)
    expected = conditional(probs, {0: 1, 1: 1, 2: 1}) - conditional(probs, {0: 1, 1: 1})
    assert est.log_likelihood == pytest.approx(expected, abs=1e-9) and est.stderr == pytest.approx(0.0, abs=1e-9)


def test_two_tokens_match_the_estimators_expectation_and_bound_the_truth():
    """E = ½[(log p(r1|c,r2) + log p(r2|c,r1)) + (log p(r1|c) + log p(r2|c))] ≤ log p(r1 r2 | c)."""
    probs = law()
    c, r1, r2 = 2, 2, 0
    lc = conditional(probs, {0: c})
    joint = conditional(probs, {0: c, 1: r1, 2: r2}) - lc
    one_masked = (joint - (conditional(probs, {0: c, 2: r2}) - lc)) + (joint - (conditional(probs, {0: c, 1: r1}) - lc))
    both_masked = (conditional(probs, {0: c, 1: r1}) - lc) + (conditional(probs, {0: c, 2: r2}) - lc)
    expected = 0.5 * (one_masked + both_masked)
    est = continuation_log_likelihood(Exact(probs), torch.tensor([c]), torch.tensor([r1, r2]), samples=4000)
    assert abs(est.log_likelihood - expected) < 4 * est.stderr + 1e-9
    assert expected <= joint + 1e-12 and est.log_likelihood < joint + 4 * est.stderr


def test_models_whose_token_term_is_not_a_bound_are_refused():
    cadd = build_model(build_config({"method": "cadd", "model_size": "xxs"}), 5)
    with pytest.raises(AugdiffError, match="not|bound"):
        continuation_log_likelihood(cadd, torch.tensor([1]), torch.tensor([2]))


def test_a_real_mdlm_model_gives_a_finite_negative_estimate():
    model = build_model(build_config({"method": "mdlm", "model_size": "xxs"}), 5).eval()
    est = continuation_log_likelihood(model, torch.tensor([1, 2, 3]), torch.tensor([4, 0, 1]), samples=16)
    assert math.isfinite(est.log_likelihood) and est.log_likelihood < 0 and est.stderr >= 0


def test_an_ar_model_scores_the_continuation_exactly_by_the_chain_rule():
    """log p(r | c) = log p(c r) − log p(c), each from the model's exact NLL; and greedy = argmax at every step."""
    torch.manual_seed(0)
    model = build_model(build_config({"method": "ar", "model_size": "xxs"}), 5).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    c, r = torch.tensor([1, 2, 3]), torch.tensor([4, 0])
    est = continuation_log_likelihood(model, c, r)
    with torch.no_grad():
        whole = -float(model.nll(torch.cat([c, r]).unsqueeze(0))) * 5
        head = -float(model.nll(c.unsqueeze(0))) * 3
    assert est.log_likelihood == pytest.approx(whole - head, abs=1e-4) and est.stderr == 0.0
    best = c
    for _ in range(2):  # the greedy chain, one token at a time
        nxt = model.log_probs(torch.cat([best, torch.zeros(1, dtype=torch.long)]).unsqueeze(0))[0, -1].argmax()
        best = torch.cat([best, nxt.view(1)])
    assert is_greedy(model, c, best[3:])
    other = best[3:].clone()
    other[1] = (other[1] + 1) % 5
    assert not is_greedy(model, c, other)
