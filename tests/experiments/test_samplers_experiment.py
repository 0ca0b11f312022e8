"""``augdiff run samplers`` end to end (smoke preset) and the matched-entropy reading."""

import json
import math

import pytest
from dummies import tiny_english

from augdiff.cli.main import main
from augdiff.experiments.samplers import FRONTIER_METHODS, FRONTIER_SAMPLERS, TOP_P, matched_gain


def test_matched_gain_reads_the_reference_curve_at_the_same_entropy():
    curve = [(3.0, 40.0), (2.0, 20.0)]
    assert matched_gain((2.5, math.sqrt(800.0)), curve) == pytest.approx(0.0)  # on the curve (log-linear)
    assert matched_gain((2.5, 10.0), curve) > 0  # better than the curve there
    assert matched_gain((3.0, 80.0), curve) == pytest.approx(-math.log(2.0))
    assert matched_gain((3.5, 10.0), curve) is None  # no reference at that entropy


def test_run_samplers_writes_results_report_and_one_plot_per_method(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(tiny_english(300, seed=2))
    out = tmp_path / "samplers"
    argv = ["run", "samplers", "--corpus", str(corpus), "--preset", "smoke", "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["methods"]) == set(FRONTIER_METHODS)
    for res in results["methods"].values():
        assert set(res["sampling"]) == set(FRONTIER_SAMPLERS)
        assert set(res["gain_over_ancestral"]) == set(FRONTIER_SAMPLERS) - {"ancestral"}
        rows = res["sampling"]["loop"]
        assert {r["top_p"] for r in rows} == set(TOP_P) and all(r["gen_ppl"] > 1 for r in rows)
    for method in FRONTIER_METHODS:
        assert (out / f"frontier_{method}.png").stat().st_size > 0
    assert "| sampler |" in (out / "report.md").read_text()
    assert main([*argv, "--methods", "mdlm"]) == 2  # the methods are fixed


def test_run_samplers_on_the_sawtooth_writes_its_own_files(tmp_path):
    from augdiff.experiments.samplers_sawtooth import SAWTOOTH_RUNS

    out = tmp_path / "saw"
    argv = ["run", "samplers", "--sawtooth", "--preset", "smoke", "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    results = json.loads((out / "samplers.json").read_text())
    assert set(results["swd"]) == set(SAWTOOTH_RUNS)
    for found in results["swd"].values():
        assert set(found) == set(FRONTIER_SAMPLERS) and all(v["2"] > 0 for v in found.values())
    assert (out / "samplers_swd.png").stat().st_size > 0 and "| sampler |" in (out / "samplers.md").read_text()
    assert not (out / "results.json").exists()  # a sawtooth experiment's own results are left alone
    assert main(["run", "text", "--sawtooth", "--out", str(out)]) == 2
