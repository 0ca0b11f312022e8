"""Images as pixel tokens: MDLM, CADD and Co-LADD on ``image:digits`` (CADD §5.2 at a laptop's scale).

``augdiff run images --out DIR [--preset quick]``: each method trained (or reused) on the 8×8 digits, sampled at
NFE ∈ {8, 32, 128}, scored by the offline digits metric (:mod:`augdiff.metrics.digits`: Fréchet distance in a
digits classifier's features, class and coverage entropies), with one sample grid per method and budget.
Co-LADD uses the authors' two stages with four latent vectors read by patches of 16 pixels (two image rows).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augdiff.config import TrainConfig, build_config
from augdiff.data import make_dataset
from augdiff.data.images import image_grid
from augdiff.errors import AugdiffError
from augdiff.experiments.report import markdown_table
from augdiff.experiments.training import train_or_reuse, train_two_stages
from augdiff.files import ensure_dir, json_safe, save_figure, write_text_atomic
from augdiff.methods import LADD_METHODS
from augdiff.metrics.digits import digit_scores
from augdiff.runs import load_run
from augdiff.train import resolve_device

__all__ = ["ImagePreset", "IMAGE_PRESETS", "IMAGE_METHODS", "image_config", "run_images"]

IMAGE_METHODS = ("mdlm", "cadd", "co-ladd")
#: with ``backbone: unet`` (LADD's latent stream needs the MM-DiT)
UNET_IMAGE_METHODS = ("mdlm", "cadd")
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


IMAGE_PRESETS = {
    "smoke": ImagePreset(4, 8, "xxs", 1e-3, 1, 0.9, 16, (2, 4)),
    # ≈ 6 minutes on 2 CPU cores for the three methods (training ≈ 3, sampling and scoring ≈ 3)
    "quick": ImagePreset(1200, 64, "xs", 1e-3, 50, 0.99, 500),
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
        "backbone": backbone,
        "data": "image:digits",
        "model_size": preset.model_size,
        "steps": preset.steps // 2 if ladd else preset.steps,
        "batch_size": preset.batch_size,
        "seed": seed,
        "log_every": 50,
        "ckpt_every": max(100, preset.steps),
        "optim": {"lr": preset.lr, "warmup_steps": preset.warmup_steps, "ema_decay": preset.ema_decay},
        "diffusion": {"schedule": "linear"},
    }
    if ladd:
        tree.update(ladd={**_CO_LADD, "stage": stage}, init_from=init_from)
    return build_config(tree)


def run_images(
    out_dir: str | Path, *, preset: str = "quick", device: str = "auto", seed: int = 0, backbone: str = "dit"
) -> dict[str, Any]:
    """Train, sample and score; write results.json, report.md, grids and the FD-against-NFE plot. ``backbone``:
    the DiT (MDLM, CADD, Co-LADD) or ADM's U-Net (MDLM and CADD: LADD's latent needs the MM-DiT)."""
    if backbone not in ("dit", "unet"):
        raise AugdiffError(f"--backbone {backbone!r}: choose dit or unet")
    if preset not in IMAGE_PRESETS:
        raise AugdiffError(f"--preset {preset!r} is not known (choose one of: {', '.join(IMAGE_PRESETS)})")
    spec, out = IMAGE_PRESETS[preset], ensure_dir(Path(out_dir), "--out")
    data = make_dataset("image:digits")  # fails before training when scikit-learn is missing
    reference = np.asarray(data.valid_rows, dtype=np.int64)
    dev = resolve_device(device)
    results: dict[str, Any] = {
        "experiment": "images",
        "dataset": "digits",
        "preset": preset,
        "backbone": backbone,
        "settings": asdict(spec),
    }
    results["real"] = digit_scores(np.asarray(data.train_rows[: spec.num_samples], np.int64), reference).as_dict()
    results["methods"] = {}
    for method in IMAGE_METHODS if backbone == "dit" else UNET_IMAGE_METHODS:
        if method in LADD_METHODS:
            train_two_stages(
                method, out, lambda stage, init, m=method: image_config(m, spec, seed=seed, stage=stage, init_from=init)
            )
        else:
            train_or_reuse(image_config(method, spec, seed=seed, backbone=backbone), out / method)
        model = load_run(out / method, device=dev).model
        scores = {}
        for nfe in spec.nfe:
            x = model.sample(spec.num_samples, data.seq_len, nfe, seed=seed + nfe, device=dev).numpy()
            scores[str(nfe)] = digit_scores(x, reference).as_dict()
            image_grid(x[:64], data.image_shape, data.vocab_size, out / f"grid_{method}_nfe{nfe}.png")
        results["methods"][method] = scores
    write_text_atomic(out / "results.json", json.dumps(json_safe(results), indent=2))
    _plot(results, out / "fd_vs_nfe.png")
    _report(results, out / "report.md")
    return results


def _plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method, scores in results["methods"].items():
        nfe = sorted(int(k) for k in scores)
        ax.plot(nfe, [scores[str(n)]["fd"] for n in nfe], marker="o", label=method)
    ax.axhline(results["real"]["fd"], color="grey", ls=":", label="real digits")
    ax.set(xscale="log", xlabel="NFE (sampling steps)", ylabel="Fréchet distance (digits classifier)")
    ax.set_xticks(nfe, [str(n) for n in nfe])
    ax.minorticks_off()
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def _report(results: dict[str, Any], path: Path) -> None:
    nfe = sorted({int(k) for s in results["methods"].values() for k in s})
    rows = [
        [m]
        + [
            f"{s[str(n)]['fd']:.1f} / {s[str(n)]['class_entropy']:.2f} / {s[str(n)]['coverage_entropy']:.2f}"
            for n in nfe
        ]
        for m, s in results["methods"].items()
    ]
    real = results["real"]
    lines = [
        f"# Digits as pixel tokens ({results['preset']} preset, {results.get('backbone', 'dit')} backbone)",
        "",
        "Fréchet distance in a digits classifier's features / class entropy / coverage entropy (log 10 = 2.30).",
        f"Real training digits: {real['fd']:.1f} / {real['class_entropy']:.2f} / {real['coverage_entropy']:.2f}.",
        "",
        markdown_table(["method"] + [f"NFE {n}" for n in nfe], rows),
        "",
        "![FD](fd_vs_nfe.png)",
        "",
        *[f"![{m} NFE {n}](grid_{m}_nfe{n}.png)" for m in results["methods"] for n in nfe],
    ]
    write_text_atomic(path, "\n".join(lines) + "\n")
