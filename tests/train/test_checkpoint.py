"""Checkpoints are atomic, pruned, and foreign ones are refused with a clear message."""

import json

import pytest
import torch

from augdiff.errors import AugdiffError
from augdiff.train import load_checkpoint, save_checkpoint
from augdiff.train.ema import EMA, ema_decay_at


def save(tmp_path, step, keep=2):
    return save_checkpoint(
        tmp_path,
        step,
        model={"w": torch.ones(2) * step},
        ema={"w": torch.zeros(2)},
        trainer_state={"step": step, "rng": torch.get_rng_state()},
        meta={"config": {}, "data": {}},
        keep=keep,
    )


def test_save_load_round_trip_and_pruning(tmp_path):
    for step in (1, 2, 3):
        save(tmp_path, step)
    dirs = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert dirs == ["latest", "step_00000002", "step_00000003"]  # no temporary directories left behind
    ckpt = load_checkpoint(tmp_path, with_trainer_state=True)
    assert ckpt.step == 3 and torch.equal(ckpt.model["w"], torch.full((2,), 3.0))
    assert ckpt.trainer_state["step"] == 3


def test_foreign_checkpoints_are_refused(tmp_path):
    save(tmp_path, 1)
    ckpt_dir = tmp_path / "checkpoints" / "step_00000001"
    meta = json.loads((ckpt_dir / "meta.json").read_text())
    (ckpt_dir / "meta.json").write_text(json.dumps({**meta, "format": "someone-else"}))
    with pytest.raises(AugdiffError, match="not an augdiff checkpoint"):
        load_checkpoint(tmp_path)
    with pytest.raises(AugdiffError, match="not an augdiff run"):
        load_checkpoint(tmp_path / "checkpoints")
    with pytest.raises(AugdiffError, match="no such run or checkpoint directory"):
        load_checkpoint(tmp_path / "missing")


def test_damaged_weights_are_refused(tmp_path):
    ckpt = save(tmp_path, 1)
    (ckpt / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(AugdiffError, match="unreadable weights"):
        load_checkpoint(tmp_path)


def test_trainer_state_with_code_cannot_be_loaded(tmp_path):
    """weights_only=True: a pickle that would run code is rejected, not executed."""
    ckpt = save(tmp_path, 1)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, ckpt / "trainer_state.pt")
    with pytest.raises(AugdiffError, match="refused to load"):
        load_checkpoint(tmp_path, with_trainer_state=True)


def test_ema_warms_up_then_tracks_with_its_decay():
    assert ema_decay_at(0.999, 0) == pytest.approx(0.1)
    assert ema_decay_at(0.999, 10**6) == 0.999
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    ema = EMA(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # decay 0.1 → 0.9
    ema.update(model)  # decay 2/11 → 0.9·2/11 + 9/11
    assert ema.shadow["weight"].item() == pytest.approx(0.9 * 2 / 11 + 9 / 11)


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    from augdiff.cli.main import main
    from augdiff.runs import load_run

    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--out",
                str(run),
                "--model-size",
                "xxs",
                "--steps",
                "1",
                "--batch-size",
                "2",
                "seq_len=8",
                "progress=false",
                "tensorboard=false",
            ]
        )
        == 0
    )
    ckpt = run / "checkpoints" / "step_00000001"
    meta = json.loads((ckpt / "meta.json").read_text())
    meta["config"]["model_size"] = "xs"
    (ckpt / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(AugdiffError, match="not the one these weights were written with"):
        load_run(run)
