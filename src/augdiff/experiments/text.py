"""The text experiment: AR, MDLM, CADD, Co-LADD and Di-LADD on one character-level corpus (CADD §5, LADD §5.2).

Every method gets the same backbone size and the same number of optimizer steps (LADD's two stages share
them). The AR model is both the baseline and the teacher of generative perplexity. Reported per method:

* validation bits per character from the ELBO's token term (exact for AR; for CADD and LADD the token term
  given a latent that carries information about x, as the papers report it — not a likelihood of x), and for
  MDLM and CADD the likelihood bound on a 128-step grid (metrics.bound: for CADD the token term plus the
  latent's KL terms);
* generative perplexity under the AR teacher, token entropy, speed and GFLOPs at each sampling budget;
* the matched-compute frontier: gen-PPL at fixed GFLOPs-per-sample budgets, linearly interpolated between
  measured budgets and n/a outside them (LADD Table 2).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augdiff.config import TrainConfig, build_config
from augdiff.data import make_dataset
from augdiff.errors import AugdiffError
from augdiff.experiments.text_report import plot_text, write_text_report
from augdiff.experiments.training import train_or_reuse, train_two_stages
from augdiff.files import ensure_dir, json_safe, write_text_atomic
from augdiff.methods import LADD_METHODS
from augdiff.metrics import estimate_nll
from augdiff.metrics.bound import estimate_bound
from augdiff.metrics.generation import evaluate_generation
from augdiff.metrics.teacher import load_teacher
from augdiff.runs import load_run
from augdiff.specs import DIFFUSION_METHODS, method_spec
from augdiff.train import resolve_device

__all__ = ["TextPreset", "TEXT_PRESETS", "TEXT_METHODS", "text_method_config", "frontier", "run_text"]

TEXT_METHODS = ("ar", *DIFFUSION_METHODS)
#: what ``run_text`` compares unless told otherwise: the AR reference and the papers' four methods
DEFAULT_TEXT_METHODS = ("ar", "mdlm", "cadd", "co-ladd", "di-ladd")
INFERENCE = {"joint": 0.0, "seq": 1.0}
SAMPLING_STEPS = (4, 8, 16, 32, 64, 128, 256)
BOUND_STEPS = 128  # T of the likelihood bound reported beside the token term (metrics.bound)


@dataclass(frozen=True)
class TextPreset:
    """Training and evaluation budget of one ``--preset`` of the text experiment."""

    steps: int
    batch_size: int
    seq_len: int
    model_size: str
    lr: float
    warmup_steps: int
    ema_decay: float
    valid_sequences: int
    time_samples: int
    num_samples: int
    sample_batch: int
    sampling_steps: tuple[int, ...] = SAMPLING_STEPS
    latent_steps: int = 32
    # LADD's compressed latent (LADD §5.2: compressed latents win at matched compute)
    latent_len: int = 8
    latent_dim: int = 16
    codebook_size: int = 64
    n_budgets: int = 6


TEXT_PRESETS: dict[str, TextPreset] = {
    # Seconds: checks the pipeline end to end; its numbers mean nothing.
    "smoke": TextPreset(
        steps=8,
        batch_size=8,
        seq_len=32,
        model_size="xxs",
        lr=1e-3,
        warmup_steps=2,
        ema_decay=0.9,
        valid_sequences=16,
        time_samples=2,
        num_samples=8,
        sample_batch=8,
        sampling_steps=(2, 4),
        latent_steps=4,
        latent_len=4,
        latent_dim=8,
        codebook_size=8,
        n_budgets=3,
    ),
    # ≤ 20 minutes on 2 CPU cores with tinyshakespeare (training ≈ 12 min, evaluation ≈ 5 min).
    "quick": TextPreset(
        steps=500,
        batch_size=64,
        seq_len=128,
        model_size="xs",
        lr=1e-3,
        warmup_steps=50,
        ema_decay=0.99,
        valid_sequences=256,
        time_samples=8,
        num_samples=64,
        sample_batch=64,
        n_budgets=6,
    ),
    # Meant for a GPU: a tiny-size backbone (256/6/4) trained long enough to approach convergence on 1 MB.
    "full": TextPreset(
        steps=20_000,
        batch_size=256,
        seq_len=256,
        model_size="tiny",
        lr=3e-4,
        warmup_steps=1000,
        ema_decay=0.9999,
        valid_sequences=2048,
        time_samples=32,
        num_samples=512,
        sample_batch=256,
        latent_steps=128,
        latent_len=16,
        latent_dim=32,
        codebook_size=512,
        n_budgets=8,
    ),
}


# The LADD settings the text experiment was measured with (RESULTS.md): unit-norm latents (the paper's text setting,
# App. E.2) and augdiff's earlier latent channel, not yet the authors' sawtooth code (ARCHITECTURE.md, "LADD:
# paper and code"); moving the text experiment to it is a new measurement.
_TEXT_LADD_COMMON = {
    "normalize": "unit",
    "latent_mse": "sum",
    "latent_embed": "linear",
    "latent_positions": "restart",
    "encoder_readout": "linear",
}
TEXT_LADD: dict[str, dict[str, Any]] = {
    "co-ladd": {**_TEXT_LADD_COMMON, "schedule": "vp-sqrt"},
    "di-ladd": {**_TEXT_LADD_COMMON, "schedule": "linear", "vq_decay": 0.99, "commitment_weight": 0.25},
    "cadd+co-ladd": {**_TEXT_LADD_COMMON, "schedule": "vp-sqrt"},
}


def text_method_config(
    method: str,
    preset: TextPreset,
    corpus: str,
    *,
    seed: int = 0,
    device: str = "auto",
    stage: int = 1,
    init_from: str | None = None,
) -> TrainConfig:
    """The training config of ``method`` on ``corpus`` (character level) under ``preset``.

    LADD's two stages split the preset's steps in half, so every method takes the same number of optimizer
    steps. Token channel: MDLM's log-linear schedule with ELBO weights; LADD: the paper's constant weights.
    """
    ladd = method in LADD_METHODS
    extra: dict[str, Any] = {}
    steps = preset.steps
    if ladd:
        steps = preset.steps // 2
        extra = {
            "init_from": init_from,
            "ladd": {
                "stage": stage,
                "latent_len": preset.latent_len,
                "latent_dim": preset.latent_dim,
                "pool": "patch",
                "codebook_size": preset.codebook_size,
                # scaled to the batch: a code is "dead" below a quarter of its fair share of assignments
                "dead_code_threshold": 0.25 * preset.batch_size * preset.latent_len / preset.codebook_size,
                **TEXT_LADD[method],
            },
        }
    return build_config(
        {
            **extra,
            "method": method,
            "data": f"text:{Path(corpus).expanduser().resolve()}",
            "seq_len": preset.seq_len,
            "model_size": preset.model_size,
            "steps": steps,
            "batch_size": preset.batch_size,
            "seed": seed,
            "device": device,
            "log_every": 25,
            "ckpt_every": max(100, steps // 4),
            "optim": {"lr": preset.lr, "warmup_steps": preset.warmup_steps, "ema_decay": preset.ema_decay},
            "diffusion": {"schedule": "loglinear", "loss_weighting": "constant" if ladd else "elbo"},
        }
    )


def frontier(points: Sequence[tuple[float, float]], budgets: Sequence[float]) -> list[float | None]:
    """Gen-PPL at each GFLOPs budget, linearly interpolated between measured ``(gflops, gen_ppl)`` points.

    LADD §5: "values are linearly interpolated between measured sampling budgets, and n/a is reported instead
    of extrapolation" — a budget outside the measured range gives ``None``.
    """
    pts = sorted((float(g), float(p)) for g, p in points if math.isfinite(g) and math.isfinite(p))
    if not pts:
        return [None for _ in budgets]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    out: list[float | None] = []
    for b in budgets:
        out.append(float(np.interp(b, xs, ys)) if xs[0] <= b <= xs[-1] else None)
    return out


def _budgets(methods: dict[str, Any], n: int) -> list[float]:
    """``n`` GFLOPs budgets spaced geometrically over the range the diffusion methods measured."""
    spent = [p["gflops_per_sample"] for name, res in methods.items() if name != "ar" for p in res["steps"]]
    if not spent:
        return []
    low, high = min(spent), max(spent)
    return [float(v) for v in np.geomspace(low, high, n)] if high > low else [low]


def _bpc(run_dir: Path, data: Any, preset: TextPreset, device: torch.device, lag: float | None) -> dict[str, Any]:
    loaded = load_run(run_dir, device=device)
    options = None if lag is None else loaded.model.sampling_options(lag=lag, latent_steps=preset.latent_steps)
    est = estimate_nll(
        loaded.model,
        data.valid_batches(preset.sample_batch, preset.valid_sequences),
        time_samples=preset.time_samples,
        device=device,
        options=options,
    )
    # one token is one character: bits per character = nats per token / ln 2
    result: dict[str, Any] = {
        "nll": est.nll,
        "nll_stderr": est.stderr,
        "bpc": est.nll / math.log(2),
        "bpc_stderr": est.stderr / math.log(2),
        "nll_kind": loaded.model.nll_kind,
    }
    if loaded.model.has_bound:
        batches = data.valid_batches(preset.sample_batch, preset.valid_sequences)
        bound = estimate_bound(
            loaded.model, batches, steps=BOUND_STEPS, time_samples=preset.time_samples, device=device
        )
        result.update({"bpc_bound": bound.bound / math.log(2), "bpc_bound_stderr": bound.stderr / math.log(2)})
    return result


def _generation(
    run_dir: Path, teacher: Any, preset: TextPreset, device: torch.device, seed: int, lag: float | None
) -> list[dict[str, Any]]:
    loaded = load_run(run_dir, device=device)
    options = None if lag is None else loaded.model.sampling_options(lag=lag, latent_steps=preset.latent_steps)
    evals = evaluate_generation(
        loaded.model,
        loaded.data,
        preset.sampling_steps,
        preset.num_samples,
        teacher=teacher,
        batch_size=preset.sample_batch,
        seed=seed,
        device=device,
        progress=True,
        sampler={"channel_options": options},
    )
    rows = []
    for ev in evals:
        row = ev.as_dict()
        row["example"] = loaded_text(loaded, ev.samples[0])
        rows.append(row)
    return rows


def loaded_text(loaded: Any, ids: torch.Tensor) -> str:
    from augdiff.data.tokenizer import tokenizer_from_description

    tok = tokenizer_from_description(loaded.data)
    return tok.decode(ids) if tok is not None else " ".join(str(int(i)) for i in ids)


def run_text(
    out_dir: str | Path,
    corpus: str,
    *,
    preset: str = "quick",
    methods: tuple[str, ...] = DEFAULT_TEXT_METHODS,
    device: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Train and evaluate ``methods`` on ``corpus``; write ``results.json``, ``report.md`` and plots."""
    if preset not in TEXT_PRESETS:
        raise AugdiffError(f"--preset {preset!r} is not known (choose one of: {', '.join(TEXT_PRESETS)})")
    unknown = [m for m in methods if m not in TEXT_METHODS]
    if unknown or not methods:
        raise AugdiffError(
            f"--methods {','.join(methods)}: unknown {', '.join(unknown) or 'none given'} "
            f"(available: {', '.join(TEXT_METHODS)})"
        )
    if "ar" not in methods:
        raise AugdiffError("--methods must include ar: the AR model is the teacher of generative perplexity")
    spec = TEXT_PRESETS[preset]
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise AugdiffError(f"--out {out}: exists and is not a directory (choose another path)")
    data = make_dataset(f"text:{corpus}", seq_len=spec.seq_len)  # checks the corpus before any training
    dev = resolve_device(device)
    results: dict[str, Any] = {
        "experiment": "text",
        "preset": preset,
        "corpus": str(Path(corpus).expanduser().resolve()),
        "vocab_size": data.vocab_size,
        "settings": asdict(spec),
        "methods": {},
    }
    trained: dict[str, dict[str, float]] = {}
    for method in sorted(methods, key=lambda m: method_spec(m).diffusion):  # the AR teacher first
        if method in LADD_METHODS:
            _, trained[method] = train_two_stages(
                method,
                out,
                lambda stage, init, m=method: text_method_config(
                    m, spec, corpus, seed=seed, device=device, stage=stage, init_from=init
                ),
            )
        else:
            cfg = text_method_config(method, spec, corpus, seed=seed, device=device)
            trained[method] = train_or_reuse(cfg, out / method)
    teacher = load_teacher(str(out / "ar"), device=dev, batch_size=spec.sample_batch)
    results["data_reference"] = _data_reference(data, teacher, spec)
    for method in methods:
        variants = {f"{method}-{m}": lag for m, lag in INFERENCE.items()} if method in LADD_METHODS else {method: None}
        for name, lag in variants.items():
            results["methods"][name] = {
                **trained[method],
                **_bpc(out / method, data, spec, dev, lag),
                "steps": _generation(out / method, teacher, spec, dev, seed, lag),
            }
    budgets = _budgets(results["methods"], spec.n_budgets)
    results["budgets_gflops"] = budgets
    for res in results["methods"].values():
        points = [(p["gflops_per_sample"], p["gen_ppl"]) for p in res["steps"] if p["gen_ppl"] is not None]
        res["frontier"] = frontier(points, budgets)
    ensure_dir(out, "--out")
    write_text_atomic(out / "results.json", json.dumps(json_safe(results), indent=2))
    plot_text(results, out)
    write_text_report(results, out / "report.md")
    return results


def _data_reference(data: Any, teacher: Any, spec: TextPreset) -> dict[str, Any]:
    """Gen-PPL and entropy of held-out data under the same teacher: the target the samples aim for."""
    from augdiff.metrics.sample_eval import evaluate_samples

    rows = torch.cat(list(data.valid_batches(spec.sample_batch, spec.num_samples)))
    ev = evaluate_samples(rows, teacher=teacher, sample_description=data.describe())
    return ev.as_dict()
