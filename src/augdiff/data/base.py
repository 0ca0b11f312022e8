"""The dataset contract: stateless, seeded batches so a resumed run sees exactly the data it would have seen."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from augdiff.data.tokenizer import Tokenizer

__all__ = ["TokenDataset", "seeded_generator"]


def seeded_generator(*keys: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator whose seed is a well-mixed function of integer keys (seed, step, micro-batch, stream)."""
    seed = int(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(1, np.uint64)[0])
    gen = torch.Generator(device=device)
    gen.manual_seed(seed & 0x7FFF_FFFF_FFFF_FFFF)
    return gen


class TokenDataset(ABC):
    """Fixed-length token sequences over ``vocab_size`` data tokens (the mask id is ``vocab_size``).

    Batches are pure functions of ``(seed, index)``: no iterator state to save, nothing to replay on resume.
    """

    #: short name of the data, as in ``--data``.
    spec: str
    vocab_size: int
    seq_len: int
    #: text ↔ ids for text data (its ``describe()`` is merged into the data description); ``None`` otherwise.
    tokenizer: Tokenizer | None = None

    @abstractmethod
    def train_batch(self, seed: int, step: int, global_batch: int, rows: slice | None = None) -> Tensor:
        """Rows ``rows`` of the global training batch of optimizer step ``step``, ``[B, L]`` long.

        The global batch depends only on ``(seed, step, global_batch)``, so splitting it into micro-batches
        (or across processes) never changes which sequences a step trains on.
        """

    def train_fixed(self, seed: int, step: int, global_batch: int, rows: slice | None = None) -> Tensor | None:
        """Positions of :meth:`train_batch`'s rows that are given, never masked nor scored ``[B, L]`` bool (an
        SFT prompt); ``None``: every position is trained."""
        return None

    @abstractmethod
    def valid_batches(self, batch_size: int, max_sequences: int | None = None) -> Iterator[Tensor]:
        """The fixed validation set in batches."""

    def describe(self) -> dict[str, Any]:
        """What a checkpoint must remember to rebuild (and decode) this data."""
        return {"spec": self.spec, "vocab_size": self.vocab_size, "seq_len": self.seq_len}

    def decode(self, ids: Tensor) -> str:
        """Text for one sequence through the tokenizer (special tokens dropped); other data prints ids."""
        if self.tokenizer is not None:
            return self.tokenizer.decode(ids)
        return " ".join(str(int(i)) for i in ids)
