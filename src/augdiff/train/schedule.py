"""The learning-rate schedule: a linear warm-up, then constant (MDLM) or a cosine decay, built from torch's
schedulers (``LinearLR``, ``CosineAnnealingLR``, ``SequentialLR``), with :func:`lr_at` its closed form.

The schedule is a function of the optimizer step alone, so a resumed run rebuilds it and replays the steps it
has taken (:func:`fast_forward`, microseconds a step) instead of reading scheduler state from the checkpoint: the
learning rates match the uninterrupted run's bit for bit, and a resume with more ``steps`` stretches the rest of
a cosine decay, as the closed form says.
"""

from __future__ import annotations

import math
import warnings

from torch.optim import Optimizer
from torch.optim.lr_scheduler import ConstantLR, CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR

__all__ = ["lr_at", "build_lr_scheduler", "fast_forward"]


def lr_at(
    step: int,
    lr: float,
    warmup_steps: int,
    schedule: str = "constant",
    total_steps: int | None = None,
    min_ratio: float = 0.1,
) -> float:
    r"""The learning rate of optimizer step ``step`` (0-based), in closed form.

    With :math:`w = \max(\text{warmup\_steps}, 1)` and :math:`T` = ``total_steps``: :math:`\eta (s+1)/w` while
    :math:`s + 1 < w`; then :math:`\eta` (constant) or, for ``cosine``,
    :math:`\eta\,(r + (1-r)\,\tfrac12(1 + \cos(\pi p)))` with :math:`p = (s + 1 - w)/(T - w)` capped at 1 and
    :math:`r` = ``min_ratio``: the peak at step :math:`w - 1`, the floor :math:`r\eta` at the last step
    :math:`T - 1`. What :func:`build_lr_scheduler`'s schedulers compute (up to rounding).
    """
    w = max(warmup_steps, 1)
    if step + 1 < w:
        return lr * (step + 1) / w
    if schedule == "constant" or total_steps is None or total_steps <= w:
        return lr
    progress = min(1.0, (step + 1 - w) / (total_steps - w))
    return lr * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def build_lr_scheduler(
    optimizer: Optimizer,
    lr: float,
    warmup_steps: int,
    schedule: str = "constant",
    total_steps: int | None = None,
    min_ratio: float = 0.1,
) -> LRScheduler:
    """torch schedulers for :func:`lr_at`'s schedule, starting at step 0: every group's learning rate is set to
    ``lr`` first (a resumed optimizer carries the last step's), then to step 0's. Call ``step()`` after each
    optimizer step."""
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] = lr
    w = max(warmup_steps, 1)
    parts: list[LRScheduler] = []
    if w > 1:
        parts.append(LinearLR(optimizer, start_factor=1.0 / w, end_factor=1.0, total_iters=w - 1))
    if schedule == "cosine" and total_steps is not None and total_steps > w:
        parts.append(CosineAnnealingLR(optimizer, T_max=total_steps - w, eta_min=min_ratio * lr))
    if not parts:
        return ConstantLR(optimizer, factor=1.0, total_iters=0)
    if len(parts) == 1:
        return parts[0]
    return SequentialLR(optimizer, parts, milestones=[w - 1])


def fast_forward(scheduler: LRScheduler, steps: int) -> None:
    """Advance a fresh ``scheduler`` by the ``steps`` optimizer steps a resumed run has already taken."""
    with warnings.catch_warnings():  # torch warns when a scheduler steps before its optimizer has
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)`")
        for _ in range(steps):
            scheduler.step()
