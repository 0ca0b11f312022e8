"""Tiny exact models for tests: denoisers known in closed form, so every test is a worked example."""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import Tensor, nn

from augdiff.nn.protocol import NetworkOutput


def all_sequences(vocab: int, length: int) -> Tensor:
    """Every sequence of ``length`` tokens over ``vocab`` symbols, ``[vocab**length, length]``."""
    return torch.tensor(list(itertools.product(range(vocab), repeat=length)), dtype=torch.long)


class EnumeratedDenoiser:
    """The exact p(x_0^i | x_t) of a distribution over all sequences, by enumeration (V**L states).

    Masking is independent of x_0, so p(x_0 | x_t) is the data distribution restricted to the sequences that
    agree with x_t on its unmasked positions.
    """

    cacheable = True

    def __init__(self, probs: Tensor, vocab: int, length: int) -> None:
        self.states = all_sequences(vocab, length)
        assert probs.shape == (self.states.shape[0],)
        self.probs = probs.double() / probs.sum()
        self.vocab = vocab
        self.mask_id = vocab
        self.calls = 0
        self.rows = 0

    def particles(self, options: Any = None) -> int:
        return 1

    def init_state(self, x_T: Tensor, generator: torch.Generator | None = None, options: Any = None) -> Any:
        return None

    def update_state(self, state: Any, *args: Any, **kwargs: Any) -> Any:
        return None

    def x0_log_probs(self, x_t: Tensor, t: Tensor, state: Any = None) -> Tensor:
        self.calls += 1
        self.rows += x_t.shape[0]
        agree = (self.states[None] == x_t[:, None]) | (x_t[:, None] == self.mask_id)
        weights = agree.all(dim=-1).double() * self.probs[None]
        weights = weights / weights.sum(dim=1, keepdim=True)
        onehot = nn.functional.one_hot(self.states, self.vocab).double()
        marginals = torch.einsum("bs,slv->blv", weights, onehot)
        return marginals.clamp_min(1e-300).log()


class FixedLogits(nn.Module):
    """A "network" that ignores its input and returns the same logits at every position of every sequence.

    With ``logits`` = log p_i this is the exact denoiser of the product distribution ∏_i p_i.
    """

    time_conditioned = False

    def __init__(self, logits: Tensor) -> None:
        super().__init__()
        self.logits = nn.Parameter(logits.clone())

    def forward(self, x_t: Tensor, t: Tensor, input_embeds: Tensor | None = None) -> NetworkOutput:
        return NetworkOutput(self.logits.expand(x_t.shape[0], -1, -1))


def tiny_english(paragraphs: int, seed: int = 0) -> str:
    """Made-up English from a tiny grammar: ``paragraphs`` paragraphs of 1–3 sentences, separated by blank lines.

    Deterministic in ``seed``; small enough to train a BPE in milliseconds, regular enough for it to find merges.
    """
    import random

    rng = random.Random(seed)
    subjects = ["the cat", "a dog", "the old bird", "my neighbour", "a small fox", "the teacher"]
    verbs = ["sat on", "looked at", "ran past", "jumped over", "talked to", "waited for"]
    objects = ["the mat", "a tree", "the river", "her friend", "the quiet house", "a red ball"]
    endings = [".", ".", "!", "?"]

    def sentence() -> str:
        words = f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}"
        return words[0].upper() + words[1:] + rng.choice(endings)

    return "\n\n".join(" ".join(sentence() for _ in range(rng.randint(1, 3))) for _ in range(paragraphs)) + "\n"
