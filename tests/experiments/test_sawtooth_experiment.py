"""``augdiff run sawtooth`` end to end with the smoke preset: the files and keys the issue promises."""

import dataclasses
import json

import pytest

from augdiff.cli.main import main
from augdiff.errors import AugdiffError
from augdiff.experiments.sawtooth import PRESETS, SAMPLING_STEPS, method_config
from augdiff.experiments.sawtooth_ladd import LADD_RUNS
from augdiff.experiments.training import train_or_reuse, train_two_stages
from augdiff.train import load_checkpoint


def test_run_sawtooth_writes_results_report_and_plots(tmp_path):
    out = tmp_path / "exp"
    assert main(["run", "sawtooth", "--preset", "smoke", "--out", str(out), "--device", "cpu"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert isinstance(results["oracle_nll"], float) and isinstance(results["swd_noise_floor"], float)
    mdlm = results["methods"]["mdlm"]
    assert set(mdlm["swd"]) == {str(s) for s in SAMPLING_STEPS}
    assert isinstance(mdlm["recon_nll"], float) and mdlm["train_steps"] == 20 and mdlm["train_seconds"] > 0
    report = (out / "report.md").read_text()
    assert "Table 1" in report and "Figure 2" in report
    for png in ("swd_vs_steps.png", "train_loss.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    # a second call reuses the finished run instead of training again ...
    latest = out / "mdlm" / "checkpoints" / "latest"
    before = latest.stat().st_mtime_ns
    reused = train_or_reuse(method_config("mdlm", PRESETS["smoke"], device="cpu"), out / "mdlm")
    assert reused["train_steps"] == 20 and latest.stat().st_mtime_ns == before
    # ... but never a run trained with other settings
    assert main(["run", "sawtooth", "--preset", "smoke", "--out", str(out), "--seed", "1"]) == 2


def test_run_sawtooth_reports_cadd_next_to_mdlm(tmp_path):
    out = tmp_path / "exp"
    assert main(["run", "sawtooth", "--preset", "smoke", "--out", str(out), "--methods", "mdlm,cadd"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["methods"]) == {"mdlm", "cadd"}
    assert set(results["methods"]["cadd"]["swd"]) == {str(s) for s in SAMPLING_STEPS}
    assert "| cadd |" in (out / "report.md").read_text()


def test_run_sawtooth_trains_both_ladd_stages_and_reports_both_inference_modes(tmp_path):
    out = tmp_path / "exp"
    assert main(["run", "sawtooth", "--preset", "smoke", "--out", str(out), "--methods", "co-ladd,di-ladd"]) == 0
    results = json.loads((out / "results.json").read_text())
    names = {"co-ladd-joint", "co-ladd-seq", "di-ladd-joint", "di-ladd-seq"}
    assert set(results["methods"]) == names
    for name in names:
        res = results["methods"][name]
        assert res["stage1_steps"] == PRESETS["smoke"].ladd_stage1_steps
        assert res["train_steps"] == PRESETS["smoke"].ladd_stage1_steps + PRESETS["smoke"].ladd_stage2_steps
        assert set(res["swd"]) == {str(s) for s in SAMPLING_STEPS}
    # Co-LADD trains one model per mode; Di-LADD one model with independent times, whose recon (its training
    # loss, t_y drawn) is the same in both rows while its samples differ
    co, di = (results["methods"][f"{m}-joint"]["recon_nll"] != results["methods"][f"{m}-seq"]["recon_nll"]
              for m in ("co-ladd", "di-ladd"))  # fmt: skip
    assert co and not di
    assert results["methods"]["di-ladd-joint"]["swd"] != results["methods"]["di-ladd-seq"]["swd"]
    for run in ("co-ladd-joint", "co-ladd-seq", "di-ladd"):
        for trained in (f"{run}-stage1", run):
            assert (out / trained / "checkpoints" / "latest").exists()
    # a stage 1 that would train further (or is gone) leaves its stage 2 stale: refused, nothing trained
    longer = dataclasses.replace(PRESETS["smoke"], ladd_stage1_steps=PRESETS["smoke"].ladd_stage1_steps + 5)
    joint = LADD_RUNS["co-ladd"][0]
    with pytest.raises(AugdiffError, match="started from a stage 1 that .* no longer holds"):
        train_two_stages(
            joint.name, out, lambda s, i: method_config("co-ladd", longer, stage=s, init_from=i, run=joint)
        )
    assert load_checkpoint(out / "co-ladd-joint-stage1").step == PRESETS["smoke"].ladd_stage1_steps
