"""Flags and helpers shared by ``augdiff eval`` and ``augdiff sample --eval``: the teacher, MAUVE, JSON output."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from augdiff.errors import AugdiffError
from augdiff.files import check_output_file, ensure_dir, json_safe, write_text_atomic
from augdiff.metrics.mauve_score import require_mauve
from augdiff.metrics.teacher import Teacher, load_teacher

__all__ = [
    "add_teacher_flags",
    "check_teacher_flags",
    "teacher_from_args",
    "emit_json",
    "parse_steps",
    "add_sample_eval_flags",
    "check_sample_eval_flags",
    "report_sample_eval",
]


def add_teacher_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--teacher",
        metavar="SPEC",
        help="AR model scoring the samples: a Hugging Face causal LM (hub name such as gpt2-large, or a local "
        "directory) or an augdiff AR run directory",
    )
    p.add_argument("--teacher-batch-size", type=int, default=16, help="sequences per teacher forward pass")
    p.add_argument(
        "--max-length", type=int, default=None, help="teacher tokens per forward pass; longer samples are chunked"
    )
    p.add_argument("--mauve", action="store_true", help="MAUVE against validation text (features: the teacher)")
    p.add_argument("--mauve-buckets", default="auto", help="MAUVE k-means clusters: auto (max(2, n/10)) or an integer")
    p.add_argument("--out-json", metavar="PATH", default=None, help="also write the JSON result to this file")


def check_teacher_flags(args: argparse.Namespace) -> Path | None:
    """Validate the shared flags before any work; returns the ``--out-json`` path."""
    if args.teacher_batch_size < 1:
        raise AugdiffError(f"--teacher-batch-size={args.teacher_batch_size} must be a positive integer")
    if args.max_length is not None and args.max_length < 2:
        raise AugdiffError(f"--max-length={args.max_length} must be at least 2")
    if args.mauve and not args.teacher:
        raise AugdiffError("--mauve compares teacher features: give --teacher (gpt2-large, a path or an AR run)")
    if args.mauve_buckets != "auto":
        try:
            args.mauve_buckets = int(args.mauve_buckets)
        except ValueError:
            raise AugdiffError(f"--mauve-buckets={args.mauve_buckets!r}: give auto or an integer ≥ 2") from None
        if args.mauve_buckets < 2:
            raise AugdiffError(f"--mauve-buckets={args.mauve_buckets} must be at least 2")
    if args.mauve:
        require_mauve()  # a missing package is an error now, not after sampling
    return None if args.out_json is None else check_output_file(args.out_json, "--out-json")


def teacher_from_args(args: argparse.Namespace, device: torch.device) -> Teacher | None:
    """The ``--teacher`` model, or ``None`` without the flag."""
    if not args.teacher:
        return None
    return load_teacher(args.teacher, device=device, batch_size=args.teacher_batch_size, max_length=args.max_length)


def parse_steps(text: str, flag: str) -> list[int]:
    """``"1,8,128"`` → ``[1, 8, 128]``; anything else is a user error naming ``flag``."""
    try:
        steps = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        steps = []
    if not steps or min(steps) < 1:
        raise AugdiffError(f"{flag} {text!r}: give positive integers separated by commas, e.g. 1,8,128")
    return steps


def emit_json(result: dict[str, Any], out_json: Path | None) -> None:
    """Print the result as JSON on stdout and, with ``--out-json``, write the same text atomically."""
    text = json.dumps(json_safe(result), indent=2)
    print(text)
    if out_json is not None:
        ensure_dir(out_json.parent, "--out-json")
        write_text_atomic(out_json, text + "\n")


def add_sample_eval_flags(p: argparse.ArgumentParser) -> None:
    """``augdiff sample --eval``: the sample metrics of the sequences just drawn."""
    p.add_argument(
        "--eval",
        action="store_true",
        help="report the samples' entropy, and with --teacher their generative perplexity (and --mauve)",
    )
    add_teacher_flags(p)


def check_sample_eval_flags(args: argparse.Namespace) -> Path | None:
    """Validate ``sample``'s evaluation flags before sampling; returns the ``--out-json`` path."""
    if not args.eval:
        given = [
            f for f, v in (("--teacher", args.teacher), ("--mauve", args.mauve), ("--out-json", args.out_json)) if v
        ]
        if given:
            raise AugdiffError(f"{given[0]} evaluates the samples: add --eval")
    return check_teacher_flags(args)


def report_sample_eval(
    args: argparse.Namespace, loaded: Any, samples: torch.Tensor, teacher: Teacher | None, out_json: Path | None
) -> None:
    """Evaluate the samples of ``augdiff sample`` (MAUVE against the validation split of the run's own data)
    and emit the JSON."""
    from augdiff.data import make_dataset
    from augdiff.data.tokenizer import tokenizer_from_description
    from augdiff.metrics import evaluate_samples, same_tokenizer

    reference = None
    if args.mauve:
        data = make_dataset(loaded.data["spec"], like=loaded.data)
        reference = torch.cat(list(data.valid_batches(args.batch_size, samples.shape[0])))
    retokenize = teacher is not None and not same_tokenizer(teacher.description, loaded.data)
    metrics = evaluate_samples(
        samples,
        teacher=teacher,
        reference=reference,
        sample_tokenizer=tokenizer_from_description(loaded.data) if retokenize else None,
        sample_description=loaded.data,
        mauve_buckets=args.mauve_buckets,
    )
    result = {
        "run": str(loaded.path),
        "step": loaded.step,
        "steps": args.steps if loaded.model.takes_steps else None,
        "teacher": None if teacher is None else teacher.name,
        **metrics.as_dict(),
    }
    emit_json(result, out_json)
