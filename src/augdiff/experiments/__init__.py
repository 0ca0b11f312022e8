"""Experiments that reproduce the papers' claims: ``augdiff run NAME``."""

from augdiff.experiments.sawtooth import PRESETS, SawtoothPreset, run_sawtooth

__all__ = ["PRESETS", "SawtoothPreset", "run_sawtooth"]
