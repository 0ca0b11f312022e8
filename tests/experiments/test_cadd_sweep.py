"""``augdiff run cadd-sweep`` end to end (smoke preset), the win rule, and ``eval --bound-steps``."""

import json

import pytest
from dummies import tiny_english

from augdiff.cli.main import main
from augdiff.experiments.cadd_sweep import BOUND_STEPS, SWEEP_STEPS, TIMES, wins


def _row(steps: int, ppl: float, entropy: float) -> dict:
    return {"steps": steps, "gen_ppl": ppl, "entropy": {"unigram": entropy}}


def test_a_variant_wins_only_with_lower_gen_ppl_at_matched_entropy_at_every_budget():
    reference = [_row(8, 50.0, 3.0), _row(32, 40.0, 3.0)]
    assert wins([_row(8, 49.0, 3.04), _row(32, 40.0, 2.96)], reference)
    assert not wins([_row(8, 49.0, 3.04), _row(32, 41.0, 3.0)], reference)  # worse at one budget
    assert not wins([_row(8, 30.0, 2.8), _row(32, 30.0, 3.0)], reference)  # lower gen-PPL by collapsing entropy
    assert not wins([_row(8, 49.0, 3.0)], [_row(32, 40.0, 3.0)])  # no matching budget
    assert not wins([], reference)


def test_run_cadd_sweep_writes_results_report_and_plots(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(tiny_english(300, seed=1))
    out = tmp_path / "sweep"
    argv = ["run", "cadd-sweep", "--corpus", str(corpus), "--preset", "smoke", "--out", str(out), "--device", "cpu"]
    assert main([*argv, "--methods", "mdlm,cadd-time-r1"]) == 0
    results = json.loads((out / "results.json").read_text())
    mdlm, cadd = results["variants"]["mdlm"], results["variants"]["cadd-time-r1"]
    assert set(mdlm["sampling"]) == {"-"} and set(cadd["sampling"]) == {"hard", "soft", "sample", "hard-k4"}
    assert [r["steps"] for r in cadd["sampling"]["soft"]] == list(SWEEP_STEPS)
    assert set(cadd["bound"]) == {str(t) for t in BOUND_STEPS} and set(cadd["cross_entropy"]) == {str(t) for t in TIMES}
    assert mdlm["bound"]["128"]["bound_latent_term"] == 0.0 and cadd["bound"]["128"]["bound_latent_term"] > 0.0
    for res in (mdlm, cadd):  # the bound is the sum of its parts
        b = res["bound"]["32"]
        parts = b["bound_token_term"] + b["bound_latent_term"] + b["bound_prior_term"]
        assert b["nll_bound"] == pytest.approx(parts)
    config = (out / "cadd-time-r1" / "config.yaml").read_text()
    assert "radius: 1.0" in config and "time_conditioning: true" in config
    for name in ("report.md", "ce_vs_t.png", "bound_vs_steps.png", "frontier.png"):
        assert (out / name).stat().st_size > 0
    assert "Beats MDLM" in (out / "report.md").read_text()

    # A second sweep in the same folder reuses the trained and evaluated variants instead of redoing them.
    import augdiff.experiments.cadd_sweep as sweep

    monkeypatch.setattr(sweep, "_evaluate", lambda *a, **k: pytest.fail("re-evaluated a finished variant"))
    again = sweep.run_cadd_sweep(out, str(corpus), preset="smoke", variants=("mdlm", "cadd-time-r1"), device="cpu")
    assert again["variants"]["cadd-time-r1"]["bound"] == cadd["bound"]


def test_cadd_sweep_needs_mdlm_and_known_variants(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(tiny_english(50, seed=1))
    argv = ["run", "cadd-sweep", "--corpus", str(corpus), "--preset", "smoke", "--out", str(tmp_path / "o")]
    assert main([*argv, "--methods", "cadd-paper"]) == 2
    assert main([*argv, "--methods", "mdlm,cadd-nope"]) == 2
    assert "cadd-nope" in capsys.readouterr().err
    assert not (tmp_path / "o" / "mdlm").exists()


@pytest.mark.parametrize("value", ["-1", "x", ""])
def test_eval_refuses_bad_bound_steps_before_loading(value, tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing"), "--data", "sawtooth", "--bound-steps", value]) == 2
    assert "--bound-steps" in capsys.readouterr().err
