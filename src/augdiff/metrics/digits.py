r"""An offline image metric for ``image:digits``: the Fréchet distance in a small classifier's feature space.

FID (Heusel et al. 2017) compares Inception features, whose weights need a download. For the 8×8 digits a
classifier trained once on the digits' own training split (scikit-learn's MLP, one hidden layer of 64 ReLU
units, seeded) stands in: the Fréchet distance between the Gaussians fitted to its hidden features of samples
and of held-out digits,

.. math::

    d^2 = \|\mu_1 - \mu_2\|^2 + \mathrm{Tr}\big(\Sigma_1 + \Sigma_2 - 2(\Sigma_1\Sigma_2)^{1/2}\big),

and, as Inception Score's two halves, the mean entropy of each sample's predicted class (low: each sample looks
like one digit) and the entropy of the mean prediction (high, up to log 10: all ten digits appear).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from augdiff.extras import require

__all__ = ["frechet_distance", "DigitScores", "digit_scores"]


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature rows ``a`` ``[N, D]`` and ``b`` ``[M, D]``."""
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    ridge = 1e-6 * np.eye(a.shape[1])  # dead ReLU units make a covariance singular
    s1, s2 = np.cov(a, rowvar=False) + ridge, np.cov(b, rowvar=False) + ridge
    root = linalg.sqrtm(s1 @ s2)
    root = root[0] if isinstance(root, tuple) else root
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2.0 * np.real(root)))


@lru_cache(maxsize=1)
def _classifier() -> Any:
    """The MLP trained on the digits' training split (the rows ``image:digits`` trains on), once per process."""
    require("sklearn", "images", "the digits metric")
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    from augdiff.data.tokens import split_rows

    digits = load_digits()
    train, _ = split_rows("image:digits", digits.data)  # the split image:digits trains on
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=400, random_state=0)
    clf.fit(train / 16.0, digits.target[: train.shape[0]])
    return clf


def _features(clf: Any, rows: np.ndarray) -> np.ndarray:
    x = rows.astype(np.float64) / 16.0
    return np.maximum(x @ clf.coefs_[0] + clf.intercepts_[0], 0.0)


@dataclass
class DigitScores:
    """``fd``: Fréchet distance to held-out digits; ``class_entropy``: mean entropy of each sample's predicted
    class (nats); ``coverage_entropy``: entropy of the mean prediction (log 10 ≈ 2.30 when balanced)."""

    fd: float
    class_entropy: float
    coverage_entropy: float

    def as_dict(self) -> dict[str, float]:
        return {"fd": self.fd, "class_entropy": self.class_entropy, "coverage_entropy": self.coverage_entropy}


def digit_scores(samples: np.ndarray, reference: np.ndarray) -> DigitScores:
    """Scores of sampled rows ``[N, 64]`` (levels 0–16) against reference rows (the validation digits)."""
    clf = _classifier()
    p = clf.predict_proba(samples.astype(np.float64) / 16.0).clip(1e-12, 1.0)
    mean = p.mean(0)
    return DigitScores(
        fd=frechet_distance(_features(clf, samples), _features(clf, reference)),
        class_entropy=float(-(p * np.log(p)).sum(1).mean()),
        coverage_entropy=float(-(mean * np.log(mean)).sum()),
    )
