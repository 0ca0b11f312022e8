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

import hashlib
import json
import os
import pickle
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from augdiff.errors import AugdiffError
from augdiff.files import fsync_tree, write_text_atomic

__all__ = [
    "FORMAT",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "resolve_checkpoint",
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
    remove_stale_temporaries(root)
    name = f"step_{step:08d}"
    final, tmp = root / name, root / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        tag = {"format": FORMAT, "step": str(step), **weights_tag(meta)}
        save_file(_contiguous(model), tmp / "model.safetensors", metadata=tag)
        save_file(_contiguous(ema), tmp / "ema.safetensors", metadata=tag)
        torch.save(trainer_state, tmp / "trainer_state.pt")
        (tmp / "meta.json").write_text(json.dumps({"format": FORMAT, "step": step, **meta}, indent=2))
        fsync_tree(tmp)
    except (OSError, SafetensorError, RuntimeError) as exc:  # a full disk surfaces as any of the three
        shutil.rmtree(tmp, ignore_errors=True)
        need = checkpoint_bytes(model, ema) / 2**20
        kept = (
            f"the last checkpoint ({_latest_name(root)}) is intact" if has_checkpoint(run_dir) else "no checkpoint yet"
        )
        raise AugdiffError(
            f"{root}: could not write checkpoint step {step} ({_reason(exc)}); a checkpoint needs about "
            f"{need:,.0f} MB free there ({kept}); free space and resume with: augdiff train --resume {run_dir}"
        ) from None
    if final.exists():  # the same step saved twice: move the old one aside, never delete before replacing
        old = root / f".{name}.old-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    write_text_atomic(root / "latest", name + "\n")
    for old in sorted(p for p in root.glob("step_*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoint_bytes(model: dict[str, Tensor], ema: dict[str, Tensor]) -> int:
    """Bytes of one checkpoint: weights, EMA and AdamW's two moments (≈ 2× the weights), one copy each."""
    weights = sum(t.numel() * t.element_size() for t in model.values())
    return 3 * weights + sum(t.numel() * t.element_size() for t in ema.values())


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__


def _latest_name(root: Path) -> str:
    latest = root / "latest"
    return latest.read_text().strip() if latest.is_file() else "none"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_stale_temporaries(root: Path) -> list[Path]:
    """Remove ``.step_*.tmp-PID`` / ``.old-PID`` folders left by processes that died mid-save (their PID is no
    longer running); another live process's folder is never touched. Returns what was removed."""
    removed = []
    if not root.is_dir():
        return removed
    for path in root.glob(".step_*"):
        kind, _, pid = path.name.rpartition("-")
        if not (kind.endswith((".tmp", ".old")) and pid.isdigit()) or int(pid) == os.getpid():
            continue
        if not _pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def has_checkpoint(run_dir: Path) -> bool:
    return (Path(run_dir) / "checkpoints" / "latest").is_file()


def resolve_checkpoint(path: str | Path) -> Path:
    """A run directory (its latest checkpoint) or a checkpoint directory → the checkpoint directory."""
    path = Path(path)
    if not path.exists():
        raise AugdiffError(
            f"{path}: no such run or checkpoint directory (give the --out folder of an augdiff train run)"
        )
    latest = path / "checkpoints" / "latest"
    if latest.is_file():
        name = latest.read_text().strip()
        if not re.fullmatch(r"step_\d{8}", name):  # a path elsewhere would load another run's weights
            raise AugdiffError(
                f"{latest}: names {name!r}, not a checkpoint of this run (expected step_NNNNNNNN); "
                f"write the name of one of {path / 'checkpoints'}'s step_* folders into it"
            )
        path = path / "checkpoints" / name
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
    fields = {"step": int, "config": dict, "data": dict}
    bad = [key for key, kind in fields.items() if not isinstance(meta.get(key), kind)]
    if bad:
        raise AugdiffError(f"{path}/meta.json: missing or malformed {', '.join(bad)} (a damaged checkpoint)")
    return meta


def weights_tag(meta: dict[str, Any]) -> dict[str, str]:
    """What the weight files record about the run that wrote them: its method and a hash of its configuration,
    so that weights moved into another run's checkpoint are refused on load (shapes alone would let MDLM
    weights load into a CADD run)."""
    config = meta.get("config")
    if not isinstance(config, dict):
        return {}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {"method": str(config.get("method")), "config_sha256": digest}


def read_weights(file: Path, meta: dict[str, Any]) -> dict[str, Tensor]:
    try:
        with safe_open(file, "pt") as f:
            written = f.metadata() or {}
            state = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except (SafetensorError, OSError, ValueError) as exc:
        raise AugdiffError(f"{file}: unreadable weights ({exc}); the checkpoint is damaged") from None
    expected = weights_tag(meta)  # checkpoints written before the tag carry none: nothing to compare
    if "method" in written and written["method"] != expected.get("method"):
        raise AugdiffError(
            f"{file}: weights written by a {written['method']!r} run, but this checkpoint's meta.json is a "
            f"{expected.get('method')!r} run's; the checkpoint is foreign: restore the run's own step_* folder"
        )
    if "config_sha256" in written and written["config_sha256"] != expected.get("config_sha256"):
        raise AugdiffError(
            f"{file}: meta.json's configuration is not the one these weights were written with (edited, or "
            "weights from another run); restore the run's own step_* folder"
        )
    return state


def _read_trainer_state(file: Path) -> dict[str, Any]:
    try:
        try:
            state = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # a file system without mmap support: read it whole
            state = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise AugdiffError(
            f"{file}: refused to load: it holds objects other than tensors and plain values, which could run "
            "code (a foreign checkpoint)"
        ) from None
    except (OSError, RuntimeError, EOFError) as exc:
        raise AugdiffError(
            f"{file}: unreadable trainer state ({type(exc).__name__}); the checkpoint is damaged, "
            "so the run cannot resume from it"
        ) from None
    if not isinstance(state, dict) or "step" not in state:
        raise AugdiffError(f"{file}: not an augdiff trainer state (a foreign or damaged checkpoint)")
    return state


def load_checkpoint(path: str | Path, *, with_trainer_state: bool = False, weights: bool = True) -> Checkpoint:
    """Load a checkpoint (or a run's latest) without executing any code from it (safetensors, and
    ``torch.load(weights_only=True)``, which refuses any pickle that would run code).

    ``weights=False`` leaves ``model`` and ``ema`` empty (FSDP ranks other than 0 receive them by broadcast).
    The trainer state is memory-mapped: a rank that never reads the optimizer's tensors never loads them.
    """
    ckpt = resolve_checkpoint(path)
    meta = _read_meta(ckpt)
    state = _read_trainer_state(ckpt / "trainer_state.pt") if with_trainer_state else None
    return Checkpoint(
        path=ckpt,
        meta=meta,
        model=read_weights(ckpt / "model.safetensors", meta) if weights else {},
        ema=read_weights(ckpt / "ema.safetensors", meta) if weights else {},
        trainer_state=state,
    )


def state_mismatch(expected: dict[str, Tensor], given: dict[str, Tensor]) -> str | None:
    """How ``given`` fails to fit a module whose state is ``expected`` (keys, then shapes); ``None`` if it fits."""
    missing, unexpected = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
    if missing or unexpected:
        return f"missing {missing[:3]}, unexpected {unexpected[:3]}"
    for key, value in expected.items():
        if tuple(value.shape) != tuple(given[key].shape):
            return f"{key}: shape {tuple(given[key].shape)}, the model has {tuple(value.shape)}"
    return None


def load_weights(module: torch.nn.Module, state: dict[str, Tensor], where: str, fix: str) -> None:
    """``module.load_state_dict(state)``; a mismatch becomes one line naming ``where``, the first difference
    and ``fix``."""
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        lines = str(exc).splitlines()
        first = (lines[1].strip() if len(lines) > 1 else str(exc))[:100]
        raise AugdiffError(f"{where}: weights do not fit the configured model ({first}); {fix}") from None
