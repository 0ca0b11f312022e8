r"""Functional correctness of generated code: pass@k on HumanEval- and MBPP-style tasks (CADD §5.3).

CADD evaluates code models on HumanEval and MBPP with DiffuCoder's settings: every completion is run against
the task's tests, and the ``n`` completions of a task of which ``c`` pass give the unbiased estimator of
Chen et al. 2021 ("Evaluating Large Language Models Trained on Code", §2.1, Eq 1), averaged over tasks,

.. math::

    \text{pass@}k = \mathbb E_{\text{tasks}}\Big[1 - \binom{n-c}{k} \Big/ \binom{n}{k}\Big].

Each completion runs in its own Python process (:func:`run_sandboxed`) with resource limits, a throw-away
working directory and a prelude that disables the calls a buggy completion could do harm with. That is a guard
against accidents, **not a security boundary**: run code from an untrusted source in a container or VM.

Example::

    tasks = load_code_tasks("HumanEval.jsonl")
    result = evaluate_code(tasks, {t.task_id: completions_of(t) for t in tasks}, ks=(1, 10))
    json.dump(result.to_dict(), open("results.json", "w"))
"""

from __future__ import annotations

import ast
import builtins
import json
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from augdiff.errors import AugdiffError
from augdiff.metrics.sandbox import ExecResult, run_sandboxed

__all__ = [
    "pass_at_k",
    "CodeTask",
    "load_code_tasks",
    "task_from_record",
    "build_program",
    "ExecResult",
    "run_sandboxed",
    "TaskOutcome",
    "CodeEvalResult",
    "evaluate_code",
]


def pass_at_k(n: int, c: int, k: int) -> float:
    r"""Unbiased pass@k of one task with ``c`` correct among ``n`` completions (Chen et al. 2021, §2.1, Eq 1).

    .. math::

        1 - \binom{n-c}{k}\Big/\binom{n}{k} = 1 - \prod_{i=n-c+1}^{n} \Big(1 - \frac{k}{i}\Big),

    the product form, which never forms the (huge) binomials; it is exactly 1 when ``n - c < k`` (every k-subset
    holds a correct completion).
    """
    if not (n >= 1 and 1 <= k <= n and 0 <= c <= n):
        raise ValueError(f"pass@k needs 1 <= k <= n and 0 <= c <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


@dataclass
class CodeTask:
    """One problem. ``style`` says how a completion becomes a program (:func:`build_program`):

    - ``"humaneval"``: ``prompt`` is the signature and docstring, the completion the body, ``test`` defines
      ``check(candidate)``, called with ``entry_point`` (``""``: ``test`` runs its checks itself);
    - ``"mbpp"``: ``prompt`` is the task text plus one example assert, the completion the whole function, and
      ``test`` the setup code and the asserts.
    """

    task_id: str
    prompt: str
    test: str
    entry_point: str
    style: Literal["humaneval", "mbpp"] = "humaneval"


def _mbpp_entry_point(assertion: str) -> str:
    """The function an MBPP assert calls: the first called plain name that is not a builtin (``set``, ``abs``)."""
    try:
        tree = ast.parse(assertion)
    except SyntaxError:
        return ""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not hasattr(builtins, node.func.id):
            return node.func.id
    return ""


def task_from_record(record: Any, where: str) -> CodeTask:
    """One task from a parsed record in HumanEval's or MBPP's format; ``where`` names it in errors."""
    if not isinstance(record, dict):
        raise AugdiffError(f"{where}: expected a JSON object per line (one task per line)")
    if isinstance(record.get("task_id"), str | int):
        task_id = str(record["task_id"])
    else:
        raise AugdiffError(f"{where}: no task_id (every task needs a string or integer task_id)")
    if all(isinstance(record.get(key), str) for key in ("prompt", "test", "entry_point")):
        return CodeTask(task_id, record["prompt"], record["test"], record["entry_point"], "humaneval")
    tests = record.get("test_list")
    setup = record.get("test_setup_code", "") or ""
    if isinstance(record.get("text"), str) and isinstance(tests, list) and tests and isinstance(setup, str):
        if all(isinstance(t, str) for t in tests):
            text = record["text"].strip().replace('"""', "'''")
            prompt = f'"""\n{text}\n{tests[0]}\n"""\n'  # the task and one example, as in MBPP's own prompts
            test = "\n".join([setup, *tests]) + "\n"
            return CodeTask(task_id, prompt, test, _mbpp_entry_point(tests[0]), "mbpp")
    raise AugdiffError(
        f"{where}: task {task_id!r} is neither HumanEval (prompt, test, entry_point: strings) "
        "nor MBPP (text: string, test_list: non-empty list of assert strings) format"
    )


def load_code_tasks(path: str | Path) -> list[CodeTask]:
    """Tasks of a ``.jsonl`` file, one JSON object per line, in HumanEval's or MBPP's format (blank lines skip).

    HumanEval: ``task_id, prompt, test, entry_point``. MBPP: ``task_id, text, test_list`` and optionally
    ``test_setup_code``; the prompt becomes the text and the first assert inside a docstring, the entry point the
    function that assert calls. A file that cannot be read raises :class:`AugdiffError` naming file and line.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise AugdiffError(f"{path}: file not found (give a .jsonl file of HumanEval or MBPP tasks)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AugdiffError(f"{path}: not readable as UTF-8 text ({type(exc).__name__})") from None
    tasks: list[CodeTask] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AugdiffError(f"{where}: invalid JSON ({exc.msg}; each line must be one JSON object)") from None
        task = task_from_record(record, where)
        if task.task_id in seen:
            raise AugdiffError(f"{where}: task_id {task.task_id!r} appears twice (task ids must be unique)")
        seen.add(task.task_id)
        tasks.append(task)
    if not tasks:
        raise AugdiffError(f"{path}: no tasks (the file is empty; give one JSON task per line)")
    return tasks


def build_program(task: CodeTask, completion: str) -> str:
    """The program run for one completion: HumanEval ``prompt + completion + test + check(entry_point)``,
    MBPP ``completion + setup + asserts``."""
    if task.style == "mbpp":
        return f"{completion}\n\n{task.test}"
    program = f"{task.prompt}{completion}\n\n{task.test}\n"
    return program + (f"\ncheck({task.entry_point})\n" if task.entry_point else "")


@dataclass
class TaskOutcome:
    """The runs of one task's completions, in the order given; ``n`` completions of which ``c`` passed."""

    task_id: str
    results: list[ExecResult]

    @property
    def n(self) -> int:
        return len(self.results)

    @property
    def c(self) -> int:
        return sum(r.status == "passed" for r in self.results)


@dataclass
class CodeEvalResult:
    """``pass_at_k``: k → mean pass@k over tasks, for every asked k up to the smallest ``n``; the larger ones are
    in ``skipped_ks`` with the reason in ``note``. ``tasks``: per-task outcomes, in the tasks' order."""

    pass_at_k: dict[int, float]
    tasks: list[TaskOutcome]
    skipped_ks: list[int] = field(default_factory=list)
    note: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def status_counts(self) -> dict[str, int]:
        return dict(Counter(r.status for t in self.tasks for r in t.results))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for ``results.json``): per task n, c, statuses and the first failure's detail."""
        per_task = {}
        for t in self.tasks:
            first_bad = next((r.detail for r in t.results if r.status != "passed"), "")
            per_task[t.task_id] = {"n": t.n, "c": t.c, "statuses": [r.status for r in t.results], "detail": first_bad}
        return {
            "pass_at_k": {f"pass@{k}": v for k, v in self.pass_at_k.items()},
            "skipped_ks": self.skipped_ks,
            "note": self.note,
            "n_tasks": len(self.tasks),
            "status_counts": self.status_counts(),
            "settings": self.settings,
            "seconds": self.seconds,
            "tasks": per_task,
        }


def evaluate_code(
    tasks: Sequence[CodeTask],
    completions: Mapping[str, Sequence[str]],
    ks: Sequence[int] = (1, 10),
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
    workers: int = 2,
) -> CodeEvalResult:
    """Runs every completion of every task (``workers`` sandboxes at a time) and estimates pass@k.

    ``completions`` maps each task id to its ``n ≥ 1`` completions; a task without any, or completions for an
    unknown task, raise :class:`AugdiffError`. pass@k is :func:`pass_at_k` averaged over tasks (Chen et al. 2021,
    Eq 1); a k above some task's ``n`` would be undefined for that task, so it is skipped and named in the result.
    """
    if not tasks:
        raise AugdiffError("no code tasks to evaluate (load them with load_code_tasks)")
    if any(k < 1 for k in ks) or workers < 1:
        raise AugdiffError(f"ks must be positive integers and workers at least 1, got ks={list(ks)}, {workers=}")
    missing = [t.task_id for t in tasks if not completions.get(t.task_id)]
    if missing:
        raise AugdiffError(f"no completions for {len(missing)} task(s), e.g. {missing[:3]} (give each task ≥ 1)")
    unknown = sorted(set(completions) - {t.task_id for t in tasks})
    if unknown:
        raise AugdiffError(f"completions for {len(unknown)} unknown task id(s), e.g. {unknown[:3]} (check the ids)")
    start = time.perf_counter()
    jobs = [(t, c) for t in tasks for c in completions[t.task_id]]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        runs = list(pool.map(lambda job: run_sandboxed(build_program(*job), timeout_s, memory_mb), jobs))
    outcomes: list[TaskOutcome] = []
    offset = 0
    for t in tasks:
        n = len(completions[t.task_id])
        outcomes.append(TaskOutcome(t.task_id, runs[offset : offset + n]))
        offset += n
    n_min = min(o.n for o in outcomes)
    kept = sorted({k for k in ks if k <= n_min})
    skipped = sorted({k for k in ks if k > n_min})
    note = f"pass@k for k in {skipped} skipped: the smallest task has n = {n_min} completions" if skipped else ""
    scores = {k: sum(pass_at_k(o.n, o.c, k) for o in outcomes) / len(outcomes) for k in kept}
    settings = {"timeout_s": timeout_s, "memory_mb": memory_mb, "workers": workers}
    return CodeEvalResult(scores, outcomes, skipped, note, settings, time.perf_counter() - start)
