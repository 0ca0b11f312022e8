"""Data: the sawtooth task, token arrays and text (characters or BPE, local or hub), as seeded fixed-length batches."""

from augdiff.data.base import TokenDataset, seeded_generator
from augdiff.data.sawtooth import (
    SawtoothDataset,
    SawtoothSample,
    binary_entropy,
    sawtooth_oracle_nll,
    sawtooth_probs,
)
from augdiff.data.spec import make_dataset
from augdiff.data.text import pack_none, pack_pad, pack_wrap
from augdiff.data.tokenizer import (
    BPETokenizer,
    CharTokenizer,
    Text8Tokenizer,
    Tokenizer,
    load_tokenizer,
    padding_id,
    tokenizer_from_description,
    train_bpe,
)
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
    "Tokenizer",
    "CharTokenizer",
    "Text8Tokenizer",
    "BPETokenizer",
    "train_bpe",
    "load_tokenizer",
    "tokenizer_from_description",
    "padding_id",
    "pack_wrap",
    "pack_pad",
    "pack_none",
]
