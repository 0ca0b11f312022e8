r"""Supervised fine-tuning data (``--data sft:PATH.jsonl``): prompt/response pairs, the loss on the response only.

Each line of the file is a JSON object with a ``prompt`` and a ``response`` string. A row is
``[BOS] prompt response [EOS] [EOS …]`` (BOS/EOS when the tokenizer has them), as LLaDA's SFT (Nie et al. 2025,
§2.3) builds it: the prompt is never masked and never scored, the response is masked as in pre-training, and the
EOS padding counts as response, so the model learns where an answer ends. A tokenizer without EOS (the
characters of the file) pads with its first token (id 0), scored the same way: held fixed, the padding would
tell the model the answer's length, which no one can give it at sampling time.

The training loop asks the dataset for each batch's fixed positions (:meth:`SFTDataset.train_fixed`) and the
model's loss keeps them unmasked (``DiffusionModel.loss(fixed=…)``). Validation rows are scored whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from augdiff.config import TextConfig
from augdiff.data.text import Corpus, resolve_tokenizer
from augdiff.data.tokenizer import Tokenizer, tokenizer_from_description
from augdiff.data.tokens import ArrayDataset, _check_file, jsonl_records, split_rows
from augdiff.errors import AugdiffError

__all__ = ["SFTCorpus", "SFTDataset", "load_sft"]


class SFTCorpus(Corpus):
    """The pairs of a ``.jsonl`` file; as a corpus (for the tokenizer), each pair is one document."""

    default_tokenizer = "char"
    default_packing = "none"

    def __init__(self, spec: str, path: str | Path) -> None:
        self.spec = spec
        self.path = Path(path)
        _check_file(spec, self.path, "a .jsonl file of prompt/response pairs")
        self.pairs = self._read()

    def _read(self) -> list[tuple[str, str]]:
        pairs = []
        for number, record in jsonl_records(self.spec, self.path):
            if not (isinstance(record, dict) and all(isinstance(record.get(k), str) for k in ("prompt", "response"))):
                raise AugdiffError(f"--data {self.spec}: line {number} needs string fields prompt and response")
            pairs.append((record["prompt"], record["response"]))
        if len(pairs) < 2:
            raise AugdiffError(
                f"--data {self.spec}: {len(pairs)} pair(s); need at least 2 (one to train, one to validate)"
            )
        return pairs

    def identity(self) -> dict[str, Any]:
        st = self.path.stat()
        return {"path": str(self.path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "kind": "sft"}

    def documents(self, packing: str) -> tuple[list[str], list[str]]:
        texts = [p + r for p, r in self.pairs]
        return texts, []


def _encode(tok: Tokenizer, text: str, spec: str) -> list[int]:
    try:
        return tok.encode(text)
    except AugdiffError as exc:
        raise AugdiffError(f"--data {spec}: {exc}") from None


def _rows(corpus: SFTCorpus, tok: Tokenizer, seq_len: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Token rows ``[N, L]``, their fixed positions (prompt, and padding without EOS) and the pairs dropped for
    being longer than ``seq_len``."""
    bos = [] if tok.bos_id is None else [tok.bos_id]
    eos = tok.eos_id
    rows, fixed, dropped = [], [], 0
    for prompt, response in corpus.pairs:
        head = bos + _encode(tok, prompt, corpus.spec)
        body = _encode(tok, response, corpus.spec) + ([] if eos is None else [eos])
        if len(head) + len(body) > seq_len or not body:
            dropped += 1
            continue
        pad = seq_len - len(head) - len(body)
        rows.append(head + body + [eos if eos is not None else 0] * pad)
        fixed.append([True] * len(head) + [False] * (len(body) + pad))
    return (
        np.array(rows, dtype=np.int64).reshape(-1, seq_len),
        np.array(fixed, dtype=bool).reshape(-1, seq_len),
        dropped,
    )


class SFTDataset(ArrayDataset):
    """Prompt/response rows with their fixed positions (``[N, L]`` bool, True: given, never scored)."""

    def __init__(self, spec: str, rows: np.ndarray, fixed: np.ndarray, tokenizer: Tokenizer, dropped: int) -> None:
        train, valid = split_rows(spec, rows)
        super().__init__(spec, train, valid, vocab_size=tokenizer.vocab_size, tokenizer=tokenizer)
        self.fixed_train = fixed[: train.shape[0]]
        self.dropped = dropped

    def train_fixed(self, seed: int, step: int, global_batch: int, rows: slice | None = None) -> Tensor:
        return torch.from_numpy(self.fixed_train[self.train_index(seed, step, global_batch, rows)])

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "sft_pairs_dropped": self.dropped}


def load_sft(
    spec: str, path: str, seq_len: int, settings: TextConfig | None = None, like: dict[str, Any] | None = None
) -> SFTDataset:
    """``sft:PATH.jsonl`` → rows of ``seq_len`` tokens (pairs that do not fit are dropped and counted); the
    tokenizer is the run's ``text.tokenizer`` (the file's characters by default), or a trained model's."""
    corpus = SFTCorpus(spec, path)
    tok = tokenizer_from_description(like) if like is not None else resolve_tokenizer(corpus, settings or TextConfig())
    if tok is None:
        raise AugdiffError(f"--data {spec}: the model was trained on {like and like.get('spec')}, which is not text")
    rows, fixed, dropped = _rows(corpus, tok, seq_len)
    if rows.shape[0] < 2:
        raise AugdiffError(
            f"--data {spec}: {rows.shape[0]} of {len(corpus.pairs)} pairs fit seq_len={seq_len} (raise seq_len)"
        )
    return SFTDataset(spec, rows, fixed, tok, dropped)
