"""The masked process: forward marginal, exact bridge (vs Bayes by enumeration), ρ ratios, SUBS."""

import pytest
import torch

from augdiff.processes import flip_keep_ratios, forward_mask, reverse_bridge, subs_log_probs


def test_forward_masks_each_token_with_probability_one_minus_alpha():
    x0 = torch.randint(0, 5, (4000, 16))
    alpha = torch.tensor([0.2, 0.5, 0.9, 1.0]).repeat_interleave(1000)
    x_t = forward_mask(x0, alpha, mask_id=5, generator=torch.Generator().manual_seed(1))
    masked = (x_t == 5).float().view(4, 1000, 16).mean(dim=(1, 2))
    torch.testing.assert_close(masked, 1 - torch.tensor([0.2, 0.5, 0.9, 1.0]), atol=0.01, rtol=0)
    kept = x_t != 5
    assert torch.equal(x_t[kept], x0[kept])


def bayes_bridge(x0: int, x_t: int, alpha_t: float, alpha_s: float, vocab: int) -> torch.Tensor:
    """q(x_s | x_t, x0) ∝ q(x_t | x_s) q(x_s | x0), enumerating x_s over the V+1 states."""
    mask = vocab
    post = torch.zeros(vocab + 1, dtype=torch.float64)
    for x_s in range(vocab + 1):
        prior = alpha_s if x_s == x0 else (1 - alpha_s) if x_s == mask else 0.0
        if x_s == mask:
            lik = 1.0 if x_t == mask else 0.0
        else:
            keep = alpha_t / alpha_s
            lik = keep if x_t == x_s else (1 - keep) if x_t == mask else 0.0
        post[x_s] = prior * lik
    return post / post.sum()


@pytest.mark.parametrize("alpha_t,alpha_s", [(0.1, 0.4), (0.5, 0.51), (0.0, 1.0), (0.3, 0.3 + 1e-6)])
def test_bridge_matches_bayes_by_enumeration(alpha_t, alpha_s):
    vocab = 3
    for x0 in range(vocab):
        for x_t in (x0, vocab) if alpha_t > 0 else (vocab,):  # x_t = x0 is impossible when α_t = 0
            got = reverse_bridge(
                torch.tensor([[x_t]]),
                torch.nn.functional.one_hot(torch.tensor([[x0]]), vocab).double(),
                torch.tensor(alpha_t, dtype=torch.float64),
                torch.tensor(alpha_s, dtype=torch.float64),
                mask_id=vocab,
            )[0, 0]
            torch.testing.assert_close(got, bayes_bridge(x0, x_t, alpha_t, alpha_s, vocab))


def test_bridge_with_a_distribution_mixes_it_in():
    """LADD Eq 46: replacing the one-hot x0 by p_θ(x0|x_t) gives ρ_flip p_θ on tokens and ρ_keep on the mask."""
    probs = torch.tensor([[[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]], dtype=torch.float64)
    x_t = torch.tensor([[3, 1]])
    out = reverse_bridge(
        x_t, probs, torch.tensor([0.2], dtype=torch.float64), torch.tensor([0.6], dtype=torch.float64), 3
    )
    rho_flip = (0.6 - 0.2) / 0.8
    torch.testing.assert_close(
        out[0, 0], torch.tensor([0.2 * rho_flip, 0.3 * rho_flip, 0.5 * rho_flip, 1 - rho_flip], dtype=torch.float64)
    )
    torch.testing.assert_close(out[0, 1], torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64))


def test_flip_and_keep_sum_to_one_and_match_eq38():
    alpha_t = torch.rand(100, dtype=torch.float64) * 0.9
    alpha_s = alpha_t + torch.rand(100, dtype=torch.float64) * (1 - alpha_t)
    flip, keep = flip_keep_ratios(alpha_t, alpha_s)
    torch.testing.assert_close(flip + keep, torch.ones_like(flip))
    torch.testing.assert_close(keep, (1 - alpha_s) / (1 - alpha_t))
    assert ((flip >= 0) & (flip <= 1)).all()


def test_subs_never_predicts_the_mask_and_carries_unmasked_tokens():
    logits = torch.randn(2, 4, 5)
    x_t = torch.tensor([[4, 1, 4, 3], [0, 4, 2, 4]])
    log_p = subs_log_probs(logits, x_t, mask_id=4)
    assert log_p.shape == (2, 4, 4)
    torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(2, 4))
    unmasked = x_t != 4
    assert torch.equal(log_p[unmasked].argmax(-1), x_t[unmasked])
    assert (log_p[unmasked].max(-1).values == 0).all()
    torch.testing.assert_close(log_p[~unmasked], torch.log_softmax(logits[..., :4], -1)[~unmasked])
