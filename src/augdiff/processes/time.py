"""Sampling diffusion times for the Monte-Carlo ELBO."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["sample_times"]


def sample_times(
    batch_size: int,
    *,
    antithetic: bool = True,
    eps: float = 1e-3,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
    offset: int = 0,
    total: int | None = None,
) -> Tensor:
    r"""Draw diffusion times in ``[eps, 1]`` for a batch.

    With ``antithetic=True`` the times are low-discrepancy (Kingma et al. 2021, VDM App. I.2; used by MDLM and
    LADD §C.3): one uniform :math:`u` shifts an evenly spaced grid,
    :math:`t_j = (u + j/N) \bmod 1`, which keeps each draw uniform while cutting the estimator's variance.

    ``offset``/``total`` select rows ``offset .. offset+batch_size`` of a grid of ``total`` points, so that
    micro-batches (or ranks) of one global batch share a single stratified grid.

    Returns:
        t ``[batch_size]`` (float32) with :math:`t \in [\varepsilon, 1]`.
    """
    total = batch_size if total is None else total
    if antithetic:
        u = torch.rand((), device=device, generator=generator)
        j = torch.arange(offset, offset + batch_size, device=device, dtype=torch.float32)
        t = torch.remainder(u + j / total, 1.0)
    else:
        t = torch.rand(batch_size, device=device, generator=generator)
    return eps + (1.0 - eps) * t
