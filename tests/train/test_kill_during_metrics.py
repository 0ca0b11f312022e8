"""A real ``kill -9`` in the middle of a metrics line: the resumed run ends exactly where an uninterrupted one does."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from augdiff.cli.main import main

ARGS = [
    "--method", "cadd", "--data", "sawtooth", "--model-size", "xxs", "--batch-size", "4", "--steps", "9",
    "seq_len=16", "log_every=1", "ckpt_every=3", "progress=false", "tensorboard=false",
]  # fmt: skip

# Runs `augdiff train` and SIGKILLs itself after writing half of the log line of step 5 (past the checkpoint of
# step 3): the process dies mid-write, as a kill -9 or a power cut would leave it.
KILLER = """
import os, signal, sys
import augdiff.train.logging as logging

def log(self, step, scalars, _log=logging.MetricsLogger.log):
    if step == 5:
        self._file.write('{"step": 5, "loss": 0.6')
        self._file.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    _log(self, step, scalars)

logging.MetricsLogger.log = log
from augdiff.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def _final(run: Path) -> dict[str, torch.Tensor]:
    last = sorted((run / "checkpoints").glob("step_*"))[-1]
    return {f"{f.stem}/{k}": v for f in sorted(last.glob("*.safetensors")) for k, v in load_file(f).items()}


def _losses(run: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows]


@pytest.mark.skipif(not hasattr(os, "kill") or sys.platform == "win32", reason="needs POSIX signals")
def test_a_kill_mid_metrics_line_resumes_to_the_uninterrupted_run(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert main(["train", "--out", str(whole), *ARGS]) == 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", KILLER, "train", "--out", str(killed), *ARGS], env=env)
    assert proc.returncode == -9
    assert (killed / "metrics.jsonl").read_text().endswith('"loss": 0.6')  # the cut-off line is there
    assert main(["train", "--resume", str(killed)]) == 0
    assert _losses(killed) == _losses(whole)  # steps 1..9 once each, the same values
    final_whole, final_killed = _final(whole), _final(killed)
    assert final_whole.keys() == final_killed.keys()
    for key, value in final_whole.items():
        assert torch.equal(value, final_killed[key]), key
