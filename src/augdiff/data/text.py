"""Text corpora → fixed-length rows: documents, packing, tokenizer choice, and the cached pipeline.

Packing, with ``L = seq_len``:

- ``wrap`` (MDLM's wrapped batches): each document gets EOS appended, the documents are concatenated, and the
  stream is cut into pieces of ``L − 2`` tokens; row = ``[BOS] piece [EOS]``. A document may straddle rows;
  the stream's last partial piece is dropped (MDLM drops it per batch of documents, we once per split).
- ``pad`` (sentence corpora, MDLM's unwrapped mode): each document → ``[BOS] doc[:L−2] [EOS] [PAD]…``, one row
  per document, truncated when longer.
- ``none``: the token stream cut into rows of ``L`` with no special tokens (character text as augdiff has
  always read it); the last partial row is dropped.

A local file (``text:PATH``) is split by the rule character runs always used: its last ``VALID_FRACTION``
(5 %) of characters validate. Its documents are the paragraphs (separated by blank lines) for ``wrap``, the
non-empty lines (one sentence per line) for ``pad``, and the whole file as one stream for ``none``. A BPE is
trained on the training part only.

Example:
    >>> pack_wrap([np.array([5, 6, 7]), np.array([8])], seq_len=4, bos=0, eos=1).tolist()
    [[0, 5, 6, 1], [0, 7, 1, 1], [0, 8, 1, 1]]
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from augdiff.config import TextConfig
from augdiff.data.cache import cache_key, cached_rows, cached_tokenizer
from augdiff.data.tokenizer import (
    BPE_SPECIALS,
    BPETokenizer,
    CharTokenizer,
    Text8Tokenizer,
    Tokenizer,
    load_tokenizer,
    tokenizer_from_description,
    train_bpe,
)
from augdiff.data.tokens import VALID_FRACTION, ArrayDataset, _check_file, chunk_text, load_text
from augdiff.errors import AugdiffError

__all__ = [
    "Corpus",
    "FileCorpus",
    "PACKINGS",
    "split_documents",
    "encode_documents",
    "pack_wrap",
    "pack_pad",
    "pack_none",
    "make_text_dataset",
]

PACKINGS = ("wrap", "pad", "none")
# At most this much text trains a BPE (OpenWebText is ~40 GB; merges settle long before).
BPE_TRAIN_CHARS = 100_000_000
# Long documents are encoded in pieces of about this many characters, cut at a single space between two
# letters ("cat| sat"): GPT-2's and Qwen's pre-tokenizer regexes both end a word there and start " sat", so the
# ids equal those of the whole document, and the pieces run in parallel. (A cut before any whitespace would
# split Qwen's ".\n" pre-token.)
_PIECE_CHARS = 1 << 16
_WORD_GAP = re.compile(r"(?<=[^\W\d_]) (?=[^\W\d_])")


class Corpus(ABC):
    """A text corpus with a fixed train/validation split into documents."""

    spec: str
    #: what ``text.tokenizer=auto`` means for this corpus.
    default_tokenizer: str = "char"
    #: what ``text.packing=auto`` means when the tokenizer has BOS and EOS.
    default_packing: str = "wrap"

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What the cache key needs to tell this corpus from any other (or from an edited copy)."""

    @abstractmethod
    def documents(self, packing: str) -> tuple[list[str], list[str]]:
        """Training and validation documents for ``packing``."""


class FileCorpus(Corpus):
    """A UTF-8 text file (``text:PATH``); read once, when first needed (a cache hit never reads it)."""

    def __init__(self, spec: str, path: str | Path) -> None:
        self.spec = spec
        self.path = Path(path)
        _check_file(spec, self.path, "a path to a UTF-8 text file")
        self._text: str | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = load_text(self.spec, str(self.path))
        return self._text

    def identity(self) -> dict[str, Any]:
        st = self.path.stat()
        return {"path": str(self.path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def documents(self, packing: str) -> tuple[list[str], list[str]]:
        text = self.text
        cut = len(text) - int(len(text) * VALID_FRACTION)  # the same cut as chunk_text
        return split_documents(text[:cut], packing), split_documents(text[cut:], packing)


def split_documents(text: str, packing: str) -> list[str]:
    """Paragraphs (``wrap``), non-empty lines (``pad``) or the whole text (``none``); blank documents dropped."""
    if packing == "pad":
        return [line for line in text.splitlines() if line.strip()]
    if packing == "wrap":
        return [p.strip("\r\n") for p in re.split(r"\n[ \t\r]*\n", text) if p.strip()]
    return [text] if text else []


def _pieces(text: str) -> list[str]:
    pieces, start = [], 0
    while len(text) - start > _PIECE_CHARS:
        found = _WORD_GAP.search(text, start + _PIECE_CHARS)
        if found is None:
            break
        pieces.append(text[start : found.start()])
        start = found.start()
    pieces.append(text[start:])
    return pieces


def encode_documents(tokenizer: Tokenizer, docs: Sequence[str], batch: int = 1024) -> list[np.ndarray]:
    """Ids of each document (int32), encoded in batches."""
    out: list[np.ndarray] = []
    pending: list[str] = []

    def flush() -> None:
        out.extend(np.asarray(ids, dtype=np.int32) for ids in tokenizer.encode_batch(pending))
        pending.clear()

    for doc in docs:
        if len(doc) <= _PIECE_CHARS:
            pending.append(doc)
            if len(pending) >= batch:
                flush()
            continue
        flush()
        parts = tokenizer.encode_batch(_pieces(doc))
        out.append(np.concatenate([np.asarray(p, dtype=np.int32) for p in parts]))
    flush()
    return out


def pack_wrap(docs: Sequence[np.ndarray], seq_len: int, bos: int, eos: int) -> np.ndarray:
    """MDLM's wrap: ``[BOS] stream[k(L−2):(k+1)(L−2)] [EOS]`` over the stream of ``doc + [EOS]``, ``[N, L]``."""
    block = seq_len - 2
    eos_arr = np.array([eos], dtype=np.int32)
    parts = [a for d in docs for a in (d, eos_arr)]
    stream = np.concatenate(parts) if parts else np.zeros(0, np.int32)
    n = len(stream) // block
    rows = np.empty((n, seq_len), dtype=np.int32)
    rows[:, 0], rows[:, -1] = bos, eos
    rows[:, 1:-1] = stream[: n * block].reshape(n, block)
    return rows


def pack_pad(docs: Sequence[np.ndarray], seq_len: int, bos: int, eos: int, pad: int) -> np.ndarray:
    """One row per non-empty document: ``[BOS] doc[:L−2] [EOS]`` then PAD to ``L``, ``[N, L]``."""
    bodies = [d[: seq_len - 2] for d in docs if len(d)]
    lens = np.array([len(b) for b in bodies], dtype=np.int64)
    rows = np.full((len(bodies), seq_len), pad, dtype=np.int32)
    rows[:, 0] = bos
    if bodies:
        # Scatter all bodies at once: token j of row r goes to column 1 + j.
        row_of = np.repeat(np.arange(len(bodies)), lens)
        col_of = 1 + np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        rows[row_of, col_of] = np.concatenate(bodies)
        rows[np.arange(len(bodies)), 1 + lens] = eos
    return rows


def pack_none(docs: Sequence[np.ndarray], seq_len: int) -> np.ndarray:
    """The concatenated ids cut into rows of ``L``, ``[N, L]``."""
    stream = np.concatenate(list(docs)) if len(docs) else np.zeros(0, np.int32)
    n = len(stream) // seq_len
    return stream[: n * seq_len].reshape(n, seq_len).astype(np.int32)


def _pack(docs: Sequence[np.ndarray], seq_len: int, packing: str, tok: Tokenizer) -> np.ndarray:
    if packing == "wrap":
        assert tok.bos_id is not None and tok.eos_id is not None
        return pack_wrap(docs, seq_len, tok.bos_id, tok.eos_id)
    if packing == "pad":
        assert tok.bos_id is not None and tok.eos_id is not None and tok.pad_id is not None
        return pack_pad(docs, seq_len, tok.bos_id, tok.eos_id, tok.pad_id)
    return pack_none(docs, seq_len)


def _bpe_training_texts(corpus: Corpus) -> Iterator[str]:
    total = 0
    for doc in corpus.documents("wrap")[0]:
        yield doc[: BPE_TRAIN_CHARS - total]
        total += len(doc)
        if total >= BPE_TRAIN_CHARS:
            return


def resolve_tokenizer(corpus: Corpus, settings: TextConfig) -> Tokenizer:
    """``text.tokenizer`` → a tokenizer: the corpus's characters, text8's, a BPE trained (and cached) on the
    corpus's training split, or one loaded from a path."""
    name = settings.tokenizer.strip()
    name = corpus.default_tokenizer if name == "auto" else name
    if name == "char":
        train, valid = corpus.documents("none")
        return CharTokenizer("".join(sorted(set().union(*map(set, train + valid)))))
    if name == "text8":
        return Text8Tokenizer()
    if name == "bpe":
        vocab = settings.bpe_vocab_size
        key = cache_key(kind="bpe", corpus=corpus.identity(), vocab_size=vocab, specials=BPE_SPECIALS)
        try:
            return cached_tokenizer(key, lambda: train_bpe(_bpe_training_texts(corpus), vocab))
        except AugdiffError as exc:
            raise _about(corpus.spec, exc) from None
    return load_tokenizer(name)


def _about(spec: str, exc: AugdiffError) -> AugdiffError:
    """The error, naming the data unless it already does."""
    return exc if str(exc).startswith("--data") else AugdiffError(f"--data {spec}: {exc}")


def make_text_dataset(
    corpus: Corpus, seq_len: int, settings: TextConfig | None = None, like: dict[str, Any] | None = None
) -> ArrayDataset:
    """Tokenize, pack and split ``corpus`` into an :class:`ArrayDataset` (rows cached on disk).

    Args:
        settings: the run's ``text`` section (tokenizer, BPE size, packing); ignored when ``like`` is given.
        like: a trained model's data description: its tokenizer and packing are reused, so the rows fit it.
    """
    spec = corpus.spec
    if like is not None:
        tok = tokenizer_from_description(like)
        if tok is None:
            raise AugdiffError(f"--data {spec}: the model was trained on {like.get('spec')}, which is not text")
        packing = str(like.get("packing", "none"))
    else:
        settings = settings or TextConfig()
        tok = resolve_tokenizer(corpus, settings)
        packing = settings.packing
        if packing == "auto":
            packing = corpus.default_packing if tok.bos_id is not None and tok.eos_id is not None else "none"
    if packing != "none" and (tok.bos_id is None or tok.eos_id is None):
        raise AugdiffError(
            f"text.packing={packing} adds BOS/EOS tokens, which this tokenizer has not (character tokenizers "
            "never do): use text.packing=none, or text.tokenizer=bpe"
        )
    if packing == "pad" and isinstance(tok, BPETokenizer):
        tok = tok.with_pad()
    if packing != "none" and seq_len < 3:
        raise AugdiffError(f"seq_len={seq_len} leaves no room for text between BOS and EOS (use seq_len ≥ 3)")
    if isinstance(tok, CharTokenizer) and packing == "none" and isinstance(corpus, FileCorpus):
        # Characters of a local file: the path runs have always taken (cheap, so not cached).
        text = Text8Tokenizer.normalize(corpus.text) if isinstance(tok, Text8Tokenizer) else corpus.text
        train, valid, _ = chunk_text(spec, text, seq_len, tok.chars)
        return ArrayDataset(spec, train, valid, vocab_size=tok.vocab_size, tokenizer=tok)

    def build() -> tuple[np.ndarray, np.ndarray]:
        try:
            docs = corpus.documents(packing)
            train, valid = (_pack(encode_documents(tok, d), seq_len, packing, tok) for d in docs)
        except AugdiffError as exc:
            raise _about(spec, exc) from None
        if len(train) < 1 or len(valid) < 1:
            raise AugdiffError(
                f"--data {spec}: the corpus gives {len(train)} training and {len(valid)} validation rows of "
                f"seq_len={seq_len} ({packing} packing); use a longer corpus or a smaller seq_len"
            )
        return train, valid

    key = cache_key(
        kind="rows", tokenizer=tok.fingerprint(), corpus=corpus.identity(), seq_len=seq_len, packing=packing
    )
    train, valid = cached_rows(key, build)
    return ArrayDataset(spec, train, valid, vocab_size=tok.vocab_size, tokenizer=tok, packing=packing)
