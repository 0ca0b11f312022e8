"""augdiff eval: ELBO NLL (nats, bits and perplexity per token) of a run on data; SWD for the sawtooth."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from augdiff.data import ArrayDataset, SawtoothDataset, TokenDataset, make_dataset
from augdiff.errors import AugdiffError
from augdiff.metrics import estimate_nll
from augdiff.runs import load_run
from augdiff.sampling import generate
from augdiff.train import resolve_device


def add_parser(sub: Any) -> None:
    p = sub.add_parser("eval", help="evaluate a trained run", description=__doc__)
    p.add_argument("run_dir", metavar="DIR", help="run directory (or one checkpoint directory)")
    p.add_argument("--data", required=True, help="sawtooth | tokens:PATH.npy | text:PATH (validation split)")
    p.add_argument("--time-samples", type=int, default=8, help="diffusion times per sequence in the ELBO")
    p.add_argument("--max-sequences", type=int, default=None, help="cap on evaluated sequences")
    p.add_argument(
        "--split",
        choices=("valid", "all"),
        default="valid",
        help="tokens:/text: data: the validation split (last 5%%) or every row of the file (a held-out test file)",
    )
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--swd-steps", default="128", help="sawtooth: comma-separated sampling steps for SWD")
    p.add_argument("--swd-samples", type=int, default=1000, help="sawtooth: samples per SWD estimate")
    p.add_argument("--weights", choices=("ema", "raw"), default="ema")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def _steps(text: str) -> list[int]:
    try:
        steps = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        steps = []
    if not steps or min(steps) < 1:
        raise AugdiffError(f"--swd-steps {text!r}: give positive integers separated by commas, e.g. 1,8,128")
    return steps


def _json_safe(value: Any) -> Any:
    """NaN/inf are not JSON: report them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def _batches(data: TokenDataset, split: str, batch_size: int, limit: int | None) -> Iterator[Tensor]:
    if split == "all" and isinstance(data, ArrayDataset):
        rows = torch.cat([data.train, data.valid])
        yield from (rows if limit is None else rows[:limit]).split(batch_size)
    else:
        yield from data.valid_batches(batch_size, limit)


def run(args: argparse.Namespace) -> int:
    if args.max_sequences is not None and args.max_sequences < 1:
        raise AugdiffError(f"--max-sequences={args.max_sequences} must be a positive integer")
    for name in ("time_samples", "batch_size", "swd_samples"):
        if getattr(args, name) < 1:
            raise AugdiffError(f"--{name.replace('_', '-')}={getattr(args, name)} must be a positive integer")
    swd_steps = _steps(args.swd_steps)
    device = resolve_device(args.device)
    loaded = load_run(args.run_dir, weights=args.weights, device=device)
    data = make_dataset(args.data, like=loaded.data)
    est = estimate_nll(
        loaded.model,
        _batches(data, args.split, args.batch_size, args.max_sequences),
        time_samples=args.time_samples,
        time_eps=loaded.config.diffusion.time_eps,
        seed=args.seed,
        device=device,
    )
    result: dict[str, Any] = {"run": str(loaded.path), "step": loaded.step, "data": args.data, **est.as_dict()}
    if isinstance(data, SawtoothDataset):
        from augdiff.experiments.sawtooth import swd_between, swd_references

        reference, refs = swd_references(data, args.swd_samples)
        swd = {}
        for steps in swd_steps:
            samples = generate(
                loaded.model,
                loaded.model.schedule,
                args.swd_samples,
                data.seq_len,
                steps,
                batch_size=args.batch_size,
                seed=args.seed + steps,
                device=device,
                progress=True,
            )
            swd[str(steps)] = swd_between(samples, reference)
        result.update({"oracle_nll": data.oracle_nll(), "swd": swd, "swd_samples": args.swd_samples, **refs})
    print(json.dumps(_json_safe(result), indent=2))
    return 0
