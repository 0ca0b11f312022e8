"""On-disk cache of tokenized text: packed rows and trained BPE tokenizers.

Tokenizing a corpus (and training a BPE on it) is the slow part of loading text; both are pure functions of
their inputs, so each result is stored under a key that hashes everything it depends on (the tokenizer's
JSON, the corpus's path, size and modification time or hub name and revision, the length and packing). A
changed input gives a new key, never a stale hit. Files are written through a temporary file and a rename, so
a crash leaves no half-written entry; an unreadable entry is rebuilt. The cache is only an accelerator: a run
records its tokenizer in its data description and decodes on a machine that has no cache.

Location: ``$AUGDIFF_CACHE``, else ``~/.cache/augdiff``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from augdiff.data.tokenizer import Tokenizer, tokenizer_from_description

__all__ = ["cache_root", "cache_key", "cached_rows", "cached_tokenizer", "compact_ids"]

# Bump when the packing or split rules change, so old entries stop matching.
_FORMAT = 3  # 2: long documents cut only between words (data/text.py _WORD_GAP); 3: .npy pairs, compact ids


def cache_root() -> Path:
    """``$AUGDIFF_CACHE`` if set, else ``~/.cache/augdiff``."""
    return Path(os.environ.get("AUGDIFF_CACHE") or Path.home() / ".cache" / "augdiff").expanduser()


def cache_key(**parts: Any) -> str:
    """A short hash of JSON-serializable ``parts`` (and the cache format)."""
    blob = json.dumps({"format": _FORMAT, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def cached_rows(key: str, build: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation rows under ``key``: memory-mapped from the cache, or ``build()`` and stored.

    Stored as two ``.npy`` files in the narrowest integer dtype (``compact_ids``) and read with
    ``mmap_mode="r"``: a corpus far larger than memory trains, and the processes of a torchrun job share one
    copy in the page cache. The validation file is written first, so a training file implies a whole entry.
    """
    folder = cache_root() / "text"
    paths = folder / f"{key}.valid.npy", folder / f"{key}.train.npy"
    with _one_builder(folder / f"{key}.lock"):
        if all(p.is_file() for p in paths):
            try:
                valid, train = (np.load(p, allow_pickle=False, mmap_mode="r") for p in paths)
                return train, valid
            except (OSError, ValueError):
                pass  # a damaged entry: rebuild and overwrite it
        train, valid = build()
        for path, rows in zip(paths, (valid, train), strict=True):
            compact = compact_ids(rows)
            _store(path, lambda f, a=compact: np.save(f, a, allow_pickle=False))
    return train, valid


def compact_ids(arr: np.ndarray) -> np.ndarray:
    """The narrowest dtype that holds the ids (uint16 below 65,536, else int32): a quarter or half of int64 on
    disk and in memory."""
    return arr.astype(np.uint16 if arr.size == 0 or int(arr.max()) < 1 << 16 else np.int32, copy=False)


def cached_tokenizer(key: str, build: Callable[[], Tokenizer]) -> Tokenizer:
    """The tokenizer under ``key`` (stored as its description), or ``build()`` it and store it."""
    path = cache_root() / "tokenizers" / f"{key}.json"
    with _one_builder(path.with_suffix(".lock")):
        if path.is_file():
            try:
                found = tokenizer_from_description(json.loads(path.read_text(encoding="utf-8")))
                if found is not None:
                    return found
            except Exception:  # noqa: BLE001 — any damage (JSON, tokenizers' own errors) means rebuild
                pass
        tok = build()
        text = json.dumps(tok.describe())
        _store(path, lambda f: f.write(text.encode()))
    return tok


@contextlib.contextmanager
def _one_builder(lock: Path) -> Iterator[None]:
    """One process at a time checks and builds an entry (an exclusive ``flock``): the ranks of a torchrun job on
    one machine tokenize a corpus once, the others wait (outside any collective, so no timeout) and read it.
    Without ``fcntl`` (Windows) or a writable cache, every process builds for itself, as before."""
    try:
        import fcntl

        lock.parent.mkdir(parents=True, exist_ok=True)
        handle = lock.open("a")
    except (ImportError, OSError):
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _store(path: Path, write: Callable[[Any], Any]) -> None:
    """Write through a temporary file, fsync and rename; a cache that cannot be written is only a warning."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        warnings.warn(f"augdiff: cannot write the data cache {path} ({exc.strerror}); set AUGDIFF_CACHE", stacklevel=3)
    finally:
        tmp.unlink(missing_ok=True)
