"""Throughput benchmarks: training and sampling tokens/s, seconds per step, peak memory."""

from __future__ import annotations

import resource
import tempfile
import time
from typing import Any

import numpy as np
import torch

from augdiff.config import build_config
from augdiff.data import ArrayDataset
from augdiff.errors import AugdiffError
from augdiff.methods import build_model
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


def bench_train(
    method: str = "mdlm",
    model_size: str = "xs",
    seq_len: int = 128,
    batch_size: int = 64,
    vocab_size: int = 50257,
    steps: int = 10,
    warmup: int = 3,
    device: str = "auto",
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Time ``steps`` full optimizer steps (forward, backward, AdamW, EMA) after ``warmup`` untimed ones."""
    cfg = _config(method, model_size, seq_len, batch_size, device, overrides or [])
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, vocab_size, size=(2 * batch_size, seq_len))
    data = ArrayDataset("bench", tokens[:batch_size], tokens[batch_size:], vocab_size=vocab_size)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, tmp, dataset=data)
        dev = trainer.device
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        for _ in range(warmup):
            trainer.train_step()
        _sync(dev)
        start = time.perf_counter()
        for _ in range(steps):
            loss, _, _ = trainer.train_step()
        float(loss)
        _sync(dev)
        seconds = (time.perf_counter() - start) / steps
    memory, kind = _peak_memory_mb(dev)
    params = sum(p.numel() for p in trainer.model.parameters())
    return {
        "mode": "train",
        "method": method,
        "model_size": model_size,
        "params": params,
        "seq_len": seq_len,
        "batch_size": batch_size,
        "vocab_size": vocab_size,
        "device": str(dev),
        "precision": str(trainer.amp_dtype or "fp32"),
        "threads": torch.get_num_threads(),
        "seconds_per_step": seconds,
        "tokens_per_s": batch_size * seq_len / seconds,
        "peak_memory_mb": memory,
        "memory": kind,
    }


def bench_sample(
    method: str = "mdlm",
    model_size: str = "xs",
    seq_len: int = 128,
    batch_size: int = 64,
    vocab_size: int = 50257,
    steps: int = 32,
    cache: bool = False,
    device: str = "auto",
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Time one batch of ``batch_size`` sequences sampled in ``steps`` steps (after one untimed warm-up step)."""
    cfg = _config(method, model_size, seq_len, batch_size, device, overrides or [])
    dev = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, vocab_size).to(dev).eval()
    sampler = AncestralSampler(model, model.schedule, cache=cache and model.cacheable)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)
    )
    with autocast:
        sampler.sample(batch_size, seq_len, 1, device=dev)
        _sync(dev)
        start = time.perf_counter()
        out = sampler.sample(batch_size, seq_len, steps, device=dev)
        _sync(dev)
    seconds = time.perf_counter() - start
    memory, kind = _peak_memory_mb(dev)
    return {
        "mode": "sample",
        "method": method,
        "model_size": model_size,
        "seq_len": seq_len,
        "batch_size": batch_size,
        "vocab_size": vocab_size,
        "steps": steps,
        "cache": sampler.cache,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "nfe": out.nfe,
        "seconds": seconds,
        "seconds_per_step": seconds / steps,
        "tokens_per_s": batch_size * seq_len / seconds,
        "peak_memory_mb": memory,
        "memory": kind,
    }
