r"""A pair-structured synthetic task: information that sits in pairs of neighbouring tokens.

Tokens :math:`x_0, x_1` are uniform over V symbols; every later one is drawn from a fixed random table given its
two left neighbours, :math:`x_i \sim T[x_{i-2}, x_{i-1}]`, each row a Dirichlet(0.25) draw (table seed fixed).
A token's entropy given both neighbours is ≈ 1.43 nats at V = 12; given one it is ≈ 2.35, barely below the
uniform 2.48: a model has to read *two* neighbours together. That is where masked diffusion starts slowly (a
masked position sees both left neighbours only with probability (1−t)²) and where ``model.local_mixer`` helps;
an AR model of the same size reads them from the first steps. ``−log p(x)`` is exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from augdiff.data.base import TokenDataset, seeded_generator

__all__ = ["PairsDataset", "pair_table"]

VALID_SEED = 20_261_205
TABLE_SEED = 1


def pair_table(vocab: int = 12, concentration: float = 0.25, seed: int = TABLE_SEED) -> Tensor:
    """The fixed second-order table ``[V, V, V]``: ``T[a, b]`` is the law of a token after ``a, b``."""
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.dirichlet(np.full(vocab, concentration), size=(vocab, vocab)))


class PairsDataset(TokenDataset):
    """Fresh sequences for every training batch; a fixed validation set (``--data pairs``)."""

    def __init__(self, seq_len: int = 32, vocab: int = 12, valid_size: int = 2048) -> None:
        if seq_len < 3:
            raise ValueError(f"the pairs task needs sequences of at least 3 tokens, got {seq_len}")
        self.seq_len = seq_len
        self.vocab_size = vocab
        self.valid_size = valid_size
        self.spec = "pairs"
        self.table = pair_table(vocab)
        self._log_table = self.table.clamp_min(1e-300).log()
        self._valid: Tensor | None = None

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` sequences ``[n, L]``."""
        x = torch.empty(n, self.seq_len, dtype=torch.long)
        x[:, :2] = torch.randint(0, self.vocab_size, (n, 2), generator=generator)
        for i in range(2, self.seq_len):
            x[:, i] = torch.multinomial(self.table[x[:, i - 2], x[:, i - 1]], 1, generator=generator).squeeze(1)
        return x

    def train_batch(self, seed: int, step: int, global_batch: int, rows: slice | None = None) -> Tensor:
        x = self.sample(global_batch, seeded_generator(seed, step, 1))
        return x if rows is None else x[rows]

    def valid_batches(self, batch_size: int, max_sequences: int | None = None) -> Iterator[Tensor]:
        if self._valid is None:
            self._valid = self.sample(self.valid_size, seeded_generator(VALID_SEED, 0, 2))
        yield from self._valid[:max_sequences].split(batch_size)

    def exact_nll_per_token(self, x: Tensor) -> Tensor:
        """The true −log p(x)/L of each sequence ``[N]``."""
        steps = self._log_table[x[:, :-2], x[:, 1:-1], x[:, 2:]].sum(-1)
        return (2 * math.log(self.vocab_size) - steps) / self.seq_len
