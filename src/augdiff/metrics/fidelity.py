r"""FID and Inception Score of image samples through ``torch-fidelity`` (CADD §5.2, Tables 1–2: 50,000 samples).

FID (Heusel et al. 2017) is the Fréchet distance between Gaussians fitted to Inception-v3 pool features of the
samples and of the reference images,

.. math:: \mathrm{FID} = \|\mu_s - \mu_r\|^2 + \mathrm{tr}\big(\Sigma_s + \Sigma_r - 2 (\Sigma_s \Sigma_r)^{1/2}\big),

and the Inception Score (Salimans et al. 2016) is :math:`\exp \mathbb E_x \mathrm{KL}(p(y \mid x) \,\|\, p(y))`
over the samples. Both use the Inception weights torch-fidelity downloads on first use; offline and without
them in its cache, the metric stops with one line before any sampling. Pixel tokens of ``levels`` values are
scaled to 0–255 and gray images repeated to three channels (Inception reads RGB).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from augdiff.errors import AugdiffError
from augdiff.extras import require

__all__ = ["PixelImages", "inception_weights_ready", "require_fidelity", "fid_and_inception_score"]

#: the file torch-fidelity keeps its Inception weights in (torch hub's checkpoint folder)
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"


class PixelImages(torch.utils.data.Dataset):
    """Rows of pixel tokens ``[N, H·W·C]`` as the uint8 ``[3, H, W]`` tensors torch-fidelity reads."""

    def __init__(self, rows: np.ndarray, shape: tuple[int, ...], levels: int) -> None:
        h, w, c = shape
        pixels = np.rint(rows.reshape(-1, h, w, c).astype(np.float64) * 255.0 / (levels - 1)).astype(np.uint8)
        self.images = torch.from_numpy(pixels).permute(0, 3, 1, 2)
        if c == 1:
            self.images = self.images.expand(-1, 3, -1, -1)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> Tensor:
        return self.images[i].contiguous()


def inception_weights_ready() -> str | None:
    """Why the Inception weights cannot be had now (not cached and the download host unreachable), or ``None``."""
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if cached.is_file():
        return None
    from augdiff.data.hub import hub_unreachable

    reason = hub_unreachable(offline_vars=(), endpoint="https://github.com")  # where torch-fidelity gets them
    return None if reason is None else f"the Inception weights are not cached ({cached}) and {reason}"


def require_fidelity(what: str) -> None:
    """One line naming ``what`` when FID cannot be computed here: torch-fidelity missing, or its Inception weights
    neither cached nor downloadable. Callers check before any work."""
    require("torch_fidelity", "fidelity", what)
    reason = inception_weights_ready()
    if reason is not None:
        raise AugdiffError(f"{what}: {reason}; run once with network access")


def reference_cache_name(reference: np.ndarray, shape: tuple[int, ...], levels: int) -> str:
    """A cache name for the reference images: a hash of their pixels, shape and levels (content, not a path)."""
    digest = hashlib.sha1(f"{tuple(shape)}/{levels}/{reference.shape}".encode())
    digest.update(np.ascontiguousarray(reference, dtype=np.uint8 if levels <= 256 else np.int32).tobytes())
    return f"augdiff-{digest.hexdigest()[:20]}"


def fid_and_inception_score(
    samples: np.ndarray,
    reference: np.ndarray,
    shape: tuple[int, ...],
    levels: int,
    *,
    device: str = "cpu",
    cache_reference: bool = False,
) -> dict[str, Any]:
    """FID of ``samples`` against ``reference`` (rows of pixel tokens) and the samples' Inception Score.
    ``cache_reference``: keep the reference's Inception features in torch-fidelity's cache, under a name that is a
    hash of the reference itself (:func:`reference_cache_name`), so changed images are never scored stale."""
    require_fidelity("FID and Inception Score")
    import torch_fidelity

    metrics = torch_fidelity.calculate_metrics(
        input1=PixelImages(samples, shape, levels),
        input2=PixelImages(reference, shape, levels),
        cuda=str(device).startswith("cuda"),
        fid=True,
        isc=True,
        verbose=False,
        cache=cache_reference,
        input2_cache_name=reference_cache_name(reference, shape, levels) if cache_reference else None,
    )
    return {
        "fid": float(metrics["frechet_inception_distance"]),
        "inception_score": float(metrics["inception_score_mean"]),
        "inception_score_std": float(metrics["inception_score_std"]),
        "samples": int(samples.shape[0]),
        "reference": int(reference.shape[0]),
    }
