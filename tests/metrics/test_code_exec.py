"""pass@k and sandboxed execution of generated code: the estimator against brute force, HumanEval and MBPP task
files end to end, and each guard of the sandbox (time, memory, network, files, exits)."""

import ast
import importlib.util
import itertools
import json
import os
import sys
import time
from fractions import Fraction
from math import comb
from pathlib import Path

import pytest

from augdiff.errors import AugdiffError
from augdiff.metrics.code_exec import (
    CodeTask,
    build_program,
    evaluate_code,
    load_code_tasks,
    pass_at_k,
    run_sandboxed,
)

needs_posix = pytest.mark.skipif(
    importlib.util.find_spec("resource") is None or not hasattr(os, "killpg"),
    reason="the sandbox needs POSIX resource limits and process groups",
)
needs_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc behave as tested on Linux only"
)


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _alive(pid: int) -> bool:
    """A zombie waiting for init to reap it counts as gone: it runs no code and holds no memory."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _gone_soon(pid: int, within_s: float = 2.0) -> bool:
    deadline = time.monotonic() + within_s
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# ---- pass@k -------------------------------------------------------------------------------------------------


def _pass_at_k_by_enumeration(n: int, c: int, k: int) -> Fraction:
    """The definition: the share of all k-subsets of the n completions (the first c correct) holding a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return Fraction(sum(any(i < c for i in s) for s in subsets), len(subsets))


def test_pass_at_k_matches_enumeration_of_all_k_subsets():
    for n in range(1, 8):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(float(_pass_at_k_by_enumeration(n, c, k)), abs=1e-12)


def test_pass_at_k_edges_none_and_all_correct_are_exact():
    assert pass_at_k(10, 0, 1) == 0.0 and pass_at_k(10, 0, 10) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0 and pass_at_k(10, 10, 10) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the share of correct completions


def test_pass_at_k_stays_accurate_where_the_binomials_overflow_a_float():
    n, c, k = 2000, 7, 300  # C(2000, 300) ≈ 1e385 has no float
    exact = 1 - Fraction(comb(n - c, k), comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-12)


@pytest.mark.parametrize("n, c, k", [(5, 2, 6), (5, 6, 1), (5, 2, 0), (0, 0, 1), (5, -1, 1)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ValueError, match="pass@k needs"):
        pass_at_k(n, c, k)


# ---- task files ---------------------------------------------------------------------------------------------

_ADD = {
    "task_id": "HumanEval/0",
    "prompt": 'def add(a, b):\n    """Sum of a and b."""\n',
    "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n",
    "entry_point": "add",
}
_IS_EVEN = {
    "task_id": "HumanEval/1",
    "prompt": "def is_even(x):\n",
    "test": "def check(candidate):\n    assert candidate(4)\n    assert not candidate(3)\n",
    "entry_point": "is_even",
}
_SPIN = {
    "task_id": "HumanEval/2",
    "prompt": "def spin():\n",
    "test": "def check(candidate):\n    assert candidate() is None\n",
    "entry_point": "spin",
}
# Prints its pid first, so that the test can check the process is gone after the timeout.
_LOOP_FOREVER = (
    "    import os, sys\n    print(os.getpid(), file=sys.stderr, flush=True)\n    while True:\n        pass\n"
)


@needs_posix
@needs_linux
def test_humaneval_file_passes_fails_and_times_out(tmp_path):
    tasks = load_code_tasks(_write_jsonl(tmp_path / "he.jsonl", [_ADD, _IS_EVEN, _SPIN]))
    assert [t.style for t in tasks] == ["humaneval"] * 3 and tasks[0].entry_point == "add"
    completions = {
        "HumanEval/0": ["    return a + b\n", "    return a - b\n"],
        "HumanEval/1": ["    return x % 2 == 1\n"],
        "HumanEval/2": [_LOOP_FOREVER],
    }
    start = time.monotonic()
    result = evaluate_code(tasks, completions, ks=(1, 2), timeout_s=2.0, workers=2)
    assert time.monotonic() - start < 10.0

    statuses = {t.task_id: [r.status for r in t.results] for t in result.tasks}
    assert statuses == {"HumanEval/0": ["passed", "failed"], "HumanEval/1": ["failed"], "HumanEval/2": ["timeout"]}
    assert "AssertionError" in result.tasks[1].results[0].detail
    spinner = result.tasks[2].results[0]
    assert 2.0 <= spinner.seconds < 5.0
    assert _gone_soon(int(spinner.detail.split()[0])), "the looping process outlived its timeout"

    # pass@1 = mean over tasks of c/n = (1/2 + 0 + 0) / 3; pass@2 needs n ≥ 2 for every task
    assert result.pass_at_k == {1: pytest.approx(1 / 6)}
    assert result.skipped_ks == [2] and "n = 1" in result.note
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["pass_at_k"] == {"pass@1": pytest.approx(1 / 6)}
    first = summary["tasks"]["HumanEval/0"]
    assert (first["n"], first["c"], first["statuses"]) == (2, 1, ["passed", "failed"])
    assert "AssertionError" in first["detail"]  # the first failing completion's traceback
    assert summary["status_counts"] == {"passed": 1, "failed": 2, "timeout": 1}


@needs_posix
def test_mbpp_file_round_trip(tmp_path):
    records = [
        {
            "task_id": 2,
            "text": "Write a function to find the shared elements from the given two lists.",
            "test_list": [
                "assert set(similar_elements((3, 4, 5, 6), (5, 7, 4, 10))) == set((4, 5))",
                "assert set(similar_elements((1, 2, 3, 4), (5, 4, 3, 7))) == set((3, 4))",
            ],
        },
        {
            "task_id": 3,
            "text": "Write a function for the area of a circle.",
            "test_list": ["assert math.isclose(circle_area(1.0), math.pi)"],
            "test_setup_code": "import math",
        },
    ]
    tasks = load_code_tasks(_write_jsonl(tmp_path / "mbpp.jsonl", records))
    assert [(t.task_id, t.entry_point, t.style) for t in tasks] == [
        ("2", "similar_elements", "mbpp"),  # set(...) is a builtin, not the entry point
        ("3", "circle_area", "mbpp"),  # math.isclose is an attribute call, not the entry point
    ]
    assert records[0]["text"] in tasks[0].prompt and records[0]["test_list"][0] in tasks[0].prompt
    assert isinstance(ast.parse(tasks[0].prompt).body[0].value.value, str)  # the prompt is one docstring
    program = build_program(tasks[1], "def circle_area(r): ...")
    assert program.index("def circle_area") < program.index("import math") < program.index("assert math.isclose")

    completions = {
        "2": ["def similar_elements(a, b):\n    return tuple(set(a) & set(b))\n"],
        # uses math without importing it: passes only because the task's setup code runs before the asserts
        "3": ["def circle_area(r):\n    return math.pi * r * r\n", "def circle_area(r):\n    return 3.0 * r * r\n"],
    }
    result = evaluate_code(tasks, completions, ks=(1,), timeout_s=5.0)
    assert [[r.status for r in t.results] for t in result.tasks] == [["passed"], ["passed", "failed"]]
    assert result.pass_at_k[1] == pytest.approx((1.0 + 0.5) / 2)


def _bad_file_cases():
    good = json.dumps(_ADD)
    return {
        "empty": ("", "no tasks"),
        "blank lines only": ("\n\n", "no tasks"),
        "invalid json on line 2": (good + "\n{not json\n", "line 2: invalid JSON"),
        "neither format": (json.dumps({"task_id": "x", "question": "?"}) + "\n", "line 1: task 'x' is neither"),
        "no task id": (json.dumps({"prompt": "", "test": "", "entry_point": ""}) + "\n", "line 1: no task_id"),
        "not an object": ("[1, 2]\n", "line 1: expected a JSON object"),
        "empty test_list": (json.dumps({"task_id": 1, "text": "t", "test_list": []}) + "\n", "line 1"),
        "duplicate id": (good + "\n" + good + "\n", "line 2: task_id 'HumanEval/0' appears twice"),
    }


@pytest.mark.parametrize("case", list(_bad_file_cases()))
def test_bad_task_files_name_the_file_and_line(tmp_path, case):
    content, expected = _bad_file_cases()[case]
    path = tmp_path / "tasks.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AugdiffError) as info:
        load_code_tasks(path)
    message = str(info.value)
    assert str(path) in message and expected in message and "\n" not in message


def test_a_missing_task_file_names_the_file(tmp_path):
    with pytest.raises(AugdiffError, match="nowhere.jsonl: file not found"):
        load_code_tasks(tmp_path / "nowhere.jsonl")


def test_tasks_without_completions_are_an_error():
    tasks = [CodeTask("a", "def f():\n", "def check(c):\n    pass\n", "f"), CodeTask("b", "", "", "")]
    with pytest.raises(AugdiffError, match=r"no completions for 1 task\(s\), e.g. \['b'\]"):
        evaluate_code(tasks, {"a": ["    return 1\n"], "b": []})
    with pytest.raises(AugdiffError, match="unknown task id"):
        evaluate_code(tasks[:1], {"a": ["    return 1\n"], "c": ["x"]})


# ---- the sandbox --------------------------------------------------------------------------------------------


@needs_posix
@needs_linux
def test_a_timeout_kills_the_whole_process_group():
    # posix.fork reaches around the guard (it is no security boundary); the process group still catches the child
    program = (
        "import os, posix, sys, time\n"
        "child = posix.fork()\n"
        "if child == 0:\n"
        "    time.sleep(600)\n"
        "print(os.getpid(), child, file=sys.stderr, flush=True)\n"
        "while True:\n"
        "    pass\n"
    )
    result = run_sandboxed(program, timeout_s=1.0)
    assert result.status == "timeout"
    parent, child = (int(p) for p in result.detail.split()[:2])
    assert _gone_soon(parent) and _gone_soon(child)


@needs_posix
@needs_linux
@pytest.mark.parametrize(
    "program", ["x = bytearray(8 * 2**30)", "blocks = []\nwhile True:\n    blocks.append(bytearray(2**20))\n"]
)
def test_allocating_beyond_the_memory_limit_fails(program):
    result = run_sandboxed(program, timeout_s=10.0, memory_mb=200)
    assert result.status == "failed" and "MemoryError" in result.detail
    assert result.seconds < 8.0


@needs_posix
@pytest.mark.parametrize(
    "program",
    [
        "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(('127.0.0.1', 9))",
        "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)",
        "import _socket\n_socket.socket()",
        "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:9', timeout=1)",
    ],
)
def test_a_program_cannot_open_a_socket(program):
    result = run_sandboxed(program, timeout_s=5.0)
    assert result.status == "failed" and "disabled in the augdiff sandbox" in result.detail


@needs_posix
def test_the_working_directory_is_fresh_and_removed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    program = "import os, sys\nopen('marker.txt', 'w').write('x')\nprint(os.getcwd(), file=sys.stderr)\n"
    result = run_sandboxed(program, timeout_s=5.0)
    assert result.status == "passed"
    workdir = Path(result.detail.strip())
    assert workdir.is_absolute() and workdir.resolve() != tmp_path.resolve()
    assert not workdir.exists() and not (tmp_path / "marker.txt").exists()


@needs_posix
def test_writing_outside_the_working_directory_is_refused(tmp_path):
    target = tmp_path / "outside.txt"
    result = run_sandboxed(f"open({str(target)!r}, 'w').write('x')", timeout_s=5.0)
    assert result.status == "failed" and "outside the working directory" in result.detail
    assert not target.exists()


@needs_posix
@pytest.mark.parametrize(
    "program, reason",
    [
        ("import sys\nsys.exit(0)\nassert False", "called exit(0)"),
        ("import os\nos._exit(0)\nassert False", "os._exit is disabled"),
        ("import subprocess\nsubprocess.run(['true'])", "subprocess is disabled"),
        ("import os\nos.system('true')", "os.system is disabled"),
        ("import os\nos.kill(os.getpid(), 0)", "os.kill is disabled"),
        ("import shutil\nshutil.rmtree('.')", "shutil.rmtree is disabled"),
        ("input()", "EOFError"),
    ],
)
def test_guarded_calls_and_early_exits_do_not_pass(program, reason):
    result = run_sandboxed(program, timeout_s=5.0)
    assert result.status == "failed" and reason in result.detail


@needs_posix
def test_a_completion_that_does_not_compile_is_an_error_not_a_failure():
    result = run_sandboxed("def f(:\n    pass\n", timeout_s=5.0)
    assert result.status == "error" and "SyntaxError" in result.detail
