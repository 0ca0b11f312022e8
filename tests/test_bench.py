"""``augdiff bench``: MFU against a hand computation, the K sweep, LADD's joint and sequential rows."""

import json

import pytest
import torch

from augdiff.bench import bench_sample_rows, bench_train
from augdiff.cli.main import main
from augdiff.config import build_config
from augdiff.flops import count_flops
from augdiff.methods import build_model
from augdiff.metrics.mfu import count_train_flops, device_peak_flops, model_flops_utilization

SHAPE = dict(model_size="xxs", seq_len=16, batch_size=2, vocab_size=5, device="cpu", overrides=["model.n_layers=1"])


def test_mfu_is_counted_flops_over_step_time_times_peak():
    # 3 TFLOPs in 0.5 s on a 10 TFLOP/s device: 6 TFLOP/s achieved, 60 % of the peak.
    assert model_flops_utilization(3e12, 0.5, 10e12) == pytest.approx(0.6)
    assert model_flops_utilization(3e12, 0.5, None) is None
    assert device_peak_flops(torch.device("cpu"), 2.0) == (2e12, "--peak-tflops 2.0")
    peak, reason = device_peak_flops(torch.device("cpu"))
    assert peak is None and "--peak-tflops" in reason


def test_training_flops_are_three_forwards_of_a_linear_layer():
    """One matmul [B, D_in] × [D_in, D_out]: 2·B·D_in·D_out forward, twice that backward (input and weight grads)."""
    layer = torch.nn.Linear(8, 4, bias=False)
    x = torch.randn(3, 8, requires_grad=True)
    assert count_train_flops(lambda: layer(x).sum().backward()) == 3 * 2 * 3 * 8 * 4


def test_bench_train_reports_mfu_with_a_fake_peak():
    (row,) = bench_train(method="mdlm", steps=2, warmup=1, peak_tflops=1e-3, **SHAPE)
    flops = row["train_gflops_per_step"] * 1e9
    # Independently: a step is one forward (counted here) and a backward of at most twice its matmuls (less
    # by the input gradient the embedding lookup does not need).
    cfg = build_config({"model_size": "xxs", "seq_len": 16, "vocab_size": 5}, ["model.n_layers=1"])
    model = build_model(cfg, 5, 16)
    forward = count_flops(lambda: model.loss(torch.randint(0, 5, (2, 16)), torch.rand(2)))
    assert 2.5 * forward < flops <= 3 * forward
    assert row["mfu"] == pytest.approx(flops / (row["seconds_per_step"] * 1e9))
    assert row["tokens_per_s"] == pytest.approx(2 * 16 / row["seconds_per_step"])
    (cpu,) = bench_train(method="mdlm", steps=1, warmup=1, **SHAPE)
    assert cpu["mfu"] is None and "--peak-tflops" in cpu["mfu_peak"]


def test_the_k_sweep_gives_one_row_per_k():
    rows = bench_sample_rows(method="cadd", k=(1, 2, 3, 4), steps=2, **SHAPE)
    assert [r["k"] for r in rows] == [1, 2, 3, 4]
    assert [r["rows_evaluated"] for r in rows] == [2 * 2 * k for k in (1, 2, 3, 4)]  # steps × batch × K
    assert all(r["tokens_per_s"] > 0 for r in rows)


def test_co_ladd_sampling_gives_joint_and_sequential_rows():
    rows = bench_sample_rows(method="co-ladd", steps=2, latent_steps=2, **SHAPE)
    assert [(r["method"], r["inference"]) for r in rows] == [("co-ladd", "joint"), ("co-ladd", "sequential")]
    assert [r["latent_steps"] for r in rows] == [0, 2]
    assert all(r["tokens_per_s"] > 0 for r in rows)


def test_cli_sample_sweeps_methods_and_k(capsys):
    shape = ["--model-size", "xxs", "--seq-len", "8", "--batch-size", "2", "--vocab-size", "5", "--device", "cpu"]
    args = ["bench", "sample", "--method", "mdlm,cadd", "--k", "1,2", "--steps", "2", *shape, "--json"]
    assert main([*args, "model.n_layers=1"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["method"], r["k"]) for r in rows] == [("mdlm", 1), ("cadd", 1), ("cadd", 2)]
    assert main(["bench", "sample", "--method", "mdlm", "--k", "2", *shape]) == 2
    assert "--k applies to cadd" in capsys.readouterr().err
