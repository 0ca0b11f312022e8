"""FID / Inception Score through torch-fidelity: what it is given, and one line when it cannot run."""

import sys
import types

import numpy as np
import pytest
import torch

from augdiff.cli.main import main
from augdiff.errors import AugdiffError
from augdiff.extras import missing
from augdiff.metrics import fidelity
from augdiff.metrics.fidelity import PixelImages, fid_and_inception_score


def test_pixel_tokens_become_uint8_rgb_images():
    rows = np.array([[0, 16, 8, 4]])  # 2×2 gray image of 17 levels
    images = PixelImages(rows, (2, 2, 1), 17)
    assert len(images) == 1
    x = images[0]
    assert x.dtype == torch.uint8 and x.shape == (3, 2, 2)
    assert x[0].tolist() == [[0, 255], [128, 64]] and torch.equal(x[0], x[2])
    rgb = PixelImages(np.arange(12).reshape(1, 12), (2, 2, 3), 12)[0]
    assert rgb[:, 0, 0].tolist() == [0, 23, 46]  # channels last in the tokens, channels first for Inception


@pytest.fixture
def fake_fidelity(monkeypatch, tmp_path):
    """A stand-in torch_fidelity that records its inputs, with the Inception weights 'cached'."""
    calls = []

    def calculate_metrics(**kwargs):
        calls.append(kwargs)
        return {"frechet_inception_distance": 12.5, "inception_score_mean": 3.0, "inception_score_std": 0.1}

    monkeypatch.setitem(sys.modules, "torch_fidelity", types.SimpleNamespace(calculate_metrics=calculate_metrics))
    monkeypatch.setattr(fidelity, "require", lambda *a: None)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / fidelity.INCEPTION_FILE).write_bytes(b"")
    return calls


def test_the_library_gets_both_image_sets_and_its_figures_come_back(fake_fidelity):
    samples, reference = np.zeros((5, 4), dtype=np.int64), np.ones((7, 4), dtype=np.int64)
    out = fid_and_inception_score(samples, reference, (2, 2, 1), 17)
    (call,) = fake_fidelity
    assert len(call["input1"]) == 5 and len(call["input2"]) == 7 and call["fid"] and call["isc"]
    assert out == {"fid": 12.5, "inception_score": 3.0, "inception_score_std": 0.1, "samples": 5, "reference": 7}


def test_the_reference_cache_is_named_by_the_images_not_their_path(fake_fidelity):
    reference = np.arange(7 * 4).reshape(7, 4) % 17
    fid_and_inception_score(np.zeros((5, 4), dtype=np.int64), reference, (2, 2, 1), 17, cache_reference=True)
    assert fake_fidelity[-1]["cache"] and fake_fidelity[-1]["input2_cache_name"].startswith("augdiff-")
    name = fidelity.reference_cache_name
    assert name(reference, (2, 2, 1), 17) == name(reference.astype(np.uint8), (2, 2, 1), 17)  # dtype-free
    changed = reference.copy()
    changed[3, 1] = (changed[3, 1] + 1) % 17
    assert name(changed, (2, 2, 1), 17) != name(reference, (2, 2, 1), 17)  # same count, other pixels
    assert name(reference, (2, 2, 1), 17) != name(reference, (2, 2, 1), 18)
    fid_and_inception_score(np.zeros((5, 4), dtype=np.int64), reference, (2, 2, 1), 17)
    assert not fake_fidelity[-1]["cache"] and fake_fidelity[-1]["input2_cache_name"] is None


def test_offline_without_cached_weights_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(fidelity, "require", lambda *a: None)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(AugdiffError, match="Inception weights are not cached"):
        fid_and_inception_score(np.zeros((2, 4)), np.zeros((2, 4)), (2, 2, 1), 17)


def test_eval_fid_needs_image_data_and_the_package(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--method", "mdlm", "--data", "sawtooth", "--model-size", "xxs", "--steps", "1", "seq_len=16"]
    assert main([*args, "--batch-size", "4", "--out", str(run), "progress=false", "tensorboard=false"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--data", "sawtooth", "--fid"]) == 2
    assert "--fid scores image samples" in capsys.readouterr().err
    if missing("torch_fidelity"):
        pytest.importorskip("sklearn")
        assert main(["eval", str(run), "--data", "image:digits", "--fid"]) == 2
        assert "pip install 'augdiff[fidelity]'" in capsys.readouterr().err
