r"""Teacher language models: autoregressive scorers for generative perplexity and featurizers for MAUVE.

A :class:`Teacher` reads token ids of its own tokenizer (or text, which it tokenizes) and gives

* :meth:`Teacher.score`: the summed NLL :math:`-\sum_i \log p(x_i \mid x_{<i})` and the number of scored
  tokens, per sample and pooled (:class:`TeacherScore`);
* :meth:`Teacher.features`: one feature vector per sample, ``[N, D]``, for MAUVE.

Two kinds: :class:`~augdiff.metrics.hf_teacher.HFTeacher` (a Hugging Face causal LM such as GPT-2 Large, the
teacher of MDLM, CADD and LADD) and :class:`RunTeacher` (an augdiff autoregressive run). :func:`load_teacher`
picks one from a ``--teacher`` string.

**Context.** A sample longer than the teacher's context is cut into consecutive chunks, each scored from a
fresh context (as MDLM's evaluation does). With a BOS token (GPT-2's ``<|endoftext|>``) every chunk starts
with it, so every sample token is scored; an augdiff AR model has its start token built in.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from augdiff.data.tokenizer import Tokenizer, tokenizer_from_description
from augdiff.errors import AugdiffError

__all__ = [
    "Samples",
    "TeacherScore",
    "TeacherInputs",
    "Teacher",
    "RunTeacher",
    "load_teacher",
    "is_run_dir",
    "same_tokenizer",
    "teacher_inputs",
]

#: samples as text, or as token ids ``[N, L]`` (a tensor, an array, or lists of ids)
Samples = Sequence[str] | Sequence[Sequence[int]] | Tensor | np.ndarray


def same_tokenizer(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Whether token ids mean the same under two data descriptions, so they can pass without retokenizing.

    Text data: the same tokenizer (equal fingerprints). Data without a tokenizer (raw token arrays, the
    sawtooth): the same data, since only the same source gives ids the same meaning.
    """
    if a is None or b is None:
        return False
    tok_a, tok_b = tokenizer_from_description(a), tokenizer_from_description(b)
    if tok_a is not None or tok_b is not None:
        return tok_a is not None and tok_b is not None and tok_a.fingerprint() == tok_b.fingerprint()
    return (a.get("spec"), a.get("vocab_size")) == (b.get("spec"), b.get("vocab_size"))


@dataclass
class TeacherScore:
    r"""Teacher NLL of a sample set, pooled over tokens (MDLM's generative perplexity).

    .. math:: \mathrm{NLL} = \frac{\sum_n \sum_i -\log p(x^{(n)}_i \mid x^{(n)}_{<i})}{\sum_n |x^{(n)}|}
    """

    total_nll: float
    n_tokens: int
    #: summed NLL of each sample ``[N]`` (nats)
    nll_per_sample: np.ndarray = field(repr=False)
    #: scored tokens of each sample ``[N]``
    tokens_per_sample: np.ndarray = field(repr=False)

    @property
    def nll(self) -> float:
        """Pooled NLL per token in nats."""
        return self.total_nll / self.n_tokens if self.n_tokens else float("nan")

    @property
    def ppl(self) -> float:
        return math.exp(self.nll)


@dataclass
class TeacherInputs:
    """Samples prepared for a teacher: its token ids per sample, and whether they were retokenized."""

    rows: list[list[int]]
    retokenized: bool


class Teacher(ABC):
    """An autoregressive model that scores and featurizes token sequences of its own tokenizer.

    Subclasses implement :meth:`encode`, :meth:`_score_chunks` and :meth:`_feature_rows`; chunking to the
    context, batching and pooling live here.
    """

    #: a name for reports (the hub name, a path)
    name: str
    #: tokens per forward pass, the start token included
    max_length: int
    #: chunks per forward pass
    batch_size: int
    device: torch.device
    #: the data description whose ids this teacher reads directly (an augdiff run's), ``None`` for text only
    description: dict[str, Any] | None = None

    @property
    @abstractmethod
    def chunk_tokens(self) -> int:
        """Sample tokens per chunk (``max_length`` less a BOS the teacher prepends)."""

    @abstractmethod
    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """The teacher's token ids of each text, without special tokens."""

    @abstractmethod
    def _score_chunks(self, chunks: list[list[int]]) -> tuple[Tensor, Tensor]:
        """Summed NLL ``[b]`` (float64) and number of scored tokens ``[b]`` of each chunk, in one forward."""

    @abstractmethod
    def _feature_rows(self, rows: list[list[int]]) -> Tensor:
        """One feature vector per row ``[b, D]`` (rows no longer than ``max_length``)."""

    def _rows(self, samples: Samples) -> list[list[int]]:
        if isinstance(samples, Tensor | np.ndarray):
            assert samples.ndim == 2, f"token ids must be [N, L], got shape {tuple(samples.shape)}"
            return [[int(i) for i in row] for row in samples.tolist()]
        items = list(samples)
        if items and isinstance(items[0], str):
            return self.encode(items)  # type: ignore[arg-type]
        return [[int(i) for i in row] for row in items]

    @torch.no_grad()
    def score(self, samples: Samples) -> TeacherScore:
        """Pooled teacher NLL of ``samples`` (texts, or ids of this teacher's tokenizer)."""
        rows = self._rows(samples)
        size = self.chunk_tokens
        chunks = [(n, row[s : s + size]) for n, row in enumerate(rows) for s in range(0, len(row), size)]
        nll = np.zeros(len(rows), dtype=np.float64)
        count = np.zeros(len(rows), dtype=np.int64)
        for start in range(0, len(chunks), self.batch_size):
            batch = chunks[start : start + self.batch_size]
            chunk_nll, chunk_count = self._score_chunks([c for _, c in batch])
            for (n, _), value, k in zip(batch, chunk_nll.tolist(), chunk_count.tolist(), strict=True):
                nll[n] += value
                count[n] += k
        return TeacherScore(float(nll.sum()), int(count.sum()), nll, count)

    @torch.no_grad()
    def features(self, samples: Samples) -> np.ndarray:
        """Feature vectors ``[N, D]`` (float32) of ``samples``, each truncated to the first ``max_length`` tokens."""
        rows = [row[: self.max_length] for row in self._rows(samples)]
        if any(not row for row in rows):
            raise AugdiffError(f"teacher {self.name}: a sample has no tokens to featurize (an empty text)")
        out = [self._feature_rows(rows[s : s + self.batch_size]) for s in range(0, len(rows), self.batch_size)]
        return torch.cat(out).float().cpu().numpy()


def pad_rows(rows: list[list[int]], pad: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Right-padded ids ``[b, l]`` and the mask of real tokens ``[b, l]`` (causal models ignore the padding)."""
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad, dtype=torch.long)
    mask = torch.zeros(len(rows), length, dtype=torch.bool)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = True
    return ids.to(device), mask.to(device)


class RunTeacher(Teacher):
    """An augdiff autoregressive model as teacher (``ARModel``: ``log_probs``, ``hidden_states``).

    Features are the final hidden state at the last token of each sample (``hidden_states(x)[:, -1]``, the
    state that has read the whole sequence), as MAUVE takes GPT-2's.

    Args:
        model: an :class:`~augdiff.ar.ARModel`, or anything with its ``log_probs(x [B, L]) -> [B, L, V]``
            (:math:`\\log p(x_i \\mid x_{<i})`, start token inside) and ``hidden_states(x) -> [B, L, D]``.
        description: the data description of the run (its tokenizer decides which samples pass as ids).
        max_length: tokens per forward pass (default and cap: the run's ``seq_len``).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        description: dict[str, Any],
        *,
        name: str = "augdiff-ar",
        device: torch.device | str = "cpu",
        batch_size: int = 16,
        max_length: int | None = None,
    ) -> None:
        self.model = model.to(device).eval()
        self.description = dict(description)
        self.name = name
        self.device = torch.device(device)
        self.batch_size = batch_size
        context = int(description["seq_len"])
        self.max_length = context if max_length is None else min(max_length, context)
        self._tokenizer: Tokenizer | None = None

    @property
    def chunk_tokens(self) -> int:
        return self.max_length

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        if self._tokenizer is None:
            self._tokenizer = tokenizer_from_description(self.description)
            if self._tokenizer is None:
                raise AugdiffError(
                    f"teacher {self.name}: its data ({self.description.get('spec')}) has no tokenizer, so it "
                    "reads only token ids of that same data (give a teacher trained on text)"
                )
        return [list(self._tokenizer.encode(t)) for t in texts]

    def _score_chunks(self, chunks: list[list[int]]) -> tuple[Tensor, Tensor]:
        ids, mask = pad_rows(chunks, 0, self.device)
        log_p = self.model.log_probs(ids)
        assert log_p.shape[:2] == ids.shape, f"log_probs gave {tuple(log_p.shape)} for ids {tuple(ids.shape)}"
        token_log_p = log_p.gather(-1, ids.unsqueeze(-1)).squeeze(-1).double()
        return -(token_log_p * mask).sum(dim=1).cpu(), mask.sum(dim=1).cpu()

    def _feature_rows(self, rows: list[list[int]]) -> Tensor:
        ids, mask = pad_rows(rows, 0, self.device)
        h = self.model.hidden_states(ids)
        assert h.shape[:2] == ids.shape, f"hidden_states gave {tuple(h.shape)} for ids {tuple(ids.shape)}"
        return h[torch.arange(len(rows), device=self.device), mask.sum(dim=1) - 1].float()


def is_run_dir(path: Path) -> bool:
    """An augdiff run directory (``config.yaml`` or ``checkpoints/``) or one checkpoint (``meta.json``)."""
    return path.is_dir() and any((path / name).exists() for name in ("config.yaml", "checkpoints", "meta.json"))


def load_teacher(
    spec: str,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 16,
    max_length: int | None = None,
) -> Teacher:
    """The teacher named by ``--teacher``: an augdiff AR run directory, or a Hugging Face causal LM.

    Args:
        spec: a run directory (holds ``config.yaml`` or ``checkpoints/``), a local HF model directory, or a
            hub name such as ``gpt2-large`` (offline, a hub name fails at once with a user error).
        batch_size: chunks per forward pass of the teacher.
        max_length: tokens per forward pass (default: the teacher's context).
    """
    if batch_size < 1:
        raise AugdiffError(f"--teacher-batch-size={batch_size} must be a positive integer")
    if max_length is not None and max_length < 2:
        raise AugdiffError(f"--max-length={max_length} must be at least 2")
    path = Path(spec).expanduser()
    if is_run_dir(path):
        from augdiff.runs import load_run

        run = load_run(path, device=device)
        if not run.model.exact_likelihood:  # a teacher scores exact log-likelihoods: an AR model
            raise AugdiffError(
                f"--teacher {spec}: this run is {run.config.method}, not an autoregressive model "
                "(give a run trained with --method ar, or a Hugging Face causal LM)"
            )
        return RunTeacher(
            run.model, run.data, name=str(run.path), device=device, batch_size=batch_size, max_length=max_length
        )
    from augdiff.metrics.hf_teacher import load_hf_teacher

    return load_hf_teacher(spec, device=device, batch_size=batch_size, max_length=max_length)


def teacher_inputs(
    teacher: Teacher,
    samples: Samples,
    sample_tokenizer: Tokenizer | None = None,
    sample_description: dict[str, Any] | None = None,
) -> TeacherInputs:
    """The teacher's token ids of ``samples``: passed through, or decoded to text and retokenized.

    Ids pass unchanged when ``sample_description`` (the data description of the model that drew them) has the
    teacher's tokenizer (:func:`same_tokenizer`); otherwise ``sample_tokenizer`` decodes each sample to text
    and the teacher tokenizes it. Text samples are always tokenized by the teacher. Padding (the ``pad_id`` of
    ``sample_tokenizer``, else of the description's tokenizer) is dropped from passed-through ids.
    """
    if not isinstance(samples, Tensor | np.ndarray):
        items = list(samples)
        if items and isinstance(items[0], str):
            return TeacherInputs(teacher.encode(items), retokenized=True)  # type: ignore[arg-type]
        samples = items  # type: ignore[assignment]
    rows = [[int(i) for i in row] for row in (samples.tolist() if hasattr(samples, "tolist") else samples)]
    if same_tokenizer(teacher.description, sample_description):
        # Callers that pass ids through give no tokenizer: the description still names the padding.
        own = sample_tokenizer or tokenizer_from_description(sample_description or {})
        pad = getattr(own, "pad_id", None)
        return TeacherInputs([[i for i in row if i != pad] for row in rows], retokenized=False)
    if sample_tokenizer is None:
        what = (sample_description or {}).get("spec", "unknown data")
        raise AugdiffError(
            f"teacher {teacher.name}: the samples are token ids of {what}, which the teacher does not read and "
            "which have no tokenizer to decode them to text (give a teacher trained on the same data)"
        )
    texts = [sample_tokenizer.decode(row) for row in rows]
    return TeacherInputs(teacher.encode(texts), retokenized=True)
