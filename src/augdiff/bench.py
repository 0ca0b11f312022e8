"""Throughput benchmarks: training and sampling tokens/s, seconds per step, training MFU, peak memory."""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from typing import Any

import numpy as np
import torch

from augdiff.config import build_config
from augdiff.data import ArrayDataset
from augdiff.errors import AugdiffError
from augdiff.methods import LADD_METHODS, build_model
from augdiff.metrics.mfu import count_train_flops, device_peak_flops, model_flops_utilization
from augdiff.protocol import SequenceModel
from augdiff.runtime import configure_device
from augdiff.sampling import AncestralSampler, sampler_options
from augdiff.specs import method_spec
from augdiff.train import Trainer, resolve_device

__all__ = ["bench_train", "bench_sample", "bench_sample_rows", "INFERENCE_MODES"]

INFERENCE_MODES = ("joint", "sequential")  # LADD: the latent's lead λ = 0 or 1


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mb(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"


def _config(
    method: str, model_size: str, seq_len: int, batch_size: int, device: str, overrides: list[str], **extra: Any
):
    fixed = {k.partition("=")[0].strip() for k in overrides} & {
        "method",
        "model_size",
        "seq_len",
        "batch_size",
        "device",
    }
    if fixed:
        raise AugdiffError(f"bench: set {', '.join(sorted(fixed))} with its flag, not as key=value")
    return build_config(
        {
            "method": method,
            "model_size": model_size,
            "seq_len": seq_len,
            "batch_size": batch_size,
            "device": device,
            "progress": False,
            "tensorboard": False,
            **extra,
        },
        overrides,
    )


def _timed_steps(trainer: Trainer, steps: int) -> list[float]:
    """Wall time of each of ``steps`` optimizer steps, synchronized with the device."""
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        loss, _, _ = trainer.train_step()
        float(loss)  # one sync per step: the timed unit is a whole step
        times.append(time.perf_counter() - start)
    return times


def bench_train(
    method: str = "mdlm",
    model_size: str = "xs",
    seq_len: int = 128,
    batch_size: int = 64,
    vocab_size: int = 50257,
    steps: int = 10,
    warmup: int = 3,
    rounds: int = 1,
    device: str = "auto",
    overrides: list[str] | None = None,
    peak_tflops: float | None = None,
) -> list[dict[str, Any]]:
    """Time full optimizer steps (forward, backward, AdamW, EMA) of one or more methods.

    MFU (:mod:`augdiff.metrics.mfu`): the FLOPs of one extra, untimed step counted by
    ``torch.utils.flop_counter``, over the median step time × the device's peak (``peak_tflops``, else the
    bf16 table; ``None`` on a CPU without ``peak_tflops``).

    ``method`` may list several (``mdlm,cadd``): they share one process and alternate in ``rounds`` blocks of
    ``steps`` steps, so machine noise hits all alike; each reports its median step time, and the later ones their
    ratio to the first (the CADD/MDLM step-time ratio of CADD App. B.3).
    """
    methods = [m.strip() for m in method.split(",") if m.strip()]
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, vocab_size, size=(2 * batch_size, seq_len))
    data = ArrayDataset("bench", tokens[:batch_size], tokens[batch_size:], vocab_size=vocab_size)
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {
            m: Trainer(_config(m, model_size, seq_len, batch_size, device, overrides or []), tmp, dataset=data)
            for m in methods
        }
        dev = next(iter(trainers.values())).device
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        for trainer in trainers.values():
            _timed_steps(trainer, warmup)
        flops = {m: count_train_flops(trainer.train_step) for m, trainer in trainers.items()}
        _sync(dev)  # the counted steps' kernels finish before the first timed step starts
        times: dict[str, list[float]] = {m: [] for m in methods}
        for _ in range(rounds):
            for m, trainer in trainers.items():
                times[m] += _timed_steps(trainer, steps)
    memory, kind = _peak_memory_mb(dev)
    peak, peak_source = device_peak_flops(dev, peak_tflops)
    base = statistics.median(times[methods[0]])
    results = []
    for m, trainer in trainers.items():
        median = statistics.median(times[m])
        results.append(
            {
                "mode": "train",
                "method": m,
                "model_size": model_size,
                "params": sum(p.numel() for p in trainer.model.parameters()),
                "seq_len": seq_len,
                "batch_size": batch_size,
                "vocab_size": vocab_size,
                "device": str(dev),
                "precision": str(trainer.amp_dtype or "fp32"),
                "compile": trainer.cfg.compile,
                "threads": torch.get_num_threads(),
                "timed_steps": len(times[m]),
                "seconds_per_step": median,
                "tokens_per_s": batch_size * seq_len / median,
                f"step_time_vs_{methods[0]}": median / base,
                "train_gflops_per_step": flops[m] / 1e9,
                "achieved_tflops": flops[m] / median / 1e12,
                "peak_tflops": None if peak is None else peak / 1e12,
                "mfu": model_flops_utilization(flops[m], median, peak),
                "mfu_peak": peak_source,
                "peak_memory_mb": memory,
                "memory": kind,
            }
        )
    return results


def bench_sample(
    method: str = "mdlm",
    model_size: str = "xs",
    seq_len: int = 128,
    batch_size: int = 64,
    vocab_size: int = 50257,
    steps: int = 32,
    cache: bool = False,
    k: int = 1,
    device: str = "auto",
    overrides: list[str] | None = None,
    inference: str | None = None,
    latent_steps: int | None = None,
    sampler: str = "ancestral",
) -> dict[str, Any]:
    """Time one batch of ``batch_size`` sequences sampled in ``steps`` steps (after one untimed warm-up step).

    An ``ar`` model draws its ``seq_len`` tokens one per step with its key/value cache (``steps`` and ``cache``
    do not apply). A LADD model is built for stage 2 (fresh weights: speed depends on shapes only) and samples
    with ``inference`` joint (λ = 0, default) or sequential (λ = 1: its ``latent_steps`` latent-only steps,
    then the token steps; ``latent_steps`` overrides the channel's T_y). ``sampler``: one of
    :data:`augdiff.sampling.SAMPLERS` (remasking samplers evaluate every row at every step: no cache).
    """
    try:
        options = sampler_options(sampler)
    except ValueError as exc:
        raise AugdiffError(f"--sampler: {exc}") from None
    ladd = method in LADD_METHODS
    if inference is not None and not ladd:
        raise AugdiffError(f"--inference applies to {', '.join(LADD_METHODS)}, not {method}")
    given = {o.partition("=")[0].strip() for o in overrides or []}
    extra = {"ladd": {"stage": 2}} if ladd and "ladd.stage" not in given else {}
    cfg = _config(method, model_size, seq_len, batch_size, device, overrides or [], **extra)
    dev = resolve_device(cfg.device)
    configure_device(dev)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, vocab_size).to(dev).eval()
    if not method_spec(method).diffusion:
        if k != 1:
            raise AugdiffError(f"--k applies to cadd models, not {method}")
        return _bench_sample_ar(model, method, model_size, seq_len, batch_size, vocab_size, dev)
    given: dict[str, Any] = {} if k == 1 else {"k": k}
    run: dict[str, Any] = {}
    if ladd:
        inference = inference or "joint"
        given.update(lag=0.0 if inference == "joint" else 1.0, latent_steps=latent_steps)
    try:  # one value with every option given (CADD+Co-LADD takes K and an inference mode together)
        channel_options = model.sampling_options(**given) if given else None
    except (ValueError, TypeError):
        raise AugdiffError(f"--k applies to cadd models, not {method}") from None
    if ladd:  # the latent-only steps a sample runs under these options
        run = {
            "inference": inference,
            "latent_steps": model.step_calls(seq_len, steps, channel_options).get("latent step", 0),
        }
    draw = AncestralSampler(
        model, model.schedule, cache=cache and model.cacheable, channel_options=channel_options, **options
    )
    seconds, out = _timed_draw(
        dev,
        lambda: draw.sample(batch_size, seq_len, 1, device=dev),
        lambda: draw.sample(batch_size, seq_len, steps, device=dev),
    )
    shape = dict(method=method, model_size=model_size, seq_len=seq_len, batch_size=batch_size, vocab_size=vocab_size)
    return _sample_record(
        dev,
        seconds,
        steps,
        shape,
        sampler=sampler,
        k=model.particles(channel_options),
        cache=draw.cache,
        nfe=out.nfe,
        rows_evaluated=out.rows_evaluated,
        **run,
    )


def bench_sample_rows(
    method: str = "mdlm",
    k: tuple[int, ...] = (1,),
    inference: tuple[str, ...] = INFERENCE_MODES,
    samplers: tuple[str, ...] = ("ancestral",),
    **common: Any,
) -> list[dict[str, Any]]:
    """:func:`bench_sample` over a list of methods (``mdlm,cadd``): one row per method, per K for ``cadd``
    (the ``k`` sweep, e.g. ``(1, 2, 3, 4)``), per inference mode for ``co-ladd`` / ``di-ladd``, and per sampler
    of ``samplers``."""
    if len(samplers) > 1:
        return [row for s in samplers for row in bench_sample_rows(method, k, inference, (s,), **common)]
    common["sampler"] = samplers[0]
    methods = [m.strip() for m in method.split(",") if m.strip()]
    if tuple(k) != (1,) and "cadd" not in methods:
        raise AugdiffError(f"--k applies to cadd models, not {', '.join(methods)}")
    bad = sorted(set(inference) - set(INFERENCE_MODES))
    if bad:
        raise AugdiffError(f"--inference {bad[0]}: choose joint, sequential or both")
    rows = []
    for m in methods:
        if m == "cadd":
            rows += [bench_sample(method=m, k=kk, **common) for kk in k]
        elif m in LADD_METHODS:
            rows += [bench_sample(method=m, inference=mode, **common) for mode in inference]
        else:
            rows.append(bench_sample(method=m, **common))
    return rows


def _timed_draw(dev: torch.device, warm_up: Any, draw: Any) -> tuple[float, Any]:
    """Seconds of ``draw()`` after an untimed ``warm_up()`` (bf16 autocast on GPU), and its result."""
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)
    )
    with autocast:
        warm_up()
        _sync(dev)
        start = time.perf_counter()
        out = draw()
        _sync(dev)
    return time.perf_counter() - start, out


def _sample_record(dev: torch.device, seconds: float, steps: int, shape: dict[str, Any], **run: Any) -> dict[str, Any]:
    """One ``bench sample`` result: the model ``shape``, how it sampled (``run``), the speed and peak memory."""
    memory, kind = _peak_memory_mb(dev)
    return {
        "mode": "sample",
        **shape,
        "steps": steps,
        **run,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "seconds": seconds,
        "seconds_per_step": seconds / steps,
        "tokens_per_s": shape["batch_size"] * shape["seq_len"] / seconds,
        "peak_memory_mb": memory,
        "memory": kind,
    }


def _bench_sample_ar(
    model: SequenceModel,
    method: str,
    model_size: str,
    seq_len: int,
    batch_size: int,
    vocab_size: int,
    dev: torch.device,
) -> dict[str, Any]:
    """:func:`bench_sample` for the AR model: one KV-cached generation of ``seq_len`` tokens, after a warm-up."""
    seconds, _ = _timed_draw(
        dev,
        lambda: model.sample(batch_size, min(seq_len, 2), batch_size=batch_size),
        lambda: model.sample(batch_size, seq_len, batch_size=batch_size),
    )
    shape = dict(method=method, model_size=model_size, seq_len=seq_len, batch_size=batch_size, vocab_size=vocab_size)
    return _sample_record(
        dev, seconds, seq_len, shape, k=1, cache="kv", nfe=seq_len, rows_evaluated=seq_len * batch_size
    )
