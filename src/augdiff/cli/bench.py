"""augdiff bench: training (tokens/s, MFU) or sampling throughput of methods at a model size (not a test)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from augdiff.errors import AugdiffError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("bench", help="measure throughput", description=__doc__)
    p.add_argument("mode", choices=("train", "sample"))
    p.add_argument("--method", default="mdlm", help="one method or several, e.g. mdlm,cadd,co-ladd")
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
    p.add_argument(
        "--sampler",
        default="ancestral",
        help="sample: comma-separated samplers to time: ancestral, confidence, margin, entropy, cap, rescale, conf, "
        "loop, dfm",
    )
    p.add_argument("--k", default="1", help="sample, cadd: latent draws per step (K), or a sweep, e.g. 1,2,3,4")
    p.add_argument(
        "--inference",
        choices=("joint", "sequential", "both"),
        default="both",
        help="sample, co-ladd/di-ladd: which inference modes to time (default both)",
    )
    p.add_argument("--latent-steps", type=int, default=None, help="sample, sequential LADD: latent steps T_y")
    p.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="train: device peak in TFLOP/s for MFU (default: dense bf16 peak of a known GPU; none on CPU)",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config keys, e.g. precision=fp32")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from augdiff.bench import INFERENCE_MODES, bench_sample_rows, bench_train

    try:
        args.k = tuple(int(k) for k in args.k.split(","))
    except ValueError:
        raise AugdiffError(f"--k {args.k}: give positive integers separated by commas, e.g. 1,2,3,4") from None
    if min(args.k) < 1:
        raise AugdiffError(f"--k {','.join(map(str, args.k))}: every K must be a positive integer")
    if args.peak_tflops is not None and not args.peak_tflops > 0:
        raise AugdiffError(f"--peak-tflops {args.peak_tflops} must be a positive number")
    for name in ("seq_len", "batch_size", "vocab_size", "steps", "rounds", "latent_steps"):
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
        steps = 10 if args.steps is None else args.steps
        results = bench_train(steps=steps, rounds=args.rounds, peak_tflops=args.peak_tflops, **common)
    else:
        modes = INFERENCE_MODES if args.inference == "both" else (args.inference,)
        steps = 32 if args.steps is None else args.steps
        results = bench_sample_rows(
            steps=steps,
            cache=args.cache,
            k=args.k,
            inference=modes,
            latent_steps=args.latent_steps,
            samplers=tuple(s.strip() for s in args.sampler.split(",") if s.strip()) or ("ancestral",),
            **common,
        )
    for i, result in enumerate(results):
        if args.json:
            print(json.dumps(result))
        else:
            if i:
                print()
            for key, value in result.items():
                print(f"{key:>22}: {value:,.4g}" if isinstance(value, float) else f"{key:>22}: {value}")
    return 0
