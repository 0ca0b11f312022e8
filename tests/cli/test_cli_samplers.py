"""augdiff sample with the remasking samplers and semi-autoregressive windows."""

import numpy as np
import pytest

from augdiff.cli.main import main

TINY = ["--model-size", "xxs", "--batch-size", "8", "seq_len=32", "progress=false", "tensorboard=false"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("samplers") / "run"
    assert main(["train", "--method", "mdlm", "--data", "sawtooth", "--steps", "2", "--out", str(out), *TINY]) == 0
    return out


@pytest.mark.parametrize("strategy", ["cap", "rescale", "conf", "loop", "dfm"])
def test_each_remasking_strategy_samples(run, tmp_path, strategy):
    out = tmp_path / "s.npy"
    args = ["sample", str(run), "--num", "3", "--steps", "8", "--remasking", strategy, "--out", str(out)]
    assert main(args) == 0
    rows = np.load(out)
    assert rows.shape == (3, 32) and set(np.unique(rows)) <= {0, 1}


def test_a_length_beyond_seq_len_is_drawn_in_windows(run, tmp_path):
    out = tmp_path / "long.npy"
    args = ["sample", str(run), "--num", "2", "--steps", "4", "--length", "80", "--block", "16", "--out", str(out)]
    assert main(args) == 0
    rows = np.load(out)
    assert rows.shape == (2, 80) and set(np.unique(rows)) <= {0, 1}


@pytest.mark.parametrize(
    "flags, match",
    [
        (["--remasking", "cap", "--remask-eta", "3"], "--remask-eta"),
        (["--remasking", "loop", "--t-on", "0.01"], "--t-off/--t-on"),
        (["--length", "0"], "--length"),
        (["--block", "64"], "--block"),
        (["--remasking", "cap", "--ordering", "confidence"], "choose one"),
    ],
)
def test_bad_sampler_settings_are_one_line_and_exit_2(run, tmp_path, capsys, flags, match):
    out = tmp_path / "bad.npy"
    assert main(["sample", str(run), "--num", "2", "--steps", "2", *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err
    assert not out.exists()
