"""Data: the sawtooth task, token arrays and character-level text, all as seeded fixed-length batches."""

from augdiff.data.base import TokenDataset, seeded_generator
from augdiff.data.sawtooth import (
    SawtoothDataset,
    SawtoothSample,
    binary_entropy,
    sawtooth_oracle_nll,
    sawtooth_probs,
)
from augdiff.data.spec import make_dataset
from augdiff.data.tokens import ArrayDataset

__all__ = [
    "TokenDataset",
    "seeded_generator",
    "SawtoothDataset",
    "SawtoothSample",
    "binary_entropy",
    "sawtooth_oracle_nll",
    "sawtooth_probs",
    "ArrayDataset",
    "make_dataset",
]
