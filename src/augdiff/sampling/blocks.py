r"""Semi-autoregressive generation of sequences longer than the model's window (MDLM §4.2, App. B.5).

MDLM's stride rule (``sample_subs_guidance`` in GitHub kuleshov-group/mdlm): draw a first window of L tokens; then,
while the sequence is too short, keep its last L − B tokens as a clean prefix, draw a window of L tokens that
starts with them and append the B new ones; the result is cut to the length asked for. Every window is L tokens
long, the length the model was trained on. Every window is an ordinary draw of :func:`generate` with a prefix
(any sampler, any method), so nothing is cached across windows but the clean context is reused as given tokens.

Each window has its own seed, fixed by the seed and where the window ends in the sequence, so drawing 2L tokens
at once equals drawing L tokens and then extending them by L.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from augdiff.sampling.ancestral import Denoiser
from augdiff.sampling.generate import generate
from augdiff.schedules import MaskSchedule

__all__ = ["generate_blocks", "window_seed"]


def window_seed(seed: int, end: int) -> int:
    """The seed of the window that ends at position ``end`` of the sequence."""
    return seed * 1_000_003 + end


def generate_blocks(
    model: Denoiser,
    schedule: MaskSchedule,
    num: int,
    length: int,
    steps: int,
    *,
    window: int,
    block: int,
    prefix: Tensor | None = None,
    seed: int = 0,
    **options: Any,
) -> Tensor:
    """``num`` sequences ``[num, length]`` drawn window by window, ``block`` new tokens per window after the first.

    Args:
        length: total length; may exceed ``window`` (the training length L).
        steps: reverse steps per window.
        window: tokens the model sees at once (L).
        block: new tokens per window after the first (B ≤ L; the stride).
        prefix: ids ``[P]`` (or ``[num, P]``) the sequences start with; a prefix of at least L − B tokens is
            extended block by block from its end.
        options: :func:`generate`'s sampler options (``batch_size``, ``temperature``, ``remasking``, …).
    """
    if not 0 < block <= window:
        raise ValueError(f"block must lie in [1, window={window}], got {block}")
    if length < 1:
        raise ValueError(f"length must be positive, got {length}")
    x = torch.empty(num, 0, dtype=torch.long)
    if prefix is not None:  # generate returns rows on the CPU: the sequence is built there
        x = prefix.cpu().reshape(-1, prefix.shape[-1]).expand(num, -1)
    if x.shape[1] < window - block:  # the first window: the whole of L, after what is given
        x = _window(model, schedule, x, window, steps, window_seed(seed, window), options)
    while x.shape[1] < length:  # windows of L: the last L − B tokens as context, B new ones (the last cut to fit)
        context = x[:, x.shape[1] - (window - block) :]
        drawn = _window(model, schedule, context, window, steps, window_seed(seed, x.shape[1] + block), options)
        x = torch.cat([x, drawn[:, context.shape[1] :]], dim=1)
    return x[:, :length]


def _window(
    model: Denoiser, schedule: MaskSchedule, given: Tensor, size: int, steps: int, seed: int, options: dict[str, Any]
) -> Tensor:
    """One window of ``size`` tokens whose rows start with ``given`` ``[num, P]``."""
    prefix = given if given.shape[1] > 0 else None
    return generate(model, schedule, given.shape[0], size, steps, prefix=prefix, seed=seed, **options)
