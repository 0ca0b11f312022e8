"""augdiff flops: GFLOPs per sampling step of a method at a model size, counted and analytic (LADD Eq 77)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from augdiff.errors import AugdiffError
from augdiff.specs import LADD_METHODS, METHODS, method_spec

# Shape keys with their own flag: an override would be silently overruled by it.
_FLAG_KEYS = ("method", "model_size", "seq_len", "vocab_size", "batch_size")

_COLUMNS = (
    ("measured", "measured_gflops"),
    ("Eq 77", "analytic_gflops"),
    ("vocab head", "measured_head_gflops"),
    ("other", "other_gflops"),
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("flops", help="GFLOPs per sampling step (measured and analytic)", description=__doc__)
    p.add_argument("--method", required=True, help=f"{', '.join(METHODS)} (ar: a step is one token)")
    p.add_argument("--model-size", required=True, help="xxs, xs, tiny or small")
    p.add_argument("--seq-len", type=int, required=True)
    p.add_argument("--vocab-size", type=int, default=50257, help="data tokens (GPT-2: 50257)")
    p.add_argument("--batch-size", type=int, default=1, help="sequences in the counted forward pass")
    p.add_argument("--k", type=int, default=None, help="cadd: latent draws per step (K)")
    p.add_argument(
        "--inference",
        choices=("joint", "sequential"),
        default=None,
        help="co-ladd/di-ladd: sequential adds the latent-only step (default: joint)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config keys, e.g. model.n_layers=6")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    for name in ("seq_len", "vocab_size", "batch_size", "k"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise AugdiffError(f"--{name.replace('_', '-')}={value} must be a positive integer")
    fixed = {item.partition("=")[0].strip().replace("-", "_") for item in args.overrides} & set(_FLAG_KEYS)
    if fixed:
        raise AugdiffError(f"flops: set {', '.join(sorted(fixed))} with its flag, not as key=value")


def _table(parts: dict[str, dict[str, float]]) -> list[str]:
    width = max(len("part"), *(len(name) for name in parts))
    lines = [f"{'part':<{width}}" + "".join(f"  {title:>12}" for title, _ in _COLUMNS)]
    for name, figures in parts.items():
        # What the counter sees beyond Eq 77 and the head: the per-sequence adaLN and time-embedding linears.
        other = figures["measured_gflops"] - figures["analytic_gflops"] - figures["measured_head_gflops"]
        row = {**figures, "other_gflops": other}
        lines.append(f"{name:<{width}}" + "".join(f"  {row[key]:>12.6g}" for _, key in _COLUMNS))
    return lines


def run(args: argparse.Namespace) -> int:
    from augdiff.config import build_config
    from augdiff.methods import build_model

    _check(args)
    base: dict[str, Any] = {"method": args.method, "model_size": args.model_size, "seq_len": args.seq_len}
    ladd = args.method in LADD_METHODS
    if args.inference is not None and not ladd:
        raise AugdiffError(f"--inference applies to {', '.join(LADD_METHODS)}, not {args.method}")
    if ladd:
        base["ladd"] = {"stage": 2}  # the sampling-ready model; stage 1 has no latent denoisers to count
    cfg = build_config(base, args.overrides)
    # FLOPs depend on shapes only: fresh weights stand in for a checkpoint.
    model = build_model(cfg, args.vocab_size, args.seq_len).eval()
    given: dict[str, Any] = {}
    if ladd:
        given.update(lag=1.0 if args.inference == "sequential" else 0.0, latent_steps=1)
    diffusion = method_spec(args.method).diffusion
    if args.k is not None and not diffusion:
        raise AugdiffError("--k applies to cadd models, not ar")
    if args.k is not None:
        given["k"] = args.k
    try:  # one value with every option given (CADD+Co-LADD takes --k and --inference together)
        options = model.sampling_options(**given) if given else None
    except (ValueError, TypeError):
        raise AugdiffError(f"--k applies to cadd models, not {args.method}") from None
    parts = model.step_flops(args.batch_size, args.seq_len, options)
    shape = model.network.transformer_shape(args.seq_len)  # None: a network Eq 77 does not describe
    header = {
        "method": args.method,
        "model_size": args.model_size,
        "hidden_size": None if shape is None else shape.width,
        "n_layers": None if shape is None else shape.layers,
        "mlp_ratio": None if shape is None else shape.mlp_ratio,
        "seq_len": args.seq_len,
        "vocab_size": args.vocab_size,
        "batch_size": args.batch_size,
        "k": model.particles(options) if diffusion else 1,
        "inference": args.inference or ("joint" if ladd else None),
    }
    unit = "GFLOPs per sequence per " + ("sampling step" if diffusion else "generated token")
    if args.json:
        print(json.dumps({**header, "unit": unit, "parts": parts}))
        return 0
    print(", ".join(f"{key}={value}" for key, value in header.items()))
    print(
        f"{unit} (measured: torch.utils.flop_counter; Eq 77: LADD App. E, × K, or per cached AR token; "
        "other = measured - Eq 77 - vocab head)"
    )
    for line in _table(parts):
        print(line)
    return 0
