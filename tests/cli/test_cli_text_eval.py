"""augdiff eval / sample --eval on tiny character runs: generative perplexity under an augdiff AR teacher,
entropy, MAUVE, throughput and GFLOPs per step budget, written as one JSON."""

import json

import numpy as np
import pytest
from tiny_runs import train_text_runs

from augdiff.cli.main import main


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("text-eval")
    corpus = train_text_runs(root, "to be or not to be, that is the question. " * 80, seq_len=32)
    return root / "mdlm", root / "ar", corpus


def test_eval_writes_nll_bpc_and_sample_metrics_per_step_budget(runs, tmp_path, capsys):
    mdlm, ar, corpus = runs
    out = tmp_path / "eval.json"
    args = ["eval", str(mdlm), "--data", f"text:{corpus}", "--time-samples", "2", "--teacher", str(ar)]
    args += ["--steps", "1,2", "--num-samples", "8", "--mauve", "--mauve-buckets", "2", "--out-json", str(out)]
    capsys.readouterr()
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert result["bpc"] == pytest.approx(result["bpt"]) == pytest.approx(result["nll"] / np.log(2))
    assert result["bpc_stderr"] > 0 and result["ppl_stderr"] > 0 and result["teacher"].startswith(str(ar))
    assert set(result["generation"]) == {"1", "2"}
    for steps, row in result["generation"].items():
        assert row["steps"] == int(steps) and row["n_samples"] == 8
        assert row["gen_ppl"] > 1 and row["gen_tokens"] == 8 * 32 and row["retokenized"] is False
        assert 0 <= row["entropy"]["positional"] and 0 < row["entropy"]["unigram"] <= np.log(32)
        assert 0 < row["mauve"]["mauve"] <= 1 and row["mauve"]["num_buckets"] == 2
        assert row["samples_per_s"] > 0 and row["tokens_per_s"] == pytest.approx(32 * row["samples_per_s"])
        assert row["throughput_per_gen_ppl"] == pytest.approx(row["samples_per_s"] / row["gen_ppl"])
        assert row["gflops_per_sample"] == pytest.approx(int(steps) * row["gflops_per_step"])


def test_eval_of_an_ar_run_samples_once(runs, capsys):
    mdlm, ar, corpus = runs
    capsys.readouterr()
    assert main(["eval", str(ar), "--data", f"text:{corpus}", "--entropy", "--num-samples", "4", "--steps", "9"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["time_samples"] == 0 and list(result["generation"]) == ["ar"]
    row = result["generation"]["ar"]
    assert row["steps"] is None and row["gen_ppl"] is None and row["gflops_per_step"] > 0


def test_sample_eval_scores_the_samples_it_drew(runs, tmp_path):
    mdlm, ar, corpus = runs
    out, report = tmp_path / "s.npy", tmp_path / "s.json"
    args = ["sample", str(mdlm), "--num", "6", "--steps", "4", "--out", str(out)]
    assert main([*args, "--eval", "--teacher", str(ar), "--out-json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["n_samples"] == 6 and result["steps"] == 4 and result["gen_tokens"] == 6 * 32
    assert result["entropy"]["unigram"] > 0 and result["mauve"] is None
    assert np.load(out).shape == (6, 32)


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--gen-ppl"], "give --teacher"),
        (["--mauve"], "give --teacher"),
        (["--teacher", "x", "--mauve-buckets", "many"], "--mauve-buckets='many'"),
        (["--teacher", "./no/such/dir"], "no such directory"),
    ],
)
def test_eval_flag_errors_are_one_line(runs, capsys, extra, match):
    mdlm, ar, corpus = runs
    capsys.readouterr()
    assert main(["eval", str(mdlm), "--data", f"text:{corpus}", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err


def test_a_diffusion_run_is_not_a_teacher(runs, capsys):
    mdlm, ar, corpus = runs
    capsys.readouterr()
    assert main(["sample", str(mdlm), "--num", "2", "--out", "/tmp/x.npy", "--eval", "--teacher", str(mdlm)]) == 2
    assert "not an autoregressive model" in capsys.readouterr().err


def test_sample_teacher_flags_need_eval(runs, tmp_path, capsys):
    mdlm, ar, corpus = runs
    assert main(["sample", str(mdlm), "--out", str(tmp_path / "a.npy"), "--teacher", str(ar)]) == 2
    assert "add --eval" in capsys.readouterr().err
