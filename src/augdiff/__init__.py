"""augdiff: masked discrete diffusion with a continuous or latent channel (MDLM, CADD, Co-LADD, Di-LADD).

The public API is imported on first use, so ``import augdiff`` stays cheap and the command line starts fast::

    from augdiff import build_config, Trainer, load_run, generate
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("augdiff")
except PackageNotFoundError:  # run from a source tree (PYTHONPATH=src) without installing
    __version__ = "0+unknown"

# public name → the module that defines it
_API = {
    "TrainConfig": "augdiff.config",
    "build_config": "augdiff.config",
    "DiffusionModel": "augdiff.model",
    "ARModel": "augdiff.ar",
    "SequenceModel": "augdiff.protocol",
    "build_model": "augdiff.methods",
    "METHODS": "augdiff.methods",
    "Trainer": "augdiff.train",
    "load_run": "augdiff.runs",
    "generate": "augdiff.sampling.generate",
    "estimate_nll": "augdiff.metrics.likelihood",
    "estimate_bound": "augdiff.metrics.bound",
    "AugdiffError": "augdiff.errors",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'augdiff' has no attribute {name!r}")
    return getattr(importlib.import_module(_API[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)
