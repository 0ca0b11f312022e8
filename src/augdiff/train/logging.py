"""Training metrics: one JSON object per line in ``metrics.jsonl`` and the same scalars in TensorBoard."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from augdiff.extras import missing
from augdiff.files import write_text_atomic

__all__ = ["MetricsLogger", "MetricWindow"]


def _step_of(line: str) -> int | None:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None  # a line cut off by a hard kill


class MetricsLogger:
    """Metrics sink. A fresh run starts an empty file; a resumed one keeps the lines up to its step (the file is
    only appended to, except that lines past the resumed step, or one cut off by a kill, are dropped by an
    atomic rewrite)."""

    def __init__(self, run_dir: Path, *, tensorboard: bool = True, resume_step: int | None = None) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        lines = self.path.read_text().splitlines() if resume_step is not None and self.path.exists() else []
        kept = [line for line in lines if (_step_of(line) or 1 << 62) <= (resume_step or 0)]
        if kept != lines or not self.path.exists() or resume_step is None:
            # Through a temporary file and a rename: a kill during this rewrite leaves the old history whole.
            write_text_atomic(self.path, "".join(line + "\n" for line in kept))
        self._file = self.path.open("a")
        self._writer = None
        if tensorboard and missing("tensorboard"):  # a minimal install: the JSONL log is enough
            print(
                "augdiff: tensorboard=true but the tensorboard package is missing "
                "(pip install 'augdiff[tensorboard]'); logging to metrics.jsonl only",
                file=sys.stderr,
            )
            tensorboard = False
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=resume_step or 0)

    def log(self, step: int, scalars: dict[str, Any]) -> None:
        self._file.write(json.dumps({"step": step, **scalars}) + "\n")
        self._file.flush()
        if self._writer is not None:
            for key, value in scalars.items():
                if isinstance(value, (int, float)):
                    self._writer.add_scalar(f"train/{key}", value, step)

    def close(self) -> None:
        self._file.close()
        if self._writer is not None:
            self._writer.close()


class MetricWindow:
    """Running sums of the loss over a logging window, kept on the device until the window is flushed."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._reset()

    def _reset(self) -> None:
        self.loss = torch.zeros((), device=self.device)
        self.nll = torch.zeros((), device=self.device)
        self.steps = 0
        self.start = time.perf_counter()

    def state(self, reduce: Callable[..., tuple[torch.Tensor, ...]] | None = None) -> dict[str, float | int]:
        """The open window's sums for a checkpoint (averaged over ranks by ``reduce``: the flush averages the
        sums over ranks, which is linear, so every rank may resume from the average)."""
        loss, nll = reduce(self.loss, self.nll) if reduce is not None else (self.loss, self.nll)
        return {"loss": float(loss), "nll": float(nll), "steps": self.steps}

    def load(self, state: dict[str, float | int] | None) -> None:
        """Reopen a window saved by :meth:`state`, so the first log line after a resume averages the same steps
        as in a run that was never stopped."""
        if state:
            self.loss = torch.tensor(float(state["loss"]), device=self.device)
            self.nll = torch.tensor(float(state["nll"]), device=self.device)
            self.steps = int(state["steps"])

    def add(self, loss: torch.Tensor, nll: torch.Tensor) -> None:
        self.loss += loss
        self.nll += nll
        self.steps += 1

    def flush(
        self, tokens_per_step: int, reduce: Callable[..., tuple[torch.Tensor, ...]] | None = None
    ) -> dict[str, float]:
        """The window's means (the host sync of the loop); ``reduce`` averages the sums over ranks first, so the
        processes of a torchrun job meet once per logging interval, not once per step."""
        sums = reduce(self.loss, self.nll) if reduce is not None else (self.loss, self.nll)
        loss, nll = (float(v) / self.steps for v in sums)
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        out = {
            "loss": loss,
            "nll": nll,
            "bpt": nll / math.log(2),
            "tokens_per_s": self.steps * tokens_per_step / elapsed,
        }
        self._reset()
        return out
