"""The binary sawtooth experiment (LADD §5.1, Table 1 and Figure 2).

For each method: train on fresh sawtooth data, then measure (i) the token reconstruction NLL on the fixed
validation set — the token-channel ELBO per token, against the analytic oracle — and (ii) the sliced
Wasserstein distance between samples and validation data at T ∈ {1, 2, …} sampling steps (up to 32 in the
quick preset, 128 in the paper preset), against two references drawn with the same sample count: the noise
floor (data vs fresh data) and the factorized value (independent Bernoulli tokens with the true per-position
marginals: the best any 1-step masked sampler can do).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from augdiff.config import TrainConfig, build_config
from augdiff.data import SawtoothDataset, seeded_generator
from augdiff.errors import AugdiffError
from augdiff.experiments.report import plot_swd, plot_train_curves, write_report
from augdiff.experiments.sawtooth_ladd import AUTHORS_LADD, AUTHORS_TOP, LADD_RUNS, LADDRun, ladd_runs
from augdiff.experiments.training import train_or_reuse, train_two_stages
from augdiff.files import ensure_dir, write_text_atomic
from augdiff.methods import LADD_METHODS, METHODS
from augdiff.metrics import estimate_nll, sliced_wasserstein
from augdiff.metrics.bound import estimate_bound
from augdiff.runs import load_run
from augdiff.sampling import generate
from augdiff.train import resolve_device

__all__ = ["SawtoothPreset", "PRESETS", "method_config", "ladd_rows", "swd_references", "run_sawtooth"]

SAMPLING_STEPS = (1, 2, 4, 8, 16, 32, 64, 128)
BOUND_STEPS = 128  # T of the likelihood bound reported beside the recon NLL (metrics.bound)
_SWD_SEED = 7  # one set of projection directions for every comparison (common random numbers)


@dataclass(frozen=True)
class SawtoothPreset:
    """Training and evaluation budget of one ``--preset``."""

    steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    ema_decay: float
    swd_samples: int
    valid_sequences: int
    time_samples: int
    sample_batch: int
    n_directions: int = 1000
    sampling_steps: tuple[int, ...] = SAMPLING_STEPS
    weight_decay: float = 0.0
    # LADD's two stages (§3.3): encoder + token denoiser, then frozen encoder + latent denoisers.
    ladd_stage1_steps: int = 0
    ladd_stage2_steps: int = 0
    # The encoder readout and latent width; None keeps the authors' (rightmost state, d′ = 32).
    ladd_pool: str | None = None
    ladd_latent_dim: int = 32
    # ``ladd`` keys a preset sets per method over the authors' (AUTHORS_LADD). Co-LADD's latent norm: the authors'
    # binsaw has none. Di-LADD's codebook: the authors' 512 codes with dead-code threshold 2 at batch 2048 get 4
    # uses per code per step; at batch 128, 0.25 each, so nearly all are "dead" and re-seeded every step and no
    # code keeps a meaning; 16 codes (8 uses each) learn the shift (RESULTS.md, "The binary sawtooth").
    ladd_by_method: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # ... and per trained model (LADD_RUNS' names), over the method's; with the stage-1 / stage-2 steps of a model
    # that trains longer than the preset's LADD default.
    ladd_by_run: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    ladd_steps_by_run: Mapping[str, tuple[int, int]] = field(default_factory=dict)


PRESETS: dict[str, SawtoothPreset] = {
    # Seconds: checks the pipeline end to end; its numbers mean nothing.
    "smoke": SawtoothPreset(
        steps=20,
        batch_size=16,
        lr=1e-3,
        warmup_steps=5,
        ema_decay=0.9,
        swd_samples=32,
        valid_sequences=32,
        time_samples=2,
        sample_batch=32,
        n_directions=100,
        ladd_stage1_steps=20,
        ladd_stage2_steps=20,
        ladd_pool="patch",
        ladd_latent_dim=8,
        ladd_by_method={"di-ladd": {"codebook_size": 16}},
    ),
    # ≤ 15 minutes on 2 CPU cores for all four methods: the authors' LADD settings at batch 128 and lr 1e-3, except
    # two things this budget forces (RESULTS.md, "The binary sawtooth"). The encoder's readout: with the authors'
    # rightmost state and d′ = 32, Co-LADD's stage 1 has not started to use its latent after 300 steps (training
    # loss 0.535, at the data entropy); a linear patch readout of width 8 learns the shift in time. The latent's
    # norm: left free (the authors'), it grows to ≈150–180 and stage 2 cannot model it (joint recon 0.5435, SWD
    # worse than MDLM); on a sphere of radius 4 (per coordinate ≈ 1.4, like unit-variance data) both modes work.
    "quick": SawtoothPreset(
        steps=400,
        batch_size=128,
        lr=1e-3,
        warmup_steps=50,
        ema_decay=0.99,
        swd_samples=500,
        valid_sequences=512,
        time_samples=8,
        sample_batch=500,
        sampling_steps=(1, 2, 4, 8, 16, 32),
        ladd_stage1_steps=300,
        ladd_stage2_steps=150,
        ladd_pool="patch",
        ladd_latent_dim=8,
        ladd_by_method={
            "co-ladd": {"normalize": "radius", "radius": 4.0},
            "cadd+co-ladd": {"normalize": "radius", "radius": 4.0},
            "di-ladd": {"codebook_size": 16},
        },
        # The joint model reads its latent through the noise of t_y = t: on a sphere of radius 16 the latent keeps
        # the shift through it (R = 4 loses part of it), and twice the steps take its recon below the oracle
        # (RESULTS.md). The sequential model reads the clean latent, which its prior must draw: R = 4 suits it.
        ladd_by_run={"co-ladd-joint": {"radius": 16.0}},
        ladd_steps_by_run={"co-ladd-joint": (600, 300)},
    ),
    # The authors' binsaw configuration (conf/experiments/binsaw): batch 2048, AdamW 3e-4 with weight decay 0.03,
    # 2500 warm-up steps, EMA 0.99, their model sizes. Their step counts are not in the paper's text nor in their
    # configs (the trainer's default is 1M steps, stopped by hand); 20k + 20k is our choice. Meant for a GPU.
    "paper": SawtoothPreset(
        steps=40_000,
        batch_size=2048,
        lr=3e-4,
        warmup_steps=2500,
        ema_decay=0.99,
        weight_decay=0.03,
        swd_samples=10_000,
        valid_sequences=4096,
        time_samples=16,
        sample_batch=2500,
        ladd_stage1_steps=20_000,
        ladd_stage2_steps=20_000,
    ),
}

# The authors' backbones (LADD App. E.1 and their conf/model/dit_sizes.yaml): MDLM XS (hidden 64 / 4 layers /
# 4 heads; CADD shares it); LADD's MM-DiT, encoder and latent denoiser XXS (32 / 4 / 2).
_MODEL_SIZE = {"mdlm": "xs", "cadd": "xs", "co-ladd": "xxs", "di-ladd": "xxs", "cadd+co-ladd": "xxs"}
LATENT_STEPS = 128  # T_y of sequential inference (the authors' num_inference_steps_latent for binsaw)


def method_config(
    method: str,
    preset: SawtoothPreset,
    *,
    seed: int = 0,
    device: str = "auto",
    stage: int = 1,
    init_from: str | None = None,
    run: LADDRun | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """The training config of ``method`` under ``preset`` (token channel: linear schedule, as in LADD App. E).

    LADD methods take the authors' binsaw settings (:mod:`augdiff.experiments.sawtooth_ladd`), the training
    conditioning of ``run`` (default: the method's first run), their ``stage`` (and the stage-1 run to start
    stage 2 from); ``overrides`` (dotted keys) change any of it, as the ablation does.
    """
    ladd = method in LADD_METHODS
    run = (run or LADD_RUNS[method][0]) if ladd else None
    stages = (preset.ladd_stage1_steps, preset.ladd_stage2_steps)
    if run is not None:
        stages = preset.ladd_steps_by_run.get(run.name, stages)
    steps = stages[stage - 1] if ladd else preset.steps
    tree: dict[str, Any] = {
        "method": method,
        "data": "sawtooth",
        "model_size": _MODEL_SIZE[method],
        "steps": steps,
        "batch_size": preset.batch_size,
        "seed": seed,
        "device": device,
        "log_every": 25,
        "ckpt_every": max(100, preset.steps // 4),
        "optim": {
            "lr": preset.lr,
            "warmup_steps": preset.warmup_steps,
            "ema_decay": preset.ema_decay,
            "weight_decay": preset.weight_decay,
        },
        "diffusion": {"schedule": "linear", "loss_weighting": "elbo"},
    }
    flat: dict[str, Any] = {}
    if run is not None:
        lc = {**AUTHORS_LADD[method], **run.ladd, "stage": stage}
        if preset.ladd_pool is not None:
            lc.update(pool=preset.ladd_pool, latent_dim=preset.ladd_latent_dim)
        lc.update(preset.ladd_by_method.get(method, {}))
        lc.update(preset.ladd_by_run.get(run.name, {}))
        tree.update(ladd=lc, init_from=init_from)
        flat.update(AUTHORS_TOP[method])
    flat.update(overrides or {})
    return build_config(tree, [f"{k}={v}" for k, v in flat.items()])


def swd_references(data: SawtoothDataset, n: int, n_directions: int = 1000) -> tuple[torch.Tensor, dict[str, float]]:
    """Validation sequences to compare samples against, and the two reference SWDs for ``n`` samples."""
    if data.valid_size < n:
        raise AugdiffError(f"{n} SWD samples need a validation set of at least {n} (it has {data.valid_size})")
    reference = data.valid_sample(n).x
    fresh = data.sample(n, seeded_generator(_SWD_SEED, 1)).x
    marginals = data.marginals().expand(n, -1)
    factorized = torch.rand(marginals.shape, dtype=torch.float64, generator=seeded_generator(_SWD_SEED, 2)) < marginals
    factorized = factorized.long()
    return reference, {
        "swd_noise_floor": swd_between(fresh, reference, n_directions),
        "swd_factorized": swd_between(factorized, reference, n_directions),
    }


def swd_between(samples: torch.Tensor, reference: torch.Tensor, n_directions: int = 1000) -> float:
    return sliced_wasserstein(samples, reference, n_directions, generator=seeded_generator(_SWD_SEED, 0))


def _evaluate(
    run_dir: Path,
    data: SawtoothDataset,
    preset: SawtoothPreset,
    reference: torch.Tensor,
    device: torch.device,
    seed: int,
    lag: float | None = None,
    sampling_steps: tuple[int, ...] | None = None,
) -> dict[str, Any]:
    loaded = load_run(run_dir, device=device)
    # LADD: the inference mode also sets the latent time of the recon NLL (t_y = (1−λ) t)
    options = None if lag is None else loaded.model.sampling_options(lag=lag, latent_steps=LATENT_STEPS)
    nll = estimate_nll(
        loaded.model,
        data.valid_batches(preset.sample_batch, preset.valid_sequences),
        time_samples=preset.time_samples,
        time_eps=loaded.config.diffusion.time_eps,
        device=device,
        options=options,
    )
    swd, seconds = {}, {}
    for steps in sampling_steps or preset.sampling_steps:
        start = time.perf_counter()
        samples = generate(
            loaded.model,
            loaded.model.schedule,
            preset.swd_samples,
            data.seq_len,
            steps,
            batch_size=preset.sample_batch,
            seed=seed + steps,
            device=device,
            progress=True,
            channel_options=options,
        )
        seconds[str(steps)] = time.perf_counter() - start
        swd[str(steps)] = swd_between(samples, reference, preset.n_directions)
    # Paired with the exact −log p(x)/d of the same sequences: far tighter than comparing two means.
    gap = nll.per_sequence - data.exact_nll_per_token(data.valid_sample(preset.valid_sequences).x)
    bound = None
    if loaded.model.has_bound:  # MDLM and CADD: an upper bound on −log p(x) beside the token term
        batches = data.valid_batches(preset.sample_batch, preset.valid_sequences)
        bound = estimate_bound(
            loaded.model, batches, steps=BOUND_STEPS, time_samples=preset.time_samples, device=device
        )
    return {
        "nll_kind": loaded.model.nll_kind,
        "nll_bound": None if bound is None else bound.bound,
        "nll_bound_stderr": None if bound is None else bound.stderr,
        "recon_nll": nll.nll,
        "recon_nll_stderr": nll.stderr,
        "recon_minus_entropy": float(gap.mean()),
        "recon_minus_entropy_stderr": float(gap.std() / gap.numel() ** 0.5),
        "swd": swd,
        "sample_seconds": seconds,
    }


def ladd_rows(
    run: LADDRun,
    out: Path,
    spec: SawtoothPreset,
    data: SawtoothDataset,
    reference: torch.Tensor,
    dev: torch.device,
    seed: int,
    device: str,
    overrides: dict[str, Any] | None = None,
    sampling_steps: tuple[int, ...] | None = None,
) -> dict[str, dict[str, Any]]:
    """Train one LADD model in two stages under ``out/<run.name>`` and evaluate each of its rows."""

    def config(stage: int, init: str | None) -> TrainConfig:
        return method_config(
            run.method, spec, seed=seed, device=device, stage=stage, init_from=init, run=run, overrides=overrides
        )

    _, trained = train_two_stages(run.name, out, config)
    return {
        row: {**_evaluate(out / run.name, data, spec, reference, dev, seed, lag, sampling_steps), **trained}
        for row, lag in run.rows.items()
    }


def run_sawtooth(
    out_dir: str | Path,
    *,
    preset: str = "quick",
    methods: tuple[str, ...] = ("mdlm",),
    device: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Train and evaluate ``methods``; write ``results.json``, ``report.md`` and plots to ``out_dir``."""
    if preset not in PRESETS:
        raise AugdiffError(f"--preset {preset!r} is not known (choose one of: {', '.join(PRESETS)})")
    unknown = [m for m in methods if m not in METHODS or m not in _MODEL_SIZE]
    if unknown or not methods:
        raise AugdiffError(
            f"--methods {','.join(methods)}: unknown {', '.join(unknown) or 'none given'} "
            f"(available: {', '.join(_MODEL_SIZE)})"
        )
    spec = PRESETS[preset]
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise AugdiffError(f"--out {out}: exists and is not a directory (choose another path)")
    dev = resolve_device(device)
    data = SawtoothDataset(valid_size=max(spec.valid_sequences, spec.swd_samples))
    reference, refs = swd_references(data, spec.swd_samples, spec.n_directions)
    entropy, entropy_stderr = data.entropy_per_token(spec.valid_sequences)
    results: dict[str, Any] = {
        "experiment": "sawtooth",
        "preset": preset,
        "settings": asdict(spec),
        "oracle_nll": data.oracle_nll(),
        "data_entropy_per_token": entropy,
        "data_entropy_stderr": entropy_stderr,
        **refs,
        "methods": {},
    }
    logs: dict[str, Path] = {}
    for method in methods:
        if method in LADD_METHODS:
            evaluated, size = {}, _MODEL_SIZE[method]
            for run in ladd_runs(method):
                evaluated.update(ladd_rows(run, out, spec, data, reference, dev, seed, device))
                logs[run.name] = out / run.name / "metrics.jsonl"
        else:
            cfg = method_config(method, spec, seed=seed, device=device)
            trained = train_or_reuse(cfg, out / method)
            res = _evaluate(out / method, data, spec, reference, dev, seed)
            evaluated, size = {method: {**res, **trained}}, cfg.model_size
            logs[method] = out / method / "metrics.jsonl"
        for name, res in evaluated.items():
            results["methods"][name] = {**res, "model_size": size}
    ensure_dir(out, "--out")
    write_text_atomic(out / "results.json", json.dumps(results, indent=2))
    plot_swd(results, out / "swd_vs_steps.png")
    plot_train_curves(
        logs,
        out / "train_loss.png",
        {"oracle (knows s)": results["oracle_nll"], "data entropy": entropy},
    )
    write_report(results, out / "report.md")
    return results
