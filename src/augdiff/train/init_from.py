"""Starting a run from another run's weights (``init_from``): CADD fine-tuning, LADD stage 2."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import torch

from augdiff.config import LADDConfig, config_from_stored
from augdiff.errors import AugdiffError
from augdiff.methods import LADD_METHODS
from augdiff.train.checkpoint import load_weights
from augdiff.train.pretrained import load_any

__all__ = ["load_backbone", "LATENT_KEYS"]

# What stage 1 fixed about the latent: stage 2 must read it the same way (the stage (1 → 2) and the losses may change).
LATENT_KEYS = (
    "latent_len", "latent_dim", "encoder", "encoder_size", "pool", "encoder_readout", "encoder_noise", "normalize",
    "radius", "schedule", "codebook_size", "latent_embed", "latent_positions",
)  # fmt: skip


def _check_latent(path: str, stored: dict, ladd: LADDConfig) -> None:
    """A stage-2 run must keep the stage-1 run's latent settings; a silent change would train on another latent."""
    before = config_from_stored(stored).ladd
    differ = [f"ladd.{k}={getattr(before, k)!r}" for k in LATENT_KEYS if getattr(before, k) != getattr(ladd, k)]
    if differ:
        raise AugdiffError(
            f"--init-from {path}: the stage-1 run was trained with {', '.join(differ)}; set the same values for stage 2"
        )


def _check_sections(path: str, stored: dict, sections: dict[str, Any]) -> None:
    """A composed method's other sections (``cadd.*`` of ``cadd+co-ladd``) must match stage 1's as well; a
    setting stage 1 measured (``cadd.sigma``) is named with its value, to be given again."""
    before = config_from_stored(stored)
    for name, section in sections.items():
        old = getattr(before, name)
        differ = [f"{name}.{f.name}={getattr(old, f.name)!r}" for f in fields(section)
                  if getattr(old, f.name) != getattr(section, f.name)]  # fmt: skip
        if differ:
            raise AugdiffError(
                f"--init-from {path}: the stage-1 run was trained with {', '.join(differ)}; set the same values"
            )


def load_backbone(
    model: torch.nn.Module,
    path: str,
    vocab_size: int,
    method: str = "mdlm",
    ladd: LADDConfig | None = None,
    sections: dict[str, Any] | None = None,
) -> None:
    """Start from the (EMA) weights of another run (``init_from``).

    CADD fine-tuning from MDLM (CADD App. C.1) loads only the network; a channel's own parameters (CADD's
    concat projection) start fresh. LADD stage 2 (§3.3) starts from a stage-1 run of the same method and loads
    everything: MM-DiT, encoder, codebook and the (still untrained) latent-only denoiser.
    """
    ckpt = load_any(path)
    if int(ckpt.meta["data"].get("vocab_size", -1)) != vocab_size:
        raise AugdiffError(
            f"--init-from {path}: trained on a vocabulary of {ckpt.meta['data'].get('vocab_size')} "
            f"tokens, this run has {vocab_size} (use the same data)"
        )
    source = ckpt.meta.get("config", {}).get("method")
    whole = method in LADD_METHODS
    if whole and source != method:
        raise AugdiffError(
            f"--init-from {path}: a {source} run; {method} stage 2 starts from a {method} stage-1 run "
            f"(train one with --method {method} --stage 1)"
        )
    if whole and ladd is not None:
        _check_latent(path, ckpt.meta["config"], ladd)
    if whole and sections:
        _check_sections(path, ckpt.meta["config"], sections)
    if whole:
        target, state = model, ckpt.ema
    else:
        target = model.network
        state = {k.removeprefix("network."): v for k, v in ckpt.ema.items() if k.startswith("network.")}
    load_weights(target, state, f"--init-from {path}", "use the same model_size, model.* and ladd.* shape settings")
