"""Tiny LADD models for the channel tests: every zero-initialized layer given weights, so every path matters."""

import torch

from augdiff.config import build_config
from augdiff.methods import build_model

V, L, D, K = 4, 16, 8, 16  # tokens, sequence length, latent width d′, codebook size
METHODS = ["co-ladd", "di-ladd"]


def gen(seed):
    return torch.Generator().manual_seed(seed)


def ladd_model(method, stage=2, **ladd):
    """A tiny LADD model; zero-initialized layers get weights so that every path matters."""
    settings = {"stage": stage, "latent_dim": D, "codebook_size": K, "prior_hidden": 16, "prior_layers": 2, **ladd}
    cfg = build_config({"method": method, "model_size": "xxs", "ladd": settings})
    torch.manual_seed(0)
    model = build_model(cfg, V, L)
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.1)
        if method == "di-ladd":  # k-means init of the codebook from enough distinct encodings
            model.channel.encode(torch.randint(0, V, (256, L), generator=gen(99)), None)
    return model.eval()


def spy(module):
    """Record the arguments of every call of ``module``'s forward."""
    calls = []
    forward = module.forward

    def recording(*args, **kwargs):
        calls.append((args, kwargs))
        return forward(*args, **kwargs)

    module.forward = recording
    return calls
