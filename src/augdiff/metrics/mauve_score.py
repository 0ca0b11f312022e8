r"""MAUVE (Pillutla et al. 2021) between reference text and samples, on teacher features (CADD §5.2).

MAUVE quantizes the joint feature cloud of P (reference text) and Q (model samples) into ``num_buckets``
k-means clusters (after PCA), compares the two histograms along the divergence frontier

.. math:: \mathcal C(P, Q) = \Big\{\big(e^{-c\,\mathrm{KL}(Q \| R_\lambda)},\, e^{-c\,\mathrm{KL}(P \| R_\lambda)}\big)
          : R_\lambda = \lambda P + (1 - \lambda) Q,\ \lambda \in (0, 1)\Big\}

and reports the area under it: 1 for identical histograms, near 0 for disjoint ones (c = 5, the package's
``mauve_scaling_factor``). We call ``mauve.compute_mauve(p_features=..., q_features=...)`` of the
``mauve-text`` package with features from the teacher (:meth:`~augdiff.metrics.teacher.Teacher.features`),
because the package's own featurizer downloads GPT-2 Large from the hub.

Buckets: ``"auto"`` is the package's rule, max(2, round(min(N_P, N_Q) / 10)) — about ten points per cluster,
so a few dozen samples still give a (coarse) histogram. With fewer than ~50 samples per side MAUVE is noisy;
report the sample size with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from augdiff.data.tokenizer import Tokenizer
from augdiff.errors import AugdiffError
from augdiff.metrics.teacher import Samples, Teacher, teacher_inputs

__all__ = ["MauveOutput", "require_mauve", "mauve_score", "reference_features", "mauve_between_samples"]


@dataclass
class MauveOutput:
    """MAUVE of Q (samples) against P (reference), with the quantization it used."""

    mauve: float
    frontier_integral: float
    num_buckets: int
    n_reference: int
    n_samples: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "mauve": self.mauve,
            "frontier_integral": self.frontier_integral,
            "num_buckets": self.num_buckets,
            "n_reference": self.n_reference,
            "n_samples": self.n_samples,
        }


def require_mauve() -> Any:
    """``mauve.compute_mauve``, imported on first use; a missing ``mauve-text`` or ``faiss`` is a user error."""
    try:
        from mauve import compute_mauve
    except ImportError as exc:
        raise AugdiffError(
            f"MAUVE needs the mauve-text package and faiss ({exc.name or exc} is missing; "
            "pip install 'augdiff[text]' faiss-cpu)"
        ) from None
    return compute_mauve


def mauve_score(
    p_features: np.ndarray,
    q_features: np.ndarray,
    *,
    num_buckets: int | str = "auto",
    seed: int = 25,
    kmeans_explained_var: float = 0.9,
    kmeans_num_redo: int = 5,
    kmeans_max_iter: int = 500,
) -> MauveOutput:
    """MAUVE between feature sets ``p_features`` ``[N_P, D]`` (reference) and ``q_features`` ``[N_Q, D]``.

    Args:
        num_buckets: k-means clusters; ``"auto"`` = max(2, round(min(N_P, N_Q) / 10)). At most N_P + N_Q.
        seed: the package's k-means seed (25 is its default).
        kmeans_explained_var: variance kept by the PCA before clustering.
    """
    p, q = np.asarray(p_features, dtype=np.float32), np.asarray(q_features, dtype=np.float32)
    assert p.ndim == 2 and q.ndim == 2, f"features must be [N, D], got {p.shape} and {q.shape}"
    assert p.shape[1] == q.shape[1], f"feature widths differ: {p.shape[1]} vs {q.shape[1]}"
    if min(len(p), len(q)) < 2:
        raise AugdiffError(f"MAUVE needs at least 2 reference and 2 sample texts, got {len(p)} and {len(q)}")
    if num_buckets != "auto" and not (isinstance(num_buckets, int) and 2 <= num_buckets <= len(p) + len(q)):
        raise AugdiffError(
            f"--mauve-buckets={num_buckets} must be 'auto' or an integer in [2, {len(p) + len(q)}] "
            "(the number of reference plus sample texts)"
        )
    out = require_mauve()(
        p_features=p,
        q_features=q,
        num_buckets=num_buckets,
        seed=seed,
        kmeans_explained_var=kmeans_explained_var,
        kmeans_num_redo=kmeans_num_redo,
        kmeans_max_iter=kmeans_max_iter,
        verbose=False,
    )
    return MauveOutput(
        mauve=float(out.mauve),
        frontier_integral=float(out.frontier_integral),
        num_buckets=int(out.num_buckets),
        n_reference=len(p),
        n_samples=len(q),
    )


def reference_features(
    teacher: Teacher,
    reference: Samples | Sequence[str],
    sample_tokenizer: Tokenizer | None = None,
    sample_description: dict[str, Any] | None = None,
) -> np.ndarray:
    """Teacher features ``[M, D]`` of the reference texts (or ids of the sampled model's data), computed once
    for a sweep over sampling budgets."""
    return teacher.features(teacher_inputs(teacher, reference, sample_tokenizer, sample_description).rows)


def mauve_between_samples(
    teacher: Teacher,
    reference: Samples | Sequence[str] | np.ndarray,
    samples: Samples,
    *,
    sample_tokenizer: Tokenizer | None = None,
    sample_description: dict[str, Any] | None = None,
    num_buckets: int | str = "auto",
    seed: int = 25,
) -> MauveOutput:
    """MAUVE of ``samples`` against ``reference`` on the teacher's features.

    ``reference`` is texts or ids of the sampled model's data (they reach the teacher as in
    :func:`~augdiff.metrics.teacher.teacher_inputs`), or float features ``[M, D]`` from
    :func:`reference_features`.
    """
    require_mauve()  # fail on a missing package before featurizing
    if isinstance(reference, np.ndarray) and np.issubdtype(reference.dtype, np.floating):
        p = reference
    else:
        p = reference_features(teacher, reference, sample_tokenizer, sample_description)
    q = teacher.features(teacher_inputs(teacher, samples, sample_tokenizer, sample_description).rows)
    return mauve_score(p, q, num_buckets=num_buckets, seed=seed)
