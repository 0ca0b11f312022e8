"""Checkpoints: written atomically, read without executing code.

Layout of one checkpoint directory ``RUN/checkpoints/step_00001000/``:

- ``model.safetensors`` — the trained weights; ``ema.safetensors`` — their moving average;
- ``trainer_state.pt`` — step, optimizer, EMA counter, RNG states (tensors and plain Python only, loaded with
  ``torch.load(..., weights_only=True)``);
- ``meta.json`` — format tag, step, the full config and the data description.

The directory is assembled under a temporary name and renamed into place; ``RUN/checkpoints/latest`` names
the newest complete one and is itself replaced atomically, so a crash never leaves a half checkpoint in use.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from augdiff.errors import AugdiffError

__all__ = [
    "FORMAT",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "resolve_checkpoint",
    "write_text_atomic",
    "has_checkpoint",
]

FORMAT = "augdiff-checkpoint-1"


@dataclass
class Checkpoint:
    """A loaded checkpoint. ``trainer_state`` is ``None`` when only weights were asked for."""

    path: Path
    meta: dict[str, Any]
    model: dict[str, Tensor]
    ema: dict[str, Tensor]
    trainer_state: dict[str, Any] | None

    @property
    def step(self) -> int:
        return int(self.meta["step"])


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _contiguous(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def save_checkpoint(
    run_dir: Path,
    step: int,
    *,
    model: dict[str, Tensor],
    ema: dict[str, Tensor],
    trainer_state: dict[str, Any],
    meta: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write checkpoint ``step`` under ``run_dir/checkpoints`` atomically and prune all but the ``keep`` newest."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:08d}"
    final, tmp = root / name, root / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    tag = {"format": FORMAT, "step": str(step)}
    save_file(_contiguous(model), tmp / "model.safetensors", metadata=tag)
    save_file(_contiguous(ema), tmp / "ema.safetensors", metadata=tag)
    torch.save(trainer_state, tmp / "trainer_state.pt")
    (tmp / "meta.json").write_text(json.dumps({"format": FORMAT, "step": step, **meta}, indent=2))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    write_text_atomic(root / "latest", name + "\n")
    for old in sorted(p for p in root.glob("step_*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def has_checkpoint(run_dir: Path) -> bool:
    return (Path(run_dir) / "checkpoints" / "latest").is_file()


def resolve_checkpoint(path: str | Path) -> Path:
    """A run directory (its latest checkpoint) or a checkpoint directory → the checkpoint directory."""
    path = Path(path)
    if not path.exists():
        raise AugdiffError(f"{path}: no such run directory (train one with: augdiff train --out {path})")
    latest = path / "checkpoints" / "latest"
    if latest.is_file():
        path = path / "checkpoints" / latest.read_text().strip()
    if not (path / "meta.json").is_file():
        raise AugdiffError(
            f"{path}: not an augdiff run or checkpoint (expected checkpoints/latest or meta.json; "
            "give the --out directory of augdiff train)"
        )
    return path


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise AugdiffError(
            f"{path}: not an augdiff checkpoint of format {FORMAT} (a foreign or damaged "
            "checkpoint; point at a directory written by augdiff train)"
        )
    return meta


def _read_weights(file: Path) -> dict[str, Tensor]:
    try:
        return load_file(file)
    except (SafetensorError, OSError, ValueError) as exc:
        raise AugdiffError(
            f"{file}: unreadable weights ({exc}); the checkpoint is damaged, use an earlier one"
        ) from None


def load_checkpoint(path: str | Path, *, with_trainer_state: bool = False) -> Checkpoint:
    """Load a checkpoint (or a run's latest) without executing any code from it."""
    ckpt = resolve_checkpoint(path)
    meta = _read_meta(ckpt)
    state = None
    if with_trainer_state:
        state = torch.load(ckpt / "trainer_state.pt", map_location="cpu", weights_only=True)
    return Checkpoint(
        path=ckpt,
        meta=meta,
        model=_read_weights(ckpt / "model.safetensors"),
        ema=_read_weights(ckpt / "ema.safetensors"),
        trainer_state=state,
    )
