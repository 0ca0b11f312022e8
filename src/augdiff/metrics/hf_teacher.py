r"""A Hugging Face causal LM as teacher (GPT-2 Large in MDLM, CADD and LADD), loaded through ``transformers``.

Loading never hangs offline: with ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` set, or when the hub does not
answer a quick connection check, it loads with ``local_files_only=True`` (the local cache), and a model found
nowhere is one :class:`~augdiff.errors.AugdiffError` line naming the alternatives.

Scoring prepends the tokenizer's BOS (GPT-2: ``<|endoftext|>``) to every chunk, so the first sample token is
scored as :math:`p(x_1 \mid \text{BOS})`; a tokenizer without BOS leaves the first token of each chunk
unscored (MDLM's convention). Features are the final hidden state (``hidden_states[-1]``) at the last token of
each sample, without BOS: what the MAUVE package computes with GPT-2.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from augdiff.data.hub import hub_unreachable
from augdiff.errors import AugdiffError
from augdiff.metrics.teacher import Teacher, pad_rows

__all__ = ["HFTeacher", "load_hf_teacher"]

# The switches that put transformers offline (datasets has its own; the hub switch serves both).
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


class HFTeacher(Teacher):
    """A ``transformers`` causal LM with its tokenizer (float32, eval mode).

    Args:
        model: an ``AutoModelForCausalLM`` (logits ``[B, L, V]``; ``output_hidden_states`` supported).
        tokenizer: its ``AutoTokenizer``.
        max_length: tokens per forward pass, BOS included (capped by the model's positions).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        device: torch.device | str = "cpu",
        batch_size: int = 16,
        max_length: int | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.float().to(self.device).eval()
        self.tokenizer = tokenizer
        self.name = name
        self.batch_size = batch_size
        context = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
        self.max_length = min(x for x in (max_length, context, 1 << 30) if x is not None)
        bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        self.bos_id: int | None = bos
        self.pad_id: int = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (bos or 0)

    @property
    def chunk_tokens(self) -> int:
        return self.max_length - 1 if self.bos_id is not None else self.max_length

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        return [list(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]]

    def _forward(self, rows: list[list[int]], hidden: bool) -> tuple[Any, Tensor, Tensor]:
        ids, mask = pad_rows(rows, self.pad_id, self.device)
        out = self.model(input_ids=ids, attention_mask=mask.long(), output_hidden_states=hidden, return_dict=True)
        return out, ids, mask

    def _score_chunks(self, chunks: list[list[int]]) -> tuple[Tensor, Tensor]:
        prefix = [self.bos_id] if self.bos_id is not None else []
        out, ids, mask = self._forward([prefix + c for c in chunks], hidden=False)
        # position i predicts token i+1: the targets are the ids shifted left, the padding masked out
        logits, targets, scored = out.logits[:, :-1].float(), ids[:, 1:], mask[:, 1:]
        nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none").double()
        return (nll * scored).sum(dim=1).cpu(), scored.sum(dim=1).cpu()

    def _feature_rows(self, rows: list[list[int]]) -> Tensor:
        out, _, mask = self._forward(rows, hidden=True)
        last = mask.sum(dim=1) - 1
        return out.hidden_states[-1][torch.arange(len(rows), device=self.device), last]


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise AugdiffError(
            "a Hugging Face teacher needs the transformers package (pip install 'augdiff[text]'), or give an "
            "augdiff AR run directory as --teacher"
        ) from None
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return transformers


def load_hf_teacher(
    spec: str, *, device: torch.device | str = "cpu", batch_size: int = 16, max_length: int | None = None
) -> HFTeacher:
    """Load ``spec`` (a local directory or a hub name) with ``AutoModelForCausalLM`` and ``AutoTokenizer``."""
    path = Path(spec).expanduser()
    local = path.is_dir()
    if not local and (spec.startswith((".", "/", "~")) or path.suffix in (".pt", ".bin", ".safetensors")):
        raise AugdiffError(
            f"--teacher {spec}: no such directory (give a Hugging Face model directory, a hub name such as "
            "gpt2-large, or an augdiff AR run directory)"
        )
    transformers = _transformers()
    offline = not local and hub_unreachable(offline_vars=_OFFLINE_VARS) is not None
    source = str(path) if local else spec
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, local_files_only=local or offline)
        model = transformers.AutoModelForCausalLM.from_pretrained(source, local_files_only=local or offline)
    except (OSError, ValueError, KeyError) as exc:
        if offline:
            raise AugdiffError(
                f"--teacher {spec}: not in the local Hugging Face cache and the hub is offline (give a local "
                "path to a Hugging Face causal LM, or an augdiff AR run directory)"
            ) from None
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise AugdiffError(
            f"--teacher {spec}: cannot load a Hugging Face causal LM ({first}); give a hub name such as "
            "gpt2-large, a local model directory, or an augdiff AR run directory"
        ) from None
    return HFTeacher(model, tokenizer, name=spec, device=device, batch_size=batch_size, max_length=max_length)
