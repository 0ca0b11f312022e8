"""``augdiff eval``: ELBO NLL (nats, bits and perplexity per token) of a run on data; SWD for the sawtooth."""

from __future__ import annotations

import argparse
import json
from typing import Any

from augdiff.data import SawtoothDataset, make_dataset
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
    p.add_argument("--max-sequences", type=int, default=None, help="cap on validation sequences")
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


def run(args: argparse.Namespace) -> int:
    for name in ("time_samples", "batch_size", "swd_samples"):
        if getattr(args, name) < 1:
            raise AugdiffError(f"--{name.replace('_', '-')}={getattr(args, name)} must be a positive integer")
    swd_steps = _steps(args.swd_steps)
    device = resolve_device(args.device)
    loaded = load_run(args.run_dir, weights=args.weights, device=device)
    data = make_dataset(args.data, like=loaded.data)
    est = estimate_nll(
        loaded.model,
        data.valid_batches(args.batch_size, args.max_sequences),
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
            )
            swd[str(steps)] = swd_between(samples, reference)
        result.update({"oracle_nll": data.oracle_nll(), "swd": swd, "swd_samples": args.swd_samples, **refs})
    print(json.dumps(result, indent=2))
    return 0
