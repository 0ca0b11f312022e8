"""Token arrays (``tokens:PATH.npy``) and character-level text (``text:PATH``).

Both become fixed-length rows split once into train and validation by a fixed rule: the last
``VALID_FRACTION`` of the rows (tokens) or of the characters (text) is validation. Training visits the
training rows in a fresh seeded permutation every epoch. Tokenized text (BPE, packing) is ``data/text.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from augdiff.config import MAX_VOCAB
from augdiff.data.base import TokenDataset, seeded_generator
from augdiff.data.tokenizer import CharTokenizer, Tokenizer
from augdiff.errors import AugdiffError
from augdiff.extras import require

__all__ = [
    "ArrayDataset",
    "load_token_array",
    "split_rows",
    "load_text",
    "chunk_text",
    "encode_chars",
    "decode_chars",
    "VALID_FRACTION",
]

VALID_FRACTION = 0.05


class ArrayDataset(TokenDataset):
    """Training and validation rows of token ids, ``[N, L]`` each.

    Args:
        spec: the ``--data`` string it came from.
        train: int array ``[N_train, L]`` with ids in ``[0, vocab_size)``.
        valid: int array ``[N_valid, L]``.
        vocab_size: number of data tokens.
        chars: the character of each id, for character text (a :class:`CharTokenizer`); ``None`` otherwise.
        tokenizer: the tokenizer of text data (decoding, and its ``describe()`` in the data description).
        packing: how text became rows (``wrap``, ``pad``; ``None`` or ``none`` for plain chunks).
    """

    def __init__(
        self,
        spec: str,
        train: np.ndarray,
        valid: np.ndarray,
        vocab_size: int,
        chars: str | None = None,
        tokenizer: Tokenizer | None = None,
        packing: str | None = None,
    ) -> None:
        self.spec = spec
        self.vocab_size = vocab_size
        self.seq_len = train.shape[1]
        if tokenizer is None and chars is not None:
            tokenizer = CharTokenizer(chars)
        self.tokenizer = tokenizer
        self.chars = tokenizer.chars if isinstance(tokenizer, CharTokenizer) else None
        self.packing = packing
        # Rows stay as given (a memory-mapped cache file stays on disk, shared by every process that maps it,
        # in its compact dtype); a batch is read and widened to int64 when it is drawn.
        self.train_rows, self.valid_rows = train, valid
        self._perm: tuple[int, int, Tensor] | None = None

    @property
    def train(self) -> Tensor:
        """All training rows as one int64 tensor (reads them all: for small data and tests)."""
        return _rows(self.train_rows)

    @property
    def valid(self) -> Tensor:
        """All validation rows as one int64 tensor."""
        return _rows(self.valid_rows)

    def _epoch_perm(self, seed: int, epoch: int) -> Tensor:
        if self._perm is None or self._perm[:2] != (seed, epoch):
            n = self.train_rows.shape[0]
            self._perm = (seed, epoch, torch.randperm(n, generator=seeded_generator(seed, epoch, 3)))
        return self._perm[2]

    def train_batch(self, seed: int, step: int, global_batch: int, rows: slice | None = None) -> Tensor:
        return _rows(self.train_rows[self.train_index(seed, step, global_batch, rows)])

    def train_index(self, seed: int, step: int, global_batch: int, rows: slice | None = None) -> np.ndarray:
        """Which training rows :meth:`train_batch` reads: one shuffle per epoch, seeded by ``(seed, epoch)``."""
        index = torch.arange(step * global_batch, (step + 1) * global_batch)
        if rows is not None:
            index = index[rows]
        n = self.train_rows.shape[0]
        epochs, positions = index // n, index % n
        picked = torch.empty_like(index)
        for epoch in epochs.unique().tolist():
            sel = epochs == epoch
            picked[sel] = self._epoch_perm(seed, epoch)[positions[sel]]
        return picked.numpy()

    def valid_batches(self, batch_size: int, max_sequences: int | None = None) -> Iterator[Tensor]:
        n = self.valid_rows.shape[0] if max_sequences is None else min(max_sequences, self.valid_rows.shape[0])
        for start in range(0, n, batch_size):
            yield _rows(self.valid_rows[start : min(start + batch_size, n)])

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        if self.tokenizer is not None:
            info.update(self.tokenizer.describe())  # characters: just ``chars``, as runs have always stored
        if self.packing not in (None, "none"):
            info["packing"] = self.packing
        return info


def _rows(rows: np.ndarray) -> Tensor:
    """Token rows (any integer dtype, possibly memory-mapped) → an int64 tensor of their own."""
    return torch.from_numpy(np.array(rows, dtype=np.int64))


def decode_chars(chars: str, ids: Tensor | np.ndarray) -> str:
    """Text of character ids (an id outside the vocabulary shows as U+FFFD): :meth:`CharTokenizer.decode`."""
    return CharTokenizer(chars).decode(ids)


def encode_chars(chars: str, text: str) -> Tensor:
    """Character ids of ``text`` ``[len(text)]``; a character outside ``chars`` is a user error
    (:meth:`CharTokenizer.encode`)."""
    return torch.tensor(CharTokenizer(chars).encode(text), dtype=torch.long)


def _check_file(spec: str, file: Path, expected: str) -> None:
    if file.is_dir():
        raise AugdiffError(f"--data {spec}: is a directory (give {expected})")
    if not file.is_file():
        raise AugdiffError(f"--data {spec}: file not found (give {expected})")


def load_token_array(spec: str, path: str, vocab_size: int | None, for_model: bool = False) -> tuple[np.ndarray, int]:
    """Read and check an int array ``[N, L]``; returns it and the vocabulary size.

    ``for_model``: the vocabulary is a trained model's, so the fix to suggest is different data.
    """
    file = Path(path)
    _check_file(spec, file, "a .npy file holding an int array [N, L]")
    try:
        arr = np.load(file, allow_pickle=False, mmap_mode="r")  # the ids stay on disk until a batch reads them
    except (ValueError, OSError, EOFError):
        raise AugdiffError(f"--data {spec}: not a .npy array of token ids (save one with numpy.save)") from None
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        shape = getattr(arr, "shape", "a .npz archive")
        raise AugdiffError(f"--data {spec}: expected a non-empty 2-D array [N, L], got shape {shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise AugdiffError(f"--data {spec}: expected integer token ids, got dtype {arr.dtype}")
    low, high = int(arr.min()), int(arr.max())
    vocab = high + 1 if vocab_size is None else vocab_size
    if low < 0 or high >= vocab:
        fix = (
            "this data was not tokenized for this model"
            if for_model
            else (
                "token ids cannot be negative: fix the data"
                if low < 0
                else f"raise vocab_size to at least {high + 1} or fix the data"
            )
        )
        raise AugdiffError(f"--data {spec}: token ids span [{low}, {high}] but the vocabulary is [0, {vocab}) ({fix})")
    if vocab > MAX_VOCAB:
        raise AugdiffError(
            f"--data {spec}: the largest id is {high}, a vocabulary of {vocab:,} tokens (at most {MAX_VOCAB:,}; "
            "remap the ids to 0..V-1)"
        )
    return arr, vocab


def split_rows(spec: str, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation rows: the last ``VALID_FRACTION`` of the rows (at least one) validate."""
    n = arr.shape[0]
    n_valid = max(1, int(round(n * VALID_FRACTION)))
    if n - n_valid < 1:
        raise AugdiffError(f"--data {spec}: only {n} sequence(s); need at least 2 (one to train, one to validate)")
    return arr[: n - n_valid], arr[n - n_valid :]


def _records(spec: str, file: Path) -> list[str]:
    """The ``text`` field of every record of a ``.jsonl`` (one JSON object per line) or ``.parquet`` file."""
    if file.suffix == ".parquet":
        require("pyarrow", "text", f"--data {spec}")
        import pyarrow.parquet as pq

        names = pq.read_schema(file).names
        if "text" not in names:
            raise AugdiffError(f"--data {spec}: no 'text' column (columns: {', '.join(names)})")
        return [str(v) for v in pq.read_table(file, columns=["text"]).column("text").to_pylist() if v is not None]
    out = []
    for number, record in jsonl_records(spec, file):
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise AugdiffError(f"--data {spec}: line {number} has no string field 'text'")
        out.append(record["text"])
    return out


def jsonl_records(spec: str, file: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed object)`` of each non-blank line of a ``.jsonl`` file; bad JSON is a user error."""
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError:
            raise AugdiffError(f"--data {spec}: line {number} is not JSON (one object per line)") from None


def load_text(spec: str, path: str) -> str:
    """Read a UTF-8 text file, or the ``text`` records of a ``.jsonl`` / ``.parquet`` file as documents
    separated by blank lines; an empty or unreadable file is a user error."""
    file = Path(path)
    _check_file(spec, file, "a path to a UTF-8 text file (or .jsonl / .parquet with a text field)")
    try:
        if file.suffix in (".jsonl", ".parquet"):
            text = "\n\n".join(doc.strip() for doc in _records(spec, file) if doc.strip())
        else:
            text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise AugdiffError(f"--data {spec}: not UTF-8 text (convert the file to UTF-8)") from None
    if not text:
        raise AugdiffError(f"--data {spec}: the corpus is empty (give a file with text in it)")
    return text


def chunk_text(spec: str, text: str, seq_len: int, chars: str | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Character ids of ``text`` cut into rows of ``seq_len``; the train/valid split is the row order.

    The last ``VALID_FRACTION`` of the characters become the validation rows, so no row straddles the split.
    """
    chars = "".join(sorted(set(text))) if chars is None else chars
    try:
        ids = encode_chars(chars, text).numpy()
    except AugdiffError as exc:
        raise AugdiffError(f"--data {spec}: {exc}") from None
    cut = len(ids) - int(len(ids) * VALID_FRACTION)
    n_train, n_valid = cut // seq_len, (len(ids) - cut) // seq_len
    if n_train < 1 or n_valid < 1:
        need = int(np.ceil(seq_len / VALID_FRACTION)) + seq_len
        raise AugdiffError(
            f"--data {spec}: the corpus has {len(ids)} characters, too short for seq_len={seq_len} "
            f"(need about {need}; use a longer file or a smaller seq_len)"
        )
    train = ids[: n_train * seq_len].reshape(n_train, seq_len)
    valid = ids[cut : cut + n_valid * seq_len].reshape(n_valid, seq_len)
    return train, valid, chars
