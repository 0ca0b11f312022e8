"""Training metrics: one JSON object per line in ``metrics.jsonl`` and the same scalars in TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["MetricsLogger"]


class MetricsLogger:
    """Append-only metrics sink; on resume, lines past the resumed step are dropped first."""

    def __init__(self, run_dir: Path, *, tensorboard: bool = True, resume_step: int | None = None) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        if resume_step is not None and self.path.exists():
            kept = [
                line
                for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= resume_step
            ]
            self.path.write_text("".join(line + "\n" for line in kept))
        self._file = self.path.open("a")
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=resume_step)

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
