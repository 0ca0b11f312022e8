"""Process-wide settings for a device, applied once by the trainer and by run loading."""

from __future__ import annotations

import torch

__all__ = ["configure_device"]


def configure_device(device: torch.device) -> None:
    """On CPU, flush denormal floats to zero.

    The zero-initialized adaLN gates make tiny (denormal) values common early in training, and x86 CPUs handle
    them in microcode: measured on 2 cores, training and sampling run ~20 % faster with them flushed. Values
    below ~1e-38 become 0, which changes nothing a float32 model can represent meaningfully.
    """
    if device.type == "cpu":
        torch.set_flush_denormal(True)
