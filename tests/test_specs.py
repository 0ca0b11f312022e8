"""The method specs are the one list of methods, and what they say matches what the code does."""

import inspect

import pytest

from augdiff.config import build_config
from augdiff.errors import AugdiffError
from augdiff.methods import build_model
from augdiff.specs import DIFFUSION_METHODS, LADD_METHODS, METHOD_SPECS, METHODS, method_spec


def _model(method: str):
    ladd = {"ladd": {"stage": 2, "latent_len": 2, "latent_dim": 4, "codebook_size": 4}}
    overrides = ladd if method in LADD_METHODS else {}
    cfg = build_config({"method": method, "data": "sawtooth", "model_size": "xxs", "seq_len": 8, **overrides})
    return build_model(cfg, 2, 8)


def test_every_method_builds_and_unknown_ones_are_refused():
    for method in METHODS:
        assert _model(method) is not None
    with pytest.raises(AugdiffError, match="method"):
        build_config({"method": "sedd"})
    with pytest.raises(KeyError, match="known: mdlm"):
        method_spec("sedd")


@pytest.mark.parametrize("method", DIFFUSION_METHODS)
def test_a_methods_sampling_options_are_ones_its_channel_takes(method):
    """The CLI passes exactly the spec's options to ``sampling_options``; Di-LADD shares LADD's signature, whose
    ``eta`` (Co-LADD's DDIM stochasticity) it has no use for, so the spec leaves that one out."""
    channel = _model(method).channel
    signature = inspect.signature(channel.sampling_options).parameters.items()
    taken = [n for n, p in signature if p.kind is p.KEYWORD_ONLY]
    options = METHOD_SPECS[method].sampling_options
    assert set(options) <= set(taken)
    assert set(taken) - set(options) == ({"eta"} if method == "di-ladd" else set())


def test_ladd_methods_have_two_stages_and_two_inference_modes():
    for method in LADD_METHODS:
        spec = method_spec(method)
        assert spec.stages == (1, 2) and spec.inference_modes == ("joint", "sequential") and spec.section == "ladd"
    assert not method_spec("ar").diffusion and "ar" not in DIFFUSION_METHODS
