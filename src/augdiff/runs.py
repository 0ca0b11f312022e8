"""Loading a trained run for sampling and evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from augdiff.ar import ARModel
from augdiff.config import TrainConfig, config_from_stored
from augdiff.data.tokenizer import padding_id, tokenizer_from_description
from augdiff.errors import AugdiffError
from augdiff.methods import build_model
from augdiff.model import DiffusionModel
from augdiff.runtime import configure_device
from augdiff.train.checkpoint import load_weights
from augdiff.train.pretrained import load_any

__all__ = ["LoadedRun", "load_run"]


@dataclass
class LoadedRun:
    """A model restored from a checkpoint, with the config and data description it was trained with.

    ``model`` is a :class:`DiffusionModel`, or an :class:`ARModel` for ``method: ar`` runs.
    """

    model: DiffusionModel | ARModel
    config: TrainConfig
    data: dict[str, Any]
    step: int
    path: Path


def load_run(path: str | Path, *, weights: str = "ema", device: torch.device | str = "cpu") -> LoadedRun:
    """Restore the model of a run directory (its latest checkpoint), of one checkpoint directory, of a pretrained
    folder (:func:`augdiff.train.pretrained.save_pretrained`) or of ``hub:owner/name``.

    Args:
        weights: ``"ema"`` (the moving average, used for evaluation by default) or ``"raw"``.
    """
    if weights not in ("ema", "raw"):
        raise AugdiffError(f"weights={weights!r} is not known (use ema or raw)")
    ckpt = load_any(path)
    try:
        cfg = config_from_stored(ckpt.meta["config"])
        data = dict(ckpt.meta["data"])
        tok = tokenizer_from_description(data)  # None for sawtooth and raw tokens; old runs hold only chars
        decode = (lambda x: [tok.decode(row) for row in x]) if tok is not None else None
        shape = data.get("image_shape")
        model = build_model(cfg, int(data["vocab_size"]), data.get("seq_len"), decode, padding_id(data), shape)
    except (KeyError, TypeError) as exc:
        raise AugdiffError(f"{ckpt.path}: checkpoint metadata lacks {exc} (a damaged or foreign checkpoint)") from None
    state = ckpt.ema if weights == "ema" else ckpt.model
    load_weights(model, state, str(ckpt.path), "a foreign or damaged checkpoint")
    configure_device(torch.device(device))
    model.to(device).eval()
    return LoadedRun(model=model, config=cfg, data=data, step=ckpt.step, path=ckpt.path)
