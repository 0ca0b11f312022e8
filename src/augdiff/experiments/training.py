"""Training the method runs of an experiment: resume what stopped, reuse what finished with the same settings.

Every experiment (``augdiff run sawtooth``, ``augdiff run text``) keeps one run directory per method under its
``--out``; running the command again continues or reuses those runs instead of starting over.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from augdiff.config import TrainConfig, config_from_stored, config_to_dict
from augdiff.errors import AugdiffError
from augdiff.train import Trainer
from augdiff.train.checkpoint import has_checkpoint, load_checkpoint
from augdiff.train.trainer import RESUMABLE_KEYS

__all__ = ["train_or_reuse", "train_two_stages", "flatten"]


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _check_reusable(cfg: TrainConfig, run_dir: Path, step: int, stored: dict[str, Any]) -> None:
    """A run found in the output directory is reused only if it was trained with exactly these settings."""
    wanted = flatten(config_to_dict(cfg))
    have = flatten(config_to_dict(config_from_stored(stored)))
    for tree in (wanted, have):  # a stage-1 folder is named for its run: a copied or moved output still matches
        if tree.get("init_from"):
            tree["init_from"] = Path(tree["init_from"]).name
    unused = [f"{s}." for s in ("cadd", "ladd") if not cfg.method.endswith(s)]  # sections other methods ignore
    differ = [
        k for k in wanted if k not in RESUMABLE_KEYS and not k.startswith(tuple(unused)) and have.get(k) != wanted[k]
    ]
    if step > cfg.steps:
        differ.append(f"steps ({step} trained > {cfg.steps})")
    if differ:
        shown = ", ".join(differ[:4]) + (" …" if len(differ) > 4 else "")
        raise AugdiffError(
            f"{run_dir} holds a run trained with other settings ({shown}); choose a new --out for this "
            "preset or seed, or delete that directory"
        )


def train_or_reuse(cfg: TrainConfig, run_dir: Path) -> dict[str, float]:
    """Train (or finish training) one run; a finished run with the same settings is reused as is."""
    if has_checkpoint(run_dir):
        ckpt = load_checkpoint(run_dir)
        _check_reusable(cfg, run_dir, ckpt.step, ckpt.meta["config"])
        if ckpt.step == cfg.steps:
            return {"train_steps": ckpt.step, "train_seconds": float(ckpt.meta.get("seconds", float("nan")))}
        result = Trainer.resume(run_dir, steps=cfg.steps, device=cfg.device).fit()
    else:
        result = Trainer(cfg, run_dir).fit()
    if result.interrupted:
        raise KeyboardInterrupt
    return {"train_steps": result.steps, "train_seconds": result.seconds}


def train_two_stages(
    method: str, out: Path, config: Callable[[int, str | None], TrainConfig]
) -> tuple[TrainConfig, dict[str, float]]:
    """LADD's two stages (§3.3): ``<method>-stage1`` (encoder + token denoiser), then ``<method>`` from it.

    ``config(stage, init_from)`` gives the training config of a stage.
    """
    first_dir, second_dir = out / f"{method}-stage1", out / method
    stage1 = config(1, None)
    finished = has_checkpoint(first_dir) and load_checkpoint(first_dir).step == stage1.steps
    if has_checkpoint(second_dir) and not finished:  # its encoder came from another stage 1
        raise AugdiffError(
            f"{second_dir} started from a stage 1 that {first_dir} no longer holds (it is missing or will train "
            "further); delete that stage-2 directory, or choose a new --out"
        )
    first = train_or_reuse(stage1, first_dir)
    cfg = config(2, str(first_dir.resolve()))
    second = train_or_reuse(cfg, second_dir)
    return cfg, {
        "train_steps": first["train_steps"] + second["train_steps"],
        "train_seconds": first["train_seconds"] + second["train_seconds"],
        "stage1_steps": first["train_steps"],
    }
