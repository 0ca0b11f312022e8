"""One protocol for AR and diffusion models: the members metrics and apps read, and what each kind answers."""

import inspect
import typing

import pytest
import torch
from ladd_models import ladd_model

from augdiff.config import build_config
from augdiff.methods import build_model
from augdiff.metrics import estimate_nll
from augdiff.protocol import SequenceModel

V, L = 5, 8


def xxs(method: str):
    torch.manual_seed(0)
    return build_model(build_config({"method": method, "model_size": "xxs", "seq_len": L}), V).eval()


def protocol_members() -> list[str]:
    names = {n for n in vars(SequenceModel) if not n.startswith("_")}
    return sorted(names | set(typing.get_type_hints(SequenceModel)))


@pytest.mark.parametrize("method", ["ar", "mdlm", "cadd", "co-ladd"])
def test_every_model_has_every_member_with_a_compatible_signature(method):
    """Each protocol member exists; each method takes at least the protocol's parameters, in order."""
    model = ladd_model(method) if method == "co-ladd" else xxs(method)
    for name in protocol_members():
        assert hasattr(model, name), f"{type(model).__name__} lacks {name}"
        wanted = getattr(SequenceModel, name, None)
        if inspect.isfunction(wanted):
            want, want_kw = _split(list(inspect.signature(wanted).parameters.values())[1:])
            have, have_kw = _split(list(inspect.signature(getattr(model, name)).parameters.values()))
            assert have[: len(want)] == want, f"{type(model).__name__}.{name}{have} does not start with {want}"
            assert set(want_kw) <= set(have_kw), f"{type(model).__name__}.{name} lacks keywords {want_kw}"


def _split(params) -> tuple[list[str], list[str]]:
    """Names of the positional parameters and of the keyword-only ones."""
    keyword = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    return [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD], keyword


def test_the_ar_likelihood_is_exact_and_the_diffusion_one_an_average_over_times():
    """estimate_nll asks the model: AR takes no times (its chain-rule NLL); MDLM averages its ELBO over K times."""
    x = torch.randint(0, V, (4, L))
    ar, mdlm = xxs("ar"), xxs("mdlm")
    assert ar.exact_likelihood and not mdlm.exact_likelihood
    est = estimate_nll(ar, [x], time_samples=8)
    assert est.time_samples == 0
    torch.testing.assert_close(est.per_sequence, ar.nll(x).double())
    times = torch.tensor([[0.3] * 4, [0.7] * 4])
    gen = torch.Generator().manual_seed(1)
    got = mdlm.sequence_nll(x, times, gen)
    gen = torch.Generator().manual_seed(1)
    one = mdlm.loss(x, times[0], gen).nll_per_sequence.double()
    two = mdlm.loss(x, times[1], gen).nll_per_sequence.double()
    torch.testing.assert_close(got, (one + two) / 2)


def test_what_a_sample_costs_is_named_by_the_model():
    """step_calls: AR one step per token; diffusion T token steps; sequential LADD adds T_y·λ latent steps."""
    assert xxs("ar").step_calls(L, None) == {"ar token": L}
    assert xxs("mdlm").step_calls(L, 16) == {"token step": 16}
    model = ladd_model("co-ladd")
    seq = model.sampling_options(lag=1.0, latent_steps=6)
    half = model.sampling_options(lag=0.5, latent_steps=6)
    assert model.step_calls(L, 4, model.sampling_options(lag=0.0)) == {"token step": 4}
    assert model.step_calls(L, 4, seq) == {"token step": 4, "latent step": 6}
    assert model.step_calls(L, 4, half) == {"token step": 4, "latent step": 3}
    assert set(model.step_flops(1, L, seq)) == {"token step", "latent step"}
    assert set(model.step_flops(1, L, model.sampling_options(lag=0.0))) == {"token step"}


def test_names_of_likelihoods():
    """nll_kind and the bounds: exact for AR, an ELBO for MDLM, a bound derived for MDLM and CADD only."""
    ar, mdlm, cadd = xxs("ar"), xxs("mdlm"), xxs("cadd")
    assert ar.nll_kind.startswith("exact") and mdlm.nll_kind.startswith("ELBO")
    assert not ar.has_bound and mdlm.has_bound and cadd.has_bound
    assert mdlm.token_term_is_bound and not cadd.token_term_is_bound and not ar.token_term_is_bound
