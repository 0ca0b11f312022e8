"""Code on a tiny random ``hf:`` model: SFT on prompt/response pairs, then ``eval --code`` on three tasks — one
that passes, one that fails and one that loops forever and must time out (the model's writing replaced by known
completions, so each outcome is certain)."""

import json

import pytest
import torch

pytest.importorskip("transformers")
from nn.test_hf_backbone import save_tiny  # noqa: E402

import augdiff.cli.evaluate as evaluate  # noqa: E402
from augdiff.cli.main import main  # noqa: E402
from augdiff.data.tokenizer import tokenizer_from_description  # noqa: E402

PROMPT = "def f(a):\n"
TASKS = [
    {"task_id": task, "prompt": PROMPT, "test": f"def check(c):\n    assert c(1) == {want}\n", "entry_point": "f"}
    for task, want in (("pass", 1), ("fail", 2), ("loop", 1))
]
ANSWERS = {"pass": "    return a\n", "fail": "    return a\n", "loop": "    while 1:\n        a = a\n"}


def test_sft_on_an_hf_model_then_three_code_tasks_pass_fail_and_time_out(tmp_path, monkeypatch):
    model_dir = save_tiny(tmp_path / "qwen", mask_token_id=19)  # room for the 19 characters of the pairs
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": PROMPT, "response": a}) + "\n" for a in ANSWERS.values()) * 3)
    run = tmp_path / "sft"
    args = ["train", "--method", "mdlm", "--backbone", f"hf:{model_dir}", "--data", f"sft:{pairs}", "seq_len=48"]
    args += ["--steps", "2", "--batch-size", "4", "progress=false", "tensorboard=false", "--out", str(run)]
    assert main(args) == 0
    assert json.loads((run / "data.json").read_text())["vocab_size"] == 19

    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(t) + "\n" for t in TASKS))
    real_load = evaluate.load_run
    order = iter(["pass", "fail", "loop"])

    def load(*a, **k):
        loaded = real_load(*a, **k)
        tok = tokenizer_from_description(loaded.data)

        def answer(num, seq_len, steps=None, *, prefix, **options):
            ids = torch.tensor(tok.encode(ANSWERS[next(order)]))
            pad = torch.full((seq_len - prefix.numel() - ids.numel(),), tok.encode("\n")[0])
            return torch.cat([prefix, ids, pad]).expand(num, -1)

        loaded.model.sample = answer
        return loaded

    monkeypatch.setattr(evaluate, "load_run", load)
    out = tmp_path / "code.json"
    args = ["eval", str(run), "--code", str(tasks), "--code-length", "30", "--pass-k", "1", "--code-timeout", "2"]
    assert main([*args, "--out-json", str(out), "--device", "cpu"]) == 0
    result = json.loads(out.read_text())["code"][str(tasks)]
    assert {t: r["statuses"][0] for t, r in result["tasks"].items()} == {
        "pass": "passed",
        "fail": "failed",
        "loop": "timeout",
    }
    assert result["pass_at_k"]["pass@1"] == pytest.approx(1 / 3)
