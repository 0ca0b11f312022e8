"""``--data`` strings: ``sawtooth``, ``pairs`` (a pair-structured synthetic task), ``tokens:PATH.npy``,
``text:PATH`` (a local text file) and ``hf:NAME`` (a hub corpus: ``text8``, ``lm1b``, ``openwebtext``,
``tiny_shakespeare``, the ``zero-shot-*`` evaluation corpora); text is tokenized as the run's ``text`` section
says (characters by default for ``text:PATH``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from augdiff.config import ImageConfig, TextConfig
from augdiff.data.base import TokenDataset
from augdiff.data.hub import HubCorpus
from augdiff.data.images import load_images
from augdiff.data.pairs import PairsDataset
from augdiff.data.sawtooth import SawtoothDataset
from augdiff.data.sft import load_sft
from augdiff.data.text import FileCorpus, make_text_dataset
from augdiff.data.tokens import ArrayDataset, load_token_array, split_rows
from augdiff.errors import AugdiffError

__all__ = ["make_dataset", "DEFAULT_TEXT_SEQ_LEN"]

DEFAULT_TEXT_SEQ_LEN = 128
_FORMS = "sawtooth, pairs, tokens:PATH.npy, text:PATH, sft:PATH.jsonl, hf:NAME or image:NAME"
# Text from a file and from the hub is the same kind of data: a model trained on one evaluates on the other.
_TEXT_KINDS = ("text", "hf", "sft")


def make_dataset(
    spec: str,
    seq_len: int | None = None,
    vocab_size: int | None = None,
    like: dict[str, Any] | None = None,
    text: TextConfig | None = None,
    image: ImageConfig | None = None,
) -> TokenDataset:
    """Build the dataset named by ``spec``.

    Args:
        spec: the ``--data`` string. File paths are made absolute, so a run resumes from any directory.
        seq_len: sequence length (sawtooth d, text chunk length); ``None`` takes the data's own.
        vocab_size: for token arrays, the vocabulary (default: max id + 1).
        like: ``describe()`` of the data a model was trained on; the new data must fit that model
            (same kind, vocabulary, tokenizer and length).
        text: tokenizer and packing of text data (the run's ``text`` section); ``like`` overrides it.
        image: image data's options (the run's ``image`` section: flips and quarter turns of training images).
    """
    kind, _, path = spec.partition(":")
    if path and kind not in ("hf", "image") or (kind == "image" and Path(path).expanduser().is_dir()):
        spec = f"{kind}:{Path(path).expanduser().resolve()}"
    if vocab_size is not None and kind != "tokens":
        raise AugdiffError(f"vocab_size={vocab_size} applies to tokens: data only (drop it for --data {kind})")
    if text is not None and text != TextConfig() and kind not in _TEXT_KINDS:
        raise AugdiffError(
            f"text.* settings apply to text:PATH, sft:PATH and hf:NAME data only (drop them for --data {kind})"
        )
    if image is not None and image != ImageConfig() and kind != "image":
        raise AugdiffError(f"image.* settings apply to image:NAME data only (drop them for --data {kind})")
    if like is not None:
        _check_same_kind(spec, kind, like)
        seq_len = like["seq_len"] if seq_len is None else seq_len
        vocab_size = like["vocab_size"]
    if kind == "sawtooth" and not path:
        data: TokenDataset = SawtoothDataset(128 if seq_len is None else seq_len)
    elif kind == "image" and path:
        settings = image if image is not None else ImageConfig()
        flip = (like or {}).get("flip", settings.flip)
        data = load_images(spec, path, flip, (like or {}).get("rotate", settings.rotate))
        if seq_len is not None and data.seq_len != seq_len:
            raise AugdiffError(f"--data {spec}: images of {data.seq_len} tokens, but seq_len={seq_len} (drop seq_len)")
    elif kind == "pairs" and not path:
        try:
            data = PairsDataset(32 if seq_len is None else seq_len)
        except ValueError as exc:
            raise AugdiffError(f"--data pairs: {exc} (set seq_len)") from None
    elif kind == "tokens" and path:
        arr, vocab = load_token_array(spec, path, vocab_size, for_model=like is not None)
        if seq_len is not None and arr.shape[1] != seq_len:
            fix = "give rows of the model's length" if like is not None else "drop seq_len or reshape the array"
            raise AugdiffError(f"--data {spec}: rows have length {arr.shape[1]} but seq_len={seq_len} ({fix})")
        data = ArrayDataset(spec, *split_rows(spec, arr), vocab_size=vocab)
    elif kind == "sft" and path:
        data = load_sft(spec, path, DEFAULT_TEXT_SEQ_LEN if seq_len is None else seq_len, text, like)
    elif kind in _TEXT_KINDS and path:
        corpus = FileCorpus(spec, path) if kind == "text" else HubCorpus(spec, path)
        data = make_text_dataset(corpus, DEFAULT_TEXT_SEQ_LEN if seq_len is None else seq_len, text, like)
    else:
        raise AugdiffError(f"--data {spec!r} is not a known data source (use {_FORMS})")
    if like is not None and data.vocab_size != like["vocab_size"]:
        raise AugdiffError(
            f"--data {spec}: vocabulary of {data.vocab_size} tokens, but the model was trained "
            f"on {like['vocab_size']} ({like['spec']})"
        )
    return data


def _check_same_kind(spec: str, kind: str, like: dict[str, Any]) -> None:
    trained_kind = str(like["spec"]).partition(":")[0]
    if kind != trained_kind and not (kind in _TEXT_KINDS and trained_kind in _TEXT_KINDS):
        raise AugdiffError(
            f"--data {spec}: this model was trained on {trained_kind} data ({like['spec']}), not on {kind} "
            f"(give --data {trained_kind}{'' if trained_kind in ('sawtooth', 'pairs') else ':PATH'})"
        )
