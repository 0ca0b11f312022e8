"""CADD from the command line: train, sample with K draws, fine-tune from MDLM, probe a text model."""

import json

import numpy as np
import pytest

from augdiff.cli.main import main

TINY = ["--model-size", "xxs", "--batch-size", "8", "progress=false", "tensorboard=false", "seq_len=24"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "c.txt"
    path.write_text("a cat sat on the mat. a dog sat on the log. " * 30)
    return path


@pytest.fixture(scope="module")
def mdlm_text(tmp_path_factory, corpus):
    out = tmp_path_factory.mktemp("runs") / "mdlm"
    assert (
        main(["train", "--method", "mdlm", "--data", f"text:{corpus}", "--steps", "5", "--out", str(out), *TINY]) == 0
    )
    return out


def test_cadd_fine_tunes_from_mdlm_and_samples_with_k_draws(tmp_path, corpus, mdlm_text, capsys):
    out = tmp_path / "cadd"
    args = [
        "train",
        "--method",
        "cadd",
        "--data",
        f"text:{corpus}",
        "--steps",
        "3",
        "--out",
        str(out),
        *TINY,
        "--init-from",
        str(mdlm_text),
        "cadd.fusion=concat",
    ]
    assert main(args) == 0
    for k in ("1", "3"):
        npy = tmp_path / f"k{k}.npy"
        assert (
            main(["sample", str(out), "--num", "4", "--steps", "6", "--k", k, "--z0-hat", "soft", "--out", str(npy)])
            == 0
        )
        assert np.load(npy).shape == (4, 24)
    capsys.readouterr()
    assert main(["sample", str(mdlm_text), "--k", "2", "--out", str(tmp_path / "x.npy")]) == 2
    assert "--k is a sampling option of cadd and cadd+co-ladd models; this run is mdlm" in capsys.readouterr().err


def test_init_from_starts_at_the_mdlm_weights(tmp_path, corpus, mdlm_text):
    import torch

    from augdiff.config import build_config
    from augdiff.train import Trainer, load_checkpoint

    cfg = build_config(
        {
            "method": "cadd",
            "data": f"text:{corpus}",
            "model_size": "xxs",
            "seq_len": 24,
            "init_from": str(mdlm_text),
            "steps": 1,
            "progress": False,
            "tensorboard": False,
        }
    )
    trainer = Trainer(cfg, tmp_path / "run")
    mdlm = load_checkpoint(mdlm_text).ema
    for key, value in trainer.model.network.state_dict().items():
        assert torch.equal(value, mdlm[f"network.{key}"]), key


def test_init_from_a_mismatched_run_is_refused(tmp_path, corpus, mdlm_text, capsys):
    out = tmp_path / "cadd"
    capsys.readouterr()
    assert (
        main(
            [
                "train",
                "--method",
                "cadd",
                "--data",
                f"text:{corpus}",
                "--steps",
                "1",
                "--out",
                str(out),
                "--model-size",
                "xs",
                "progress=false",
                "seq_len=24",
                "--init-from",
                str(mdlm_text),
            ]
        )
        == 2
    )
    assert "do not fit the configured model" in capsys.readouterr().err and not out.exists()


def test_probe_prints_predictions_per_noise_level(tmp_path, corpus, capsys):
    out = tmp_path / "cadd"
    assert (
        main(["train", "--method", "cadd", "--data", f"text:{corpus}", "--steps", "3", "--out", str(out), *TINY]) == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "probe",
                str(out),
                "--text",
                "a [MASK]at sat",
                "--position",
                "3",
                "--true",
                "c",
                "--noise",
                "0.1,0.5,1.0",
                "--json",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert [r["noise"] for r in rows] == [0.1, 0.5, 1.0] and all(len(r["top"]) == 3 for r in rows)
    masked = [r["masked"] for r in rows]  # matched context (the default): more of the 9 tokens masked as t grows
    assert 1 <= masked[0] <= masked[1] <= masked[2] <= 9 and masked[2] > 1
    clean = ["probe", str(out), "--text", "a [MASK]at sat", "--position", "3", "--true", "c", "--context", "clean"]
    assert main([*clean, "--noise", "0.1,1.0", "--json"]) == 0
    assert [r["masked"] for r in json.loads(capsys.readouterr().out)] == [1, 1]
    assert main(["probe", str(out), "--text", "a cat sat", "--position", "3", "--noise", "0.2"]) == 0
    table = capsys.readouterr().out
    assert "true token 'c', context matched" in table and "masked " in table and "/9  " in table
    assert main(["probe", str(out), "--text", "a [MASK]at", "--position", "3"]) == 2
    assert "give the true token with --true" in capsys.readouterr().err


def test_probe_refuses_models_without_a_latent(mdlm_text, capsys):
    capsys.readouterr()
    assert main(["probe", str(mdlm_text), "--text", "a cat", "--position", "2"]) == 2
    assert "method cadd" in capsys.readouterr().err
