"""Two processes (gloo, CPU) train the same run as one process with the same global batch.

Rank r runs micro-batches ``r·grad_accum + j`` of the global batch (rows, time-grid slice and mask generator),
so DDP/FSDP with 2 processes × ``grad_accum=1`` equals one process with ``grad_accum=2`` up to float
reduction order; a checkpoint saved by 2 processes resumes in 1.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from augdiff.config import build_config
from augdiff.train import Trainer, load_checkpoint

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built")

_SETTINGS = ["seq_len=32", "tensorboard=false", "progress=false", "log_every=1", "ckpt_every=3"]


def _config(steps: int, grad_accum: int):
    return build_config(
        {
            "method": "mdlm",
            "data": "sawtooth",
            "model_size": "xxs",
            "steps": steps,
            "batch_size": 8,
            "grad_accum": grad_accum,
            "seq_len": 32,
            "tensorboard": False,
            "progress": False,
            "log_every": 1,
            "ckpt_every": 3,
        }
    )


def _torchrun(out: Path, strategy: str) -> None:
    args = ["train", "--data", "sawtooth", "--model-size", "xxs", "--steps", "5", "--batch-size", "8"]
    _torchrun_augdiff([*args, "--strategy", strategy, "--out", str(out), *_SETTINGS])


def _torchrun_augdiff(args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "augdiff"]
    cmd += args
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 or not check, done.stdout[-2000:] + done.stderr[-4000:]
    return done


def _losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The reference: one process with grad_accum=2, the same micro-batches as 2 processes × grad_accum=1."""
    run = tmp_path_factory.mktemp("single") / "run"
    Trainer(_config(5, grad_accum=2), run).fit()
    return run


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_match_one_then_resume_in_one(strategy, single, tmp_path):
    run = tmp_path / strategy
    _torchrun(run, strategy)
    reference = _losses(single)
    assert len(reference) == 5
    assert _losses(run) == pytest.approx(reference, rel=1e-4)

    # The checkpoint holds the full state in the single-process format: weights, EMA and Adam's moments.
    a, b = load_checkpoint(single, with_trainer_state=True), load_checkpoint(run, with_trainer_state=True)
    assert b.step == 5 and b.meta["config"]["strategy"] == strategy
    assert a.model.keys() == b.model.keys() and a.ema.keys() == b.ema.keys()
    for key in a.model:
        torch.testing.assert_close(b.model[key], a.model[key], rtol=1e-4, atol=1e-6, msg=key)
        torch.testing.assert_close(b.ema[key], a.ema[key], rtol=1e-4, atol=1e-6, msg=key)
    adam_a, adam_b = a.trainer_state["optimizer"], b.trainer_state["optimizer"]
    assert [g["params"] for g in adam_a["param_groups"]] == [g["params"] for g in adam_b["param_groups"]]
    for index, state in adam_a["state"].items():
        for name in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(adam_b["state"][index][name], state[name], rtol=1e-4, atol=1e-8)

    # The curve of the single-process run resumed to step 7 is continued both by 2 processes resuming (rank 0
    # reads the checkpoint; under FSDP it broadcasts it shard by shard) and by 1 process with grad_accum=2 (the
    # same 2 micro-batches per step).
    ref = tmp_path / "single-7"
    shutil.copytree(single, ref)
    Trainer.resume(ref, steps=7).fit()
    again = tmp_path / f"{strategy}-2"
    shutil.copytree(run, again)
    _torchrun_augdiff(["train", "--resume", str(again), "--steps", "7"])
    trainer = Trainer.resume(run, steps=7, grad_accum=2)
    assert trainer.dist.world_size == 1 and trainer.step == 5
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, b.model[key]), key
    assert trainer.fit().steps == 7
    c = load_checkpoint(ref)
    for resumed in (run, again):
        assert len(_losses(resumed)) == 7 and _losses(resumed) == pytest.approx(_losses(ref), rel=1e-4)
        d = load_checkpoint(resumed)
        for key in c.model:
            torch.testing.assert_close(d.model[key], c.model[key], rtol=1e-4, atol=1e-6, msg=key)
            torch.testing.assert_close(d.ema[key], c.ema[key], rtol=1e-4, atol=1e-6, msg=key)


def test_without_torchrun_every_strategy_is_one_process(monkeypatch):
    from augdiff.errors import AugdiffError
    from augdiff.train.distributed import Distributed

    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for strategy in ("auto", "ddp", "fsdp"):
        ctx, device = Distributed.from_env(strategy, torch.device("cpu"))
        assert (ctx.strategy, ctx.world_size, ctx.is_main, device) == ("single", 1, True, torch.device("cpu"))
    with pytest.raises(AugdiffError, match="strategy='deepspeed' is not known"):
        Distributed.from_env("deepspeed", torch.device("cpu"))
    with pytest.raises(AugdiffError, match="strategy='zero' is not known"):
        build_config({"strategy": "zero"})


_STOP_ON_ONE_RANK = """
import os, sys, torch
from augdiff.config import build_config
from augdiff.train import Trainer

class OneRankStops(Trainer):
    def train_step(self):
        out = super().train_step()
        if self.dist.rank == 1 and self.step == 2:  # as if only rank 1 caught Ctrl-C, after step 2
            self.request_stop()
        return out

cfg = build_config({"data": "sawtooth", "model_size": "xxs", "steps": 6, "batch_size": 8, "seq_len": 32,
                    "tensorboard": False, "progress": False, "log_every": 1, "ckpt_every": 100,
                    "strategy": "ddp", "model": {"dropout": 0.1}})
result = OneRankStops(cfg, sys.argv[1]).fit()
rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else int(os.environ["RANK"])
with open(f"{sys.argv[1]}.rank{rank}", "w") as out:  # a file per rank: the ranks' stdout lines interleave
    out.write(f"{rank} {result.steps} {result.interrupted}")
"""


def test_a_stop_on_one_rank_stops_every_rank_at_the_same_step(tmp_path):
    """Only rank 1 is asked to stop: both ranks agree after step 2, save once, and report the interruption
    (without the agreement rank 0 trains on alone and the collectives hang). Ranks keep distinct dropout streams."""
    script = tmp_path / "stop.py"
    script.write_text(_STOP_ON_ONE_RANK)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), str(run)]
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # the ranks hang: SIGTERM lets torchrun take its workers down
        proc.terminate()
        stdout, stderr = proc.communicate(timeout=60)
        pytest.fail("the ranks did not stop together (hung at a collective)\n" + stderr[-2000:])
    assert proc.returncode == 0, stdout[-2000:] + stderr[-4000:]
    results = [Path(f"{run}.rank{rank}").read_text() for rank in (0, 1)]
    assert results == ["0 2 True", "1 2 True"], stdout[-2000:]
    ckpt = load_checkpoint(run, with_trainer_state=True)
    assert ckpt.step == 2 and len(_losses(run)) == 2
    ranks = ckpt.trainer_state["rng_ranks"]
    assert len(ranks) == 2 and not torch.equal(ranks[0]["cpu"], ranks[1]["cpu"])


def test_fsdp_gathers_bf16_parameters_and_keeps_fp32_masters(tmp_path):
    """bf16 training under FSDP2: blocks compute with bf16 parameters (half the all-gather traffic), while the
    times and the residual stream entering each block stay fp32 (as under DDP + autocast) and the sharded
    parameters the optimizer updates stay fp32 (one gloo rank in this process)."""
    import torch.distributed as dist

    from augdiff.methods import build_model
    from augdiff.train.distributed import Distributed, LossModule

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        cfg = build_config({"model_size": "xxs", "seq_len": 16, "vocab_size": 2})
        model = build_model(cfg, 2, 16)
        seen, inputs, times = [], [], []
        block = next(m for m in model.modules() if isinstance(m, torch.nn.ModuleList))[0]
        linear = next(m for m in block.modules() if isinstance(m, torch.nn.Linear))
        linear.register_forward_pre_hook(lambda mod, args: seen.append(mod.weight.dtype))
        block.register_forward_pre_hook(
            lambda mod, args: inputs.append([a.dtype for a in args if torch.is_tensor(a) and a.is_floating_point()])
        )
        loss_fn = model.loss
        model.loss = lambda x0, t, g: times.append(t.dtype) or loss_fn(x0, t, g)
        x0 = torch.randint(0, 2, (4, 16))

        def step(module):
            with torch.autocast("cpu", dtype=torch.bfloat16):  # as the trainer runs bf16
                return module(x0, torch.full((4,), 0.5), torch.Generator().manual_seed(0)).loss

        step(LossModule(model))  # the reference: plain module under autocast (what DDP runs)
        wrapped = Distributed("fsdp", 0, 1, 0).wrap(model, torch.device("cpu"), param_dtype=torch.bfloat16)
        step(wrapped).backward()
        assert seen == [torch.float32, torch.bfloat16]
        # FSDP rounds no input to bf16: the times and every block input keep the dtype they have without it.
        assert times == [torch.float32] * 2 and len(inputs) == 2 and inputs[1] == inputs[0]
        assert inputs[0][0] == torch.float32  # the residual stream
        assert {p.dtype for p in model.parameters()} == {torch.float32}
        assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in block.parameters())
    finally:
        dist.destroy_process_group()


class _Experts(torch.nn.Module):
    """A block holding its own ModuleList (a mixture of experts): FSDP2 must shard the experts first."""

    def __init__(self) -> None:
        super().__init__()
        self.experts = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(2))

    def forward(self, h):
        return sum(expert(h) for expert in self.experts)


class _NestedModel(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = torch.nn.ModuleList(_Experts() for _ in range(2))

    def loss(self, x0, t, generator=None):
        h = x0.float()
        for block in self.blocks:
            h = block(h)
        return (h * t[:, None]).square().mean()


def test_fsdp_shards_nested_module_lists(tmp_path):
    import torch.distributed as dist
    from torch.distributed.fsdp import FSDPModule

    from augdiff.train.distributed import Distributed

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        model = _NestedModel()
        wrapped = Distributed("fsdp", 0, 1, 0).wrap(model, torch.device("cpu"))
        assert all(isinstance(m, FSDPModule) for b in model.blocks for m in (b, *b.experts))
        wrapped(torch.ones(3, 4), torch.rand(3)).backward()
        assert all(p.grad is not None for p in model.parameters())
    finally:
        dist.destroy_process_group()


def test_a_checkpoint_that_does_not_fit_stops_every_fsdp_rank_with_one_line(single, tmp_path):
    """Under FSDP only rank 0 reads the weights; its verdict reaches every rank, so none waits in a broadcast."""
    from safetensors.torch import load_file, save_file

    run = tmp_path / "run"
    shutil.copytree(single, run)
    (ema_file,) = (run / "checkpoints").glob("step_00000005/ema.safetensors")
    ema = load_file(ema_file)
    key = sorted(ema)[0]
    save_file({**ema, key: torch.zeros(7)}, ema_file)
    done = _torchrun_augdiff(["train", "--resume", str(run), "--steps", "7", "--strategy", "fsdp"], check=False)
    # Both ranks print the line (counted, not split by lines: the two ranks' writes may interleave).
    assert done.stderr.count(f"{key}: shape (7,), the model has") == 2, done.stderr[-3000:]
    assert done.stderr.count("the checkpoint is damaged or foreign") == 2
    assert "exitcode: 2" in done.stderr and len(_losses(run)) == 5


def test_fsdp_resumes_ladd_stage_1_whose_latent_stream_has_no_optimizer_state(tmp_path):
    """Stage 1 gives the MM-DiT's latent stream no gradient, so AdamW saved no state for it; an FSDP resume on 2
    processes still continues the curve of a 1-process resume with the same micro-batches."""
    run = tmp_path / "co1"
    args = ["train", "--method", "co-ladd", "--stage", "1", "--data", "sawtooth", "--model-size", "xxs"]
    _torchrun_augdiff([*args, "--steps", "3", "--batch-size", "8", "--strategy", "fsdp", "--out", str(run), *_SETTINGS])
    one = tmp_path / "one"
    shutil.copytree(run, one)
    _torchrun_augdiff(["train", "--resume", str(run), "--steps", "5"])
    trainer = Trainer.resume(one, steps=5, grad_accum=2)
    saved = load_checkpoint(one, with_trainer_state=True).trainer_state["optimizer"]["state"]
    assert len(trainer.optimizer.state) == len(saved) < len(list(trainer.model.parameters()))
    trainer.fit()
    assert len(_losses(run)) == 5 and _losses(run) == pytest.approx(_losses(one), rel=1e-4)
