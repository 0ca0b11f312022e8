"""The DiT denoiser: shapes, adaLN-zero start, bidirectional attention, optional time conditioning."""

import pytest
import torch

from augdiff.nn import DiT, DiTConfig, model_shape


def tiny(**kw) -> DiT:
    return DiT(DiTConfig(vocab_size=5, hidden_size=32, n_layers=2, n_heads=2, **kw))


def randomize(net: DiT) -> DiT:
    """Give the zero-initialized (adaLN-zero) layers weights so that every path matters."""
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.3)
    return net


def test_fresh_network_predicts_uniform_logits():
    """adaLN-zero and a zero output layer: a new model is an all-zero map, i.e. uniform p(x0)."""
    out = tiny()(torch.randint(0, 5, (3, 7)), torch.rand(3)).logits
    assert out.shape == (3, 7, 5)
    assert torch.equal(out, torch.zeros_like(out))


def test_attention_is_bidirectional():
    net = randomize(tiny()).eval()
    x = torch.randint(0, 5, (1, 8))
    y = x.clone()
    y[0, -1] = (x[0, -1] + 1) % 5
    a, b = net(x, torch.zeros(1)).logits, net(y, torch.zeros(1)).logits
    assert not torch.allclose(a[0, 0], b[0, 0]), "the first position must see the last"


def test_rotary_positions_break_permutation_symmetry():
    net = randomize(tiny()).eval()
    x = torch.tensor([[1, 2, 3, 4]])
    out = net(x, torch.zeros(1)).logits
    out_rev = net(x.flip(1), torch.zeros(1)).logits.flip(1)
    assert not torch.allclose(out, out_rev)


@pytest.mark.parametrize("conditioned", [False, True])
def test_time_conditioning_switch(conditioned):
    net = randomize(tiny(time_conditioning=conditioned)).eval()
    x = torch.randint(0, 5, (2, 6))
    same = torch.allclose(net(x, torch.tensor([0.1, 0.2])).logits, net(x, torch.tensor([0.9, 0.7])).logits)
    assert same is (not conditioned)
    assert net.time_conditioned is conditioned


def test_input_embeds_replace_the_token_embedding():
    net = randomize(tiny()).eval()
    x = torch.randint(0, 5, (2, 6))
    torch.testing.assert_close(
        net(x, torch.zeros(2)).logits, net(None, torch.zeros(2), input_embeds=net.embed_tokens(x)).logits
    )


def test_dropout_is_active_only_in_training():
    net = randomize(tiny(dropout=0.5))
    x = torch.randint(0, 5, (2, 6))
    net.train()
    assert not torch.allclose(net(x, torch.zeros(2)).logits, net(x, torch.zeros(2)).logits)
    net.eval()
    torch.testing.assert_close(net(x, torch.zeros(2)).logits, net(x, torch.zeros(2)).logits)


def test_small_preset_is_the_papers_169m_model():
    cfg = DiTConfig(vocab_size=50258, **model_shape("small"))
    with torch.device("meta"):
        net = DiT(cfg)
    n = sum(p.numel() for p in net.parameters())
    assert 165e6 < n < 172e6, n


def test_rotary_scores_depend_only_on_relative_position_and_keep_norms():
    from augdiff.nn.layers import Rotary, apply_rotary

    rot = Rotary(8)
    cos, sin = rot(16, torch.device("cpu"))
    q, k = torch.randn(8), torch.randn(8)
    rq = apply_rotary(q.expand(1, 1, 16, 8), cos, sin)[0, 0]
    rk = apply_rotary(k.expand(1, 1, 16, 8), cos, sin)[0, 0]
    torch.testing.assert_close(rq.norm(dim=-1), q.norm().expand(16))
    scores = rq @ rk.T  # scores[m, n] must depend on n − m only
    for shift in range(1, 4):
        torch.testing.assert_close(scores[:-shift, :-shift], scores[shift:, shift:], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(scores[0, 1], scores[0, 5])


def test_causal_attention_ignores_later_positions():
    """Brute force: changing token j leaves the outputs at positions < j unchanged and changes some at ≥ j."""
    net = randomize(tiny(causal=True)).eval()
    x = torch.randint(0, 5, (1, 7))
    out = net(x, torch.zeros(1)).logits
    for j in range(7):
        y = x.clone()
        y[0, j] = (x[0, j] + 1) % 5
        changed = net(y, torch.zeros(1)).logits
        torch.testing.assert_close(changed[:, :j], out[:, :j])
        assert not torch.allclose(changed[:, j:], out[:, j:])


def test_kv_cache_decoding_matches_one_full_forward():
    """Prefill three positions, then one position per call: every call's logits equal the full forward's."""
    from augdiff.nn import KVCache

    net = randomize(tiny(causal=True)).eval()
    x = torch.randint(0, 5, (2, 8))
    full = net(x, torch.zeros(2)).logits
    cache = KVCache(n_layers=2, capacity=8)
    pieces = [net(x[:, :3], torch.zeros(2), cache=cache).logits]
    pieces += [net(x[:, i : i + 1], torch.zeros(2), cache=cache).logits for i in range(3, 6)]
    pieces.append(net(x[:, 6:], torch.zeros(2), cache=cache).logits)  # two new positions after cached ones
    assert cache.length == 8
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-4, rtol=1e-4)


def test_features_are_what_the_head_reads():
    net = randomize(tiny()).eval()
    x = torch.randint(0, 5, (2, 6))
    h = net.features(x, torch.zeros(2))
    assert h.shape == (2, 6, 32)
    torch.testing.assert_close(net.head(h), net(x, torch.zeros(2)).logits)
