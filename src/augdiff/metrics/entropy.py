r"""Token entropy of generated samples: a diversity check beside generative perplexity.

A sampler can lower its teacher perplexity by collapsing onto repetitive text, so papers report an entropy
beside Gen PPL. Two definitions are in use, both in nats, over a sample set :math:`\{x^{(n)}\}_{n=1}^N` of
sequences of length :math:`L` over a vocabulary of :math:`V` tokens:

* **positional entropy** (LADD App. E.4, Eq 83–84): the entropy of the tokens found *at each position across
  samples*, averaged over positions — :func:`positional_marginals` (Eq 83), :func:`average_positional_entropy`
  (Eq 84);
* **unigram entropy** (ReMDM, Wang et al. 2025, following MDLM's evaluation code): the entropy of the
  empirical token distribution *within each sample*, averaged over samples — :func:`unigram_entropy`.

Both use the convention :math:`0 \log 0 = 0` and are computed on the model's own token ids (not on a
teacher's retokenization: positions must line up across samples for Eq 83).

Example:
    >>> x = torch.tensor([[0, 1, 2, 3], [0, 0, 0, 0]])
    >>> unigram_entropy(x)  # log 4 for all-distinct tokens, 0 for a constant sequence
    tensor([1.3863, 0.0000], dtype=torch.float64)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = [
    "EntropyOutput",
    "positional_marginals",
    "average_positional_entropy",
    "unigram_entropy",
    "token_entropy",
]


def _check_samples(samples: Tensor) -> Tensor:
    assert samples.dim() == 2, f"samples must be token ids [N, L], got shape {tuple(samples.shape)}"
    assert not samples.dtype.is_floating_point, f"samples must be integer token ids, got {samples.dtype}"
    assert samples.numel() > 0, "samples are empty"
    assert int(samples.min()) >= 0, "token ids must be non-negative"
    return samples.long().cpu()


def _grouped_entropy(group: Tensor, token: Tensor, n_groups: int, group_size: Tensor) -> Tensor:
    """Entropy of the token counts within each group: ``group``, ``token`` ``[M]`` → ``[n_groups]`` (float64).

    Sparse: only the (group, token) pairs that occur are counted, so a 50k vocabulary costs nothing.
    """
    stride = int(token.max()) + 1
    pairs, counts = torch.unique(group * stride + token, return_counts=True)
    p = counts.double() / group_size[pairs // stride].double()
    return torch.zeros(n_groups, dtype=torch.float64).index_add_(0, pairs // stride, -p * p.log())


def positional_marginals(samples: Tensor, vocab_size: int | None = None) -> Tensor:
    r"""Empirical distribution of the token at each position across samples (LADD App. E.4, Eq 83).

    .. math:: \hat p_i(v) = \frac1N \sum_{n=1}^N \mathbb 1\{x^{(n)}_i = v\}

    Args:
        samples: token ids ``[N, L]``.
        vocab_size: V (default: the largest id + 1).

    Returns:
        ``[L, V]`` float64, each row summing to one. Dense: use :func:`average_positional_entropy` for large V.
    """
    x = _check_samples(samples)
    v = int(x.max()) + 1 if vocab_size is None else vocab_size
    assert int(x.max()) < v, f"token id {int(x.max())} is outside the vocabulary of {v}"
    n, length = x.shape
    counts = torch.zeros(length, v, dtype=torch.float64)
    counts.scatter_add_(1, x.T, torch.ones(length, n, dtype=torch.float64))
    return counts / n


def average_positional_entropy(samples: Tensor) -> float:
    r"""Average over positions of the entropy of the positional marginals (LADD App. E.4, Eq 84), in nats.

    .. math:: \bar H = \frac1L \sum_{i=1}^L H(\hat p_i),\qquad
              H(\hat p_i) = -\sum_{v} \hat p_i(v) \log \hat p_i(v),\quad 0 \log 0 = 0

    with :math:`\hat p_i` from Eq 83 (:func:`positional_marginals`). It is at most :math:`\log \min(N, V)`: a
    set of N samples cannot show more than N distinct tokens at one position.

    Args:
        samples: token ids ``[N, L]``.
    """
    x = _check_samples(samples)
    n, length = x.shape
    position = torch.arange(length).expand(n, length).reshape(-1)
    per_position = _grouped_entropy(position, x.reshape(-1), length, torch.full((length,), n))
    return float(per_position.mean())


def unigram_entropy(samples: Tensor) -> Tensor:
    r"""Entropy of the empirical token distribution within each sample (ReMDM's "entropy"), in nats.

    .. math:: H(x^{(n)}) = -\sum_v q_n(v) \log q_n(v),\qquad q_n(v) = \frac1L \sum_{i=1}^L \mathbb 1\{x^{(n)}_i = v\}

    ReMDM (Wang et al. 2025) and the MDLM evaluation code report its mean over samples. It is at most
    :math:`\log \min(L, V)`; a sample of L distinct tokens reaches :math:`\log L`.

    Args:
        samples: token ids ``[N, L]``.

    Returns:
        ``[N]`` float64, one entropy per sample.
    """
    x = _check_samples(samples)
    n, length = x.shape
    row = torch.arange(n).unsqueeze(1).expand(n, length).reshape(-1)
    return _grouped_entropy(row, x.reshape(-1), n, torch.full((n,), length))


@dataclass
class EntropyOutput:
    """Both sample entropies in nats (see the module docstring)."""

    #: mean over samples of :func:`unigram_entropy` (ReMDM)
    unigram: float
    #: standard error of that mean over samples
    unigram_stderr: float
    #: :func:`average_positional_entropy` (LADD Eq 84)
    positional: float
    n_samples: int
    #: per-sample unigram entropies ``[N]``
    unigram_per_sample: Tensor | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, float | int]:
        return {
            "unigram": self.unigram,
            "unigram_stderr": self.unigram_stderr,
            "positional": self.positional,
            "n_samples": self.n_samples,
        }


def token_entropy(samples: Tensor) -> EntropyOutput:
    """Unigram (per-sample, averaged) and average positional entropy of a sample set ``[N, L]``."""
    per_sample = unigram_entropy(samples)
    n = per_sample.numel()
    stderr = float(per_sample.std(unbiased=True) / n**0.5) if n > 1 else float("nan")
    return EntropyOutput(
        unigram=float(per_sample.mean()),
        unigram_stderr=stderr,
        positional=average_positional_entropy(samples),
        n_samples=n,
        unigram_per_sample=per_sample,
    )
