"""The local mixer: a depthwise convolution over positions added to the token embeddings."""

import pytest
import torch

from augdiff.config import build_config
from augdiff.errors import AugdiffError
from augdiff.methods import build_model
from augdiff.nn.layers import LocalMixer


def test_it_mixes_exactly_the_neighbours_within_its_kernel():
    torch.manual_seed(0)
    mixer = LocalMixer(4, 5)
    h = torch.randn(2, 12, 4)
    out = mixer(h)
    moved = h.clone()
    moved[:, 6] += 1.0  # change one position: only positions 4..8 (±2) may change
    diff = (mixer(moved) - out).abs().sum(-1)
    assert (diff[:, 4:9] > 0).all() and (diff[:, :4] == 0).all() and (diff[:, 9:] == 0).all()
    with torch.no_grad():
        mixer.conv.weight.zero_()
    torch.testing.assert_close(mixer(h), h)  # a zero kernel is the identity (a residual branch)


def _neighbour_effect(method, kernel):
    """Outputs at positions 4 and 8 for two inputs that differ at position 3, with every block zeroed (no
    attention, so no position can read another except through the mixer)."""
    overrides = [f"model.local_mixer={kernel}"]
    cfg = build_config({"method": method, "model_size": "xxs", "seq_len": 16, "ladd": {"stage": 2}}, overrides)
    torch.manual_seed(0)
    model = build_model(cfg, 5).eval()
    net = model.network
    x = torch.randint(0, 5, (1, 16), generator=torch.Generator().manual_seed(1))
    y = x.clone()
    y[0, 3] = (y[0, 3] + 1) % 5
    blocks = set(net.blocks.parameters())
    with torch.no_grad():
        for p in net.parameters():
            if p in blocks:
                p.zero_()
            elif p.abs().sum() == 0 and p.dim() > 1:  # the zero-initialized heads and modulations
                p.normal_(0, 0.1)
        t = torch.full((1,), 0.5)
        kw = {}
        if method == "co-ladd":
            kw = {"latent": torch.randn(1, net.cfg.latent_len, net.cfg.latent_in), "latent_t": t}
        a, b = net(x, t, **kw).logits, net(y, t, **kw).logits
    a, b = (a[0], b[0]) if isinstance(a, tuple) else (a, b)
    return (a[0, 4] - b[0, 4]).abs().max().item(), (a[0, 8] - b[0, 8]).abs().max().item()


@pytest.mark.parametrize("method", ["mdlm", "cadd", "co-ladd"])
def test_with_the_mixer_a_position_reads_its_neighbour_without_attention(method):
    near, far = _neighbour_effect(method, 3)
    assert near > 1e-6 and far == 0.0  # position 4 reads its neighbour 3; position 8 is out of reach
    near, far = _neighbour_effect(method, 0)
    assert near == 0.0 and far == 0.0  # the plain network: each position on its own


def test_the_mixer_is_refused_where_it_does_not_apply():
    with pytest.raises(AugdiffError, match="local_mixer"):
        build_config({"method": "ar"}, ["model.local_mixer=3"])
    with pytest.raises(AugdiffError, match="odd kernel"):
        build_config({"method": "mdlm"}, ["model.local_mixer=4"])
