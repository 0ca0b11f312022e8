"""Tokenizers: characters, text8's 27 symbols, and byte-level BPE (HF ``tokenizers``).

A tokenizer maps text to data ids ``0..V-1`` (the diffusion mask is id ``V``, outside every tokenizer). Its
``describe()`` is stored in a run's data description, so :func:`tokenizer_from_description` rebuilds it on any
machine without a cache — a character tokenizer as its characters (the ``chars`` key that runs have always
stored), a BPE tokenizer as its full ``tokenizer.json``.

Example:
    >>> tok = train_bpe(["the cat sat on the mat"] * 20, vocab_size=270)
    >>> tok.decode(tok.encode("the mat"))
    'the mat'
    >>> tokenizer_from_description(tok.describe()).encode("the mat") == tok.encode("the mat")
    True
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tokenizers
from torch import Tensor

from augdiff.config import MAX_VOCAB, MIN_BPE_VOCAB
from augdiff.errors import AugdiffError

__all__ = [
    "Tokenizer",
    "CharTokenizer",
    "Text8Tokenizer",
    "BPETokenizer",
    "TEXT8_CHARS",
    "BPE_SPECIALS",
    "train_bpe",
    "load_tokenizer",
    "tokenizer_from_description",
    "padding_id",
]

TEXT8_CHARS = "abcdefghijklmnopqrstuvwxyz "
#: special tokens of a BPE trained here, ids 0, 1, 2 (MDLM's names).
BPE_SPECIALS = ("[BOS]", "[EOS]", "[PAD]")
_REPLACEMENT = "\N{REPLACEMENT CHARACTER}"
# tokenizer.json is stored compressed in a description above this size (a Qwen3 file is ~11 MB, GPT-2's ~2 MB).
_INLINE_LIMIT = 1 << 20

Ids = Sequence[int] | Tensor | np.ndarray


class Tokenizer(ABC):
    """Text ↔ ids ``0..vocab_size-1``; ``bos_id``, ``eos_id``, ``pad_id`` are ``None`` when absent."""

    bos_id: int | None = None
    eos_id: int | None = None
    pad_id: int | None = None

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Ids of ``text``, without BOS/EOS (packing adds them)."""

    @abstractmethod
    def decode(self, ids: Ids, skip_special: bool = True) -> str:
        """Text of ``ids``; an id outside the vocabulary (e.g. the mask) shows as U+FFFD.

        ``skip_special``: drop BOS/EOS/PAD (the default, so that text goes to a teacher model clean).
        """

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """The keys a data description needs to rebuild this tokenizer (:func:`tokenizer_from_description`)."""

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids of several documents (BPE does them in parallel)."""
        return [self.encode(t) for t in texts]

    def fingerprint(self) -> str:
        """A hash that changes whenever encoding could (the data cache's key)."""
        return hashlib.sha256(json.dumps(self.describe(), sort_keys=True).encode()).hexdigest()


class CharTokenizer(Tokenizer):
    """One id per character of ``chars``; no special tokens. A character outside ``chars`` is a user error."""

    def __init__(self, chars: str) -> None:
        if not chars or len(set(chars)) != len(chars):
            raise AugdiffError(f"a character vocabulary needs distinct characters, got {chars[:40]!r}")
        self.chars = chars
        self._lookup = {c: i for i, c in enumerate(chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self._lookup[c] for c in text]
        except KeyError:
            missing = "".join(sorted({c for c in text if c not in self._lookup}))
            raise AugdiffError(
                f"characters {missing[:20]!r} are not in the model's vocabulary "
                "(use only characters of the training corpus)"
            ) from None

    def decode(self, ids: Ids, skip_special: bool = True) -> str:
        n = len(self.chars)
        return "".join(self.chars[i] if 0 <= i < n else _REPLACEMENT for i in map(int, ids))

    def describe(self) -> dict[str, Any]:
        return {"chars": self.chars}  # the key character runs have always stored: old runs keep decoding


class Text8Tokenizer(CharTokenizer):
    """text8's 27 symbols (a–z, space). Encoding cleans text as text8 was cleaned: lower case, every other
    character becomes a space, runs of spaces collapse; so any English text encodes (not losslessly)."""

    def __init__(self) -> None:
        super().__init__(TEXT8_CHARS)

    @staticmethod
    def normalize(text: str) -> str:
        return re.sub(r"[^a-z]+", " ", text.lower())

    def encode(self, text: str) -> list[int]:
        return super().encode(self.normalize(text))

    def describe(self) -> dict[str, Any]:
        return {"tokenizer": "text8", "chars": self.chars}


class BPETokenizer(Tokenizer):
    """A HF ``tokenizers.Tokenizer`` with named BOS/EOS/PAD tokens (any may be ``None``).

    Args:
        tokenizer: the wrapped tokenizer (byte-level BPE, or whatever a loaded ``tokenizer.json`` holds).
        bos, eos, pad: the special tokens' strings; GPT-2 style tokenizers use ``<|endoftext|>`` for BOS and EOS.
    """

    def __init__(
        self, tokenizer: tokenizers.Tokenizer, bos: str | None = None, eos: str | None = None, pad: str | None = None
    ) -> None:
        self.tokenizer = tokenizer
        self.bos, self.eos, self.pad = bos, eos, pad
        self.bos_id, self.eos_id, self.pad_id = (self._id_of(t) for t in (bos, eos, pad))
        # Ids need not be contiguous in a foreign tokenizer.json: the vocabulary must cover the largest one.
        self._vocab_size = max(tokenizer.get_vocab(with_added_tokens=True).values()) + 1
        if self._vocab_size > MAX_VOCAB:
            raise AugdiffError(f"a tokenizer of {self._vocab_size:,} ids is too large (at most {MAX_VOCAB:,})")
        self._special = {i for i in (self.bos_id, self.eos_id, self.pad_id) if i is not None}

    def _id_of(self, token: str | None) -> int | None:
        if token is None:
            return None
        found = self.tokenizer.token_to_id(token)
        if found is None:
            raise AugdiffError(f"the tokenizer has no token {token!r} (a damaged or foreign tokenizer)")
        return found

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Ids, skip_special: bool = True) -> str:
        # tokenizers silently drops unknown ids; split around them so a mask stays visible as U+FFFD.
        pieces: list[str] = []
        run: list[int] = []
        for i in map(int, ids):
            if 0 <= i < self._vocab_size:
                if not (skip_special and i in self._special):
                    run.append(i)
                continue
            pieces.append(self.tokenizer.decode(run, skip_special_tokens=False) + _REPLACEMENT)
            run = []
        pieces.append(self.tokenizer.decode(run, skip_special_tokens=False))
        return "".join(pieces)

    def fingerprint(self) -> str:
        specials = json.dumps([self.bos, self.eos, self.pad])
        return hashlib.sha256((self.tokenizer.to_str() + specials).encode()).hexdigest()

    def with_pad(self, pad: str = "[PAD]") -> BPETokenizer:
        """A copy with a padding token added at the end of the vocabulary when it has none (GPT-2), as MDLM does."""
        if self.pad is not None:
            return self
        tok = tokenizers.Tokenizer.from_str(self.tokenizer.to_str())
        tok.add_special_tokens([pad])
        return BPETokenizer(tok, self.bos, self.eos, pad)

    def describe(self) -> dict[str, Any]:
        text = self.tokenizer.to_str()
        info: dict[str, Any] = {"tokenizer": "bpe", "bos_token": self.bos, "eos_token": self.eos}
        info["pad_token"] = self.pad
        if len(text) <= _INLINE_LIMIT:
            info["tokenizer_json"] = text
        else:  # base64(zlib) shrinks a large vocabulary about 4x; meta.json stays a few MB
            info["tokenizer_json_zlib"] = base64.b64encode(zlib.compress(text.encode(), 9)).decode("ascii")
        return info


def train_bpe(texts: Iterable[str], vocab_size: int) -> BPETokenizer:
    """Train a byte-level BPE (GPT-2's scheme: no unknown token, exact round trip) with HF ``tokenizers``.

    Ids 0, 1, 2 are ``[BOS]``, ``[EOS]``, ``[PAD]``. A corpus too small to reach ``vocab_size`` is a user error
    rather than a silently smaller vocabulary.
    """
    if not MIN_BPE_VOCAB <= vocab_size <= MAX_VOCAB:
        raise AugdiffError(
            f"text.bpe_vocab_size={vocab_size} must be between {MIN_BPE_VOCAB} (256 bytes + 3 special tokens) "
            f"and {MAX_VOCAB:,}"
        )
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(BPE_SPECIALS),
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    got = tok.get_vocab_size(with_added_tokens=True)
    if got < vocab_size:
        raise AugdiffError(
            f"text.bpe_vocab_size={vocab_size} is too big for this corpus: BPE ran out of merges at {got} tokens "
            f"(set text.bpe_vocab_size={got} or less, or use a larger corpus)"
        )
    return BPETokenizer(tok, *BPE_SPECIALS)


# Special tokens looked for when a tokenizer's files do not name them (first match wins).
_BOS_NAMES = ("[BOS]", "<s>", "<|begin_of_text|>", "<|startoftext|>", "[CLS]")
_EOS_NAMES = ("[EOS]", "</s>", "<|end_of_text|>", "<|endoftext|>", "[SEP]")
_PAD_NAMES = ("[PAD]", "<pad>", "<|pad|>")


def load_tokenizer(path: str | Path) -> BPETokenizer:
    """A tokenizer from a ``tokenizer.json`` file or a directory holding ``tokenizer.json`` (Qwen3, GPT-2 fast)
    or ``vocab.json`` + ``merges.txt`` (GPT-2), with ``tokenizer_config.json`` naming the special tokens.

    Without a BOS token, EOS serves as both (GPT-2's ``<|endoftext|>``, as MDLM wraps documents).
    """
    path = Path(path).expanduser()
    where = f"text.tokenizer={path}"
    folder = path if path.is_dir() else path.parent
    try:
        if path.is_file():
            tok = tokenizers.Tokenizer.from_file(str(path))
        elif (path / "tokenizer.json").is_file():
            tok = tokenizers.Tokenizer.from_file(str(path / "tokenizer.json"))
        elif (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
            tok = _byte_level_from_files(path / "vocab.json", path / "merges.txt")
        elif path.is_dir():
            raise AugdiffError(f"{where}: no tokenizer.json, nor vocab.json + merges.txt, in this directory")
        else:
            raise AugdiffError(
                f"{where}: not found (give auto, char, text8, bpe, a tokenizer.json or a tokenizer directory)"
            )
    except Exception as exc:  # tokenizers raises a bare Exception on malformed JSON
        if isinstance(exc, AugdiffError):
            raise
        raise AugdiffError(f"{where}: not a readable tokenizer ({str(exc).splitlines()[0][:80]})") from None
    named = _configured_specials(folder / "tokenizer_config.json")
    vocab = tok.get_vocab(with_added_tokens=True)

    def pick(key: str, names: tuple[str, ...]) -> str | None:
        if named.get(key) in vocab:
            return named[key]
        return next((n for n in names if n in vocab), None)

    eos = pick("eos_token", _EOS_NAMES)
    bos = pick("bos_token", _BOS_NAMES) or eos
    pad = pick("pad_token", _PAD_NAMES)
    # GPT-2's vocab.json holds <|endoftext|> as a plain entry: mark the specials so text never splits them.
    tok.add_special_tokens([t for t in dict.fromkeys([bos, eos, pad]) if t is not None])  # ordered: stable JSON
    return BPETokenizer(tok, bos, eos, pad)


def _byte_level_from_files(vocab: Path, merges: Path) -> tokenizers.Tokenizer:
    tok = tokenizers.Tokenizer(tokenizers.models.BPE.from_file(str(vocab), str(merges)))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    return tok


def _configured_specials(config: Path) -> dict[str, str]:
    """``bos_token`` / ``eos_token`` / ``pad_token`` of a ``tokenizer_config.json`` (strings or AddedToken dicts)."""
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out = {}
    for key in ("bos_token", "eos_token", "pad_token"):
        value = data.get(key) if isinstance(data, dict) else None
        value = value.get("content") if isinstance(value, dict) else value
        if isinstance(value, str):
            out[key] = value
    return out


def tokenizer_from_description(desc: dict[str, Any]) -> Tokenizer | None:
    """The tokenizer of a data description (``TokenDataset.describe()``, a checkpoint's ``meta["data"]``).

    ``None`` for data that is not text (sawtooth, raw token arrays). Descriptions written before BPE existed
    hold only ``chars`` and give a :class:`CharTokenizer`.
    """
    kind = desc.get("tokenizer")
    if kind == "text8":
        return Text8Tokenizer()
    if kind == "bpe":
        if "tokenizer_json" in desc:
            text = desc["tokenizer_json"]
        elif "tokenizer_json_zlib" in desc:
            text = zlib.decompress(base64.b64decode(desc["tokenizer_json_zlib"])).decode()
        else:
            raise AugdiffError("the data description names a BPE tokenizer but holds no tokenizer_json (damaged)")
        tok = tokenizers.Tokenizer.from_str(text)
        return BPETokenizer(tok, desc.get("bos_token"), desc.get("eos_token"), desc.get("pad_token"))
    if desc.get("chars") is not None:
        return CharTokenizer(desc["chars"])
    if kind is not None:
        raise AugdiffError(f"the data description names an unknown tokenizer {kind!r} (a newer augdiff?)")
    return None


def padding_id(desc: dict[str, Any]) -> int | None:
    """The padding id of data packed with ``pad`` (sentence rows), which losses and NLLs leave out; else ``None``.

    Wrapped and plain rows hold no padding, even when their tokenizer has a pad token.
    """
    if desc.get("packing") != "pad":
        return None
    tok = tokenizer_from_description(desc)
    return None if tok is None else tok.pad_id
