"""Every sample metric of a text model at once: generative perplexity, token entropy, MAUVE.

:func:`evaluate_samples` is what ``augdiff eval`` and ``augdiff sample --eval`` compute for each set of samples
they draw; experiments call it directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from augdiff.data.tokenizer import Tokenizer
from augdiff.metrics.entropy import EntropyOutput, token_entropy
from augdiff.metrics.gen_ppl import GenPPLOutput, generative_perplexity
from augdiff.metrics.mauve_score import MauveOutput, mauve_between_samples
from augdiff.metrics.teacher import Teacher

__all__ = ["SampleEvaluation", "evaluate_samples"]


@dataclass
class SampleEvaluation:
    """Metrics of one sample set; ``gen_ppl`` and ``mauve`` are ``None`` when not asked for."""

    n_samples: int
    entropy: EntropyOutput
    gen_ppl: GenPPLOutput | None = None
    mauve: MauveOutput | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_samples": self.n_samples,
            "gen_ppl": None if self.gen_ppl is None else self.gen_ppl.gen_ppl,
            "gen_nll": None if self.gen_ppl is None else self.gen_ppl.nll,
            "gen_tokens": None if self.gen_ppl is None else self.gen_ppl.n_tokens,
            "retokenized": None if self.gen_ppl is None else self.gen_ppl.retokenized,
            "entropy": self.entropy.as_dict(),
            "mauve": None if self.mauve is None else self.mauve.as_dict(),
        }


def evaluate_samples(
    samples: Tensor | np.ndarray,
    *,
    teacher: Teacher | None = None,
    gen_ppl: bool = True,
    reference: Tensor | np.ndarray | Sequence[str] | None = None,
    sample_tokenizer: Tokenizer | None = None,
    sample_description: dict[str, Any] | None = None,
    mauve_buckets: int | str = "auto",
    mauve_seed: int = 25,
) -> SampleEvaluation:
    """Entropy of ``samples`` ``[N, L]``; with a teacher, their generative perplexity; with a ``reference``
    (validation rows or texts) and a teacher, MAUVE against it.

    Args:
        samples: token ids of the sampled model ``[N, L]``.
        teacher: scorer and featurizer (:func:`~augdiff.metrics.teacher.load_teacher`).
        gen_ppl: score the samples with the teacher (``False``: MAUVE only).
        reference: human text for MAUVE: ids of the sampled model's data ``[M, L]``, texts, or their teacher
            features ``[M, D]`` (float, from :func:`~augdiff.metrics.mauve_score.reference_features`).
        sample_tokenizer: decodes ids to text for a teacher of another tokenizer.
        sample_description: the sampled model's data description; ids pass through to a teacher that shares it.
    """
    x = torch.as_tensor(samples)
    assert x.dim() == 2, f"samples must be token ids [N, L], got shape {tuple(x.shape)}"
    out = SampleEvaluation(n_samples=x.shape[0], entropy=token_entropy(x))
    if teacher is not None and gen_ppl:
        out.gen_ppl = generative_perplexity(teacher, x, sample_tokenizer, sample_description)
    if teacher is not None and reference is not None:
        out.mauve = mauve_between_samples(
            teacher,
            reference,
            x,
            sample_tokenizer=sample_tokenizer,
            sample_description=sample_description,
            num_buckets=mauve_buckets,
            seed=mauve_seed,
        )
    return out
