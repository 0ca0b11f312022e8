"""Resume: 20 steps in one go equal 10 steps, a checkpoint, and 10 more, to the bit."""

import torch

from augdiff.config import build_config
from augdiff.train import Trainer, load_checkpoint


def config(steps: int):
    return build_config(
        {
            "steps": steps,
            "batch_size": 8,
            "grad_accum": 2,
            "model_size": "xxs",
            "seq_len": 32,
            "progress": False,
            "tensorboard": False,
            "log_every": 5,
            "ckpt_every": 1000,
            "model": {"dropout": 0.1},
            "optim": {"warmup_steps": 4, "ema_decay": 0.9},
        }
    )


def test_resumed_run_matches_uninterrupted_run(tmp_path):
    Trainer(config(20), tmp_path / "straight").fit()
    Trainer(config(10), tmp_path / "split").fit()
    Trainer.resume(tmp_path / "split", steps=20).fit()
    a, b = (
        load_checkpoint(tmp_path / "straight", with_trainer_state=True),
        load_checkpoint(tmp_path / "split", with_trainer_state=True),
    )
    assert a.step == b.step == 20
    for key in a.model:
        assert torch.equal(a.model[key], b.model[key]), key
        assert torch.equal(a.ema[key], b.ema[key]), key
    adam_a, adam_b = a.trainer_state["optimizer"]["state"], b.trainer_state["optimizer"]["state"]
    for index in adam_a:
        assert torch.equal(adam_a[index]["exp_avg_sq"], adam_b[index]["exp_avg_sq"])
    lines = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4  # steps 5, 10, 15, 20: nothing duplicated by the resume


def test_training_lowers_the_loss_on_sawtooth(tmp_path):
    cfg = build_config(
        {
            "steps": 60,
            "batch_size": 32,
            "model_size": "xxs",
            "progress": False,
            "tensorboard": False,
            "log_every": 10,
            "optim": {"lr": 3e-3, "warmup_steps": 10},
        }
    )
    Trainer(cfg, tmp_path / "run").fit()
    import json

    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["nll"] < 0.66 < rows[0]["nll"] + 0.05  # from ~log 2 = 0.693 towards the data's 0.53


def test_a_stop_request_finishes_the_step_saves_and_resumes(tmp_path):
    trainer = Trainer(config(20), tmp_path / "run")
    original = trainer.train_step

    def step_then_stop():
        out = original()
        if trainer.step == 7:
            trainer.request_stop()  # what the first Ctrl-C does
        return out

    trainer.train_step = step_then_stop
    result = trainer.fit()
    assert result.interrupted and result.steps == 7
    assert load_checkpoint(tmp_path / "run").step == 7
    resumed = Trainer.resume(tmp_path / "run").fit()
    assert resumed.steps == 20 and not resumed.interrupted
    Trainer(config(20), tmp_path / "straight").fit()
    a, b = load_checkpoint(tmp_path / "run"), load_checkpoint(tmp_path / "straight")
    assert all(torch.equal(a.model[k], b.model[k]) for k in a.model)


def test_resume_finds_relative_data_from_another_directory(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a quick brown fox jumps over the lazy dog. " * 40)
    monkeypatch.chdir(tmp_path)
    cfg = config(4)
    cfg.data, cfg.seq_len = "text:corpus.txt", 16
    Trainer(cfg, tmp_path / "run").fit()
    monkeypatch.chdir(tmp_path.parent)
    assert Trainer.resume(tmp_path / "run", steps=6).fit().steps == 6
    corpus.write_text("NEW CHARACTERS! " * 100)
    import pytest

    from augdiff.errors import AugdiffError

    with pytest.raises(AugdiffError, match="not in the model's vocabulary"):
        Trainer.resume(tmp_path / "run", steps=8)
