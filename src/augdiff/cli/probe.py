"""augdiff probe: the predicted token at a masked position for each noise level of its latent (CADD Table 12)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch

from augdiff.data.tokens import encode_chars
from augdiff.errors import AugdiffError
from augdiff.probe import CONTEXTS, probe_latent
from augdiff.runs import load_run
from augdiff.train import resolve_device

MASK_MARKER = "[MASK]"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("probe", help="probe a CADD text model's latent", description=__doc__)
    p.add_argument("run_dir", metavar="DIR", help="a CADD run trained on text")
    p.add_argument("--text", required=True, help=f"the input; {MASK_MARKER} stands for one masked token")
    p.add_argument("--position", type=int, required=True, help="the token to probe (1-based, as in the paper)")
    p.add_argument("--true", help=f"the true token at --position when the text has {MASK_MARKER} there")
    p.add_argument("--noise", default="0.1,0.3,0.5,0.7,1.0", help="comma-separated noise levels t in [0, 1]")
    p.add_argument("--top", type=int, default=3, help="predictions shown per noise level")
    p.add_argument(
        "--context",
        choices=CONTEXTS,
        default="matched",
        help="matched: at each level t also mask the other tokens with probability 1-alpha(t), each with its "
        "true token's latent at t, as the model saw in training (with time conditioning off it reads t from how "
        "much is masked); clean: mask only --position",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the latent noise and of the masked positions")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def _tokens(chars: str, text: str) -> tuple[torch.Tensor, list[bool]]:
    """Character ids of ``text`` with each ``[MASK]`` as one placeholder; the mask flags say where."""
    pieces = text.split(MASK_MARKER)
    ids: list[torch.Tensor] = []
    masked: list[bool] = []
    for i, piece in enumerate(pieces):
        part = encode_chars(chars, piece)
        ids.append(part)
        masked += [False] * part.numel()
        if i < len(pieces) - 1:
            ids.append(torch.zeros(1, dtype=torch.long))
            masked.append(True)
    return torch.cat(ids), masked


def _levels(text: str) -> list[float]:
    try:
        levels = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        levels = []
    if not levels or not all(0.0 <= v <= 1.0 for v in levels):
        raise AugdiffError(f"--noise {text!r}: give noise levels in [0, 1] separated by commas, e.g. 0.1,0.5,1.0")
    return levels


def run(args: argparse.Namespace) -> int:
    levels = _levels(args.noise)
    loaded = load_run(args.run_dir, device=resolve_device(args.device))
    chars = loaded.data.get("chars")
    if chars is None:
        raise AugdiffError(f"probe needs a text model (this run was trained on {loaded.data['spec']})")
    try:
        tokens, masked = _tokens(chars, args.text)
    except AugdiffError as exc:
        raise AugdiffError(f"--text: {exc}") from None
    position = args.position - 1
    if not 0 <= position < len(masked):
        raise AugdiffError(f"--position {args.position} is outside the text's {len(masked)} tokens (1-based)")
    if masked[position] and args.true is None:
        raise AugdiffError(f"the text has {MASK_MARKER} at --position {args.position}: give the true token with --true")
    true_token = int(encode_chars(chars, args.true)[0]) if args.true else int(tokens[position])
    if args.true is not None and len(args.true) != 1:
        raise AugdiffError(f"--true {args.true!r}: a character-level model takes one character")
    tokens[torch.tensor(masked, dtype=torch.bool)] = loaded.model.mask_id
    rows = probe_latent(
        loaded.model, tokens, position, true_token, levels, top=args.top, seed=args.seed, context=args.context
    )
    show = lambda i: chars[i] if i < len(chars) else "[MASK]"  # noqa: E731
    if args.json:
        out = [{"noise": r.noise, "masked": r.masked, "top": [[show(i), p] for i, p in r.top]} for r in rows]
        print(json.dumps(out, indent=2))
        return 0
    print(f"position {args.position}, true token {show(true_token)!r}, context {args.context}")
    width = len(str(len(masked)))
    for r in rows:
        shown = "  ".join(f"{show(i)!r}:{p:.3f}" for i, p in r.top)
        print(f"t={r.noise:.2f}  masked {r.masked:>{width}}/{len(masked)}  {shown}")
    return 0
