"""augdiff bench: training or sampling throughput of a method at a model size (a benchmark, not a test)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from augdiff.errors import AugdiffError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("bench", help="measure throughput", description=__doc__)
    p.add_argument("mode", choices=("train", "sample"))
    p.add_argument("--method", default="mdlm", help="train: one method or several to compare, e.g. mdlm,cadd")
    p.add_argument("--rounds", type=int, default=1, help="train: alternating blocks of --steps per method")
    p.add_argument("--model-size", default="xs")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--vocab-size", type=int, default=50257, help="data tokens (GPT-2: 50257)")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed optimizer steps (train, default 10) or sampling steps T (sample, default 32)",
    )
    p.add_argument("--cache", action="store_true", help="sample: use the p(x0|xt) cache")
    p.add_argument("--k", type=int, default=1, help="sample, cadd: latent draws per step (K)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config keys, e.g. precision=fp32")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from augdiff.bench import bench_sample, bench_train

    for name in ("seq_len", "batch_size", "vocab_size", "steps", "k", "rounds"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise AugdiffError(f"--{name.replace('_', '-')}={getattr(args, name)} must be a positive integer")
    common = dict(
        method=args.method,
        model_size=args.model_size,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        vocab_size=args.vocab_size,
        device=args.device,
        overrides=args.overrides,
    )
    if args.mode == "train":
        results = bench_train(steps=10 if args.steps is None else args.steps, rounds=args.rounds, **common)
    else:
        results = [bench_sample(steps=32 if args.steps is None else args.steps, cache=args.cache, k=args.k, **common)]
    for result in results:
        if args.json:
            print(json.dumps(result))
        else:
            for key, value in result.items():
                print(f"{key:>22}: {value:,.4g}" if isinstance(value, float) else f"{key:>22}: {value}")
    return 0
