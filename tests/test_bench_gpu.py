"""``make bench-gpu``'s suite, run at toy sizes on the CPU: every measurement, one JSON, the goals' summary."""

import json

from augdiff.bench_gpu import main


def test_the_smoke_suite_writes_every_measurement_and_the_summary(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--preset", "smoke", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    names = {"mdlm_train_bf16", "cadd_over_mdlm_train", "cadd_sample_k1_to_k4", "mdlm_sample"}
    assert set(result["measurements"]) == names
    summary = result["summary"]
    assert summary == json.loads(capsys.readouterr().out)
    cost = summary["cadd_sample_cost_vs_k1"]
    assert set(cost) == {"1", "2", "3", "4"} and cost["1"] == 1.0
    assert summary["cadd_over_mdlm_step_time"] > 0 and summary["mdlm_tokens_per_s"] > 0
    assert summary["mdlm_mfu_compiled"] is None  # the smoke preset skips the compiled run


def test_an_unwritable_output_is_one_line_and_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["--preset", "smoke", "--out", str(blocker / "bench.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err
