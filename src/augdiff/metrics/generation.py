r"""Sampling-budget sweeps: draw samples at each step count, time them, count FLOPs, evaluate them.

For each number of sampling steps T (LADD App. E.2, Table 9; Table 12 for the GFLOPs):

* **throughput**: samples/s and tokens/s of generation, wall clock, after one untimed warm-up draw;
* **throughput per Gen PPL point**: samples/s ÷ GenPPL, LADD's quality–speed figure ("higher values indicate
  better text quality per unit of sampling time"; the formula itself is lost from our copy of the paper, and
  the ratio is the reading that fits that sentence);
* **GFLOPs per step**: one network evaluation per sequence, counted by ``torch.utils.flop_counter``
  (:func:`~augdiff.flops.sampling_step_flops`), and the budget per sample, T × that (+ the latent-only
  steps of LADD's sequential inference). With the cache, some steps skip the network: the budget is an
  upper bound;
* the sample metrics of :func:`~augdiff.metrics.sample_eval.evaluate_samples`.

An autoregressive run (``method: ar``) has no step count: it is evaluated once, with ``steps = None``; its
step is one generated token with the KV cache (:func:`~augdiff.flops.ar_step_flops`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from augdiff.data.tokenizer import Tokenizer, tokenizer_from_description
from augdiff.metrics.mauve_score import reference_features
from augdiff.metrics.sample_eval import SampleEvaluation, evaluate_samples
from augdiff.metrics.teacher import Teacher, same_tokenizer
from augdiff.protocol import SequenceModel

__all__ = ["Throughput", "StepEvaluation", "draw_samples", "step_flops", "evaluate_generation"]


@dataclass
class Throughput:
    """Wall-clock generation speed of one sample set."""

    seconds: float
    samples_per_s: float
    tokens_per_s: float


@dataclass
class StepEvaluation:
    """Samples drawn with ``steps`` sampling steps (``None``: autoregressive), their speed, cost and metrics."""

    steps: int | None
    throughput: Throughput
    #: ``gflops_per_step`` (measured), ``gflops_per_step_eq77``, ``gflops_per_sample``
    flops: dict[str, float]
    metrics: SampleEvaluation
    samples: Tensor = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        gen_ppl = None if self.metrics.gen_ppl is None else self.metrics.gen_ppl.gen_ppl
        per_point = self.throughput.samples_per_s / gen_ppl if gen_ppl and math.isfinite(gen_ppl) else None
        return {
            "steps": self.steps,
            **self.metrics.as_dict(),
            "seconds": self.throughput.seconds,
            "samples_per_s": self.throughput.samples_per_s,
            "tokens_per_s": self.throughput.tokens_per_s,
            "throughput_per_gen_ppl": per_point,
            **self.flops,
        }


def draw_samples(
    model: SequenceModel,
    num: int,
    seq_len: int,
    steps: int | None,
    *,
    batch_size: int = 256,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
    sampler: dict[str, Any] | None = None,
) -> Tensor:
    """``num`` samples ``[num, seq_len]`` of a model, diffusion (in ``steps`` steps) or AR (``steps`` unused).

    ``sampler``: further options of :func:`augdiff.sampling.generate` (``remasking``, ``ordering``, …) for a
    diffusion model."""
    common = {"batch_size": batch_size, "temperature": temperature, "top_p": top_p, "seed": seed, "progress": progress}
    if model.takes_steps:
        return model.sample(num, seq_len, steps, device=device, **common, **(sampler or {}))
    return model.sample(num, seq_len, **common)  # token by token, on the model's own device


def step_flops(model: SequenceModel, seq_len: int, steps: int | None, options: Any = None) -> dict[str, float]:
    """GFLOPs per sequence of one sampling step (measured and Eq 77) and of a whole sample of ``steps`` steps.

    An AR model's step is one generated token (KV cache), its sample ``seq_len`` steps (``steps`` ignored).
    """
    parts = model.step_flops(1, seq_len, options)
    calls = model.step_calls(seq_len, steps, options)
    token = next(iter(parts.values()))  # the step itself: the token (or joint) denoiser, or one AR token
    total = sum(n * parts[name]["measured_gflops"] for name, n in calls.items())
    return {
        "gflops_per_step": token["measured_gflops"],
        "gflops_per_step_eq77": token["analytic_gflops"],
        "gflops_per_sample": total,
    }


def _timed(fn: Any, device: torch.device) -> tuple[Any, float]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - start


def evaluate_generation(
    model: SequenceModel,
    description: dict[str, Any],
    steps: Sequence[int],
    num_samples: int,
    *,
    teacher: Teacher | None = None,
    gen_ppl: bool = True,
    reference: Tensor | Sequence[str] | None = None,
    sample_tokenizer: Tokenizer | None = None,
    batch_size: int = 256,
    temperature: float = 1.0,
    top_p: float = 1.0,
    mauve_buckets: int | str = "auto",
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
    sampler: dict[str, Any] | None = None,
) -> list[StepEvaluation]:
    """Draw ``num_samples`` samples at each step count of ``steps`` and evaluate them.

    Args:
        model: a diffusion model, or an AR model (sampled once, ignoring ``steps``).
        description: the data's description (``LoadedRun.data``): ``seq_len`` and the tokenizer the samples
            are decoded with.
        teacher: for generative perplexity and MAUVE features.
        reference: validation rows ``[M, L]`` (or texts) for MAUVE, featurized once; ``None`` skips MAUVE.
        sample_tokenizer: decodes the samples for a teacher of another tokenizer (default: the run's own).
        seed: samples at T steps use ``seed + T`` (as the SWD evaluation).
        sampler: further options of the diffusion sampler (:func:`draw_samples`).
    """
    device = torch.device(device)
    if sample_tokenizer is None and teacher is not None and not same_tokenizer(teacher.description, description):
        sample_tokenizer = tokenizer_from_description(description)
    seq_len = int(description["seq_len"])
    budgets: list[int | None] = list(steps) if model.takes_steps else [None]
    draw = dict(batch_size=batch_size, temperature=temperature, top_p=top_p, device=device, sampler=sampler)
    if teacher is not None and reference is not None:
        reference = reference_features(teacher, reference, sample_tokenizer, description)
    # untimed warm-up (allocator, kernels): one step of a batch, or one AR sample
    warm_up = (min(num_samples, batch_size), 1) if model.takes_steps else (1, None)
    draw_samples(model, warm_up[0], seq_len, warm_up[1], seed=seed, **draw)
    results = []
    for t in budgets:
        samples, seconds = _timed(
            lambda t=t: draw_samples(model, num_samples, seq_len, t, seed=seed + (t or 0), progress=progress, **draw),
            device,
        )
        throughput = Throughput(seconds, num_samples / seconds, num_samples * seq_len / seconds)
        metrics = evaluate_samples(
            samples,
            teacher=teacher,
            gen_ppl=gen_ppl,
            reference=reference,
            sample_tokenizer=sample_tokenizer,
            sample_description=description,
            mauve_buckets=mauve_buckets,
        )
        flops = step_flops(model, seq_len, t, (sampler or {}).get("channel_options"))
        results.append(StepEvaluation(t, throughput, flops, metrics, samples))
    return results
