"""LADD's MM-DiT joint denoiser: shapes, cross-stream attention, per-stream weights, time conditioning, the latent
input embedding and the latent stream's rotary positions."""

import pytest
import torch
from torch import nn

from augdiff.config import build_config
from augdiff.methods import build_model
from augdiff.nn.layers import Rotary
from augdiff.nn.mmdit import MMDiT, MMDiTConfig
from augdiff.nn.protocol import NetworkOutput, TransformerShape

V, L, LY, DY = 5, 12, 3, 8  # vocabulary (mask included), tokens, latent positions, latent width


def tiny(latent_out=DY, n_layers=2, **kw) -> MMDiT:
    cfg = MMDiTConfig(vocab_size=V, latent_len=LY, latent_in=DY, latent_out=latent_out, n_layers=n_layers, **kw)
    return MMDiT(cfg)


def randomize(net: MMDiT) -> MMDiT:
    """Give the zero-initialized (adaLN-zero, heads) layers weights so that every path matters."""
    with torch.no_grad():
        for p in net.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.3)
    return net.eval()


def both(out: NetworkOutput) -> tuple:
    """The MM-DiT's two outputs: token logits and the latent head."""
    assert out.latent is not None
    return out.logits, out.latent


def inputs(batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, V, (batch, L), generator=g)
    return x, torch.rand(batch, generator=g), torch.randn(batch, LY, DY, generator=g), torch.rand(batch, generator=g)


@pytest.mark.parametrize("method,width", [("co-ladd", 16), ("di-ladd", 33)])
def test_built_networks_have_the_latent_head_of_their_method(method, width):
    """Co-LADD's head predicts ŷ_0 (width d′ = 16); Di-LADD's gives logits over K = 32 codes + the mask."""
    cfg = build_config({"method": method, "model_size": "xxs", "ladd": {"latent_dim": 16, "codebook_size": 32}})
    net = build_model(cfg, 3).network
    assert isinstance(net, MMDiT) and net.cfg.latent_out == width and net.cfg.latent_in == 16
    logits, head = both(
        net(torch.randint(0, 4, (2, 10)), torch.rand(2), latent=torch.randn(2, 1, 16), latent_t=torch.rand(2))
    )
    assert logits.shape == (2, 10, 4) and head.shape == (2, 1, width)


def test_fresh_network_outputs_zeros():
    """adaLN-zero and zero heads: a new network is the all-zero map in both streams."""
    x, t, y, t_y = inputs()
    logits, head = both(tiny()(x, t, latent=y, latent_t=t_y))
    assert logits.shape == (2, L, V) and head.shape == (2, LY, DY)
    assert torch.equal(logits, torch.zeros_like(logits)) and torch.equal(head, torch.zeros_like(head))


def test_streams_read_each_other():
    """Joint attention: token logits depend on the latent, the latent head depends on the tokens."""
    net = randomize(tiny())
    x, t, y, t_y = inputs()
    logits, head = both(net(x, t, latent=y, latent_t=t_y))
    logits_y, head_y = both(net(x, t, latent=y + 1.0, latent_t=t_y))
    assert not torch.allclose(logits, logits_y, atol=1e-4)
    x2 = x.clone()
    x2[:, -1] = (x[:, -1] + 1) % V
    logits_x, head_x = both(net(x2, t, latent=y, latent_t=t_y))
    assert not torch.allclose(head, head_x, atol=1e-4)
    assert not torch.allclose(logits[:, 0], logits_x[:, 0], atol=1e-4)  # and tokens see each other


def test_the_streams_have_their_own_weights():
    net = randomize(tiny())
    for block in net.blocks:
        x, y = block.streams["x"], block.streams["y"]
        for name in ("qkv", "attn_out", "mlp", "adaln"):
            ids_x = {id(p) for p in getattr(x, name).parameters()}
            ids_y = {id(p) for p in getattr(y, name).parameters()}
            assert ids_x and not ids_x & ids_y, name
    assert net.heads["x"].out_features == V and net.heads["y"].out_features == DY
    # the last block's MLP of one stream acts after the joint attention: it only reaches its own output
    x, t, y, t_y = inputs()
    logits, head = both(net(x, t, latent=y, latent_t=t_y))
    for stream, unchanged, changed in (("y", 0, 1), ("x", 1, 0)):  # output 0: token logits, 1: latent head
        with torch.no_grad():
            net.blocks[-1].streams[stream].mlp[-1].bias.add_(1.0)
        new = both(net(x, t, latent=y, latent_t=t_y))
        torch.testing.assert_close(new[unchanged], (logits, head)[unchanged])
        assert not torch.allclose(new[changed], (logits, head)[changed], atol=1e-4)
        logits, head = new


@pytest.mark.parametrize("conditioned", [False, True])
def test_time_conditioning(conditioned):
    """The token time is read only with time_conditioning; the latent time always."""
    net = randomize(tiny(time_conditioning=conditioned))
    assert net.time_conditioned is conditioned
    x, t, y, t_y = inputs()
    logits, head = both(net(x, t, latent=y, latent_t=t_y))
    other_t = both(net(x, 1.0 - t, latent=y, latent_t=t_y))
    same = torch.allclose(logits, other_t[0]) and torch.allclose(head, other_t[1])
    assert same is (not conditioned)
    other_t_y = both(net(x, t, latent=y, latent_t=1.0 - t_y))
    assert not torch.allclose(logits, other_t_y[0], atol=1e-4) and not torch.allclose(head, other_t_y[1], atol=1e-4)


def test_the_latent_stream_is_required():
    x, t, _, _ = inputs()
    with pytest.raises(AssertionError, match="latent"):
        tiny()(x, t)


def test_input_embeds_replace_the_token_embedding():
    net = randomize(tiny())
    x, t, y, t_y = inputs()
    a = both(net(x, t, latent=y, latent_t=t_y))
    b = both(net(None, t, input_embeds=net.embed_tokens(x), latent=y, latent_t=t_y))
    torch.testing.assert_close(a, b)


def test_eq77_attention_length_counts_both_streams():
    net = tiny()
    assert net.transformer_shape(L).length == L + LY
    assert net.transformer_shape(100) == TransformerShape(100 + LY, net.cfg.hidden_size, 2, net.cfg.mlp_ratio)


# -- the latent input embedding ----------------------------------------------------------------------------
def test_the_latent_embedding_is_the_authors_mlp_or_one_linear():
    net = tiny()  # the default: Linear(d′, 4D) → SiLU → Linear(4D, D)
    d = net.cfg.hidden_size
    mlp = net.latent_embed
    assert [type(m) for m in mlp] == [nn.Linear, nn.SiLU, nn.Linear]
    assert (mlp[0].in_features, mlp[0].out_features, mlp[2].in_features, mlp[2].out_features) == (DY, 4 * d, 4 * d, d)
    linear = tiny(latent_embed="linear").latent_embed
    assert isinstance(linear, nn.Linear) and (linear.in_features, linear.out_features) == (DY, d)


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_only_the_mlp_embedding_lets_the_tokens_read_the_latents_norm(kind):
    """With one block the tokens read the latent only through the first LayerNorm of the latent stream: a
    Linear without bias is undone by it (y and 3y give the same token logits); the MLP's SiLU is not linear, so
    its embedding of 3y is not 3× that of y, and the tokens see the norm."""
    net = randomize(tiny(n_layers=1, latent_embed=kind))
    with torch.no_grad():
        for m in net.latent_embed.modules():
            if isinstance(m, nn.Linear):
                m.bias.zero_()
    x, t, y, t_y = inputs()
    # Linear: an embedding variance far above the LayerNorm's ε, which alone would tell the scales apart. MLP
    # (PyTorch's init, wide enough for ε): coordinates of order 1, where SiLU bends (far out it is ReLU-like).
    y = 10 * y if kind == "linear" else y / 3
    with torch.no_grad():
        logits, _ = both(net(x, t, latent=y, latent_t=t_y))
        logits_3y, _ = both(net(x, t, latent=3 * y, latent_t=t_y))
        homogeneous = torch.allclose(net.latent_embed(3 * y), 3 * net.latent_embed(y), atol=1e-5)
    assert homogeneous is (kind == "linear")
    if kind == "linear":
        torch.testing.assert_close(logits_3y, logits, atol=1e-5, rtol=1e-5)
    else:
        assert (logits_3y - logits).abs().max() > 1e-2


def test_a_linear_embedding_with_bias_still_sees_the_norm():
    """The bias shifts W·y before the LayerNorm, so LN(3W·y + b) ≠ LN(W·y + b): the scale is not lost exactly,
    only seen through the ratio of the latent to a fixed offset."""
    net = randomize(tiny(n_layers=1, latent_embed="linear"))
    assert net.latent_embed.bias.abs().sum() > 0
    x, t, y, t_y = inputs()
    with torch.no_grad():
        logits, _ = both(net(x, t, latent=y, latent_t=t_y))
        logits_3y, _ = both(net(x, t, latent=3 * y, latent_t=t_y))
    assert not torch.allclose(logits_3y, logits, atol=1e-4)


# -- rotary positions of the latent stream -----------------------------------------------------------------
@pytest.mark.parametrize("kind,first", [("after", L), ("restart", 0)])
def test_latent_rotary_positions(kind, first):
    """``after``: latent j sits at position L + j (the authors' code); ``restart``: at j, beside token j."""
    net = tiny(latent_positions=kind)
    rope = net._rope(L, LY, torch.device("cpu"))
    cos, sin = Rotary(net.cfg.hidden_size // net.cfg.n_heads)(L + LY, torch.device("cpu"))
    assert torch.equal(rope["x"][0], cos[:L]) and torch.equal(rope["x"][1], sin[:L])
    assert torch.equal(rope["y"][0], cos[first : first + LY]) and torch.equal(rope["y"][1], sin[first : first + LY])


def test_latent_positions_change_the_output_for_the_same_weights():
    after = randomize(tiny(latent_positions="after"))
    restart = tiny(latent_positions="restart")
    restart.load_state_dict(after.state_dict())
    x, t, y, t_y = inputs()
    with torch.no_grad():
        a, b = both(after(x, t, latent=y, latent_t=t_y)), both(restart(x, t, latent=y, latent_t=t_y))
    assert not torch.allclose(a[0], b[0], atol=1e-4) and not torch.allclose(a[1], b[1], atol=1e-4)


def test_config_keys_choose_the_latent_embedding_and_positions():
    def network(**ladd):
        cfg = build_config({"method": "co-ladd", "model_size": "xxs", "ladd": {"latent_dim": DY, **ladd}})
        return build_model(cfg, 3).network

    default = network()
    assert isinstance(default.latent_embed, nn.Sequential) and default.cfg.latent_positions == "after"
    former = network(latent_embed="linear", latent_positions="restart")
    assert isinstance(former.latent_embed, nn.Linear) and former.cfg.latent_positions == "restart"
