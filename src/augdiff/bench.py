"""Throughput benchmarks: training and sampling tokens/s, seconds per step, peak memory."""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from typing import Any

import numpy as np
import torch

from augdiff.ar import ARModel
from augdiff.config import build_config
from augdiff.data import ArrayDataset
from augdiff.errors import AugdiffError
from augdiff.methods import build_model
from augdiff.runtime import configure_device
from augdiff.sampling import AncestralSampler
from augdiff.train import Trainer, resolve_device

__all__ = ["bench_train", "bench_sample"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mb(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"


def _config(method: str, model_size: str, seq_len: int, batch_size: int, device: str, overrides: list[str]):
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
) -> list[dict[str, Any]]:
    """Time full optimizer steps (forward, backward, AdamW, EMA) of one or more methods.

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
        times: dict[str, list[float]] = {m: [] for m in methods}
        for _ in range(rounds):
            for m, trainer in trainers.items():
                times[m] += _timed_steps(trainer, steps)
    memory, kind = _peak_memory_mb(dev)
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
                "threads": torch.get_num_threads(),
                "timed_steps": len(times[m]),
                "seconds_per_step": median,
                "tokens_per_s": batch_size * seq_len / median,
                f"step_time_vs_{methods[0]}": median / base,
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
) -> dict[str, Any]:
    """Time one batch of ``batch_size`` sequences sampled in ``steps`` steps (after one untimed warm-up step).

    An ``ar`` model draws its ``seq_len`` tokens one per step with its key/value cache (``steps`` and ``cache``
    do not apply).
    """
    cfg = _config(method, model_size, seq_len, batch_size, device, overrides or [])
    dev = resolve_device(cfg.device)
    configure_device(dev)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, vocab_size).to(dev).eval()
    if isinstance(model, ARModel):
        if k != 1:
            raise AugdiffError(f"--k applies to cadd models, not {method}")
        return _bench_sample_ar(model, method, model_size, seq_len, batch_size, vocab_size, dev)
    if k != 1:
        try:
            model.channel.set_sampling(k=k)
        except ValueError:
            raise AugdiffError(f"--k applies to cadd models, not {method}") from None
    sampler = AncestralSampler(model, model.schedule, cache=cache and model.cacheable)
    seconds, out = _timed_draw(
        dev,
        lambda: sampler.sample(batch_size, seq_len, 1, device=dev),
        lambda: sampler.sample(batch_size, seq_len, steps, device=dev),
    )
    shape = dict(method=method, model_size=model_size, seq_len=seq_len, batch_size=batch_size, vocab_size=vocab_size)
    return _sample_record(
        dev,
        seconds,
        steps,
        shape,
        k=model.channel.num_particles(),
        cache=sampler.cache,
        nfe=out.nfe,
        rows_evaluated=out.rows_evaluated,
    )


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
    model: ARModel, method: str, model_size: str, seq_len: int, batch_size: int, vocab_size: int, dev: torch.device
) -> dict[str, Any]:
    """:func:`bench_sample` for the AR model: one KV-cached generation of ``seq_len`` tokens, after a warm-up."""
    seconds, _ = _timed_draw(
        dev, lambda: model.generate(batch_size, min(seq_len, 2)), lambda: model.generate(batch_size, seq_len)
    )
    shape = dict(method=method, model_size=model_size, seq_len=seq_len, batch_size=batch_size, vocab_size=vocab_size)
    return _sample_record(
        dev, seconds, seq_len, shape, k=1, cache="kv", nfe=seq_len, rows_evaluated=seq_len * batch_size
    )
