"""``augdiff sample --infill``: given tokens stay where the template puts them, masks are generated."""

import numpy as np
import pytest

from augdiff.cli.infill import parse_infill
from augdiff.cli.main import main
from augdiff.data.tokenizer import CharTokenizer
from augdiff.errors import AugdiffError

TINY = ["--model-size", "xxs", "--batch-size", "8", "seq_len=32", "progress=false", "tensorboard=false"]


def test_a_template_becomes_fixed_ids_and_free_positions():
    tok = CharTokenizer("abc .")
    ids, given = parse_infill("ab[MASK:2]c.[MASK]", tok, {"vocab_size": tok.vocab_size, "seq_len": 16})
    assert given.tolist() == [True, True, False, False, True, True, False]
    assert tok.decode([int(i) for i, g in zip(ids, given, strict=True) if g]) == "abc."
    ids, given = parse_infill("3 [MASK:2] 1", None, {"vocab_size": 4, "seq_len": 8})
    assert ids[given].tolist() == [3, 1] and given.tolist() == [True, False, False, True]


@pytest.mark.parametrize(
    "template,match",
    [("abc", "no \\[MASK\\]"), ("a[MASK:0]", "no position"), ("[MASK:40]", "seq_len is 16")],
)
def test_bad_templates_are_refused(template, match):
    tok = CharTokenizer("abc")
    with pytest.raises(AugdiffError, match=match):
        parse_infill(template, tok, {"vocab_size": tok.vocab_size, "seq_len": 16})


def test_ids_outside_the_vocabulary_or_not_ids_are_refused():
    with pytest.raises(AugdiffError, match="outside the model's vocabulary"):
        parse_infill("1 [MASK] 9", None, {"vocab_size": 2, "seq_len": 8})
    with pytest.raises(AugdiffError, match="not token ids"):
        parse_infill("x [MASK]", None, {"vocab_size": 2, "seq_len": 8})


@pytest.mark.parametrize("method", ["mdlm", "cadd"])
def test_sampled_rows_keep_the_given_tokens(method, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--method", method, "--data", "sawtooth", "--steps", "2", "--out", str(run), *TINY]) == 0
    out = tmp_path / "s.npy"
    template = "1 1 [MASK:4] 0 [MASK:3] 1"
    assert main(["sample", str(run), "--num", "6", "--steps", "4", "--infill", template, "--out", str(out)]) == 0
    rows = np.load(out)
    assert rows.shape == (6, 32)
    assert (rows[:, [0, 1, 6, 10]] == [1, 1, 0, 1]).all()
    assert set(np.unique(rows)) <= {0, 1}  # every other position was generated (no mask left)
