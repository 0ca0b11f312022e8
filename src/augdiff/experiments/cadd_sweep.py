"""CADD's latent channel swept against MDLM on a character corpus (``augdiff run cadd-sweep``).

Each variant changes what the latent can carry (time conditioning, a fixed latent radius, the gradient
through z_0) and is trained under the text experiment's preset (same backbone, steps and data). Each trained
model is then sampled with each ẑ_0 estimate (hard, soft, sample) and with K = 4 latent particles (hard).
Reported per model:

* cross-entropy on masked positions in training-style states at t ∈ TIMES (the latent built from the true
  token): where the latent helps and where it only gives x_0 away;
* the likelihood bound (metrics.bound) on a T-step grid for each T in BOUND_STEPS and in continuous time, with
  its token and latent parts, beside the token term alone (what the CADD paper reports as BPC);
* generative perplexity under the AR teacher and unigram entropy at each sampling budget, per sampler.

A variant wins when, at every budget, its gen-PPL is at most MDLM's with unigram entropy within 0.05 nats.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from augdiff.config import build_config, config_to_dict
from augdiff.data import make_dataset
from augdiff.errors import AugdiffError
from augdiff.experiments.cadd_sweep_report import plot_sweep, write_sweep_report
from augdiff.experiments.text import TEXT_PRESETS, text_method_config
from augdiff.experiments.training import train_or_reuse
from augdiff.files import ensure_dir, json_safe, write_text_atomic
from augdiff.metrics import estimate_nll
from augdiff.metrics.bound import estimate_bound
from augdiff.metrics.generation import evaluate_generation
from augdiff.metrics.teacher import load_teacher
from augdiff.runs import load_run
from augdiff.train import resolve_device

__all__ = ["VARIANTS", "TIMES", "BOUND_STEPS", "SWEEP_STEPS", "masked_cross_entropy", "wins", "run_cadd_sweep"]

# name → (method, config changes on top of the text experiment's config)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "mdlm": ("mdlm", {}),
    "mdlm-time": ("mdlm", {"model": {"time_conditioning": True}}),
    "cadd-paper": ("cadd", {}),
    "cadd-r0.25": ("cadd", {"cadd": {"radius": 0.25}}),
    "cadd-r1": ("cadd", {"cadd": {"radius": 1.0}}),
    "cadd-time": ("cadd", {"model": {"time_conditioning": True}}),
    "cadd-time-r1": ("cadd", {"model": {"time_conditioning": True}, "cadd": {"radius": 1.0}}),
    "cadd-time-r8": ("cadd", {"model": {"time_conditioning": True}, "cadd": {"radius": 8.0}}),
    "cadd-time-stopgrad": ("cadd", {"model": {"time_conditioning": True}, "cadd": {"z0_grad": False}}),
    "cadd-gated": ("cadd", {"cadd": {"fusion": "gated"}}),
    "cadd-gated-r1": ("cadd", {"cadd": {"fusion": "gated", "radius": 1.0}}),
    # the information of cadd-r1 (R/σ = 1) with noise on the embeddings' scale (init RMS 0.02), so that the mask
    # embedding is not swamped by noise of norm √D at masked positions
    "cadd-small-noise": ("cadd", {"cadd": {"radius": 0.02, "sigma": 0.02}}),
}
TIMES = (0.95, 0.8, 0.6, 0.4, 0.2, 0.05)
BOUND_STEPS = (8, 32, 128, 512, 0)
SWEEP_STEPS = (8, 32, 128)
# sampler name → (ẑ_0 estimate, K latent particles)
SAMPLERS = {"hard": ("hard", 1), "soft": ("soft", 1), "sample": ("sample", 1), "hard-k4": ("hard", 4)}
ENTROPY_TOLERANCE = 0.05


def _merge(tree: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(tree)
    for key, value in changes.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def variant_config(name: str, preset: str, corpus: str, seed: int, device: str) -> Any:
    method, changes = VARIANTS[name]
    base = config_to_dict(text_method_config(method, TEXT_PRESETS[preset], corpus, seed=seed, device=device))
    return build_config(_merge(base, changes))


@torch.no_grad()
def masked_cross_entropy(model: torch.nn.Module, batches: list[torch.Tensor], t: float, seed: int = 0) -> float:
    """Mean −log p_θ(x_0ⁱ | x_t, z_t) over masked positions, x_t and z_t drawn from q(· | x_0) at time ``t``."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    total = count = 0.0
    for x0 in batches:
        tt = torch.full((x0.shape[0],), t)
        x_t, _, log_p, _ = model.denoise(x0, tt, model.schedule(tt).alpha_t, gen)
        masked = x_t == model.mask_id
        ce = -log_p.float().gather(-1, x0.unsqueeze(-1)).squeeze(-1)
        total += float((ce * masked).sum())
        count += float(masked.sum())
    return total / max(count, 1.0)


def wins(candidate: list[dict[str, Any]], reference: list[dict[str, Any]]) -> bool:
    """Gen-PPL ≤ the reference's at every budget, with unigram entropy within ENTROPY_TOLERANCE nats."""
    ref = {r["steps"]: r for r in reference}
    for row in candidate:
        other = ref.get(row["steps"])
        if other is None or row["gen_ppl"] is None or other["gen_ppl"] is None:
            return False
        close = abs(row["entropy"]["unigram"] - other["entropy"]["unigram"]) <= ENTROPY_TOLERANCE
        if not (close and row["gen_ppl"] <= other["gen_ppl"]):
            return False
    return bool(candidate)


def _evaluate(run_dir: Path, data: Any, teacher: Any, spec: Any, dev: torch.device, seed: int) -> dict[str, Any]:
    loaded = load_run(run_dir, device=dev)
    model = loaded.model
    valid = [b.to(dev) for b in data.valid_batches(spec.sample_batch, spec.valid_sequences)]
    token = estimate_nll(model, valid, time_samples=spec.time_samples, device=dev)
    bounds = {}
    for steps in BOUND_STEPS:
        est = estimate_bound(model, valid, steps=steps, time_samples=spec.time_samples, seed=seed, device=dev)
        bounds[str(steps)] = est.as_dict()
    is_cadd = loaded.config.method == "cadd"
    sampling = {}
    for name in SAMPLERS if is_cadd else ("-",):
        options = model.sampling_options(z0_hat=SAMPLERS[name][0], k=SAMPLERS[name][1]) if is_cadd else None
        evals = evaluate_generation(
            loaded.model, loaded.data, SWEEP_STEPS, spec.num_samples, teacher=teacher, batch_size=spec.sample_batch,
            seed=seed, device=dev, sampler={"channel_options": options},
        )  # fmt: skip
        sampling[name] = [ev.as_dict() for ev in evals]
    return {
        "token_term_bpc": token.nll / math.log(2),
        "token_term_stderr": token.stderr / math.log(2),
        "bound": bounds,
        "cross_entropy": {str(t): masked_cross_entropy(model, valid[:2], t, seed) for t in TIMES},
        "sampling": sampling,
    }


_EVALUATED = ("token_term_bpc", "token_term_stderr", "bound", "cross_entropy", "sampling")


def _earlier(path: Path) -> dict[str, Any]:
    """Variants evaluated by an earlier run of this sweep in the same folder with today's evaluation (the same
    samplers and bound grids), reused when their run has not trained further."""
    if not path.is_file():
        return {}
    found = json.loads(path.read_text()).get("variants", {})
    samplers, grids = set(SAMPLERS), {str(t) for t in BOUND_STEPS}
    return {
        name: res
        for name, res in found.items()
        if all(k in res for k in _EVALUATED)
        and set(res["bound"]) == grids
        and set(res["sampling"]) in ({"-"}, samplers)
    }


def run_cadd_sweep(
    out_dir: str | Path,
    corpus: str,
    *,
    preset: str = "quick",
    variants: tuple[str, ...] = tuple(VARIANTS),
    device: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Train the AR teacher and every variant, evaluate them; write results.json, report.md and plots."""
    if preset not in TEXT_PRESETS:
        raise AugdiffError(f"--preset {preset!r} is not known (choose one of: {', '.join(TEXT_PRESETS)})")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or "mdlm" not in variants:
        raise AugdiffError(
            f"--methods {','.join(variants)}: {'unknown ' + ', '.join(unknown) if unknown else 'mdlm is the reference'}"
            f" (variants: {', '.join(VARIANTS)}; mdlm must be one)"
        )
    spec = TEXT_PRESETS[preset]
    out = Path(out_dir)
    ensure_dir(out, "--out")
    data = make_dataset(f"text:{corpus}", seq_len=spec.seq_len)  # checks the corpus before any training
    dev = resolve_device(device)
    train_or_reuse(text_method_config("ar", spec, corpus, seed=seed, device=device), out / "ar")
    trained = {v: train_or_reuse(variant_config(v, preset, corpus, seed, device), out / v) for v in variants}
    teacher = load_teacher(str(out / "ar"), device=dev, batch_size=spec.sample_batch)
    results: dict[str, Any] = {
        "experiment": "cadd-sweep",
        "preset": preset,
        "corpus": str(Path(corpus).expanduser().resolve()),
        "variants": {v: {"changes": VARIANTS[v][1], **trained[v]} for v in variants},
    }
    earlier = _earlier(out / "results.json")
    for v in variants:
        reused = earlier.get(v)
        if reused is not None and reused.get("train_steps") == trained[v]["train_steps"]:
            results["variants"][v].update({k: reused[k] for k in _EVALUATED})  # same model, same evaluation
        else:
            results["variants"][v].update(_evaluate(out / v, data, teacher, spec, dev, seed))
    reference = results["variants"]["mdlm"]["sampling"]["-"]
    for res in results["variants"].values():
        res["wins_over_mdlm"] = {k: wins(rows, reference) for k, rows in res["sampling"].items() if k != "-"}
    write_text_atomic(out / "results.json", json.dumps(json_safe(results), indent=2))
    plot_sweep(results, out)
    write_sweep_report(results, out / "report.md")
    return results
