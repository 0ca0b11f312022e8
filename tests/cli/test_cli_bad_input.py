"""Bad input: one line naming the problem and the fix, exit code 2, and no files left behind."""

import json

import numpy as np
import pytest

from augdiff.cli.main import main

TINY = ["--model-size", "xxs", "--batch-size", "4", "--steps", "2", "progress=false", "tensorboard=false"]


def fails_cleanly(args, capsys, match, *absent):
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert match in err, err
    for path in absent:
        assert not path.exists(), f"{path} was left behind"
    return err


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--method", "gpt"], "method='gpt' is not known"),
        (["optim.lrr=0.1"], "did you mean 'optim.lr'"),
        (["optim.lr=fast"], "optim.lr: expected float"),
        (["--model-size", "huge"], "model_size='huge' is not known"),
        (["--data", "imagenet"], "not a known data source"),
    ],
)
def test_train_config_errors(tmp_path, capsys, extra, match):
    out = tmp_path / "run"
    fails_cleanly(["train", "--out", str(out), *TINY, *extra], capsys, match, out)


def test_wrong_flag_type_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["train", "--out", str(out), "--steps", "many"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "invalid int value: 'many'" in err
    assert not out.exists()


def test_token_ids_outside_the_vocabulary(tmp_path, capsys):
    data = tmp_path / "toks.npy"
    np.save(data, np.array([[0, 1, 9, 2]] * 20))
    out = tmp_path / "run"
    fails_cleanly(
        ["train", "--out", str(out), "--data", f"tokens:{data}", "vocab_size=5", *TINY],
        capsys,
        "but the vocabulary is [0, 5)",
        out,
    )


@pytest.mark.parametrize("content,match", [("", "corpus is empty"), ("abc" * 10, "too short")])
def test_empty_or_short_corpus(tmp_path, capsys, content, match):
    corpus = tmp_path / "c.txt"
    corpus.write_text(content)
    out = tmp_path / "run"
    fails_cleanly(["train", "--out", str(out), "--data", f"text:{corpus}", *TINY], capsys, match, out)


def test_missing_and_foreign_checkpoints(tmp_path, capsys):
    out = tmp_path / "s.npy"
    fails_cleanly(["sample", str(tmp_path / "nothing"), "--out", str(out)], capsys, "no such run directory", out)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "meta.json").write_text(json.dumps({"format": "lightning", "step": 3}))
    fails_cleanly(["sample", str(foreign), "--out", str(out)], capsys, "not an augdiff checkpoint", out)
    fails_cleanly(["eval", str(tmp_path), "--data", "sawtooth"], capsys, "not an augdiff run")


def test_existing_run_needs_resume_and_resume_refuses_new_config(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *TINY]) == 0
    before = sorted(p.name for p in out.rglob("*"))
    fails_cleanly(["train", "--out", str(out), *TINY], capsys, "already holds a run")
    fails_cleanly(["train", "--resume", str(out), "optim.lr=1"], capsys, "only --steps may change")
    assert sorted(p.name for p in out.rglob("*")) == before
    sample = tmp_path / "s.csv"
    fails_cleanly(["sample", str(out), "--out", str(sample)], capsys, "unknown file type", sample)
    fails_cleanly(
        ["sample", str(out), "--out", str(tmp_path / "s.npy"), "--prefix", "ab"],
        capsys,
        "needs a character-level text model",
        tmp_path / "s.npy",
    )
    fails_cleanly(
        ["eval", str(out), "--data", f"text:{tmp_path / 'x.txt'}"], capsys, "trained on sawtooth, not on text"
    )


def test_run_with_unknown_method_or_preset(tmp_path, capsys):
    out = tmp_path / "exp"
    fails_cleanly(["run", "sawtooth", "--out", str(out), "--methods", "mdlm,gpt"], capsys, "unknown gpt", out)
    fails_cleanly(["run", "sawtooth", "--out", str(out), "--preset", "huge"], capsys, "not known", out)
