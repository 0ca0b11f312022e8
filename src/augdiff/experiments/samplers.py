"""Which sampler to pick: generative perplexity against unigram entropy for every sampler, method and budget.

``augdiff run samplers --corpus PATH --out DIR``: the text experiment's AR teacher, MDLM, CADD and Co-LADD (joint
inference) on a character corpus (trained, or reused from ``--out``); each draws samples with every sampler of
:data:`FRONTIER_SAMPLERS` at T ∈ {8, 32, 128} and three nucleus thresholds (top-p 1, 0.95, 0.9: each sampler's
quality–diversity curve). ReMDM's claim is checked as the ReMDM paper states it: at equal steps and matched
entropy a remasking sampler beats the ancestral one, more so as T grows. Matched entropy: the ancestral curve
(log gen-PPL linear in entropy between its two nearest points) read at the remasking point's entropy.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from augdiff.data import make_dataset
from augdiff.errors import AugdiffError
from augdiff.experiments.samplers_report import plot_frontiers, write_samplers_report
from augdiff.experiments.text import TEXT_PRESETS, text_method_config
from augdiff.experiments.training import train_or_reuse, train_two_stages
from augdiff.files import ensure_dir, json_safe, write_text_atomic
from augdiff.methods import LADD_METHODS
from augdiff.metrics.generation import evaluate_generation
from augdiff.metrics.teacher import load_teacher
from augdiff.runs import load_run
from augdiff.sampling import sampler_options
from augdiff.train import resolve_device

__all__ = ["FRONTIER_METHODS", "FRONTIER_SAMPLERS", "TOP_P", "STEPS", "matched_gain", "run_samplers"]

FRONTIER_METHODS = ("mdlm", "cadd", "co-ladd")
#: the run whose model scores the others' samples (gen-PPL): the AR reference, trained first
TEACHER = "ar"
FRONTIER_SAMPLERS = ("ancestral", "confidence", "cap", "rescale", "conf", "loop", "dfm")
TOP_P = (1.0, 0.95, 0.9)
STEPS = (8, 32, 128)


def matched_gain(point: tuple[float, float], curve: list[tuple[float, float]]) -> float | None:
    """log(gen-PPL of ``curve`` at ``point``'s entropy) − log(``point``'s gen-PPL): > 0 when ``point`` is better.

    ``curve``: (entropy, gen-PPL) points of the reference sampler; the reading is linear in entropy between
    its two nearest points on either side. ``None`` when the entropy lies outside the curve's range (no match).
    """
    entropy, ppl = point
    pts = sorted(curve)
    for (e0, p0), (e1, p1) in zip(pts, pts[1:], strict=False):
        if e0 <= entropy <= e1 and e1 > e0:
            w = (entropy - e0) / (e1 - e0)
            return (1 - w) * math.log(p0) + w * math.log(p1) - math.log(ppl)
    return None


def _train(out: Path, corpus: str, preset: str, seed: int, device: str) -> None:
    spec = TEXT_PRESETS[preset]
    for method in (TEACHER, *FRONTIER_METHODS):
        if method in LADD_METHODS:
            train_two_stages(
                method,
                out,
                lambda stage, init, m=method: text_method_config(
                    m, spec, corpus, seed=seed, device=device, stage=stage, init_from=init
                ),
            )
        else:
            train_or_reuse(text_method_config(method, spec, corpus, seed=seed, device=device), out / method)


def _sweep(run_dir: Path, teacher: Any, preset: str, dev: torch.device, seed: int) -> dict[str, Any]:
    """Rows of (sampler, top-p, T) → gen-PPL, unigram entropy, seconds and network evaluations."""
    spec = TEXT_PRESETS[preset]
    loaded = load_run(run_dir, device=dev)
    steps = STEPS if preset != "smoke" else spec.sampling_steps
    found: dict[str, Any] = {}
    for name in FRONTIER_SAMPLERS:
        rows = []
        for top_p in TOP_P:
            evals = evaluate_generation(
                loaded.model, loaded.data, steps, spec.num_samples, teacher=teacher, batch_size=spec.sample_batch,
                top_p=top_p, seed=seed, device=dev, sampler=sampler_options(name),
            )  # fmt: skip
            for ev in evals:
                row = ev.as_dict()
                rows.append(
                    {
                        "top_p": top_p,
                        "steps": ev.steps,
                        "gen_ppl": row["gen_ppl"],
                        "entropy": row["entropy"]["unigram"],
                        "seconds": row["seconds"],
                    }
                )
        found[name] = rows
    return found


def _gains(sampling: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, list[float | None]]]:
    """For each sampler and T, the matched-entropy gain over ancestral at each top-p (see :func:`matched_gain`)."""
    gains: dict[str, dict[str, list[float | None]]] = {}
    for name, rows in sampling.items():
        if name == "ancestral":
            continue
        gains[name] = {}
        for t in sorted({r["steps"] for r in rows}):
            curve = [(r["entropy"], r["gen_ppl"]) for r in sampling["ancestral"] if r["steps"] == t]
            mine = [(r["entropy"], r["gen_ppl"]) for r in rows if r["steps"] == t]
            gains[name][str(t)] = [matched_gain(p, curve) for p in mine]
    return gains


def run_samplers(
    out_dir: str | Path, corpus: str, *, preset: str = "quick", device: str = "auto", seed: int = 0
) -> dict[str, Any]:
    """Train (or reuse) the runs, sweep the samplers; write results.json, report.md and one plot per method."""
    if preset not in TEXT_PRESETS:
        raise AugdiffError(f"--preset {preset!r} is not known (choose one of: {', '.join(TEXT_PRESETS)})")
    out = Path(out_dir)
    ensure_dir(out, "--out")
    spec = TEXT_PRESETS[preset]
    make_dataset(f"text:{corpus}", seq_len=spec.seq_len)  # checks the corpus before any training
    dev = resolve_device(device)
    _train(out, corpus, preset, seed, device)
    teacher = load_teacher(str(out / TEACHER), device=dev, batch_size=spec.sample_batch)
    results: dict[str, Any] = {
        "experiment": "samplers",
        "preset": preset,
        "corpus": str(Path(corpus).expanduser().resolve()),
        "samplers": {name: repr(sampler_options(name)) for name in FRONTIER_SAMPLERS},
        "top_p": list(TOP_P),
        "num_samples": spec.num_samples,
        "methods": {},
    }
    for method in FRONTIER_METHODS:
        sampling = _sweep(out / method, teacher, preset, dev, seed)
        results["methods"][method] = {"sampling": sampling, "gain_over_ancestral": _gains(sampling)}
    write_text_atomic(out / "results.json", json.dumps(json_safe(results), indent=2))
    plot_frontiers(results, out)
    write_samplers_report(results, out / "report.md")
    return results
