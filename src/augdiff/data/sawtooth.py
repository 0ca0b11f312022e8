r"""The randomly shifted binary sawtooth (LADD §5.1, App. E.1; Pham et al. 2025), exact truth known.

One continuous shift :math:`s \sim U[0,1)` per sequence; for positions :math:`i = 0..d-1`

.. math::

    u_i = (i/d + s) \bmod 1,\quad v_i = (2u_i) \bmod 1,\quad
    p_i = a + (1-2a)\,(1 - |2v_i - 1|),\quad x_i \sim \mathrm{Bernoulli}(p_i)

independently given s, with a = 0.01. Tokens are 0/1 and the mask id is 2.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from augdiff.data.base import TokenDataset, seeded_generator

__all__ = [
    "SawtoothSample",
    "SawtoothDataset",
    "sawtooth_probs",
    "binary_entropy",
    "sawtooth_oracle_nll",
    "sawtooth_log_likelihood",
]

VALID_SEED = 20_251_018  # the validation stream is the same for every run


@dataclass
class SawtoothSample:
    """Sequences with their truth: ``x`` ``[N, d]`` tokens, ``s`` ``[N]`` shifts, ``p`` ``[N, d]`` Bernoulli means."""

    x: Tensor
    s: Tensor
    p: Tensor


def sawtooth_probs(s: Tensor, d: int, a: float = 0.01, periods: int = 2) -> Tensor:
    """Bernoulli means :math:`p_i(s)` ``[N, d]`` for shifts ``s`` ``[N]`` (LADD Eq 78–79)."""
    i = torch.arange(d, dtype=torch.float64, device=s.device)
    u = torch.remainder(i[None, :] / d + s.double()[:, None], 1.0)
    v = torch.remainder(periods * u, 1.0)
    return a + (1.0 - 2.0 * a) * (1.0 - torch.abs(2.0 * v - 1.0))


def binary_entropy(p: Tensor) -> Tensor:
    """H(p) = −p log p − (1−p) log(1−p) in nats."""
    return -(torch.xlogy(p, p) + torch.xlogy(1.0 - p, 1.0 - p))


def sawtooth_oracle_nll(a: float = 0.01) -> float:
    r"""The oracle NLL per token: :math:`\mathbb E_s \tfrac1d\sum_i H(p_i(s))` in nats, in closed form.

    With s uniform every :math:`v_i` is uniform, so :math:`p_i = a + (1-2a)w` with w uniform on [0, 1], and

    .. math::

        \text{oracle} = \frac{1}{1-2a}\int_a^{1-a} H(y)\,dy = \frac{F(1-a) - F(a)}{1-2a},\quad
        F(y) = -\tfrac{y^2}{2}\log y + \tfrac{y^2}{4} + \tfrac{(1-y)^2}{2}\log(1-y) - \tfrac{(1-y)^2}{4}.

    It is the best per-token NLL of a predictor that knows s (LADD Table 1 "Oracle"); it does not depend on
    d or on the number of periods.
    """

    def antiderivative(y: float) -> float:
        return -0.5 * y * y * math.log(y) + 0.25 * y * y + 0.5 * (1 - y) ** 2 * math.log(1 - y) - 0.25 * (1 - y) ** 2

    if not 0.0 < a < 0.5:
        raise ValueError(f"a must lie in (0, 0.5), got {a}")
    return (antiderivative(1.0 - a) - antiderivative(a)) / (1.0 - 2.0 * a)


def sawtooth_log_likelihood(x: Tensor, a: float = 0.01, periods: int = 2, grid: int = 16_384) -> Tensor:
    r"""Exact :math:`\log p(x) = \log \int_0^1 \prod_i p_i(s)^{x_i} (1-p_i(s))^{1-x_i}\,ds` per sequence ``[N]``.

    The integral over the shift is a midpoint rule on ``grid`` points (the posterior of s given 128 tokens is
    ~0.007 wide, far wider than the 6e-5 spacing). ``-mean(log p(x))/d`` over data is the entropy per token:
    the floor of any model's NLL that does not see s, above :func:`sawtooth_oracle_nll`, which does.
    """
    d = x.shape[1]
    s = (torch.arange(grid, dtype=torch.float64) + 0.5) / grid
    p = sawtooth_probs(s, d, a, periods)
    log_p, log_q = torch.log(p).T, torch.log1p(-p).T
    out = []
    for xf in x.double().split(256):  # [256, grid] float64 at a time, not [N, grid]
        out.append(torch.logsumexp(xf @ log_p + (1.0 - xf) @ log_q, dim=1) - math.log(grid))
    return torch.cat(out)


class SawtoothDataset(TokenDataset):
    """Fresh sawtooth sequences for every training batch; a fixed validation set.

    Args:
        seq_len: d, the number of binary tokens (128 in the paper).
        a: the minimum probability.
        periods: sawtooth periods over the sequence (2 in the paper).
        valid_size: sequences in the validation set.
    """

    vocab_size = 2

    def __init__(self, seq_len: int = 128, a: float = 0.01, periods: int = 2, valid_size: int = 4096) -> None:
        self.seq_len = seq_len
        self.a = a
        self.periods = periods
        self.valid_size = valid_size
        self.spec = "sawtooth"
        self._valid: SawtoothSample | None = None

    def sample(self, n: int, generator: torch.Generator | None = None) -> SawtoothSample:
        """Draw ``n`` sequences with their shifts and Bernoulli means."""
        s = torch.rand(n, dtype=torch.float64, generator=generator)
        p = sawtooth_probs(s, self.seq_len, self.a, self.periods)
        x = (torch.rand(p.shape, dtype=torch.float64, generator=generator) < p).long()
        return SawtoothSample(x=x, s=s, p=p)

    def train_batch(self, seed: int, step: int, global_batch: int, rows: slice | None = None) -> Tensor:
        x = self.sample(global_batch, seeded_generator(seed, step, 1)).x
        return x if rows is None else x[rows]

    def valid_sample(self, max_sequences: int | None = None) -> SawtoothSample:
        """The first ``max_sequences`` of the one fixed validation set (drawn once, then sliced)."""
        if self._valid is None:
            self._valid = self.sample(self.valid_size, seeded_generator(VALID_SEED, 0, 2))
        n = self.valid_size if max_sequences is None else min(self.valid_size, max_sequences)
        v = self._valid
        return SawtoothSample(x=v.x[:n], s=v.s[:n], p=v.p[:n])

    def marginals(self, grid: int = 65_536) -> Tensor:
        r"""Per-position marginals :math:`P(x_i = 1) = \mathbb E_s\, p_i(s)` ``[d]`` by quadrature over s (all 0.5)."""
        s = (torch.arange(grid, dtype=torch.float64) + 0.5) / grid
        return sawtooth_probs(s, self.seq_len, self.a, self.periods).mean(dim=0)

    def valid_batches(self, batch_size: int, max_sequences: int | None = None) -> Iterator[Tensor]:
        x = self.valid_sample(max_sequences).x
        yield from x.split(batch_size)

    def oracle_nll(self) -> float:
        return sawtooth_oracle_nll(self.a)

    def exact_nll_per_token(self, x: Tensor) -> Tensor:
        """The true −log p(x)/d of each sequence ``[N]`` (s integrated out exactly)."""
        return -sawtooth_log_likelihood(x, self.a, self.periods) / self.seq_len

    def entropy_per_token(self, n: int = 2048) -> tuple[float, float]:
        """Monte-Carlo entropy per token (nats) of the data on the validation set, with its standard error."""
        per_token = self.exact_nll_per_token(self.valid_sample(n).x)
        return float(per_token.mean()), float(per_token.std() / math.sqrt(per_token.numel()))
