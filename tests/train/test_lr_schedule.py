"""The learning-rate schedule: linear warm-up, then constant or cosine decay — torch's schedulers, checked
against the closed form, and replayed exactly by a resumed run."""

import json
import math

import pytest
import torch
from test_resume import config

from augdiff.train import Trainer, build_lr_scheduler, load_checkpoint, lr_at


def test_warm_up_then_constant():
    assert [lr_at(s, 1.0, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_cosine_decays_from_the_peak_to_the_floor():
    lrs = [lr_at(s, 2.0, 10, "cosine", 110, 0.1) for s in range(110)]
    assert lrs[9] == pytest.approx(2.0) and lrs[-1] == pytest.approx(0.2)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))  # never rises after the warm-up
    mid = lr_at(59, 2.0, 10, "cosine", 110, 0.1)  # halfway through the decay
    assert mid == pytest.approx(2.0 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5))))


def scheduled_lrs(steps, *args):
    """The learning rate AdamW uses at each step under :func:`build_lr_scheduler`'s torch schedulers."""
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.AdamW([p], lr=123.0)  # overwritten: the schedule starts from its own peak
    scheduler = build_lr_scheduler(opt, *args)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        p.grad = torch.ones(2)
        opt.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize(
    "warmup,schedule,total",
    [(0, "constant", 20), (1, "constant", 20), (4, "constant", 20), (0, "cosine", 30), (1, "cosine", 30),
     (10, "cosine", 110), (5, "cosine", 5), (8, "cosine", 3), (3, "constant", None)],
)  # fmt: skip
def test_torch_schedulers_follow_the_closed_form(warmup, schedule, total):
    steps = total or 12
    got = scheduled_lrs(steps, 2.0, warmup, schedule, total, 0.1)
    want = [lr_at(s, 2.0, warmup, schedule, total, 0.1) for s in range(steps)]
    assert got == pytest.approx(want, rel=1e-12, abs=0)


def test_a_resumed_cosine_run_replays_the_schedule_to_the_bit(tmp_path):
    cfg = config(12)
    cfg.optim.lr_schedule, cfg.optim.warmup_steps = "cosine", 3
    seen: dict[str, list[float]] = {"straight": [], "run": []}

    def recording(trainer, name, stop_at=None):
        original = trainer.train_step

        def step():
            seen[name].append(trainer.optimizer.param_groups[0]["lr"])
            out = original()
            if trainer.step == stop_at:
                trainer.request_stop()
            return out

        trainer.train_step = step
        return trainer

    recording(Trainer(cfg, tmp_path / "straight"), "straight").fit()
    assert recording(Trainer(cfg, tmp_path / "run"), "run", stop_at=5).fit().interrupted
    recording(Trainer.resume(tmp_path / "run"), "run").fit()
    assert seen["run"] == seen["straight"]  # bitwise: the resumed run rebuilds and replays the schedulers
    assert seen["straight"] == pytest.approx([lr_at(s, cfg.optim.lr, 3, "cosine", 12, 0.1) for s in range(12)])
    a, b = load_checkpoint(tmp_path / "run"), load_checkpoint(tmp_path / "straight")
    assert all(torch.equal(a.model[k], b.model[k]) for k in a.model)


def test_the_log_shows_the_rate_the_logged_step_used(tmp_path):
    cfg = config(10)
    cfg.optim.lr_schedule, cfg.optim.warmup_steps = "cosine", 3
    Trainer(cfg, tmp_path / "run").fit()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    logged = {row["step"]: row["lr"] for row in rows}
    assert set(logged) == {5, 10}
    for step, lr in logged.items():  # step n is logged after optimizer step n − 1 ran
        assert lr == pytest.approx(lr_at(step - 1, cfg.optim.lr, 3, "cosine", 10, 0.1), rel=1e-12)
    assert logged[10] == pytest.approx(0.1 * cfg.optim.lr)  # the floor, not the schedule's next (rising) value
