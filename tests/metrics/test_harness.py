"""The lm-evaluation-harness adapter's methods on an exact model and on a trained tiny run (no lm_eval needed)."""

import math
from types import SimpleNamespace

import pytest
from dummies import tiny_english
from metrics.test_conditional import Exact, conditional, law

from augdiff.cli.main import main
from augdiff.data.tokenizer import CharTokenizer
from augdiff.harness import AugdiffLM


def exact_lm():
    return AugdiffLM(model=Exact(law()), tokenizer=CharTokenizer("abc"), seq_len=3, samples=2000)


def request(*args):
    return SimpleNamespace(args=args)


def test_a_two_item_multiple_choice_task_prefers_the_likelier_answer():
    """After "cc" the law puts weight 9 on "c" and 1 on "b": the adapter scores both exactly (one token) and
    calls only the likelier one greedy."""
    lm = exact_lm()
    (good, greedy_good), (bad, greedy_bad) = lm.loglikelihood([request("cc", "c"), request("cc", "b")])
    probs = law()
    assert good == pytest.approx(conditional(probs, {0: 2, 1: 2, 2: 2}) - conditional(probs, {0: 2, 1: 2}), abs=1e-9)
    assert good > bad and greedy_good and not greedy_bad


def test_rolling_loglikelihood_bounds_the_whole_text():
    lm = exact_lm()
    (score,) = lm.loglikelihood_rolling([request("aaa")])
    assert score <= conditional(law(), {0: 0, 1: 0, 2: 0}) + 0.05 and math.isfinite(score)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("harness")
    corpus = root / "c.txt"
    corpus.write_text(tiny_english(100, seed=3))
    run = root / "run"
    args = ["train", "--method", "mdlm", "--data", f"text:{corpus}", "--model-size", "xxs", "--steps", "2"]
    assert (
        main([*args, "--batch-size", "4", "--out", str(run), "seq_len=32", "progress=false", "tensorboard=false"]) == 0
    )
    return run


def test_a_run_answers_every_request_kind(text_run):
    lm = AugdiffLM.create_from_arg_string(f"path={text_run},samples=8,steps=4")
    ((ll, greedy),) = lm.loglikelihood([request("the dog ", "sat")])
    assert ll < 0 and isinstance(greedy, bool)
    (rolled,) = lm.loglikelihood_rolling([request("the dog sat on the mat. " * 3)])
    assert rolled < 0
    (text,) = lm.generate_until([request("the ", {"until": ["."], "max_gen_toks": 10})])
    assert isinstance(text, str) and len(text) <= 10 and "." not in text
    with pytest.raises(Exception, match="seq_len"):
        lm.loglikelihood([request("a", "b" * 40)])
