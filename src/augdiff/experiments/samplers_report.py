"""The sampler experiment's plots (one frontier per method) and Markdown report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from augdiff.experiments.report import markdown_table
from augdiff.files import save_figure, write_text_atomic

__all__ = ["plot_frontiers", "write_samplers_report"]

_MARKERS = {8: "o", 32: "s", 128: "^"}


def plot_frontiers(results: dict[str, Any], out: Path) -> None:
    """``frontier_<method>.png``: gen-PPL against unigram entropy, one colour per sampler, one marker per T; the
    points of one (sampler, T) — its top-p values — joined by a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = plt.get_cmap("tab10")
    for method, res in results["methods"].items():
        fig, ax = plt.subplots(figsize=(9, 5))
        for i, (name, rows) in enumerate(res["sampling"].items()):
            for t in sorted({r["steps"] for r in rows}):
                pts = sorted((r["entropy"], r["gen_ppl"]) for r in rows if r["steps"] == t and r["gen_ppl"])
                if not pts:
                    continue
                xs, ys = zip(*pts, strict=True)
                label = name if t == min(r["steps"] for r in rows) else None
                ax.plot(xs, ys, color=colors(i % 10), marker=_MARKERS.get(t, "x"), markersize=4, lw=1, label=label)
        ax.set(xlabel="unigram entropy (nats)", ylabel="gen-PPL (AR teacher)", yscale="log")
        ax.set_title(f"{method}: samplers at T = " + ", ".join(f"{t} ({m})" for t, m in _MARKERS.items()))
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
        fig.tight_layout()
        save_figure(fig, out / f"frontier_{method}.png")
        plt.close(fig)


def _cell(rows: list[dict[str, Any]], t: int, top_p: float) -> str:
    row = next((r for r in rows if r["steps"] == t and r["top_p"] == top_p), None)
    if row is None or row["gen_ppl"] is None:
        return "–"
    return f"{row['gen_ppl']:.1f} / {row['entropy']:.2f}"


def _gain(values: list[float | None]) -> str:
    found = [v for v in values if v is not None]
    return "no match" if not found else f"{sum(found) / len(found):+.3f} ({len(found)})"


def write_samplers_report(results: dict[str, Any], path: Path) -> None:
    lines = [
        f"# Samplers ({results['preset']} preset, {Path(results['corpus']).name})",
        "",
        f"{results['num_samples']} samples per point; gen-PPL under the run's AR teacher / unigram entropy (nats).",
        "Gain: mean over the top-p values of log(ancestral gen-PPL at the same entropy) − log(gen-PPL);",
        "> 0 means better than ancestral at matched entropy (count of matched points in brackets).",
        "",
    ]
    for method, res in results["methods"].items():
        steps = sorted({r["steps"] for r in res["sampling"]["ancestral"]})
        header = ["sampler"] + [f"T={t} top-p 1" for t in steps] + [f"gain T={t}" for t in steps]
        rows = []
        for name, found in res["sampling"].items():
            gains = res["gain_over_ancestral"].get(name, {})
            rows.append(
                [name]
                + [_cell(found, t, 1.0) for t in steps]
                + [_gain(gains[str(t)]) if name != "ancestral" else "–" for t in steps]
            )
        lines += [f"## {method}", "", markdown_table(header, rows), "", f"![{method}](frontier_{method}.png)", ""]
    write_text_atomic(path, "\n".join(lines))
