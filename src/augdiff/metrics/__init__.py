"""Evaluation metrics: likelihood (NLL, bits, perplexity) and sliced Wasserstein distance."""

from augdiff.metrics.likelihood import NLLEstimate, bits_per_token, estimate_nll, perplexity
from augdiff.metrics.swd import random_directions, sliced_wasserstein, wasserstein_1d

__all__ = [
    "NLLEstimate",
    "estimate_nll",
    "bits_per_token",
    "perplexity",
    "random_directions",
    "sliced_wasserstein",
    "wasserstein_1d",
]
