"""augdiff run: the papers' experiments end to end (train, evaluate, report)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from augdiff.errors import AugdiffError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="run an experiment end to end", description=__doc__)
    p.add_argument("experiment", choices=("sawtooth",), help="sawtooth: LADD §5.1 (Table 1, Figure 2)")
    p.add_argument("--out", required=True, help="output directory (runs, results.json, report.md, plots)")
    p.add_argument(
        "--preset",
        default="quick",
        help="smoke (seconds, pipeline check) | quick (CPU, minutes) | paper (authors' settings, GPU)",
    )
    p.add_argument("--methods", default="mdlm", help="comma-separated methods, e.g. mdlm")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from augdiff.experiments.sawtooth import run_sawtooth

    methods = tuple(m.strip().lower() for m in args.methods.split(",") if m.strip())
    if not methods:
        raise AugdiffError("--methods is empty (give e.g. --methods mdlm)")
    results = run_sawtooth(args.out, preset=args.preset, methods=methods, device=args.device, seed=args.seed)
    out = Path(args.out)
    for name, res in results["methods"].items():
        swd = ", ".join(f"T={k}: {v:.3f}" for k, v in res["swd"].items())
        print(f"{name}: recon NLL {res['recon_nll']:.4f} (oracle {results['oracle_nll']:.4f}); SWD {swd}")
    print(f"noise floor {results['swd_noise_floor']:.3f}, factorized {results['swd_factorized']:.3f}")
    print(f"report: {out / 'report.md'}  results: {out / 'results.json'}  plot: {out / 'swd_vs_steps.png'}")
    return 0
