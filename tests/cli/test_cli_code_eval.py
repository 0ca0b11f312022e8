"""augdiff eval --code: completions written after each prompt, cut at a stop, run in the sandbox, pass@k."""

import json

import pytest
import torch
from tiny_runs import train_text_runs

from augdiff.cli.code_eval import truncate_completion
from augdiff.cli.main import main
from augdiff.data.tokenizer import tokenizer_from_description

TASKS = [
    {"task_id": "add", "prompt": "def add(a, b):\n", "test": "def check(f):\n    assert f(2, 3) == 5\n",
     "entry_point": "add"},
    {"task_id": "neg", "prompt": "def neg(a):\n", "test": "def check(f):\n    assert f(4) == -4\n",
     "entry_point": "neg"},
]  # fmt: skip
ANSWERS = {
    "add": "    return a + b\ndef bad():\n",
    "neg": "    return a\n",
}  # add passes (cut at the def); neg fails


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("code-eval")
    train_text_runs(root, "def add(a, b):\n    return a + b\ndef neg(a):\n    return -a\n" * 60, seq_len=96)
    tasks = root / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(t) + "\n" for t in TASKS))
    return root, tasks


def test_truncation_stops_at_the_next_top_level_statement():
    assert truncate_completion("    return 1\ndef g():\n    pass") == "    return 1"
    assert (
        truncate_completion("    x = 1\n    # inner comment\n    return x\n#top")
        == "    x = 1\n    # inner comment\n    return x"
    )
    assert truncate_completion("    return 2") == "    return 2"
    # MBPP: whole code, imports and helpers kept, cut at test or driver code
    mbpp = "import re\ndef helper(x):\n    return x\ndef f(s):\n    return helper(s)\nassert f(1) == 1"
    assert truncate_completion(mbpp, "mbpp") == mbpp[: mbpp.index("\nassert")]


@pytest.mark.parametrize("method", ["mdlm", "ar"])
def test_a_real_model_is_evaluated_end_to_end(runs, tmp_path, capsys, method):
    """A two-step model writes nonsense: every completion is run and counted (none passes), pass@1 and @2 reported."""
    root, tasks = runs
    out, md = tmp_path / "code.json", tmp_path / "code.md"
    args = ["eval", str(root / method), "--code", str(tasks), "--code-samples", "2", "--code-length", "24"]
    args += ["--pass-k", "1,2,5", "--code-timeout", "5", "--out-json", str(out), "--out-md", str(md), "--device", "cpu"]
    assert main(args) == 0
    result = json.loads(out.read_text())["code"][str(tasks)]
    assert result["n_tasks"] == 2 and set(result["pass_at_k"]) == {"pass@1", "pass@2"} and result["skipped_ks"] == [5]
    assert sum(result["status_counts"].values()) == 4
    assert all(len(c) == 2 for c in result["completions"].values())
    assert "pass@1" in md.read_text()


def test_pass_counts_come_from_the_sandboxed_tests(runs, tmp_path, monkeypatch):
    """A model that writes a known answer after each prompt: add passes (after the cut), neg fails; pass@1 = 1/2."""
    import augdiff.cli.evaluate as evaluate

    root, tasks = runs
    real_load = evaluate.load_run

    def load(*args, **kwargs):
        run = real_load(*args, **kwargs)
        tok = tokenizer_from_description(run.data)

        def answer(num, seq_len, steps=None, *, prefix, **options):
            ids = torch.tensor(tok.encode(ANSWERS["add" if "add" in tok.decode(prefix.tolist()) else "neg"]))
            pad = torch.zeros(seq_len - prefix.numel() - ids.numel(), dtype=torch.long)
            return torch.cat([prefix, ids, pad]).expand(num, -1)

        run.model.sample = answer
        return run

    monkeypatch.setattr(evaluate, "load_run", load)
    out = tmp_path / "code.json"
    args = ["eval", str(root / "mdlm"), "--code", str(tasks), "--code-samples", "3", "--code-length", "40"]
    assert main([*args, "--pass-k", "1,3", "--out-json", str(out), "--device", "cpu"]) == 0
    result = json.loads(out.read_text())["code"][str(tasks)]
    assert result["tasks"]["add"]["c"] == 3 and result["tasks"]["neg"]["c"] == 0
    assert result["pass_at_k"] == {"pass@1": pytest.approx(0.5), "pass@3": pytest.approx(0.5)}
    assert result["completions"]["add"][0] == "    return a + b"


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--code", "nowhere.jsonl"], "neither humaneval nor mbpp nor a .jsonl"),
        (["--code", "TASKS", "--pass-k", "0"], "--pass-k"),
        (["--code", "TASKS", "--data", "sawtooth"], "give one of --data"),
        (["--code", "TASKS", "--code-samples", "0"], "--code-samples=0"),
    ],
)
def test_bad_code_flags_are_one_line(runs, capsys, extra, message):
    root, tasks = runs
    extra = [str(tasks) if e == "TASKS" else e for e in extra]
    assert main(["eval", str(root / "mdlm"), *extra, "--device", "cpu"]) == 2
    assert message in capsys.readouterr().err


def test_a_hub_task_set_offline_is_one_line_and_the_others_still_run(runs, tmp_path, capsys, monkeypatch):
    root, tasks = runs
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    out = tmp_path / "code.json"
    args = ["eval", str(root / "ar"), "--code", f"humaneval,{tasks}", "--code-length", "8", "--pass-k", "1"]
    assert main([*args, "--out-json", str(out), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "--code humaneval: skipped: the Hugging Face hub is unreachable (HF_DATASETS_OFFLINE=1)" in err
    result = json.loads(out.read_text())["code"]
    assert "error" in result["humaneval"] and result[str(tasks)]["n_tasks"] == 2


def test_a_long_code_length_is_capped_to_the_room_the_prompt_leaves(runs, tmp_path):
    root, tasks = runs
    out = tmp_path / "code.json"
    args = ["eval", str(root / "mdlm"), "--code", str(tasks), "--code-length", "1000", "--code-steps", "1000"]
    assert main([*args, "--pass-k", "1", "--out-json", str(out), "--device", "cpu"]) == 0
    result = json.loads(out.read_text())["code"][str(tasks)]
    prompts = {t["task_id"]: t["prompt"] for t in TASKS}
    assert all(len(c) <= 96 - len(prompts[task]) for task, cs in result["completions"].items() for c in cs)
