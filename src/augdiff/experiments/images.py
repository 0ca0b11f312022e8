"""Images as pixel tokens: MDLM, CADD and Co-LADD on ``image:digits`` (CADD §5.2 at a laptop's scale), and
CADD's CIFAR-10 recipe for a GPU.

``augdiff run images --out DIR [--preset quick]``: each method trained (or reused) on the 8×8 digits, sampled at
NFE ∈ {8, 32, 128}, scored by the offline digits metric (:mod:`augdiff.metrics.digits`: Fréchet distance in a
digits classifier's features, class and coverage entropies), with one sample grid per method and budget.
Co-LADD uses the authors' two stages with four latent vectors read by patches of 16 pixels (two image rows);
on the U-Net (``--backbone unet``) the latent conditions every residual block as ADM's class embedding does.

``--preset paper`` is CADD App. B.2's CIFAR-10 setting: MDLM and CADD on ADM's U-Net (``backbone: unet``,
``model_size: small``), AdamW at 1e-4 until 200M images are seen (batch 128: 1,562,500 steps), the flip and
quarter-turn operations of Karras et al. 2020's augmentation at its p = 0.15 (there a flip, when chosen, mirrors
with probability 1/2 and a rotation turns by 0–3 quarters: a mirror 7.5 % and a turn 11.25 % of the time), sampling
with a cosine temperature decay from τ_max = 2.5 and the flow-matching corrector, FID and Inception Score of
50,000 samples at NFE 64, 256 and 512 (torch-fidelity). Its cost is estimated from counted FLOPs, not measured:
13.4 GFLOPs per image forward, ≈ 8 EFLOPs of training per method, ≈ 6.5 hours on one H200 at 35 % of its bf16 peak.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from augdiff.config import ImageConfig, TrainConfig, build_config
from augdiff.data import make_dataset
from augdiff.data.images import image_grid
from augdiff.errors import AugdiffError
from augdiff.experiments.report import markdown_table
from augdiff.experiments.training import train_or_reuse, train_two_stages
from augdiff.files import ensure_dir, json_safe, save_figure, write_text_atomic
from augdiff.methods import LADD_METHODS
from augdiff.metrics.digits import digit_scores
from augdiff.runs import load_run
from augdiff.sampling.remasking import Remasking
from augdiff.train import resolve_device

__all__ = ["ImagePreset", "IMAGE_PRESETS", "IMAGE_METHODS", "image_config", "run_images"]

IMAGE_METHODS = ("mdlm", "cadd", "co-ladd")
NFE = (8, 32, 128)


@dataclass(frozen=True)
class ImagePreset:
    steps: int
    batch_size: int
    model_size: str
    lr: float
    warmup_steps: int
    ema_decay: float
    num_samples: int
    nfe: tuple[int, ...] = NFE
    dataset: str = "digits"
    backbone: str | None = None  # None: the --backbone given (dit by default)
    flip: float = 0.0
    rotate: float = 0.0
    dropout: float = 0.0
    #: sampler options of every draw (:func:`augdiff.sampling.generate`)
    sampler: tuple[tuple[str, Any], ...] = ()
    methods: tuple[str, ...] = IMAGE_METHODS


IMAGE_PRESETS = {
    "smoke": ImagePreset(4, 8, "xxs", 1e-3, 1, 0.9, 16, (2, 4)),
    # ≈ 6 minutes on 2 CPU cores for the three methods (training ≈ 3, sampling and scoring ≈ 3)
    "quick": ImagePreset(1200, 64, "xs", 1e-3, 50, 0.99, 500),
    # CADD App. B.2 (CIFAR-10): a GPU's; see the module docstring for its cost
    "paper": ImagePreset(
        1_562_500,
        128,
        "small",
        1e-4,
        5000,
        0.9999,
        50_000,
        (64, 256, 512),
        dataset="cifar10",
        backbone="unet",
        flip=0.15 / 2,  # Karras et al. 2020 at p = 0.15 (CADD App. B.2): see the module docstring
        rotate=0.15 * 3 / 4,
        dropout=0.1,
        sampler=(("temperature_schedule", "cosine"), ("tau_max", 2.5), ("remasking", "dfm")),
        methods=("mdlm", "cadd"),  # CADD's comparison; Co-LADD's image results are not in either paper
    ),
}
_CO_LADD = {"latent_len": 4, "latent_dim": 16, "pool": "patch", "normalize": "unit", "p_seq": 0.0}


def image_config(
    method: str,
    preset: ImagePreset,
    *,
    seed: int = 0,
    stage: int = 1,
    init_from: str | None = None,
    backbone: str = "dit",
) -> TrainConfig:
    """The training config of ``method`` on the digits (LADD: half the steps per stage)."""
    ladd = method in LADD_METHODS
    tree: dict[str, Any] = {
        "method": method,
        "backbone": preset.backbone or backbone,
        "data": f"image:{preset.dataset}",
        "image": {"flip": preset.flip, "rotate": preset.rotate},
        "model_size": preset.model_size,
        "model": {"dropout": preset.dropout},
        "steps": preset.steps // 2 if ladd else preset.steps,
        "batch_size": preset.batch_size,
        "seed": seed,
        "log_every": 50,
        "ckpt_every": min(max(100, preset.steps), 10_000),
        "optim": {"lr": preset.lr, "warmup_steps": preset.warmup_steps, "ema_decay": preset.ema_decay},
        "diffusion": {"schedule": "linear"},
    }
    if ladd:
        tree.update(ladd={**_CO_LADD, "stage": stage}, init_from=init_from)
    return build_config(tree)


def run_images(
    out_dir: str | Path,
    *,
    preset: str = "quick",
    device: str = "auto",
    seed: int = 0,
    backbone: str = "dit",
    dataset: str | None = None,
) -> dict[str, Any]:
    """Train, sample and score; write results.json, report.md, grids and the FD-against-NFE plot. ``backbone``:
    the DiT (Co-LADD: the MM-DiT) or ADM's U-Net (Co-LADD: its latent stream, :class:`augdiff.nn.unet.LatentStream`).
    ``dataset``: an ``image:`` name (digits, cifar10, imagenet32, a folder) in place of the preset's; digits are
    scored by the offline classifier, anything else by FID and IS."""
    if backbone not in ("dit", "unet"):
        raise AugdiffError(f"--backbone {backbone!r}: choose dit or unet")
    if preset not in IMAGE_PRESETS:
        raise AugdiffError(f"--preset {preset!r} is not known (choose one of: {', '.join(IMAGE_PRESETS)})")
    spec = IMAGE_PRESETS[preset] if dataset is None else replace(IMAGE_PRESETS[preset], dataset=dataset)
    backbone = spec.backbone or backbone
    # fails before any work when its loader is missing, it is offline, or its augmentation does not fit the images
    data = make_dataset(f"image:{spec.dataset}", image=ImageConfig(flip=spec.flip, rotate=spec.rotate))
    dev = resolve_device(device)
    score, real = _scorer(spec, data, str(dev))
    out = ensure_dir(Path(out_dir), "--out")
    results: dict[str, Any] = {
        "experiment": "images",
        "dataset": spec.dataset,
        "preset": preset,
        "backbone": backbone,
        "settings": asdict(spec),
        "real": real,
        "methods": {},
    }
    for method in spec.methods:
        if method in LADD_METHODS:

            def stage_config(stage: int, init: str | None, m: str = method) -> TrainConfig:
                return image_config(m, spec, seed=seed, stage=stage, init_from=init, backbone=backbone)

            train_two_stages(method, out, stage_config)
        else:
            train_or_reuse(image_config(method, spec, seed=seed, backbone=backbone), out / method)
        model = load_run(out / method, device=dev).model
        sampler: dict[str, Any] = {k: Remasking(v) if k == "remasking" else v for k, v in spec.sampler}
        scores = {}
        for nfe in spec.nfe:
            x = model.sample(spec.num_samples, data.seq_len, nfe, seed=seed + nfe, device=dev, **sampler).numpy()
            scores[str(nfe)] = score(x)
            image_grid(x[:64], data.image_shape, data.vocab_size, out / f"grid_{method}_nfe{nfe}.png")
        results["methods"][method] = scores
    write_text_atomic(out / "results.json", json.dumps(json_safe(results), indent=2))
    _plot(results, out / "fd_vs_nfe.png")
    _report(results, out / "report.md")
    return results


def _scorer(spec: ImagePreset, data: Any, device: str) -> tuple[Callable[[np.ndarray], dict[str, Any]], Any]:
    """How samples are scored, and the score of real images (digits: the offline classifier metric against the
    validation digits; CIFAR-10: FID and IS against the training images, as ``fd`` and ``inception_score``)."""
    if spec.dataset == "digits":
        reference = np.asarray(data.valid_rows, dtype=np.int64)
        real = digit_scores(np.asarray(data.train_rows[: spec.num_samples], np.int64), reference).as_dict()
        return (lambda x: digit_scores(x, reference).as_dict()), real
    from augdiff.metrics.fidelity import fid_and_inception_score, require_fidelity

    require_fidelity(f"augdiff run images on {spec.dataset}")
    # every image of the set (the usual FID reference: CIFAR-10's 50,000 training images), features cached once
    images = np.concatenate([np.asarray(data.train_rows), np.asarray(data.valid_rows)]).astype(np.int64)

    def fid(x: np.ndarray) -> dict[str, Any]:
        scores = fid_and_inception_score(
            x, images, data.image_shape, data.vocab_size, device=device, cache_reference=True
        )
        return {"fd": scores.pop("fid"), **scores}

    return fid, None


def _plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method, scores in results["methods"].items():
        nfe = sorted(int(k) for k in scores)
        ax.plot(nfe, [scores[str(n)]["fd"] for n in nfe], marker="o", label=method)
    if results["real"] is not None:
        ax.axhline(results["real"]["fd"], color="grey", ls=":", label="real digits")
    label = "Fréchet distance (digits classifier)" if results["dataset"] == "digits" else "FID (Inception)"
    ax.set(xscale="log", xlabel="NFE (sampling steps)", ylabel=label)
    ax.set_xticks(nfe, [str(n) for n in nfe])
    ax.minorticks_off()
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def _report(results: dict[str, Any], path: Path) -> None:
    nfe = sorted({int(k) for s in results["methods"].values() for k in s})
    digits = results["dataset"] == "digits"
    keys = ("fd", "class_entropy", "coverage_entropy") if digits else ("fd", "inception_score")
    rows = [[m] + [" / ".join(f"{s[str(n)][k]:.2f}" for k in keys) for n in nfe] for m, s in results["methods"].items()]
    real = results["real"]
    what = (
        "Fréchet distance in a digits classifier's features / class entropy / coverage entropy (log 10 = 2.30)."
        if digits
        else "FID / Inception Score of the samples (torch-fidelity), against the training images."
    )
    lines = [
        f"# {results['dataset']} as pixel tokens ({results['preset']} preset, {results['backbone']} backbone)",
        "",
        what,
        "" if real is None else "Real training images: " + " / ".join(f"{real[k]:.2f}" for k in keys) + ".",
        "",
        markdown_table(["method"] + [f"NFE {n}" for n in nfe], rows),
        "",
        "![FD](fd_vs_nfe.png)",
        "",
        *[f"![{m} NFE {n}](grid_{m}_nfe{n}.png)" for m in results["methods"] for n in nfe],
    ]
    write_text_atomic(path, "\n".join(lines) + "\n")
