r"""Model FLOPs utilization (MFU) of a training step: counted FLOPs over what the device could have done.

.. math:: \mathrm{MFU} = \frac{F_\text{step}}{t_\text{step} \cdot P_\text{peak}}

:math:`F_\text{step}` is counted by ``torch.utils.flop_counter`` on one whole optimizer step (forward and
backward, ≈ 3× the forward: each matmul of the forward has two of the same size in the backward), matmuls and
attention only (as Eq 77 and PaLM's MFU). :math:`P_\text{peak}` is the device's dense bf16 peak from
:data:`PEAK_BF16_TFLOPS`, or a figure the caller gives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from augdiff.flops import _sdpa_flops

__all__ = ["PEAK_BF16_TFLOPS", "device_peak_flops", "model_flops_utilization", "count_train_flops"]

# Dense (not 2:4 sparse) bf16 tensor-core peaks from NVIDIA's data sheets, in TFLOP/s, matched against
# ``torch.cuda.get_device_name`` in this order (the first name found in it wins).
PEAK_BF16_TFLOPS: dict[str, float] = {
    "H200": 989.0,
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.0,  # SXM (HBM3)
    "A100": 312.0,
}


def device_peak_flops(device: torch.device, peak_tflops: float | None = None) -> tuple[float | None, str]:
    """Peak FLOP/s of ``device`` and where the figure comes from; ``(None, reason)`` when unknown.

    Example:
        >>> device_peak_flops(torch.device("cpu"), peak_tflops=2.0)
        (2000000000000.0, '--peak-tflops 2.0')
    """
    if peak_tflops is not None:
        return peak_tflops * 1e12, f"--peak-tflops {peak_tflops}"
    if device.type != "cuda":
        return None, f"no peak FLOP/s is known for {device.type} (give --peak-tflops)"
    name = torch.cuda.get_device_name(device)
    for key, tflops in PEAK_BF16_TFLOPS.items():
        if key in name:
            return tflops * 1e12, f"{name}: {key} dense bf16 peak"
    return None, f"no peak FLOP/s is known for {name} (give --peak-tflops)"


def model_flops_utilization(flops_per_step: float, seconds_per_step: float, peak_flops: float | None) -> float | None:
    r"""MFU :math:`= F_\text{step} / (t_\text{step} P_\text{peak})`; ``None`` without a peak.

    Example:
        >>> model_flops_utilization(3e12, 0.5, 10e12)
        0.6
    """
    if peak_flops is None:
        return None
    return flops_per_step / (seconds_per_step * peak_flops)


def _sdpa_backward_flops(
    grad_shape: Any, query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, **kw: Any
) -> int:
    """The backward of attention: four matmuls of the forward's two sizes, twice its FLOPs (torch's formula)."""
    return 2 * _sdpa_flops(query_shape, key_shape, value_shape)


# As in ``augdiff.flops``: the counter's registry lacks the CPU attention kernels, forward and backward.
_CPU_ATTENTION = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_flops,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_backward_flops,
}


def count_train_flops(step: Callable[[], object]) -> int:
    """FLOPs of ``step()`` (e.g. one ``Trainer.train_step``), gradients included; a compiled network runs
    eagerly meanwhile, since the counter sees only eager operators."""
    counter = FlopCounterMode(display=False, custom_mapping=_CPU_ATTENTION)
    with torch.compiler.set_stance("force_eager"), counter:
        step()
    return counter.get_total_flops()
