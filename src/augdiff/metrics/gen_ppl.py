r"""Generative perplexity: samples of a model scored by a fixed autoregressive teacher (LADD App. E.4, Eq 81–82).

.. math::

    \mathrm{GenPPL} = \exp\left( \frac{\sum_{n=1}^N \sum_{i=1}^{L_n} -\log p_{\text{teacher}}\big(x^{(n)}_i \mid
    x^{(n)}_{<i}\big)}{\sum_{n=1}^N L_n} \right)

pooled over tokens, as MDLM computes it (one mean over all tokens of all samples, then exp), not a mean of
per-sample perplexities. :math:`L_n` is the length of sample n in the *teacher's* tokens: samples of another
tokenizer are decoded and retokenized (LADD: Qwen3 samples re-tokenized for GPT-2 Large), and then
:math:`L_n` varies. Lower is better, but a collapsed, repetitive sampler also scores low: report it with the
sample entropy (:mod:`augdiff.metrics.entropy`).

Example:
    >>> teacher = load_teacher("gpt2-large")                              # doctest: +SKIP
    >>> out = generative_perplexity(teacher, samples, tokenizer, run.data)  # doctest: +SKIP
    >>> out.gen_ppl                                                       # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from augdiff.data.tokenizer import Tokenizer
from augdiff.metrics.teacher import Samples, Teacher, TeacherScore, teacher_inputs

__all__ = ["GenPPLOutput", "generative_perplexity"]


@dataclass
class GenPPLOutput:
    """Generative perplexity with the pooled NLL it comes from."""

    gen_ppl: float
    #: pooled teacher NLL per teacher token (nats)
    nll: float
    total_nll: float
    #: teacher tokens scored, all samples together
    n_tokens: int
    n_samples: int
    #: whether the samples were decoded and retokenized for the teacher
    retokenized: bool
    teacher: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "gen_ppl": self.gen_ppl,
            "nll": self.nll,
            "n_tokens": self.n_tokens,
            "n_samples": self.n_samples,
            "retokenized": self.retokenized,
            "teacher": self.teacher,
        }


def generative_perplexity(
    teacher: Teacher,
    samples: Samples,
    sample_tokenizer: Tokenizer | None = None,
    sample_description: dict[str, Any] | None = None,
) -> GenPPLOutput:
    """Pooled teacher perplexity of ``samples``.

    Args:
        teacher: the scorer (:func:`~augdiff.metrics.teacher.load_teacher`).
        samples: token ids ``[N, L]`` of the sampled model, or texts.
        sample_tokenizer: decodes the ids to text when the teacher reads another tokenizer.
        sample_description: the sampled model's data description (``LoadedRun.data``); ids pass straight to
            the teacher when it has the teacher's tokenizer.
    """
    inputs = teacher_inputs(teacher, samples, sample_tokenizer, sample_description)
    score: TeacherScore = teacher.score(inputs.rows)
    nll = score.nll
    return GenPPLOutput(
        gen_ppl=math.exp(nll) if math.isfinite(nll) else float("nan"),
        nll=nll,
        total_nll=score.total_nll,
        n_tokens=score.n_tokens,
        n_samples=len(inputs.rows),
        retokenized=inputs.retokenized,
        teacher=teacher.name,
    )
