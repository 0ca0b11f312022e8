"""Likelihood summaries: per-token NLL in nats, bits per token, perplexity, and the ELBO estimate on data."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from augdiff.processes import sample_times

__all__ = ["NLLEstimate", "estimate_nll", "bits_per_token", "perplexity"]


def bits_per_token(nll_nats: float) -> float:
    """NLL in nats per token → bits per token (bits per character for character data)."""
    return nll_nats / math.log(2.0)


def perplexity(nll_nats: float) -> float:
    """exp(NLL per token)."""
    return math.exp(nll_nats)


@dataclass
class NLLEstimate:
    """An ELBO estimate of the NLL per token with its Monte-Carlo standard error (nats)."""

    nll: float
    stderr: float
    n_sequences: int
    time_samples: int

    @property
    def bpt(self) -> float:
        return bits_per_token(self.nll)

    @property
    def ppl(self) -> float:
        return perplexity(self.nll)

    def as_dict(self) -> dict[str, float | int]:
        return {
            "nll": self.nll,
            "nll_stderr": self.stderr,
            "bpt": self.bpt,
            "ppl": self.ppl,
            "n_sequences": self.n_sequences,
            "time_samples": self.time_samples,
        }


@torch.no_grad()
def estimate_nll(
    model: torch.nn.Module,
    batches: Iterable[Tensor],
    *,
    time_samples: int = 8,
    time_eps: float = 1e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> NLLEstimate:
    """ELBO estimate of the per-token NLL on ``batches``, averaging ``time_samples`` times per sequence.

    The times of one sequence are stratified over [0, 1] (one antithetic grid per batch). The standard error
    is over sequences (each sequence's estimate averages its time samples).
    """
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    per_sequence: list[Tensor] = []
    for x0 in batches:
        x0 = x0.to(device)
        rep = x0.repeat_interleave(time_samples, dim=0)
        t = sample_times(rep.shape[0], antithetic=True, eps=time_eps, device=device, generator=gen)
        t = t.view(time_samples, x0.shape[0]).t().reshape(-1)
        out = model.loss(rep, t, gen)
        per_sequence.append(out.nll_per_sequence.view(-1, time_samples).mean(dim=1).double().cpu())
    model.train(was_training)
    values = torch.cat(per_sequence)
    n = values.numel()
    stderr = float(values.std(unbiased=True) / math.sqrt(n)) if n > 1 else float("nan")
    return NLLEstimate(nll=float(values.mean()), stderr=stderr, n_sequences=n, time_samples=time_samples)
