"""Hugging Face hub corpora (``--data hf:NAME``): text8, lm1b, OpenWebText, tiny Shakespeare.

Splits and text fields follow MDLM's data loader: text8 is one 100M-character string cut 90M / 5M (D3PM's
split), lm1b trains on ``train`` and validates on ``test`` (after undoing its tokenization), OpenWebText
validates on its last 100,000 documents. The hub is checked before ``datasets`` is touched: with
``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` set, or no answer from the hub within a few seconds, loading stops
with one line saying so, instead of hanging in retries. Rows already in augdiff's cache need no hub at all.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from augdiff.data.detokenize import (
    lambada_detokenize,
    lm1b_detokenize,
    ptb_detokenize,
    scientific_papers_detokenize,
    wikitext_detokenize,
)
from augdiff.data.text import Corpus
from augdiff.errors import AugdiffError
from augdiff.extras import require

__all__ = ["HubSource", "HUB_CORPORA", "ZERO_SHOT", "HubCorpus", "hub_unreachable", "lm1b_detokenize"]

HUB_TIMEOUT_S = 3.0
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class HubSource:
    """Where a corpus lives on the hub and how MDLM reads it.

    Attributes:
        repo, config, data_dir, revision: arguments of ``datasets.load_dataset`` (``config`` is its ``name``).
        train_split, valid_split: split expressions (``train[-100000:]`` slices are allowed).
        field: the text column.
        tokenizer: what ``text.tokenizer=auto`` means (MDLM: characters for text8; BPE stands in for its
            bert-base-uncased (lm1b) and GPT-2 (OpenWebText) tokenizers, which need the hub too).
        packing: what ``text.packing=auto`` means with a BPE (lm1b: sentences, padded).
        char_split: for a corpus stored as one string, the character offsets of the train / valid ends.
        detokenize: applied to every document first.
    """

    repo: str
    field: str = "text"
    config: str | None = None
    data_dir: str | None = None
    revision: str | None = None
    train_split: str = "train"
    valid_split: str = "validation"
    tokenizer: str = "bpe"
    packing: str = "wrap"
    char_split: tuple[int, int] | None = None
    detokenize: Callable[[str], str] | None = None


HUB_CORPORA: dict[str, HubSource] = {
    "text8": HubSource("afmck/text8", train_split="train", tokenizer="text8", char_split=(90_000_000, 95_000_000)),
    # lm1b and tiny_shakespeare are script datasets; recent `datasets` reads their parquet conversions.
    "lm1b": HubSource(
        "billion-word-benchmark/lm1b",
        data_dir="plain_text",
        revision="refs/convert/parquet",
        valid_split="test",
        packing="pad",
        detokenize=lm1b_detokenize,
    ),
    "openwebtext": HubSource("Skylion007/openwebtext", train_split="train[:-100000]", valid_split="train[-100000:]"),
    "tiny_shakespeare": HubSource(
        "karpathy/tiny_shakespeare", data_dir="default", revision="refs/convert/parquet", tokenizer="char"
    ),
}


def _zero_shot(repo: str, split: str, detokenize: Any, **kw: Any) -> HubSource:
    """An evaluation corpus: its one split serves as both (nothing here trains on it, and the large training
    splits of WikiText-103 or PubMed are never downloaded)."""
    return HubSource(repo, train_split=split, valid_split=split, detokenize=detokenize, **kw)


# The zero-shot corpora of MDLM's table (and CADD Table 7, LADD Table 4): MDLM's splits (validation; test for
# lambada, ag_news and lm1b), text columns and detokenizers, wrapped into rows of the model's length.
ZERO_SHOT: dict[str, HubSource] = {
    "wikitext2": _zero_shot("Salesforce/wikitext", "validation", wikitext_detokenize, config="wikitext-2-raw-v1"),
    "wikitext103": _zero_shot("Salesforce/wikitext", "validation", wikitext_detokenize, config="wikitext-103-raw-v1"),
    "ptb": _zero_shot(
        "ptb-text-only/ptb_text_only",
        "validation",
        ptb_detokenize,
        field="sentence",
        data_dir="penn_treebank",
        revision="refs/convert/parquet",
    ),
    "lambada": _zero_shot("EleutherAI/lambada_openai", "test", lambada_detokenize, config="default"),
    "ag_news": _zero_shot("fancyzhx/ag_news", "test", None),
    "pubmed": _zero_shot(
        "armanc/scientific_papers",
        "validation",
        scientific_papers_detokenize,
        field="article",
        data_dir="pubmed",
        revision="refs/convert/parquet",
    ),
    "arxiv": _zero_shot(
        "armanc/scientific_papers",
        "validation",
        scientific_papers_detokenize,
        field="article",
        data_dir="arxiv",
        revision="refs/convert/parquet",
    ),
    "lm1b": _zero_shot(
        "billion-word-benchmark/lm1b", "test", lm1b_detokenize, data_dir="plain_text", revision="refs/convert/parquet"
    ),
}
HUB_CORPORA.update({f"zero-shot-{name}": source for name, source in ZERO_SHOT.items()})


def any_dataset(name: str) -> HubSource:
    """``owner/name[:config]``: a hub dataset read as it is (its ``text`` column, ``train`` and ``validation``)."""
    repo, _, config = name.partition(":")
    return HubSource(repo, config=config or None)


def hub_unreachable(
    timeout: float = HUB_TIMEOUT_S,
    offline_vars: tuple[str, ...] = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"),
    endpoint: str | None = None,
) -> str | None:
    """Why the hub cannot be used now (offline mode, no connection), or ``None`` when it answers.

    The probe is a TCP connection to the endpoint (or to the HTTPS proxy), run in a thread so that even a
    resolver that never answers costs at most ``timeout`` seconds.

    Args:
        offline_vars: the environment switches that mean "offline" for the caller's library (``datasets`` by
            default; the Hugging Face teacher passes ``TRANSFORMERS_OFFLINE``).
        endpoint: the host to reach (default: ``HF_ENDPOINT`` or the Hugging Face hub).
    """
    for var in offline_vars:
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return f"{var}={os.environ[var]}"
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    url = urlparse(proxy or endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = url.hostname or "", url.port or (80 if url.scheme == "http" else 443)
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(f"cannot connect to {host}: {exc.strerror or exc}")

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return outcome[0] if outcome else f"no answer from {host} within {timeout:.0f} s"


def load_hub_splits(
    what: str,
    repo: str,
    splits: list[str],
    *,
    config: str | None = None,
    data_dir: str | None = None,
    revision: str | None = None,
    fix: str = "",
) -> list[Any]:
    """The ``splits`` of a hub dataset through ``datasets`` (the ``text`` extra, imported only here: it is slow and
    optional). Offline, without the package, or a failed load: one :class:`AugdiffError` led by ``what`` (when
    given) and ending with ``fix``, before anything is downloaded."""
    lead = f"{what}: " if what else ""
    reason = hub_unreachable()
    if reason is not None:
        raise AugdiffError(f"{lead}the Hugging Face hub is unreachable ({reason}){fix}")
    require("datasets", "text", what or repo)
    import datasets

    try:
        return [
            datasets.load_dataset(repo, config, data_dir=data_dir, revision=revision, split=split) for split in splits
        ]
    except Exception as exc:  # noqa: BLE001 — datasets raises many types; the user needs one line
        first = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise AugdiffError(f"{lead}loading {repo} failed ({first}){fix}") from None


class HubCorpus(Corpus):
    """A corpus of :data:`HUB_CORPORA`, downloaded by ``datasets`` on first use (then cached by both)."""

    def __init__(self, spec: str, name: str) -> None:
        if name not in HUB_CORPORA and "/" not in name:
            raise AugdiffError(
                f"--data {spec}: unknown hub corpus (use hf:{' | hf:'.join(HUB_CORPORA)}, or hf:owner/name[:config] "
                "for any hub dataset with a text column and train / validation splits)"
            )
        self.spec = spec
        self.name = name
        self.source = HUB_CORPORA.get(name) or any_dataset(name)
        self.default_tokenizer = self.source.tokenizer
        self.default_packing = self.source.packing
        self._splits: tuple[list[str], list[str]] | None = None

    def identity(self) -> dict[str, Any]:
        s = self.source
        # everything that changes the text: two configs of one repo, or a changed detokenizer, are other rows
        detok = None if s.detokenize is None else f"{s.detokenize.__module__}.{s.detokenize.__name__}/2"
        return {
            "hub": s.repo,
            "config": s.config,
            "data_dir": s.data_dir,
            "revision": s.revision,
            "splits": [s.train_split, s.valid_split],
            "field": s.field,
            "detokenize": detok,
        }

    def documents(self, packing: str) -> tuple[list[str], list[str]]:
        if self._splits is None:
            self._splits = self._download()
        return self._splits

    def _download(self) -> tuple[list[str], list[str]]:
        s = self.source
        names = list(dict.fromkeys([s.train_split, s.valid_split]))
        fix = "; download it elsewhere and pass text:PATH"
        loaded = load_hub_splits(
            f"--data {self.spec}", s.repo, names, config=s.config, data_dir=s.data_dir, revision=s.revision, fix=fix
        )
        splits = [split[s.field] for split in loaded]
        if s.char_split is not None:  # one long string: cut by characters
            text = "".join(splits[0])
            train, valid = [text[: s.char_split[0]]], [text[s.char_split[0] : s.char_split[1]]]
        else:
            train, valid = list(splits[0]), list(splits[-1])
        if s.detokenize is not None:
            train, valid = [s.detokenize(t) for t in train], [s.detokenize(t) for t in valid]
        return train, valid
