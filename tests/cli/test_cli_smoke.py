"""The command line end to end on tiny runs: train, sample, eval, bench, run."""

import json
import subprocess
import sys

import numpy as np
import pytest

from augdiff.cli.main import main

TINY = ["--model-size", "xxs", "--batch-size", "8", "progress=false", "tensorboard=false", "seq_len=32"]


@pytest.fixture(scope="module")
def sawtooth_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "saw"
    assert main(["train", "--method", "mdlm", "--data", "sawtooth", "--steps", "6", "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    corpus = root / "corpus.txt"
    corpus.write_text("to be or not to be, that is the question. " * 30)
    out = root / "run"
    assert main(["train", "--data", f"text:{corpus}", "--steps", "4", "--out", str(out), *TINY]) == 0
    return out, corpus


def test_train_writes_a_complete_run(sawtooth_run):
    assert (sawtooth_run / "checkpoints" / "latest").read_text().strip() == "step_00000006"
    for name in ("config.yaml", "data.json", "metrics.jsonl"):
        assert (sawtooth_run / name).is_file()


def test_sample_to_npy_and_txt(sawtooth_run, tmp_path):
    npy, txt = tmp_path / "s.npy", tmp_path / "s.txt"
    assert main(["sample", str(sawtooth_run), "--num", "5", "--steps", "4", "--out", str(npy), "--device", "cpu"]) == 0
    arr = np.load(npy)
    assert arr.shape == (5, 32) and set(np.unique(arr)) <= {0, 1}
    assert main(["sample", str(sawtooth_run), "--num", "3", "--steps", "2", "--out", str(txt)]) == 0
    assert len(txt.read_text().splitlines()) == 3


def test_eval_prints_nll_bits_ppl_and_swd(sawtooth_run, capsys):
    capsys.readouterr()
    assert (
        main(
            [
                "eval",
                str(sawtooth_run),
                "--data",
                "sawtooth",
                "--max-sequences",
                "16",
                "--time-samples",
                "2",
                "--swd-samples",
                "16",
                "--swd-steps",
                "1,4",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert {"nll", "bpt", "ppl", "swd", "swd_noise_floor", "oracle_nll"} <= set(result)
    assert result["bpt"] == pytest.approx(result["nll"] / np.log(2))
    assert set(result["swd"]) == {"1", "4"}
    # MDLM: the NLL is its ELBO, and the default bound (a 128-step grid) is its discrete-time ELBO
    assert result["nll_kind"].startswith("ELBO") and set(result["bound"]) == {"128"}
    assert result["bound"]["128"]["bound_latent_term"] == 0.0 and result["bound"]["128"]["nll_bound"] > 0


def test_text_run_samples_text_with_a_prefix(text_run, tmp_path):
    run, corpus = text_run
    out = tmp_path / "t.txt"
    assert main(["sample", str(run), "--num", "2", "--steps", "8", "--out", str(out), "--prefix", "to be"]) == 0
    text = out.read_text()
    assert text.count("===== sample") == 2
    assert all(block.split("\n", 1)[1].startswith("to be") for block in text.split("===== sample")[1:])


def test_eval_on_text(text_run, capsys):
    run, corpus = text_run
    capsys.readouterr()
    assert main(["eval", str(run), "--data", f"text:{corpus}", "--time-samples", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["nll"] > 0 and result["ppl"] == pytest.approx(np.exp(result["nll"]))


@pytest.mark.parametrize("mode", ["train", "sample"])
def test_bench_prints_json(mode, capsys):
    capsys.readouterr()
    assert (
        main(
            [
                "bench",
                mode,
                "--model-size",
                "xxs",
                "--seq-len",
                "16",
                "--batch-size",
                "4",
                "--vocab-size",
                "50",
                "--steps",
                "2",
                "--json",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["tokens_per_s"] > 0 and result["seconds_per_step"] > 0 and result["peak_memory_mb"] > 0


def test_resume_extends_a_run(sawtooth_run, capsys):
    assert main(["train", "--resume", str(sawtooth_run), "--steps", "8"]) == 0
    assert (sawtooth_run / "checkpoints" / "latest").read_text().strip() == "step_00000008"


def test_console_script_runs_as_module():
    proc = subprocess.run([sys.executable, "-m", "augdiff", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "train" in proc.stdout


def test_ctrl_c_saves_a_checkpoint_and_the_run_resumes(tmp_path):
    import signal
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "augdiff", "train", "--out", str(out), "--steps", "100000", *TINY, "log_every=2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").is_file() or not (out / "metrics.jsonl").read_text().strip():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "timeout"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "augdiff train --resume" in stdout
    step = int((out / "checkpoints" / "latest").read_text().strip().split("_")[1])
    assert step >= 2
    assert main(["train", "--resume", str(out), "--steps", str(step + 2)]) == 0
    assert (out / "checkpoints" / "latest").read_text().strip() == f"step_{step + 2:08d}"
