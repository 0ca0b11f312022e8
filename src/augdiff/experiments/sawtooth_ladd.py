"""LADD on the binary sawtooth as its authors built it (GitHub darioShar/LADD, ``conf/experiments/binsaw``).

The authors train one model per inference mode: Co-LADD *joint* (the token denoiser reads the latent at
t_y = t_x) and Co-LADD *sequential* (the token denoiser always reads the clean y_0; the latent is learned by the
latent-only denoiser alone), each in two stages. Di-LADD is one model trained with independent times t_x, t_y,
measured twice: its "joint" and "seq" rows share one recon value (the training loss with t_y drawn
independently; LADD Table 1 reports it so) and differ in how samples are drawn.

:data:`ABLATIONS` switches each of the eight changes that brought augdiff to the authors' settings off alone,
back to augdiff's former choice, for :func:`augdiff.experiments.sawtooth.run_sawtooth_ablation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["LADDRun", "LADD_RUNS", "AUTHORS_LADD", "AUTHORS_TOP", "Ablation", "ABLATIONS", "ladd_runs"]


@dataclass(frozen=True)
class LADDRun:
    """One trained LADD model of the experiment: its directory name, method, the ``ladd`` keys that set its
    training conditioning, and the rows it reports (row name → inference lag λ: 0 joint, 1 sequential)."""

    name: str
    method: str
    ladd: dict[str, Any]
    rows: dict[str, float]


LADD_RUNS: dict[str, tuple[LADDRun, ...]] = {
    "co-ladd": (
        LADDRun("co-ladd-joint", "co-ladd", {"p_seq": 0.0}, {"co-ladd-joint": 0.0}),
        LADDRun("co-ladd-seq", "co-ladd", {"p_seq": 1.0}, {"co-ladd-seq": 1.0}),
    ),
    "di-ladd": (LADDRun("di-ladd", "di-ladd", {"p_seq": 0.0}, {"di-ladd-joint": 0.0, "di-ladd-seq": 1.0}),),
    # beyond the paper: CADD's augmentation with a joint Co-LADD latent, trained as co-ladd-joint
    "cadd+co-ladd": (LADDRun("cadd+co-ladd-joint", "cadd+co-ladd", {"p_seq": 0.0}, {"cadd+co-ladd-joint": 0.0}),),
}

# The authors' binsaw settings for each method's ``ladd`` section (their conf/experiments/binsaw/*_train.yaml
# with conf/model/binsaw/*.yaml and conf/base/*.yaml resolved): one latent read at the rightmost position,
# width 32, no latent dropout, mean-squared latent error, MLP latent embedding, latent rotary positions after
# the tokens, adaLN encoder readout. Co-LADD: no normalization, their sqrt schedule. Di-LADD: 512 codes, VQ EMA
# decay 0.95, commitment 0.1, α_y = 1 − t², independent times, encoder dropout 0.1.
_COMMON = {
    "latent_len": 1,
    "latent_dim": 32,
    "pool": "last",
    "p_cf": 0.0,
    "latent_mse": "mean",
    "latent_embed": "mlp",
    "latent_positions": "after",
    "encoder_readout": "adaln",
}
AUTHORS_LADD: dict[str, dict[str, Any]] = {
    "co-ladd": {**_COMMON, "normalize": "none", "schedule": "ladd-sqrt"},
    "cadd+co-ladd": {**_COMMON, "normalize": "none", "schedule": "ladd-sqrt"},
    "di-ladd": {
        **_COMMON,
        "codebook_size": 512,
        "vq_decay": 0.95,
        "commitment_weight": 0.1,
        "schedule": "polynomial",
        "independent_t": True,
        "encoder_dropout": 0.1,
    },
}
# Top-level keys: the token loss with MDLM's ELBO weighting (``use_data_loss_elbo: true``); Di-LADD's MM-DiT
# dropout 0.1 (their joint network always uses 0.1: ``dit_dropout`` reaches only their encoder).
AUTHORS_TOP: dict[str, dict[str, Any]] = {
    "co-ladd": {"diffusion.loss_weighting": "elbo"},
    "cadd+co-ladd": {"diffusion.loss_weighting": "elbo"},
    "di-ladd": {"diffusion.loss_weighting": "elbo", "model.dropout": 0.1},
}


#: one model for both modes (p_seq = 0.5), augdiff's former way (the ablation's change 4)
MIXED_RUNS = {
    "co-ladd": LADDRun("co-ladd-mixed", "co-ladd", {"p_seq": 0.5}, {"co-ladd-joint": 0.0, "co-ladd-seq": 1.0})
}


def ladd_runs(method: str, mixed: bool = False) -> tuple[LADDRun, ...]:
    """The trained models of ``method``; ``mixed``: Co-LADD as one model for both modes (p_seq = 0.5)."""
    if mixed and method in MIXED_RUNS:
        return (MIXED_RUNS[method],)
    return LADD_RUNS[method]


@dataclass(frozen=True)
class Ablation:
    """One change switched off: dotted config keys with augdiff's former value, and the method it concerns."""

    number: int
    change: str
    method: str
    overrides: dict[str, Any] = field(default_factory=dict)
    mixed: bool = False


ABLATIONS: tuple[Ablation, ...] = (
    Ablation(1, "latent schedule: Diffusion-LM's vp-sqrt instead of the authors' sqrt", "co-ladd",
             {"ladd.schedule": "vp-sqrt"}),
    Ablation(2, "normalization: unit sphere (Eq 75) instead of the preset's (none; quick: radius 4)", "co-ladd",
             {"ladd.normalize": "unit", "ladd.radius": 1.0}),
    Ablation(3, "token loss: constant weighting instead of ELBO", "co-ladd",
             {"diffusion.loss_weighting": "constant"}),
    Ablation(4, "one model for both modes (p_seq = 0.5) instead of one per mode", "co-ladd", mixed=True),
    Ablation(5, "latent loss summed over d′ instead of averaged", "co-ladd", {"ladd.latent_mse": "sum"}),
    Ablation(6, "latent dropout p_cf = 0.1 instead of 0", "co-ladd", {"ladd.p_cf": 0.1}),
    Ablation(7, "Di-LADD: coupled times, VQ decay 0.99, commitment 0.25, linear α_y, no dropout", "di-ladd",
             {"ladd.independent_t": False, "ladd.vq_decay": 0.99, "ladd.commitment_weight": 0.25,
              "ladd.schedule": "linear", "ladd.encoder_dropout": 0.0, "model.dropout": 0.0}),
    Ablation(8, "MM-DiT: Linear latent embedding, latent positions from 0, linear encoder readout", "co-ladd",
             {"ladd.latent_embed": "linear", "ladd.latent_positions": "restart", "ladd.encoder_readout": "linear"}),
)  # fmt: skip
