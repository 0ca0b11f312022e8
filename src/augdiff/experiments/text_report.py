"""Report of the text experiment: Markdown tables and PNG plots (gen-PPL and entropy against steps and GFLOPs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter, ScalarFormatter  # noqa: E402

from augdiff.experiments.report import markdown_table  # noqa: E402
from augdiff.files import save_figure, write_text_atomic  # noqa: E402

__all__ = ["plot_text", "write_text_report"]


def _series(res: dict[str, Any], x: str, y: str, seq_len: int) -> tuple[list[float], list[float]]:
    """The (x, y) points of one method, sorted by x; AR's single point sits at L steps (one token per step)."""
    pts = []
    for p in res["steps"]:
        xv = seq_len if x == "steps" and p["steps"] is None else p.get(x)
        yv = _entropy(p) if y == "entropy" else p.get(y)
        if xv is not None and yv is not None:
            pts.append((xv, yv))
    pts.sort()
    return [a for a, _ in pts], [b for _, b in pts]


def _entropy(point: dict[str, Any]) -> float:
    return float(point["entropy"]["unigram"])


def _plot(results: dict[str, Any], path: Path, x: str, y: str, xlabel: str, ylabel: str) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ref = results.get("data_reference", {})
    for name, res in results["methods"].items():
        xs, ys = _series(res, x, y, results["settings"]["seq_len"])
        if name == "ar":
            ax.plot(xs, ys, marker="*", markersize=12, linestyle="none", color="black", label="ar")
        else:
            ax.plot(xs, ys, marker="o", label=name)
    if y == "gen_ppl" and ref.get("gen_ppl") is not None:
        ax.axhline(ref["gen_ppl"], color="gray", linestyle="--", label="validation data")
    if y == "entropy" and ref.get("entropy"):
        ax.axhline(ref["entropy"]["unigram"], color="gray", linestyle="--", label="validation data")
    ax.set_xscale("log", base=2 if x == "steps" else 10)
    if y == "gen_ppl":
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{Path(results['corpus']).name}, {results['preset']} preset")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_text(results: dict[str, Any], out: Path) -> None:
    """``gen_ppl_vs_steps.png``, ``gen_ppl_vs_gflops.png`` and ``entropy_vs_steps.png`` in ``out``."""
    teacher = "gen-PPL under the AR teacher"
    _plot(results, out / "gen_ppl_vs_steps.png", "steps", "gen_ppl", "sampling steps T", teacher)
    _plot(results, out / "gen_ppl_vs_gflops.png", "gflops_per_sample", "gen_ppl", "GFLOPs per sample", teacher)
    _plot(results, out / "entropy_vs_steps.png", "steps", "entropy", "sampling steps T", "unigram entropy (nats)")


def _fmt(v: Any, spec: str = ".2f") -> str:
    return "n/a" if v is None else format(v, spec)


def write_text_report(results: dict[str, Any], path: Path) -> None:
    """The Markdown report: BPC, gen-PPL/entropy per step count, the matched-compute frontier."""
    methods = results["methods"]
    bpc_rows = [
        [
            name,
            f"{r['bpc']:.4f}",
            f"± {r['bpc_stderr']:.4f}",
            _fmt(r.get("bpc_bound"), ".4f"),
            str(r["train_steps"]),
            f"{r['train_seconds']:.0f}",
        ]
        for name, r in methods.items()
    ]
    steps = results["settings"]["sampling_steps"]
    ppl_rows, ent_rows = [], []
    for name, r in methods.items():
        by = {p["steps"]: p for p in r["steps"]}
        if name == "ar":
            p = r["steps"][0]
            ppl_rows.append([name] + [_fmt(p["gen_ppl"])] * len(steps))
            ent_rows.append([name] + [_fmt(_entropy(p), ".3f")] * len(steps))
            continue
        ppl_rows.append([name] + [_fmt(by[s]["gen_ppl"]) if s in by else "n/a" for s in steps])
        ent_rows.append([name] + [_fmt(_entropy(by[s]), ".3f") if s in by else "n/a" for s in steps])
    ref = results.get("data_reference", {})
    ppl_rows.append(["validation data"] + [_fmt(ref.get("gen_ppl"))] * len(steps))
    ent_rows.append(["validation data"] + [_fmt(ref.get("entropy", {}).get("unigram"), ".3f")] * len(steps))
    budgets = results.get("budgets_gflops", [])
    front_rows = [[name] + [_fmt(v) for v in r.get("frontier", [])] for name, r in methods.items() if name != "ar"]
    gflop_rows = [
        [name, f"{r['steps'][0]['gflops_per_step']:.5f}", f"{r['steps'][0]['gflops_per_step_eq77']:.5f}"]
        for name, r in methods.items()
    ]
    speed_rows = [
        [name] + [_fmt({p["steps"]: p for p in r["steps"]}.get(s, {}).get("samples_per_s"), ".1f") for s in steps]
        for name, r in methods.items()
        if name != "ar"
    ]
    ar = methods.get("ar", {}).get("steps", [{}])[0]
    sections = [
        f"# Text — {Path(results['corpus']).name}, {results['preset']} preset",
        f"Character level ({results['vocab_size']} symbols); every method has the same backbone size and the same "
        "number of optimizer steps (LADD: half in stage 1, half in stage 2). Gen-PPL is the pooled per-token "
        "perplexity of the samples under the AR model of this run (the teacher); entropy is the per-sample "
        "unigram entropy (ReMDM), in nats.",
        "## Validation bits per character\n\n"
        + markdown_table(["method", "BPC", "std. error", "bound (T=128)", "train steps", "train seconds"], bpc_rows),
        "AR's value is its exact NLL. MDLM's is its ELBO (an upper bound). CADD's and LADD's are the token term "
        "given a latent that carries information about x (CADD: the noisy embedding of x itself; LADD -seq: the "
        "clean encoder latent of x; -joint: that latent at t_y = t): lower than a likelihood can be, and not "
        "comparable with AR's or MDLM's as a likelihood (the papers report them the same way). The bound column is "
        "an upper bound on −log p(x) per character on a 128-step grid (metrics.bound): MDLM's discrete-time ELBO, "
        "and for CADD the token term plus the latent's KL terms; n/a where none is derived (LADD) or needed (AR).",
        "## Gen-PPL against sampling steps\n\n" + markdown_table(["method"] + [str(s) for s in steps], ppl_rows),
        "## Entropy against sampling steps\n\n" + markdown_table(["method"] + [str(s) for s in steps], ent_rows),
        "## Matched-compute frontier (LADD Table 2)\n\nGen-PPL at fixed GFLOPs-per-sample budgets, linearly "
        "interpolated between measured step counts; n/a outside the measured range (no extrapolation). "
        f"AR for reference: gen-PPL {_fmt(ar.get('gen_ppl'))} at {_fmt(ar.get('gflops_per_sample'), '.3f')} "
        "GFLOPs per sample.\n\n" + markdown_table(["method"] + [f"{b:.3f}" for b in budgets], front_rows),
        "## Cost and speed\n\nGFLOPs per sampling step and sequence (measured by torch.utils.flop_counter, and "
        "LADD Eq 77, backbone only); samples per second at each step count on this machine.\n\n"
        + markdown_table(["method", "GFLOPs/step", "Eq 77"], gflop_rows)
        + "\n\n"
        + markdown_table(["method"] + [str(s) for s in steps], speed_rows),
        "## One sample per method (largest step count)\n\n"
        + "\n".join(f"- **{name}**: `{r['steps'][-1].get('example', '')[:160]!r}`" for name, r in methods.items()),
        "![gen-PPL vs steps](gen_ppl_vs_steps.png)\n\n![gen-PPL vs GFLOPs](gen_ppl_vs_gflops.png)\n\n"
        "![entropy vs steps](entropy_vs_steps.png)",
    ]
    write_text_atomic(path, "\n\n".join(sections) + "\n")
