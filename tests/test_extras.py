"""Optional packages: a feature whose package is missing says so in one line (simulated by hiding the module)."""

import pytest

import augdiff.extras as extras
from augdiff.cli.main import main
from augdiff.config import build_config
from augdiff.errors import AugdiffError
from augdiff.methods import build_model


@pytest.fixture
def hide(monkeypatch):
    hidden = set()
    real = extras.find_spec
    monkeypatch.setattr(extras, "find_spec", lambda name, *a: None if name in hidden else real(name, *a))
    return hidden


def test_di_ladd_without_its_quantizer_is_one_line(hide):
    hide.add("vector_quantize_pytorch")
    with pytest.raises(AugdiffError, match=r"augdiff\[ladd\]"):
        build_model(build_config({"method": "di-ladd", "model_size": "xxs"}), 4, 16)


def test_an_experiment_without_matplotlib_stops_before_training(hide, tmp_path, capsys):
    hide.add("matplotlib")
    assert main(["run", "sawtooth", "--preset", "smoke", "--out", str(tmp_path / "saw")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "augdiff[plots]" in err[0]
    assert not (tmp_path / "saw").exists()


def test_training_without_tensorboard_logs_jsonl_only(hide, tmp_path, capsys):
    hide.add("tensorboard")
    out = tmp_path / "run"
    args = ["train", "--method", "mdlm", "--data", "sawtooth", "--model-size", "xxs", "--steps", "2", "seq_len=16"]
    assert main([*args, "--batch-size", "4", "--out", str(out), "progress=false", "log_every=1"]) == 0
    assert "augdiff[tensorboard]" in capsys.readouterr().err
    assert (out / "metrics.jsonl").read_text().count("\n") == 2 and not (out / "tb").exists()
