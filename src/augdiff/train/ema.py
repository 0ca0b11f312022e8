"""Exponential moving average of the weights.

A small class rather than ``torch.optim.swa_utils.AveragedModel``: that one reads its update counter from
the device twice per update (a host-device sync every step) and cannot warm its decay up without a third.
Here the counter is a Python int and the update is one fused ``_foreach_lerp_``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ema_decay_at", "EMA"]


def ema_decay_at(decay: float, num_updates: int) -> float:
    """The decay used at update number ``num_updates``: min(decay, (1+n)/(10+n)).

    The warm-up keeps short runs from averaging in their random initialization (a fixed 0.9999 needs
    ~10⁴ steps to forget it).
    """
    return min(decay, (1.0 + num_updates) / (10.0 + num_updates))


class EMA:
    """Shadow copies of a model's state: floating-point parameters are averaged as
    ``shadow ← d·shadow + (1−d)·current``; buffers (e.g. a VQ codebook kept by its own EMA, or its k-means
    "initialized" flag) are copied as they are, since averaging a flag or a running statistic twice is wrong.

    Example:
        >>> ema = EMA(model, decay=0.999)
        >>> ...; optimizer.step(); ema.update(model)
        >>> ema.copy_to(eval_model)
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.num_updates = 0
        params = {name for name, p in model.named_parameters() if p.dtype.is_floating_point}
        self.shadow: dict[str, Tensor] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self._averaged = [k for k in self.shadow if k in params]
        self._copied = [k for k in self.shadow if k not in params]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        weight = 1.0 - ema_decay_at(self.decay, self.num_updates)
        current = model.state_dict()
        keys = self._averaged
        torch._foreach_lerp_([self.shadow[k] for k in keys], [current[k].detach() for k in keys], weight)
        for k in self._copied:
            self.shadow[k].copy_(current[k])
        self.num_updates += 1

    def state_dict(self) -> dict[str, Tensor]:
        return self.shadow

    def load_state_dict(self, shadow: dict[str, Tensor], num_updates: int) -> None:
        missing = set(self.shadow) ^ set(shadow)
        assert not missing, f"EMA keys differ: {sorted(missing)[:5]}"
        for k, v in shadow.items():
            self.shadow[k].copy_(v)
        self.num_updates = num_updates

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into ``model`` (its non-float state is left as is)."""
        model.load_state_dict(self.shadow, strict=False)
