"""FLOPs per sampling step: LADD's Eq 77 against torch's flop counter, and the ``augdiff flops`` command."""

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from augdiff.cli.main import main
from augdiff.config import build_config
from augdiff.flops import count_flops, sampling_step_flops, transformer_flops
from augdiff.methods import build_model
from augdiff.nn import DiT, DiTConfig


def per_sequence_linear_flops(net: DiT) -> int:
    """FLOPs of the linears that act once per sequence, not per position: the time-embedding MLP and every
    adaLN projection (Eq 77 ignores them)."""
    per_seq = [
        m
        for name, m in net.named_modules()
        if isinstance(m, nn.Linear) and (name.startswith("time_embed.") or name.endswith("adaln"))
    ]
    assert len(per_seq) == 2 + net.cfg.n_layers + 1  # 2 time-MLP layers, one adaLN per block, the final adaLN
    return sum(2 * m.in_features * m.out_features for m in per_seq)


@pytest.mark.parametrize(
    "seq_len,mlp_ratio,n_heads", [(16, 4, 2), (40, 2, 4), (7, 3, 1)], ids=["L16-r4-h2", "L40-r2-h4", "L7-r3-h1"]
)
def test_eq77_equals_the_counted_matmuls_of_a_dit_forward(seq_len, mlp_ratio, n_heads):
    # Exact equality over several (L, r): a wrong coefficient on L·D², L²·D or r·L·D² cannot be absorbed.
    cfg = DiTConfig(vocab_size=3, hidden_size=32, n_layers=2, n_heads=n_heads, mlp_ratio=mlp_ratio)
    net = DiT(cfg).eval()
    b = 3
    counted = count_flops(lambda: net(torch.full((b, seq_len), 2), torch.rand(b)).logits)
    head = 2 * b * seq_len * cfg.hidden_size * cfg.vocab_size
    backbone = counted - head - b * per_sequence_linear_flops(net)
    assert backbone == b * transformer_flops(seq_len, cfg.hidden_size, cfg.n_layers, cfg.mlp_ratio)


def test_eq77_closed_form_at_mlp_ratio_4():
    L, D, N = 1024, 768, 12
    assert transformer_flops(L, D, N) == N * (24 * L * D**2 + 4 * L**2 * D)
    assert transformer_flops(L, D, N, mlp_ratio=2) == N * (16 * L * D**2 + 4 * L**2 * D)


def test_attention_is_counted_as_its_two_matmuls():
    # On CPU, F.scaled_dot_product_attention dispatches to a kernel the counter does not know; count_flops must
    # count it as the explicit QKᵀ and (·)V products that the counter does know.
    q, k, v = (torch.randn(2, 3, 20, 8) for _ in range(3))
    fused = count_flops(lambda: F.scaled_dot_product_attention(q, k, v))
    explicit = count_flops(lambda: (q @ k.transpose(-2, -1)).softmax(-1) @ v)
    assert fused == explicit == 4 * 2 * 3 * 20 * 20 * 8


def xxs_model(method: str = "mdlm", vocab_size: int = 7, *overrides: str):
    cfg = build_config({"method": method, "model_size": "xxs", "seq_len": 12}, list(overrides))
    return build_model(cfg, vocab_size).eval()


@pytest.mark.parametrize("method,k", [("mdlm", 1), ("cadd", 1), ("cadd", 3)])
def test_sampling_step_flops_are_eq77_plus_head_plus_per_sequence_linears(method, k):
    model = xxs_model(method)
    options = model.sampling_options(k=k) if method == "cadd" else None
    net = model.network
    seq_len, b = 12, 2
    got = sampling_step_flops(model, b, seq_len, options)
    eq77 = transformer_flops(seq_len, net.cfg.hidden_size, net.cfg.n_layers, net.cfg.mlp_ratio)
    assert got["analytic_backbone_gflops"] == pytest.approx(eq77 / 1e9, rel=1e-12)
    assert got["analytic_gflops"] == pytest.approx(k * eq77 / 1e9, rel=1e-12)
    assert got["measured_head_gflops"] == pytest.approx(k * 2 * seq_len * net.cfg.hidden_size * 8 / 1e9, rel=1e-12)
    rest = k * per_sequence_linear_flops(net) / 1e9
    assert got["measured_gflops"] == pytest.approx(got["analytic_gflops"] + got["measured_head_gflops"] + rest)


def test_analytic_and_measured_do_not_depend_on_the_number_of_heads():
    figures = [sampling_step_flops(xxs_model("mdlm", 7, f"model.n_heads={h}"), 1, 12) for h in (1, 2, 4)]
    assert [f["analytic_gflops"] for f in figures] == [figures[0]["analytic_gflops"]] * 3
    assert [f["measured_gflops"] for f in figures] == pytest.approx([figures[0]["measured_gflops"]] * 3)


def test_the_analytic_figure_is_eq77_of_the_networks_transformer_shape():
    model = xxs_model()
    longer = model.network.transformer_shape(17)
    model.network.transformer_shape = lambda n: longer  # as an MM-DiT: 12 tokens + 5 latents
    got = sampling_step_flops(model, 1, 12)
    assert got["analytic_gflops"] == pytest.approx(transformer_flops(17, 32, 4) / 1e9, rel=1e-12)


def flops_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(["flops", "--model-size", "xxs", "--seq-len", "16", "--vocab-size", "50", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("method,extra", [("mdlm", []), ("cadd", ["--k", "2"])])
def test_cli_prints_measured_and_analytic_and_json_parses(capsys, method, extra):
    result = flops_json(capsys, "--method", method, *extra)
    step = result["parts"]["token step"]
    assert result["k"] == (2 if extra else 1) and step["measured_gflops"] > step["analytic_gflops"] > 0
    assert (
        main(["flops", "--method", method, "--model-size", "xxs", "--seq-len", "16", "--vocab-size", "50", *extra]) == 0
    )
    out = capsys.readouterr().out
    assert "measured" in out and "Eq 77" in out and "vocab head" in out
    row = next(line for line in out.splitlines() if line.startswith("token step")).split()
    assert float(row[2]) == pytest.approx(step["measured_gflops"], rel=1e-5)
    assert float(row[3]) == pytest.approx(step["analytic_gflops"], rel=1e-5)
    assert float(row[4]) == pytest.approx(step["measured_head_gflops"], rel=1e-5)


def test_cli_cadd_k2_costs_twice_k1(capsys):
    one = flops_json(capsys, "--method", "cadd")["parts"]["token step"]
    two = flops_json(capsys, "--method", "cadd", "--k", "2")["parts"]["token step"]
    assert two["measured_gflops"] == pytest.approx(2 * one["measured_gflops"], rel=1e-9)
    assert two["analytic_gflops"] == pytest.approx(2 * one["analytic_gflops"], rel=1e-12)


@pytest.mark.parametrize(
    "args,match",
    [
        (["--method", "gpt"], "method='gpt' is not known"),
        (["--method", "mdlm", "--k", "2"], "--k applies to cadd models"),
        (["--method", "mdlm", "--seq-len", "0"], "--seq-len=0 must be a positive integer"),
        (["--method", "mdlm", "seq_len=8"], "set seq_len with its flag"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_code_2(capsys, args, match):
    capsys.readouterr()
    assert main(["flops", "--model-size", "xxs", "--seq-len", "16", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err


def test_a_sample_counts_the_latent_steps_of_the_runs_own_lag():
    """A run configured for sequential inference (ladd.lag=1) samples with T_y latent-only steps first; the
    FLOPs of a sample count them without being told."""
    from ladd_models import L, ladd_model

    from augdiff.metrics.generation import step_flops

    seq = ladd_model("co-ladd", lag=1.0, latent_steps=3)
    joint = ladd_model("co-ladd")
    a, b = step_flops(seq, L, 2), step_flops(joint, L, 2)
    assert a["gflops_per_sample"] > 2 * a["gflops_per_step"]
    assert b["gflops_per_sample"] == pytest.approx(2 * b["gflops_per_step"])
