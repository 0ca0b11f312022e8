"""LADD's latent encoder E_φ (App. D): pooling of per-token states to L′ latents, and its readout: the authors'
adaLN one (non-affine LayerNorm, zero-initialized shift/scale from the constant conditioning, adaLN-zero blocks,
Xavier projection) or the former linear one."""

import math

import pytest
import torch
import torch.nn.functional as F

from augdiff.config import build_config
from augdiff.methods import build_model
from augdiff.nn import model_shape
from augdiff.nn.latent import LatentEncoder

V, L, D = 4, 16, 8  # tokens, sequence length, latent width d′
SHAPE = model_shape("xxs")
H = SHAPE["hidden_size"]


def tokens(seed=0, batch=5):
    return torch.randint(0, V, (batch, L), generator=torch.Generator().manual_seed(seed))


# -- the latent encoder's pooling --------------------------------------------------------------------------
def encoder_states(encoder, x0):
    """Per-token hidden states [B, L, H] that the encoder pools: its final norm's output (the adaLN readout's
    modulation starts at zero, see test_adaln_readout_starts_as_layernorm_and_projection)."""
    states = []
    handle = encoder.norm.register_forward_hook(lambda module, inputs, output: states.append(output))
    out = encoder(x0)
    handle.remove()
    return states[0], out


def test_latent_encoder_pooling():
    shape = SHAPE
    x0 = tokens()
    torch.manual_seed(0)
    mean = LatentEncoder(V, L, 3, D, shape, "mean")  # 16 tokens into 3 uneven chunks
    h, out = encoder_states(mean, x0)
    assert out.shape == (5, 3, D)
    pooled = F.adaptive_avg_pool1d(h.transpose(1, 2), 3).transpose(1, 2)
    torch.testing.assert_close(out, mean.proj(pooled))
    torch.testing.assert_close(out[:, 0], mean.proj(h[:, :6].mean(dim=1)))  # chunk 0 = tokens 0..5
    none = LatentEncoder(V, L, L, D, shape, "none")
    none.load_state_dict(mean.state_dict())  # same weights: the pooling is the only difference
    per_token = none(x0)
    assert per_token.shape == (5, L, D)
    torch.testing.assert_close(out, F.adaptive_avg_pool1d(per_token.transpose(1, 2), 3).transpose(1, 2))
    patch = LatentEncoder(V, L, 4, D, shape, "patch")
    h, out = encoder_states(patch, x0)
    assert out.shape == (5, 4, D) and patch.proj.in_features == 4 * shape["hidden_size"]
    torch.testing.assert_close(out, patch.proj(h.reshape(5, 4, 4 * shape["hidden_size"])))
    last = LatentEncoder(V, L, 2, D, shape, "last")  # the paper's readout: the rightmost L′ states
    h, out = encoder_states(last, x0)
    assert out.shape == (5, 2, D)
    torch.testing.assert_close(out, last.proj(h[:, -2:]))
    with pytest.raises(ValueError, match="latent_len == seq_len"):
        LatentEncoder(V, L, 4, D, shape, "none")
    with pytest.raises(ValueError, match="divisible"):
        LatentEncoder(V, L, 3, D, shape, "patch")
    blank = torch.zeros(5, L, dtype=torch.bool)
    blank[:, 2] = True
    assert not torch.allclose(mean(x0, blank), mean(x0))  # blanked positions change the latent


# -- the readout -------------------------------------------------------------------------------------------
def test_adaln_readout_starts_as_layernorm_and_projection():
    """adaLN-zero: every block and the final modulation start as the identity, so a fresh encoder is
    proj(LayerNorm(embedding)) read at the last L′ positions."""
    enc = LatentEncoder(V, L, 2, D, SHAPE, "last")
    assert enc.readout == "adaln" and enc.norm.weight is None  # the default; shift and scale come from adaLN
    for layer in [*(b.adaln for b in enc.blocks), enc.final_adaln]:
        assert not layer.weight.any() and not layer.bias.any()
    x0 = tokens()
    out = enc(x0)
    assert out.shape == (5, 2, D)
    torch.testing.assert_close(out, enc.proj(F.layer_norm(enc.embed(x0), (H,))[:, -2:]))


def test_adaln_readout_modulates_with_the_constant_conditioning():
    enc = LatentEncoder(V, L, 2, D, SHAPE, "last")
    with torch.no_grad():
        enc.final_adaln.weight.normal_(0, 0.3)
        enc.final_adaln.bias.normal_(0, 0.3)
    x0 = tokens()
    shift, scale = enc.final_adaln(F.silu(enc.cond)).chunk(2)
    h = F.layer_norm(enc.embed(x0), (H,))  # the blocks are still the identity
    torch.testing.assert_close(enc(x0), enc.proj((h * (1 + scale) + shift)[:, -2:]))


def test_adaln_readout_projects_with_xavier_weights():
    """Xavier uniform on [−b, b], b = √(6 / (H + d′)); PyTorch's default would stop at 1/√H."""
    w = LatentEncoder(V, L, 2, D, SHAPE, "last").proj.weight
    bound = math.sqrt(6 / (H + D))
    assert 0.9 * bound < w.abs().max() <= bound and bound > 1.5 / math.sqrt(H)
    assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.15)  # the std of U[−b, b]


def test_linear_readout_is_the_former_one():
    """Affine LayerNorm, no final adaLN, and blocks with PyTorch's default (random) adaLN: active from step 0."""
    enc = LatentEncoder(V, L, 2, D, SHAPE, "last", readout="linear")
    assert enc.norm.weight is not None and not hasattr(enc, "final_adaln")
    assert all(b.adaln.weight.abs().sum() > 0 for b in enc.blocks)
    x0 = tokens()
    assert not torch.allclose(enc(x0), enc.proj(enc.norm(enc.embed(x0))[:, -2:]), atol=1e-4)


def test_encoder_dropout_acts_in_training_only():
    torch.manual_seed(0)
    enc = LatentEncoder(V, L, 2, D, SHAPE, "last", dropout=0.5)
    assert all(b.drop.p == 0.5 for b in enc.blocks)
    with torch.no_grad():
        for b in enc.blocks:  # open the adaLN-zero gates, or the residual branches (where dropout acts) are off
            b.adaln.weight.normal_(0, 0.3)
    x0 = tokens()
    enc.train()
    assert not torch.allclose(enc(x0), enc(x0))
    enc.eval()
    assert torch.equal(enc(x0), enc(x0))


def test_config_keys_choose_the_readout_and_the_dropout():
    def encoder(**ladd):
        cfg = build_config({"method": "co-ladd", "model_size": "xxs", "ladd": {"latent_dim": D, **ladd}})
        return build_model(cfg, V, L).channel.encoder

    default = encoder()
    assert default.readout == "adaln" and all(b.drop.p == 0.0 for b in default.blocks)
    former = encoder(encoder_readout="linear", encoder_dropout=0.1)
    assert former.readout == "linear" and all(b.drop.p == 0.1 for b in former.blocks)
