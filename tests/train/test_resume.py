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
