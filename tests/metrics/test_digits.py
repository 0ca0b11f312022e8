"""The offline digits metric: Fréchet distance against its closed form, and what it says about real and noise."""

import numpy as np
import pytest

pytest.importorskip("sklearn")

from augdiff.data import make_dataset  # noqa: E402
from augdiff.metrics.digits import digit_scores, frechet_distance  # noqa: E402


def test_frechet_distance_of_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, size=(200_000, 2))
    b = rng.normal(1.0, 2.0, size=(200_000, 2))
    # d² = |μ1−μ2|² + Σ_i (σ1 − σ2)² for diagonal covariances: 2·1 + 2·(1 − 2)²
    assert frechet_distance(a, b) == pytest.approx(4.0, rel=0.02)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_real_digits_score_well_and_noise_badly():
    data = make_dataset("image:digits")
    train, valid = np.asarray(data.train_rows, dtype=np.int64), np.asarray(data.valid_rows, dtype=np.int64)
    real = digit_scores(train[:500], valid)
    noise = digit_scores(np.random.default_rng(1).integers(0, 17, size=(500, 64)), valid)
    assert real.fd < noise.fd / 5
    assert real.class_entropy < noise.class_entropy and real.coverage_entropy > 2.1  # confident, all ten digits


def test_eval_of_a_digits_run_reports_the_metric_per_step_budget(tmp_path, capsys):
    import json

    from augdiff.cli.main import main

    run = tmp_path / "run"
    args = ["train", "--method", "mdlm", "--data", "image:digits", "--model-size", "xxs", "--steps", "2"]
    assert main([*args, "--batch-size", "8", "--out", str(run), "progress=false", "tensorboard=false"]) == 0
    capsys.readouterr()
    argv = ["eval", str(run), "--data", "image:digits", "--steps", "2,4", "--num-samples", "64", "--time-samples", "1"]
    assert main([*argv, "--bound-steps", "none"]) == 0
    digits = json.loads(capsys.readouterr().out)["digits"]
    assert set(digits) == {"2", "4"} and all(v["fd"] > 0 for v in digits.values())
