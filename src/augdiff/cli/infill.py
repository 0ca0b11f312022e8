"""``augdiff sample --infill TEMPLATE``: the given tokens are fixed, ``[MASK:n]`` marks n positions to generate.

For a text model the template is text (``"The [MASK:5] sat on the [MASK:3]."``), each piece between masks
encoded by the run's tokenizer; for token data it is ids separated by spaces (``"5 7 [MASK:3] 9"``). ``[MASK]``
is one position. Positions after the template, up to the model's length, are generated too.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from augdiff.data.tokenizer import Tokenizer
from augdiff.errors import AugdiffError

__all__ = ["parse_infill", "leading_bos"]

_MASK = re.compile(r"\[MASK(?::(\d+))?\]")


def leading_bos(tokenizer: Tokenizer | None, data: dict[str, Any]) -> list[int]:
    """``[BOS]`` when the run's rows start with one (``wrap``/``pad`` packing), else ``[]``."""
    if tokenizer is not None and data.get("packing", "none") != "none" and tokenizer.bos_id is not None:
        return [tokenizer.bos_id]
    return []


def _pieces(template: str) -> list[str | int]:
    """Text pieces and mask counts in order: ``"a[MASK:2]b"`` → ``["a", 2, "b"]``."""
    out: list[str | int] = []
    at = 0
    for match in _MASK.finditer(template):
        out.append(template[at : match.start()])
        count = int(match.group(1) or 1)
        if count < 1:
            raise AugdiffError(f"--infill: {match.group(0)} asks for no position (use [MASK:n] with n ≥ 1)")
        out.append(count)
        at = match.end()
    out.append(template[at:])
    return [p for p in out if p != ""]


def _ids_of(piece: str, tokenizer: Tokenizer | None, vocab_size: int) -> list[int]:
    if tokenizer is not None:
        return tokenizer.encode(piece)
    try:
        ids = [int(tok) for tok in piece.split()]
    except ValueError:
        raise AugdiffError(
            f"--infill: {piece.strip()!r} is not token ids (this model has no tokenizer: give ids separated by "
            "spaces and [MASK:n])"
        ) from None
    bad = [i for i in ids if not 0 <= i < vocab_size]
    if bad:
        raise AugdiffError(f"--infill: id {bad[0]} is outside the model's vocabulary [0, {vocab_size})")
    return ids


def parse_infill(template: str, tokenizer: Tokenizer | None, data: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, given)`` ``[P]`` of a template: the fixed token ids (0 where generated) and which are fixed."""
    pieces = _pieces(template)
    if not any(isinstance(p, int) for p in pieces):
        raise AugdiffError("--infill: the template has no [MASK] or [MASK:n] (for a fixed start use --prefix)")
    ids = leading_bos(tokenizer, data)
    given = [True] * len(ids)
    for piece in pieces:
        if isinstance(piece, int):
            ids += [0] * piece
            given += [False] * piece
        else:
            new = _ids_of(piece, tokenizer, int(data["vocab_size"]))
            ids += new
            given += [True] * len(new)
    if len(ids) > int(data["seq_len"]):
        raise AugdiffError(
            f"--infill: the template fills {len(ids)} positions but the model's seq_len is {data['seq_len']}"
        )
    return torch.tensor(ids, dtype=torch.long), torch.tensor(given, dtype=torch.bool)
