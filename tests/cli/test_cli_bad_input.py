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
    fails_cleanly(
        ["sample", str(tmp_path / "nothing"), "--out", str(out)], capsys, "no such run or checkpoint directory", out
    )
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
    fails_cleanly(["train", "--resume", str(out), "optim.lr=1"], capsys, "optim.lr cannot change")
    fails_cleanly(["train", "--resume", str(out), "--model-size", "xs"], capsys, "drop --model-size")
    fails_cleanly(["train", "--resume", str(out), "--steps", "2"], capsys, "already at step 2")
    fails_cleanly(["train", "--resume", str(out / "checkpoints" / "step_00000002")], capsys, "this is one checkpoint")
    assert sorted(p.name for p in out.rglob("*")) == before
    sample = tmp_path / "s.csv"
    fails_cleanly(["sample", str(out), "--out", str(sample)], capsys, "unknown file type", sample)
    fails_cleanly(
        ["sample", str(out), "--out", str(tmp_path / "s.npy"), "--prefix", "ab"],
        capsys,
        "--prefix needs a text model",
        tmp_path / "s.npy",
    )
    fails_cleanly(["eval", str(out), "--data", f"text:{tmp_path / 'x.txt'}"], capsys, "trained on sawtooth data")


def test_run_with_unknown_method_or_preset(tmp_path, capsys):
    out = tmp_path / "exp"
    fails_cleanly(["run", "sawtooth", "--out", str(out), "--methods", "mdlm,gpt"], capsys, "unknown gpt", out)
    fails_cleanly(["run", "sawtooth", "--out", str(out), "--preset", "huge"], capsys, "not known", out)


@pytest.mark.parametrize(
    "extra,match",
    [
        (["optim.lr=-1"], "optim.lr=-1.0 must be positive"),
        (["optim.lr=nan"], "optim.lr=nan must be positive"),
        (["optim.grad_clip=-1"], "optim.grad_clip=-1.0 must be ≥ 0"),
        (["model.n_heads=0"], "model.n_heads=0 must be a positive integer"),
        (["seq_len=0"], "seq_len=0 must be a positive integer"),
        (["diffusion.time_eps=0"], "the ELBO weight is infinite"),
        (["vocab_size=4"], "vocab_size=4 applies to tokens: data only"),
        (["--device", "mps"], "not supported"),
        (["model.hidden_size=30", "model.n_heads=4"], "must split into"),
    ],
)
def test_bad_values_are_refused_before_any_file(tmp_path, capsys, extra, match):
    out = tmp_path / "run"
    fails_cleanly(["train", "--out", str(out), *TINY, *extra], capsys, match, out)


def test_output_paths_that_cannot_be_used(tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    fails_cleanly(["train", "--out", str(a_file), *TINY], capsys, "exists and is not a directory")
    fails_cleanly(["run", "sawtooth", "--out", str(a_file), "--preset", "smoke"], capsys, "is not a directory")
    config = tmp_path / "binary.yaml"
    config.write_bytes(b"\xff\xfe\x00garbage")
    fails_cleanly(["train", "--out", str(tmp_path / "r"), "--config", str(config)], capsys, "not a UTF-8 text file")


def test_sample_and_eval_argument_checks(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *TINY, "seq_len=16"]) == 0
    (tmp_path / "adir.npy").mkdir()
    fails_cleanly(["sample", str(run), "--out", str(tmp_path / "adir.npy")], capsys, "is a directory")
    assert not list(tmp_path.glob(".adir*")), "temporary file left behind"
    fails_cleanly(["sample", str(run), "--out", str(tmp_path / "s.npy"), "--temperature", "nan"], capsys, "temperature")
    fails_cleanly(["sample", str(run), "--out", str(tmp_path / "s.npy"), "--num", "0"], capsys, "--num=0")
    fails_cleanly(["eval", str(run), "--data", "sawtooth", "--max-sequences", "0"], capsys, "--max-sequences=0")
    fails_cleanly(["bench", "train", "--steps", "0"], capsys, "--steps=0")
    fails_cleanly(["bench", "train", "batch_size=7"], capsys, "with its flag")


def test_eval_data_of_another_kind_or_vocabulary(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("abcdefgh " * 200)
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--data", f"text:{corpus}", *TINY, "seq_len=16"]) == 0
    toks = tmp_path / "t.npy"
    np.save(toks, np.zeros((40, 16), dtype=np.int64))
    fails_cleanly(["eval", str(run), "--data", f"tokens:{toks}"], capsys, "trained on text data")
    other = tmp_path / "other.txt"
    other.write_text("xyz! " * 400)
    fails_cleanly(["eval", str(run), "--data", f"text:{other}"], capsys, "not in the model's vocabulary")
    fails_cleanly(["sample", str(run), "--out", str(tmp_path / "s.txt"), "--prefix", "XY"], capsys, "--prefix:")


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--changes", "9"], "--changes 9: choose among 1, 2, 3, 4, 5, 6, 7, 8"),
        (["--changes", "one"], "--changes one: give comma-separated numbers"),
        (["--methods", "mdlm"], "takes --changes, not --methods"),
    ],
)
def test_sawtooth_ablation_refuses_bad_changes(tmp_path, capsys, extra, match):
    out = tmp_path / "ablation"
    fails_cleanly(["run", "sawtooth-ablation", "--out", str(out), *extra], capsys, match, out)
