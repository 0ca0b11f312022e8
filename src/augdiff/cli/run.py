"""augdiff run: the papers' experiments end to end (train, evaluate, report)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from augdiff.errors import AugdiffError
from augdiff.extras import require


def add_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="run an experiment end to end", description=__doc__)
    p.add_argument(
        "experiment",
        choices=("sawtooth", "sawtooth-ablation", "text", "cadd-sweep", "samplers", "images"),
        help="sawtooth: LADD §5.1 (Table 1, Figure 2); sawtooth-ablation: each of the eight changes to the LADD "
        "authors' settings switched off alone; text: AR/MDLM/CADD/LADD on a character corpus (--corpus); "
        "cadd-sweep: CADD's latent settings against MDLM on a character corpus (--corpus; --methods: variants); "
        "samplers: every sampler's gen-PPL against entropy for MDLM, CADD and Co-LADD (--corpus), or their SWD on "
        "the sawtooth (--sawtooth); images: MDLM, CADD and Co-LADD on the 8x8 digits as pixel tokens",
    )
    p.add_argument("--corpus", default=None, help="text: a UTF-8 text file, e.g. tinyshakespeare.txt")
    p.add_argument("--out", required=True, help="output directory (runs, results.json, report.md, plots)")
    p.add_argument(
        "--preset",
        default="quick",
        help="smoke (seconds, pipeline check) | quick (CPU, minutes) | sawtooth: paper (authors' settings, GPU) | "
        "text: full (GPU) | images: paper (CADD's CIFAR-10 recipe on the U-Net, GPU)",
    )
    p.add_argument(
        "--methods",
        default=None,
        help="comma-separated methods (default: sawtooth mdlm; text ar,mdlm,cadd,co-ladd,di-ladd)",
    )
    p.add_argument(
        "--changes", default=None, help="sawtooth-ablation: comma-separated change numbers 1-8 (default: all)"
    )
    p.add_argument("--radii", default=None, help="sawtooth-ablation: Co-LADD also with latents of norm R, e.g. 2,4,8")
    p.add_argument(
        "--sawtooth", action="store_true", help="samplers: on the sawtooth's quick runs (SWD) instead of a corpus"
    )
    p.add_argument("--backbone", choices=("dit", "unet"), default=None, help="images: the DiT (default) or ADM's U-Net")
    p.add_argument(
        "--dataset",
        default=None,
        help="images: digits (quick's), cifar10 (paper's), imagenet32 or a folder of PNGs (default: the preset's)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    require("matplotlib", "plots", "augdiff run (its PNG plots)")
    default = "mdlm" if args.experiment == "sawtooth" else "ar,mdlm,cadd,co-ladd,di-ladd"
    methods = tuple(m.strip().lower() for m in (args.methods or default).split(",") if m.strip())
    if not methods:
        raise AugdiffError("--methods is empty (give e.g. --methods mdlm)")
    if (args.backbone is not None or args.dataset is not None) and args.experiment != "images":
        raise AugdiffError("--backbone and --dataset apply to augdiff run images only (drop them)")
    if args.sawtooth and args.experiment != "samplers":
        raise AugdiffError("--sawtooth applies to augdiff run samplers only (drop it)")
    if args.experiment == "sawtooth-ablation":
        return _run_ablation(args)
    if args.changes is not None or args.radii is not None:
        raise AugdiffError("--changes and --radii apply to sawtooth-ablation only (drop them)")
    if args.experiment == "text":
        return _run_text(args, methods)
    if args.experiment == "cadd-sweep":
        return _run_cadd_sweep(args)
    if args.experiment == "samplers":
        return _run_samplers(args)
    if args.experiment == "images":
        return _run_images(args)
    if args.corpus is not None:
        raise AugdiffError("--corpus applies to the text experiment only (drop it for sawtooth)")
    from augdiff.experiments.sawtooth import run_sawtooth

    results = run_sawtooth(args.out, preset=args.preset, methods=methods, device=args.device, seed=args.seed)
    out = Path(args.out)
    for name, res in results["methods"].items():
        swd = ", ".join(f"T={k}: {v:.3f}" for k, v in res["swd"].items())
        print(f"{name}: recon NLL {res['recon_nll']:.4f} (oracle {results['oracle_nll']:.4f}); SWD {swd}")
    print(f"noise floor {results['swd_noise_floor']:.3f}, factorized {results['swd_factorized']:.3f}")
    print(f"report: {out / 'report.md'}  results: {out / 'results.json'}  plot: {out / 'swd_vs_steps.png'}")
    return 0


def _run_ablation(args: argparse.Namespace) -> int:
    from augdiff.experiments.sawtooth_ablation import run_sawtooth_ablation

    if args.methods is not None or args.corpus is not None:
        raise AugdiffError("sawtooth-ablation takes --changes, not --methods or --corpus")
    try:
        changes = None if args.changes is None else tuple(int(c) for c in args.changes.split(",") if c.strip())
    except ValueError:
        raise AugdiffError(f"--changes {args.changes}: give comma-separated numbers, e.g. 1,2,8") from None
    try:
        radii = () if args.radii is None else tuple(float(r) for r in args.radii.split(",") if r.strip())
    except ValueError:
        raise AugdiffError(f"--radii {args.radii}: give comma-separated numbers, e.g. 2,4,8") from None
    results = run_sawtooth_ablation(
        args.out, preset=args.preset, changes=changes, radii=radii, device=args.device, seed=args.seed
    )
    for row, res in results["baseline"].items():
        print(f"baseline {row}: recon {res['recon_nll']:.4f}, SWD T=1 {res['swd']['1']:.3f}")
    for number, ab in results["ablations"].items():
        for row, res in ab["rows"].items():
            print(f"off {number} {row}: recon {res['recon_nll']:.4f}, SWD T=1 {res['swd']['1']:.3f}")
    for radius, found in results["radius"].items():
        for row, res in found.items():
            print(f"radius {radius} {row}: recon {res['recon_nll']:.4f}, SWD T=1 {res['swd']['1']:.3f}")
    print(f"report: {Path(args.out) / 'ablation' / 'report.md'}")
    return 0


def _run_text(args: argparse.Namespace, methods: tuple[str, ...]) -> int:
    from augdiff.experiments.text import run_text

    if args.corpus is None:
        raise AugdiffError("augdiff run text needs --corpus PATH (a UTF-8 text file, e.g. tinyshakespeare.txt)")
    results = run_text(args.out, args.corpus, preset=args.preset, methods=methods, device=args.device, seed=args.seed)
    for name, res in results["methods"].items():
        ppl = ", ".join(f"T={p['steps']}: {p['gen_ppl']:.1f}" for p in res["steps"] if p["gen_ppl"] is not None)
        print(f"{name}: BPC {res['bpc']:.3f}; gen-PPL {ppl}")
    out = Path(args.out)
    print(f"report: {out / 'report.md'}  results: {out / 'results.json'}")
    return 0


def _run_cadd_sweep(args: argparse.Namespace) -> int:
    from augdiff.experiments.cadd_sweep import VARIANTS, run_cadd_sweep

    if args.corpus is None:
        raise AugdiffError("augdiff run cadd-sweep needs --corpus PATH (a UTF-8 text file, e.g. tinyshakespeare.txt)")
    variants = tuple(VARIANTS) if args.methods is None else tuple(v.strip() for v in args.methods.split(","))
    results = run_cadd_sweep(
        args.out, args.corpus, preset=args.preset, variants=variants, device=args.device, seed=args.seed
    )
    for name, res in results["variants"].items():
        bound = res["bound"]["128"]["bpt_bound"]
        print(f"{name}: token term {res['token_term_bpc']:.3f} BPC, bound (T=128) {bound:.3f} BPC")
    print(f"report: {Path(args.out) / 'report.md'}  results: {Path(args.out) / 'results.json'}")
    return 0


def _run_samplers(args: argparse.Namespace) -> int:
    from augdiff.experiments.samplers import run_samplers

    if args.methods is not None:
        raise AugdiffError("augdiff run samplers compares mdlm, cadd and co-ladd (drop --methods)")
    if args.sawtooth:
        return _run_samplers_sawtooth(args)
    if args.corpus is None:
        raise AugdiffError(
            "augdiff run samplers needs --corpus PATH (a UTF-8 text file, e.g. tinyshakespeare.txt) or --sawtooth"
        )
    results = run_samplers(args.out, args.corpus, preset=args.preset, device=args.device, seed=args.seed)
    for method, res in results["methods"].items():
        for name, gains in res["gain_over_ancestral"].items():
            found = {t: [g for g in v if g is not None] for t, v in gains.items()}
            shown = ", ".join(f"T={t}: {sum(g) / len(g):+.3f}" for t, g in found.items() if g)
            print(f"{method} {name}: gain over ancestral at matched entropy {shown or 'no match'}")
    print(f"report: {Path(args.out) / 'report.md'}  results: {Path(args.out) / 'results.json'}")
    return 0


def _run_samplers_sawtooth(args: argparse.Namespace) -> int:
    from augdiff.experiments.samplers_sawtooth import run_samplers_sawtooth
    from augdiff.experiments.sawtooth import PRESETS

    if args.corpus is not None:
        raise AugdiffError("--sawtooth and --corpus are two experiments: give one")
    if args.preset not in PRESETS:
        raise AugdiffError(f"--preset {args.preset!r} is not known (choose one of: {', '.join(PRESETS)})")
    results = run_samplers_sawtooth(args.out, preset=args.preset, device=args.device, seed=args.seed)
    for name, found in results["swd"].items():
        best = min(found, key=lambda s: min(found[s].values()))
        print(f"{name}: lowest SWD with {best} ({min(found[best].values()):.3f})")
    print(f"report: {Path(args.out) / 'samplers.md'}  results: {Path(args.out) / 'samplers.json'}")
    return 0


def _run_images(args: argparse.Namespace) -> int:
    from augdiff.experiments.images import run_images

    if args.corpus is not None or args.methods is not None:
        raise AugdiffError("augdiff run images takes its methods from its preset (drop --corpus/--methods)")
    backbone = args.backbone or "dit"
    results = run_images(
        args.out, preset=args.preset, device=args.device, seed=args.seed, backbone=backbone, dataset=args.dataset
    )
    real = "" if results["real"] is None else f" (real digits {results['real']['fd']:.1f})"
    what = "Fréchet distance" if results["dataset"] == "digits" else "FID"
    for method, scores in results["methods"].items():
        shown = ", ".join(f"NFE {n}: {s['fd']:.1f}" for n, s in scores.items())
        print(f"{method}: {what} {shown}{real}")
    print(f"report: {Path(args.out) / 'report.md'}  results: {Path(args.out) / 'results.json'}")
    return 0
