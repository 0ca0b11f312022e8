"""The methods augdiff knows, each described once: what it reads, how it trains and what its sampler takes.

This module imports nothing heavy, so the configuration checks, the command line and the experiments can all
take the list of methods and their abilities from here (:mod:`augdiff.methods` builds the models).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MethodSpec",
    "METHOD_SPECS",
    "METHODS",
    "DIFFUSION_METHODS",
    "LADD_METHODS",
    "HF_METHODS",
    "SAMPLING_OPTIONS",
    "method_spec",
]


@dataclass(frozen=True)
class MethodSpec:
    """One method.

    Attributes:
        name: the ``method`` value (CLI ``--method``, YAML ``method:``).
        paper: where it comes from.
        section: the config section of its channel (``cadd.*``, ``ladd.*``), or ``None``.
        diffusion: a masked diffusion model (``False``: the autoregressive reference).
        stages: training stages (LADD: 1 = encoder and tokens, 2 = the latent's losses too).
        inference_modes: named sampling modes (LADD: joint, sequential).
        sampling_options: the method's own sampling options (CLI flags ``--k``, …; ``sampling_options`` keywords).
        hf_backbone: trains on an ``hf:PATH`` backbone.
        channel: the module of its latent channel, whose ``build(section, context)`` makes it (``None``: no
            diffusion channel, the AR reference); imported only when a model is built.
        network: ``dit``, or ``mmdit`` (a second stream for the latent; the channel module's ``head_width``
            gives the latent head's width).
        latent_schedules: the values its ``<section>.schedule`` may take (LADD methods; the others have none).
        also_reads: further config sections its channel reads (a composition: ``cadd+co-ladd`` reads ``cadd.*``).
    """

    name: str
    paper: str
    section: str | None = None
    diffusion: bool = True
    stages: tuple[int, ...] = (1,)
    inference_modes: tuple[str, ...] = ()
    sampling_options: tuple[str, ...] = ()
    hf_backbone: bool = False
    channel: str | None = None
    network: str = "dit"
    latent_schedules: tuple[str, ...] = ()
    also_reads: tuple[str, ...] = ()


_LADD = {"section": "ladd", "stages": (1, 2), "inference_modes": ("joint", "sequential"), "network": "mmdit"}
_LADD_PAPER = "Shariatian et al., arXiv 2510.18114"

METHOD_SPECS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec("mdlm", "Sahoo et al. 2024", hf_backbone=True, channel="augdiff.channels.none"),
        MethodSpec(
            "cadd",
            "Zheng et al., arXiv 2510.01329",
            "cadd",
            sampling_options=("k", "z0_hat"),
            hf_backbone=True,
            channel="augdiff.channels.cadd",
        ),
        MethodSpec(
            "co-ladd",
            _LADD_PAPER,
            sampling_options=("lag", "latent_steps", "eta", "guidance", "latent_from"),
            channel="augdiff.channels.co_ladd",
            latent_schedules=("auto", "ladd-sqrt", "vp-sqrt", "vp-linear", "vp-cosine"),
            **_LADD,
        ),
        MethodSpec(
            "di-ladd",
            _LADD_PAPER,
            sampling_options=("lag", "latent_steps", "guidance", "latent_from"),
            channel="augdiff.channels.di_ladd",
            latent_schedules=("auto", "linear", "loglinear", "polynomial", "cosine"),
            **_LADD,
        ),
        MethodSpec(
            "cadd+co-ladd",
            "CADD's augmentation and a Co-LADD latent in one model (beyond both papers)",
            sampling_options=("k", "z0_hat", "lag", "latent_steps", "eta", "latent_from"),
            channel="augdiff.channels.composed",
            latent_schedules=("auto", "ladd-sqrt", "vp-sqrt", "vp-linear", "vp-cosine"),
            also_reads=("cadd",),
            **_LADD,
        ),
        MethodSpec("ar", "the autoregressive reference (causal DiT)", diffusion=False),
    )
}

METHODS = tuple(METHOD_SPECS)
DIFFUSION_METHODS = tuple(name for name, spec in METHOD_SPECS.items() if spec.diffusion)
LADD_METHODS = tuple(name for name, spec in METHOD_SPECS.items() if spec.section == "ladd")
HF_METHODS = tuple(name for name, spec in METHOD_SPECS.items() if spec.hf_backbone)
#: method → its sampling options
SAMPLING_OPTIONS = {name: spec.sampling_options for name, spec in METHOD_SPECS.items() if spec.sampling_options}


def method_spec(name: str) -> MethodSpec:
    """The spec of ``name`` (a ``KeyError`` names the known methods)."""
    try:
        return METHOD_SPECS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r} (known: {', '.join(METHODS)})") from None
