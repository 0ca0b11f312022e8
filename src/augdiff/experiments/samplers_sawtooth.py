"""The samplers on the binary sawtooth: SWD to the data for every sampler, method and budget.

``augdiff run samplers --sawtooth --out DIR``: the sawtooth experiment's quick-preset MDLM, CADD and Co-LADD
(joint inference) runs (trained, or reused from ``DIR``: a copy of ``augdiff run sawtooth``'s output is reused
as it is), each sampled with every sampler of :data:`~augdiff.experiments.samplers.FRONTIER_SAMPLERS` at
T ∈ {2, 8, 32}; the sliced Wasserstein distance to the validation data, against the noise floor (data vs data)
and the factorized value (what one ancestral step can reach).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from augdiff.data import SawtoothDataset
from augdiff.experiments.report import markdown_table
from augdiff.experiments.samplers import FRONTIER_SAMPLERS
from augdiff.experiments.sawtooth import PRESETS, method_config, swd_between, swd_references
from augdiff.experiments.sawtooth_ladd import LADD_RUNS
from augdiff.experiments.training import train_or_reuse, train_two_stages
from augdiff.files import ensure_dir, json_safe, save_figure, write_text_atomic
from augdiff.runs import load_run
from augdiff.sampling import generate, sampler_options
from augdiff.train import resolve_device

__all__ = ["SAWTOOTH_RUNS", "SAWTOOTH_STEPS", "run_samplers_sawtooth"]

SAWTOOTH_STEPS = (2, 8, 32)
# run directory → (method, how it is trained)
SAWTOOTH_RUNS = {"mdlm": "mdlm", "cadd": "cadd", "co-ladd-joint": "co-ladd"}


def _train(out: Path, preset: str, seed: int, device: str) -> None:
    spec = PRESETS[preset]
    for name, method in SAWTOOTH_RUNS.items():
        if method in LADD_RUNS:
            run = LADD_RUNS[method][0]

            def config(stage: int, init: str | None, run: Any = run, m: str = method) -> Any:
                return method_config(m, spec, seed=seed, device=device, stage=stage, init_from=init, run=run)

            train_two_stages(name, out, config)
        else:
            train_or_reuse(method_config(method, spec, seed=seed, device=device), out / name)


def run_samplers_sawtooth(
    out_dir: str | Path, *, preset: str = "quick", device: str = "auto", seed: int = 0
) -> dict[str, Any]:
    """Train (or reuse) the runs and measure every sampler's SWD; write samplers.json, samplers.md and
    samplers_swd.png (beside a sawtooth experiment's own files, which they leave alone)."""
    out = ensure_dir(Path(out_dir), "--out")
    spec = PRESETS[preset]
    _train(out, preset, seed, device)
    dev = resolve_device(device)
    data = SawtoothDataset(valid_size=max(spec.valid_sequences, spec.swd_samples))
    reference, refs = swd_references(data, spec.swd_samples, spec.n_directions)
    steps = SAWTOOTH_STEPS if preset != "smoke" else (2,)
    results: dict[str, Any] = {"experiment": "samplers-sawtooth", "preset": preset, **refs, "swd": {}}
    for name in SAWTOOTH_RUNS:
        loaded = load_run(out / name, device=dev)
        found: dict[str, dict[str, float]] = {}
        for sampler in FRONTIER_SAMPLERS:
            found[sampler] = {}
            for t in steps:
                model = loaded.model
                options = {"batch_size": spec.sample_batch, "seed": seed + t, "device": dev}
                x = generate(
                    model, model.schedule, spec.swd_samples, data.seq_len, t, **options, **sampler_options(sampler)
                )
                found[sampler][str(t)] = swd_between(x, reference, spec.n_directions)
        results["swd"][name] = found
    write_text_atomic(out / "samplers.json", json.dumps(json_safe(results), indent=2))
    _plot(results, out / "samplers_swd.png")
    _report(results, out / "samplers.md")
    return results


def _plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["swd"]
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 4), sharey=True)
    for ax, (name, found) in zip(axes, runs.items(), strict=True):
        for sampler, by_t in found.items():
            ts = sorted(int(t) for t in by_t)
            ax.plot(ts, [by_t[str(t)] for t in ts], marker="o", label=sampler)
        ax.axhline(results["swd_noise_floor"], color="grey", ls=":", label="noise floor")
        ax.axhline(results["swd_factorized"], color="grey", ls="--", label="factorized")
        ax.set(xscale="log", yscale="log", xlabel="sampling steps T", title=name)
        ax.set_xticks(ts, [str(t) for t in ts])
        ax.minorticks_off()
    axes[0].set_ylabel("SWD to the data (log)")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def _report(results: dict[str, Any], path: Path) -> None:
    lines = [
        f"# Samplers on the binary sawtooth ({results['preset']} preset)",
        "",
        f"SWD to the validation data; noise floor {results['swd_noise_floor']:.3f}, factorized "
        f"{results['swd_factorized']:.3f}.",
        "",
    ]
    for name, found in results["swd"].items():
        ts = sorted({int(t) for by_t in found.values() for t in by_t})
        rows = [[s] + [f"{by_t[str(t)]:.3f}" for t in ts] for s, by_t in found.items()]
        lines += [f"## {name}", "", markdown_table(["sampler"] + [f"T={t}" for t in ts], rows), ""]
    lines.append("![SWD](samplers_swd.png)")
    write_text_atomic(path, "\n".join(lines) + "\n")
