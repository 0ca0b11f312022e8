"""``augdiff run text`` end to end (smoke preset) and the matched-compute frontier's interpolation."""

import json

import pytest
from dummies import tiny_english

from augdiff.cli.main import main
from augdiff.experiments.text import TEXT_PRESETS, frontier


def test_frontier_interpolates_linearly_and_never_extrapolates():
    points = [(4.0, 100.0), (1.0, 200.0), (2.0, 150.0)]  # unsorted on purpose
    got = frontier(points, [0.5, 1.0, 1.5, 3.0, 4.0, 8.0])
    assert got[0] is None and got[-1] is None
    assert got[1] == pytest.approx(200.0) and got[4] == pytest.approx(100.0)
    assert got[2] == pytest.approx(175.0)  # halfway between (1, 200) and (2, 150)
    assert got[3] == pytest.approx(125.0)  # halfway between (2, 150) and (4, 100)
    assert frontier([], [1.0]) == [None]


def test_run_text_writes_results_report_and_plots(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(tiny_english(300, seed=1))
    out = tmp_path / "exp"
    argv = ["run", "text", "--corpus", str(corpus), "--preset", "smoke", "--out", str(out), "--device", "cpu"]
    assert main([*argv, "--methods", "ar,mdlm,co-ladd"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["methods"]) == {"ar", "mdlm", "co-ladd-joint", "co-ladd-seq"}
    steps = TEXT_PRESETS["smoke"].sampling_steps
    mdlm = results["methods"]["mdlm"]
    assert [p["steps"] for p in mdlm["steps"]] == list(steps)
    assert [p["steps"] for p in results["methods"]["ar"]["steps"]] == [None]  # AR: one point, no step count
    for point in mdlm["steps"]:
        assert point["gen_ppl"] > 1.0 and point["gflops_per_sample"] > 0 and point["samples_per_s"] > 0
        assert 0.0 <= point["entropy"]["unigram"] <= results["settings"]["seq_len"]
    assert mdlm["bpc"] > 0 and len(mdlm["frontier"]) == len(results["budgets_gflops"])
    # LADD's -seq pays for its latent-only steps on top of the token steps
    seq, joint = results["methods"]["co-ladd-seq"]["steps"][0], results["methods"]["co-ladd-joint"]["steps"][0]
    assert seq["gflops_per_sample"] > joint["gflops_per_sample"]
    assert results["data_reference"]["gen_ppl"] > 1.0
    report = (out / "report.md").read_text()
    assert "bits per character" in report and "frontier" in report and "| co-ladd-seq |" in report
    for png in ("gen_ppl_vs_steps.png", "gen_ppl_vs_gflops.png", "entropy_vs_steps.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "needs --corpus"),
        (["--corpus", "missing.txt", "--methods", "ar"], "file not found"),
        (["--corpus", "c.txt", "--methods", "mdlm"], "must include ar"),
        (["--corpus", "c.txt", "--methods", "ar,gpt"], "unknown gpt"),
    ],
)
def test_run_text_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, extra, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.txt").write_text(tiny_english(50))
    assert main(["run", "text", "--preset", "smoke", "--out", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()
