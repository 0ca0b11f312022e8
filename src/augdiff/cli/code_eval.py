"""augdiff eval --code: functional correctness of generated code, pass@k (CADD §5.3 with DiffuCoder's settings).

Each task's prompt is the fixed prefix; the model writes ``--code-length`` tokens after it, decoded and cut at
the first stop sequence (Chen et al. 2021's stops: a new top-level ``def``, ``class``, ``if``, ``print`` or
comment), and every completion runs against the task's tests in its own sandboxed process
(:mod:`augdiff.metrics.code_exec`). The defaults are CADD App. B.2's, which follow DiffuCoder: 512 tokens in
512 steps (one per step), entropy-ordered unmasking ("top negative entropy remasking"), temperature 0.2 (CADD
trained from scratch; the paper uses 0.01 for the model initialized from DiffuCoder), no nucleus cut.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from augdiff.cli.infill import leading_bos
from augdiff.cli.text_eval import parse_steps
from augdiff.data.hub import load_hub_splits
from augdiff.data.tokenizer import Tokenizer, tokenizer_from_description
from augdiff.errors import AugdiffError
from augdiff.experiments.report import markdown_table
from augdiff.files import check_output_file, write_text_atomic
from augdiff.metrics.code_exec import CodeTask, evaluate_code, load_code_tasks, task_from_record

__all__ = ["add_flags", "check_flags", "run_code_eval", "truncate_completion", "STOP_SEQUENCES"]

#: where a completion ends (Chen et al. 2021, §2.3): HumanEval's is a function body, so the next top-level
#: statement ends it; MBPP's is whole code (imports, helpers, the function), ended only by test or driver code
STOP_SEQUENCES = {
    "humaneval": ("\nclass ", "\ndef ", "\n#", "\nif ", "\nprint(", "\n```", "\nassert "),
    "mbpp": ("\nif __name__", "\nprint(", "\n```", "\nassert "),
}
#: the hub's copies: repo, config, split
HUB_TASKS = {
    "humaneval": ("openai/openai_humaneval", None, "test"),
    "mbpp": ("google-research-datasets/mbpp", "full", "test"),
}


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--code",
        default=None,
        help="comma-separated code tasks: humaneval, mbpp (the hub's copies) or a .jsonl in their format: "
        "pass@k of generated completions; replaces --data",
    )
    p.add_argument("--code-samples", type=int, default=1, help="--code: completions per task (n of pass@k)")
    p.add_argument("--code-length", type=int, default=512, help="--code: tokens written after each prompt")
    p.add_argument("--code-steps", type=int, default=None, help="--code: sampling steps (default: --code-length)")
    p.add_argument("--code-temperature", type=float, default=0.2, help="--code: sampling temperature")
    p.add_argument("--code-top-p", type=float, default=1.0, help="--code: nucleus sampling")
    p.add_argument("--pass-k", default="1,10", help="--code: comma-separated k of pass@k (k ≤ --code-samples)")
    p.add_argument("--code-timeout", type=float, default=10.0, help="--code: seconds per completion's tests")


def check_flags(args: argparse.Namespace) -> None:
    """Every --code flag checked before a model is loaded."""
    for name in ("code_samples", "code_length"):
        if getattr(args, name) < 1:
            raise AugdiffError(f"--{name.replace('_', '-')}={getattr(args, name)} must be a positive integer")
    if args.code_steps is not None and args.code_steps < 1:
        raise AugdiffError(f"--code-steps={args.code_steps} must be a positive integer")
    if not 0 < args.code_temperature < float("inf") or not 0 < args.code_top_p <= 1:
        raise AugdiffError("--code-temperature must be positive and --code-top-p in (0, 1]")
    if not args.code_timeout > 0:
        raise AugdiffError(f"--code-timeout={args.code_timeout} must be positive")
    parse_steps(args.pass_k, "--pass-k")
    for name in _names(args.code):
        if name not in HUB_TASKS and not Path(name).expanduser().is_file():
            raise AugdiffError(f"--code {name}: neither {' nor '.join(HUB_TASKS)} nor a .jsonl file that exists")


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise AugdiffError("--code is empty: give humaneval, mbpp or a .jsonl of tasks")
    return names


def _hub_tasks(name: str) -> list[CodeTask]:
    repo, config, split = HUB_TASKS[name]
    fix = f"; download {name} elsewhere and pass its .jsonl"
    (rows,) = load_hub_splits("", repo, [split], config=config, fix=fix)
    return [task_from_record(dict(row), f"{repo}[{i}]") for i, row in enumerate(rows)]


def truncate_completion(text: str, style: str = "humaneval") -> str:
    """``text`` up to the first stop sequence of the task's ``style`` (all of it when none occurs)."""
    cut = min((i for i in (text.find(s) for s in STOP_SEQUENCES[style]) if i >= 0), default=len(text))
    return text[:cut]


def _prompt_ids(task: CodeTask, tokenizer: Tokenizer, data: dict[str, Any]) -> torch.Tensor:
    try:
        ids = [*leading_bos(tokenizer, data), *tokenizer.encode(task.prompt)]
    except AugdiffError as exc:
        raise AugdiffError(f"--code task {task.task_id}: its prompt does not encode ({exc})") from None
    if len(ids) >= int(data["seq_len"]):
        raise AugdiffError(
            f"--code task {task.task_id}: its prompt of {len(ids)} tokens fills the model's seq_len {data['seq_len']}"
        )
    return torch.tensor(ids, dtype=torch.long)


def _decode(tokenizer: Tokenizer, ids: list[int]) -> str:
    """The completion's text up to its first EOS (what follows an end of text is not part of the answer)."""
    if tokenizer.eos_id is not None and tokenizer.eos_id in ids:
        ids = ids[: ids.index(tokenizer.eos_id)]
    return tokenizer.decode(ids)


def _completions(loaded: Any, task: CodeTask, tokenizer: Tokenizer, args: argparse.Namespace, device: Any) -> list[str]:
    """``--code-samples`` completions of ``--code-length`` tokens (fewer when the prompt leaves less room)."""
    prefix = _prompt_ids(task, tokenizer, loaded.data)
    total = min(int(loaded.data["seq_len"]), prefix.numel() + args.code_length)
    common = dict(temperature=args.code_temperature, top_p=args.code_top_p, prefix=prefix, seed=args.seed)
    if not loaded.model.takes_steps:  # an AR model writes token by token
        rows = loaded.model.sample(args.code_samples, total, **common)
    else:
        steps = min(args.code_steps or args.code_length, total - prefix.numel())
        rows = loaded.model.sample(args.code_samples, total, steps, ordering="entropy", device=device, **common)
    return [truncate_completion(_decode(tokenizer, row[prefix.numel() :].tolist()), task.style) for row in rows]


def run_code_eval(args: argparse.Namespace, loaded: Any, device: Any) -> dict[str, Any]:
    """Each task set in turn: generation, then the sandboxed tests; a set that cannot be loaded is one line."""
    out_md = None if args.out_md is None else check_output_file(args.out_md, "--out-md")
    tokenizer = tokenizer_from_description(loaded.data)
    if tokenizer is None:
        raise AugdiffError(f"--code needs a text model (this run was trained on {loaded.data['spec']})")
    results: dict[str, Any] = {}
    for name in _names(args.code):
        try:
            tasks = _hub_tasks(name) if name in HUB_TASKS else load_code_tasks(Path(name).expanduser())
        except AugdiffError as exc:
            print(f"augdiff: --code {name}: skipped: {exc}", file=sys.stderr)
            results[name] = {"error": str(exc)}
            continue
        completions = {t.task_id: _completions(loaded, t, tokenizer, args, device) for t in tasks}
        outcome = evaluate_code(tasks, completions, parse_steps(args.pass_k, "--pass-k"), timeout_s=args.code_timeout)
        results[name] = {**outcome.to_dict(), "completions": completions}
    table = _table(results)
    if out_md is not None:
        write_text_atomic(Path(out_md), table)
    print(table, file=sys.stderr)
    settings = {k: getattr(args, k) for k in ("code_samples", "code_length", "code_temperature", "code_top_p")}
    return {"code": results, "settings": {**settings, "code_steps": args.code_steps or args.code_length}}


def _table(results: dict[str, Any]) -> str:
    ks = sorted({k for r in results.values() for k in r.get("pass_at_k", {})}, key=lambda k: int(k.split("@")[1]))
    rows = []
    for name, r in results.items():
        if "error" in r:
            rows.append([name, "not loaded", *[""] * len(ks)])
            continue
        rows.append([name, str(r["n_tasks"]), *[f"{r['pass_at_k'].get(k, float('nan')):.3f}" for k in ks]])
    return "Functional correctness (sandboxed tests).\n\n" + markdown_table(["tasks", "n", *ks], rows) + "\n"
