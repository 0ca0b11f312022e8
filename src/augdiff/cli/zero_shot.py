"""augdiff eval --zero-shot: perplexity on the field's zero-shot corpora, as one table (MDLM's Table 3)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from augdiff.data import make_dataset
from augdiff.data.hub import ZERO_SHOT
from augdiff.errors import AugdiffError
from augdiff.experiments.report import markdown_table
from augdiff.files import check_output_file, write_text_atomic
from augdiff.metrics import estimate_nll
from augdiff.metrics.bound import estimate_bound

__all__ = ["add_flags", "parse_corpora", "run_zero_shot"]

BOUND_STEPS = 0  # the continuous-time bound (MDLM's ELBO; CADD's bound with its latent terms)


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--zero-shot",
        default=None,
        help=f"comma-separated corpora or all ({', '.join(ZERO_SHOT)}): perplexity on each, as one table "
        "(the hub's copies, with MDLM's splits and detokenizers); replaces --data",
    )
    p.add_argument("--out-md", default=None, help="--zero-shot, --code: also write the table as Markdown here")


def parse_corpora(text: str) -> list[str]:
    names = list(ZERO_SHOT) if text.strip() == "all" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in ZERO_SHOT]
    if unknown or not names:
        raise AugdiffError(f"--zero-shot {text!r}: unknown {', '.join(unknown) or 'none given'} "
                           f"(choose from {', '.join(ZERO_SHOT)} or all)")  # fmt: skip
    return names


def _evaluate(loaded: Any, name: str, args: argparse.Namespace, device: Any) -> dict[str, Any]:
    data = make_dataset(f"hf:zero-shot-{name}", like=loaded.data)
    batches = list(data.valid_batches(args.batch_size, args.max_sequences))
    eps = loaded.config.diffusion.time_eps
    est = estimate_nll(
        loaded.model, batches, time_samples=args.time_samples, time_eps=eps, seed=args.seed, device=device
    )
    row: dict[str, Any] = {
        "sequences": est.n_sequences,
        "nll": est.nll,
        "nll_stderr": est.stderr,
        "ppl": math.exp(est.nll),
    }
    if loaded.model.has_bound:
        bound = estimate_bound(
            loaded.model, batches, steps=BOUND_STEPS, time_samples=args.time_samples, seed=args.seed, device=device
        )
        row.update({"bound": bound.bound, "bound_ppl": math.exp(bound.bound)})
    return row


def run_zero_shot(args: argparse.Namespace, loaded: Any, device: Any) -> dict[str, Any]:
    """Each corpus in turn; one that cannot be loaded (offline, missing) is one line on stderr, the rest run."""
    out_md = None if args.out_md is None else check_output_file(args.out_md, "--out-md")
    results: dict[str, Any] = {}
    for name in parse_corpora(args.zero_shot):
        try:
            results[name] = _evaluate(loaded, name, args, device)
        except AugdiffError as exc:
            print(f"augdiff: --zero-shot {name}: skipped: {exc}", file=sys.stderr)
            results[name] = {"error": str(exc)}
    kind = loaded.model.nll_kind
    table = _table(results, kind)
    if out_md is not None:
        write_text_atomic(Path(out_md), table)
    print(table, file=sys.stderr)
    return {
        "zero_shot": results,
        "nll_kind": kind,
        "tokenizer": loaded.data.get("tokenizer"),
        "seq_len": loaded.data.get("seq_len"),
    }


def _table(results: dict[str, Any], kind: str) -> str:
    bounded = any("bound_ppl" in r for r in results.values())
    header = ["corpus", "PPL of the NLL", "± (stderr of NLL)", "sequences"] + (["PPL of the bound"] if bounded else [])
    rows = []
    for name, r in results.items():
        if "error" in r:
            rows.append([name, "not loaded", "", ""] + ([""] if bounded else []))
            continue
        rows.append([name, f"{r['ppl']:.2f}", f"{r['nll_stderr']:.4f}", str(r["sequences"])]
                    + ([f"{r['bound_ppl']:.2f}"] if bounded else []))  # fmt: skip
    return f"Zero-shot perplexity per token; the NLL is: {kind}.\n\n" + markdown_table(header, rows) + "\n"
