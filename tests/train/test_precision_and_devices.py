"""The bf16 autocast path (on CPU here) and the CUDA path (skipped where there is no GPU)."""

import math

import pytest
import torch

from augdiff.config import build_config
from augdiff.runs import load_run
from augdiff.sampling import generate
from augdiff.train import Trainer


def tiny(device: str, precision: str):
    return build_config(
        {
            "steps": 3,
            "batch_size": 8,
            "model_size": "xxs",
            "seq_len": 32,
            "device": device,
            "precision": precision,
            "progress": False,
            "tensorboard": False,
            "log_every": 1,
        }
    )


def test_bf16_autocast_trains_on_cpu(tmp_path):
    trainer = Trainer(tiny("cpu", "bf16"), tmp_path / "run")
    assert trainer.amp_dtype == torch.bfloat16
    result = trainer.fit()
    assert math.isfinite(result.final_loss)
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # master weights stay fp32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (CI has none)")
def test_cuda_bf16_train_and_sample(tmp_path):
    trainer = Trainer(tiny("cuda", "auto"), tmp_path / "run")
    assert trainer.amp_dtype == torch.bfloat16
    assert math.isfinite(trainer.fit().final_loss)
    run = load_run(tmp_path / "run", device="cuda")
    x = generate(run.model, run.model.schedule, 4, 32, 8, device="cuda")
    assert x.shape == (4, 32) and x.max() < 2
