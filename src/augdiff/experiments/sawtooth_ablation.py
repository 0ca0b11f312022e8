"""The LADD ablation on the binary sawtooth: each of the eight changes that brought augdiff's latent channel to
its authors' settings (:data:`augdiff.experiments.sawtooth_ladd.ABLATIONS`) switched off alone, one run each
with the same seed, against the baseline with all eight on.

Every row reports the token reconstruction NLL and the SWD at T = 1 and 2 token steps of co-ladd-joint and
co-ladd-seq (change 7, Di-LADD's, reports di-ladd-joint and di-ladd-seq). The baseline runs live in ``out``
itself, where ``augdiff run sawtooth --out`` puts them (one command reuses the other's), those with change N
switched off in ``out/off-N``, and the results in ``out/ablation/``; finished runs are reused when the command is
run again. Every model trains at the preset's common LADD budget, so that a change is the only difference: a
model the preset itself trains otherwise (the quick preset's joint Co-LADD, ``ladd_by_run``) has its baseline
trained again at that budget, in ``out/common-budget``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from augdiff.data import SawtoothDataset  # noqa: E402
from augdiff.errors import AugdiffError  # noqa: E402
from augdiff.experiments.report import markdown_table  # noqa: E402
from augdiff.experiments.sawtooth import PRESETS, ladd_rows, swd_references  # noqa: E402
from augdiff.experiments.sawtooth_ladd import ABLATIONS, ladd_runs  # noqa: E402
from augdiff.files import ensure_dir, save_figure, write_text_atomic  # noqa: E402
from augdiff.train import resolve_device  # noqa: E402

__all__ = ["ABLATION_STEPS", "run_sawtooth_ablation"]

ABLATION_STEPS = (1, 2)


def _parse_changes(changes: tuple[int, ...] | None) -> list[Any]:
    known = {a.number: a for a in ABLATIONS}
    wanted = tuple(known) if changes is None else changes
    bad = [c for c in wanted if c not in known]
    if bad or not wanted:
        raise AugdiffError(f"--changes {','.join(map(str, wanted))}: choose among {', '.join(map(str, known))}")
    return [known[c] for c in wanted]


def run_sawtooth_ablation(
    out_dir: str | Path,
    *,
    preset: str = "quick",
    changes: tuple[int, ...] | None = None,
    radii: tuple[float, ...] = (),
    device: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Train and evaluate the baseline and each ablation; write ``out/ablation/``: results.json, report.md and
    ablation.png."""
    if preset not in PRESETS:
        raise AugdiffError(f"--preset {preset!r} is not known (choose one of: {', '.join(PRESETS)})")
    selected = _parse_changes(changes)
    if any(not 0 < r < math.inf for r in radii):
        raise AugdiffError(f"--radii {','.join(map(str, radii))}: every radius must be positive")
    special = {*PRESETS[preset].ladd_by_run, *PRESETS[preset].ladd_steps_by_run}
    spec, out = replace(PRESETS[preset], ladd_by_run={}, ladd_steps_by_run={}), Path(out_dir)
    if out.exists() and not out.is_dir():
        raise AugdiffError(f"--out {out}: exists and is not a directory (choose another path)")
    dev = resolve_device(device)
    data = SawtoothDataset(valid_size=max(spec.valid_sequences, spec.swd_samples))
    reference, refs = swd_references(data, spec.swd_samples, spec.n_directions)

    def rows(method: str, where: Path, overrides: dict[str, Any] | None = None, mixed: bool = False) -> dict:
        found: dict[str, Any] = {}
        for run in ladd_runs(method, mixed):
            home = where / "common-budget" if where == out and run.name in special else where
            found.update(ladd_rows(run, home, spec, data, reference, dev, seed, device, overrides, ABLATION_STEPS))
        return found

    methods = sorted({a.method for a in selected} | ({"co-ladd"} if radii else set()))
    baseline = {row: res for m in methods for row, res in rows(m, out).items()}
    results: dict[str, Any] = {
        "experiment": "sawtooth-ablation",
        "preset": preset,
        "settings": asdict(spec),
        "oracle_nll": data.oracle_nll(),
        **refs,
        "baseline": baseline,
        "ablations": {},
        "radius": {},
    }
    for ab in selected:
        found = rows(ab.method, out / f"off-{ab.number}", ab.overrides, ab.mixed)
        results["ablations"][str(ab.number)] = {"change": ab.change, "method": ab.method, "rows": found}
    for name, norm in _normalizations(radii).items():
        results["radius"][name] = rows("co-ladd", out / f"normalize-{name}", norm)
    report = ensure_dir(out / "ablation", "--out")
    write_text_atomic(report / "results.json", json.dumps(results, indent=2))
    plot_ablation(results, report / "ablation.png")
    write_ablation_report(results, report / "report.md")
    return results


def _normalizations(radii: tuple[float, ...]) -> dict[str, dict[str, Any]]:
    """Co-LADD's normalization against R: none (the authors' sawtooth code), then spheres of radius R (unit,
    R = 1, is change 2); nothing when no radius is asked for."""
    if not radii:
        return {}
    sweep: dict[str, dict[str, Any]] = {"none": {"ladd.normalize": "none", "ladd.radius": 1.0}}
    sweep.update({f"{r:g}": {"ladd.normalize": "radius", "ladd.radius": r} for r in radii})
    return sweep


def _cells(res: dict[str, Any], base: dict[str, Any] | None) -> list[str]:
    """recon (Δ against the baseline) and SWD at T = 1, 2 of one row."""
    delta = "" if base is None else f" ({res['recon_nll'] - base['recon_nll']:+.4f})"
    return [f"{res['recon_nll']:.4f}{delta}"] + [f"{res['swd'][str(t)]:.3f}" for t in ABLATION_STEPS]


def write_ablation_report(results: dict[str, Any], path: Path) -> None:
    base = results["baseline"]
    header = ["switched off", "row", "recon NLL (Δ vs baseline)"] + [f"SWD T={t}" for t in ABLATION_STEPS]
    table = [["nothing (baseline)", row, *_cells(res, None)] for row, res in base.items()]
    for number, ab in results["ablations"].items():
        for row, res in ab["rows"].items():
            table.append([f"{number}. {ab['change']}", row, *_cells(res, base.get(row))])
    for radius, found in results.get("radius", {}).items():
        for row, res in found.items():
            label = "normalize=none" if radius == "none" else f"normalize=radius, R = {radius}"
            table.append([label, row, *_cells(res, base.get(row))])
    text = [
        f"# LADD ablation on the binary sawtooth — {results['preset']} preset",
        "Each row switches one of the eight changes to the authors' settings off alone (same seed, same budget). "
        "Recon NLL: the token term given the latent (nats per token; not a likelihood of x). "
        f"Oracle {results['oracle_nll']:.4f}; SWD noise floor {results['swd_noise_floor']:.3f}, "
        f"factorized {results['swd_factorized']:.3f}.",
        markdown_table(header, table),
        "![ablation](ablation.png)",
    ]
    write_text_atomic(path, "\n\n".join(text) + "\n")


def plot_ablation(results: dict[str, Any], path: Path) -> None:
    """Recon NLL and 1-step SWD per switched-off change (bars per row), with the baseline as lines."""
    radius = results.get("radius", {})
    labels = (
        ["baseline"]
        + [f"off {n}" for n in results["ablations"]]
        + [f"R={r}" if r != "none" else "no norm" for r in radius]
    )
    series = [results["baseline"]] + [ab["rows"] for ab in results["ablations"].values()] + list(radius.values())
    rows = sorted({row for s in series for row in s})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / max(len(rows), 1)
    for k, row in enumerate(rows):
        xs = [i + k * width for i, s in enumerate(series) if row in s]
        for ax, value in zip(axes, (lambda r: r["recon_nll"], lambda r: r["swd"]["1"]), strict=True):
            ax.bar(xs, [value(s[row]) for s in series if row in s], width, label=row)
    axes[0].axhline(results["oracle_nll"], color="gray", linestyle="--", label="oracle")
    axes[1].axhline(results["swd_noise_floor"], color="gray", linestyle="--", label="noise floor")
    axes[1].axhline(results["swd_factorized"], color="tab:red", linestyle=":", label="factorized")
    for ax, title in zip(axes, ("token recon NLL (nats/token)", "SWD at T = 1"), strict=True):
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))], labels, rotation=30, fontsize=8)
        ax.set_title(title)
        ax.grid(alpha=0.3, axis="y")
    lowest = min([results["oracle_nll"]] + [res["recon_nll"] for s in series for res in s.values()])
    axes[0].set_ylim(bottom=lowest - 0.01)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
