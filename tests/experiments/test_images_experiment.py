"""``augdiff run images`` end to end (smoke preset)."""

import json

import numpy as np
import pytest

from augdiff.cli.main import main
from augdiff.experiments.images import IMAGE_METHODS, IMAGE_PRESETS

pytest.importorskip("sklearn")


def test_run_images_writes_scores_grids_report_and_plot(tmp_path):
    out = tmp_path / "images"
    assert main(["run", "images", "--preset", "smoke", "--out", str(out), "--device", "cpu"]) == 0
    results = json.loads((out / "results.json").read_text())
    nfe = [str(n) for n in IMAGE_PRESETS["smoke"].nfe]
    assert set(results["methods"]) == set(IMAGE_METHODS)
    for method, scores in results["methods"].items():
        assert list(scores) == nfe and all(s["fd"] > 0 for s in scores.values())
        for n in nfe:
            assert (out / f"grid_{method}_nfe{n}.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "fd_vs_nfe.png").stat().st_size > 0 and "| method |" in (out / "report.md").read_text()
    assert main(["run", "images", "--preset", "smoke", "--out", str(out), "--methods", "mdlm"]) == 2


def test_run_images_with_the_unet_compares_all_three(tmp_path, capsys):
    out = tmp_path / "unet"
    assert main(["run", "images", "--preset", "smoke", "--backbone", "unet", "--out", str(out), "--device", "cpu"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["backbone"] == "unet" and set(results["methods"]) == set(IMAGE_METHODS)
    for run in ("mdlm", "co-ladd"):  # Co-LADD's second stage too
        assert "backbone: unet" in (out / run / "config.yaml").read_text()
    capsys.readouterr()
    for flag, value in (("--backbone", "unet"), ("--dataset", "digits")):
        assert main(["run", "sawtooth", "--preset", "smoke", flag, value, "--out", str(tmp_path / "s")]) == 2
        assert "--backbone and --dataset apply to augdiff run images only" in capsys.readouterr().err


def test_another_dataset_replaces_the_presets_and_offline_stops_before_any_work(tmp_path, capsys):
    out = tmp_path / "cifar-quick"
    assert main(["run", "images", "--preset", "smoke", "--dataset", "cifar10", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("augdiff: ") and err.count("\n") == 1 and "cifar10" in err.lower()
    assert not out.exists()


def test_the_cifar10_paper_preset_stops_in_one_line_before_training_when_it_cannot_score(tmp_path, capsys):
    """--preset paper is CADD's CIFAR-10 recipe; offline (no CIFAR-10, or no FID) it stops before any work."""
    out = tmp_path / "cifar"
    assert main(["run", "images", "--preset", "paper", "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("augdiff: ") and err.count("\n") == 1
    assert not out.exists()
    preset = IMAGE_PRESETS["paper"]
    assert (preset.dataset, preset.backbone, preset.lr, preset.batch_size * preset.steps) == (
        "cifar10",
        "unet",
        1e-4,
        200_000_000,
    )


def test_the_paper_presets_quarter_turns_refuse_non_square_images_before_any_work(tmp_path, capsys):
    image = pytest.importorskip("PIL.Image")
    folder = tmp_path / "wide"
    folder.mkdir()
    for i in range(2):
        image.fromarray(np.full((4, 6, 3), 50 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    out = tmp_path / "run"
    assert main(["run", "images", "--preset", "paper", "--dataset", str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "square images" in err and err.count("\n") == 1 and not out.exists()
