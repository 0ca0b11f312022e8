"""Faults at the disk: a full disk mid-save, stale temporary folders, a foreign ``latest``, misleading messages."""

import errno
import os
import subprocess
import sys

import numpy as np
import pytest

import augdiff.train.checkpoint as checkpoint
from augdiff.cli.main import main
from augdiff.train.checkpoint import remove_stale_temporaries

_TRAIN = ["train", "--data", "sawtooth", "--model-size", "xxs", "--batch-size", "4", "seq_len=16"]
_QUIET = ["progress=false", "tensorboard=false", "ckpt_every=2"]


def _one_line_exit_2(args, capsys, *needles):
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def test_a_full_disk_mid_save_is_one_line_keeps_the_last_checkpoint_and_leaves_no_partial_folder(
    tmp_path, capsys, monkeypatch
):
    run = tmp_path / "run"
    assert main([*_TRAIN, "--steps", "2", "--out", str(run), *_QUIET]) == 0
    real_save = checkpoint.save_file

    def full_disk(tensors, path, metadata=None):
        if "step_00000004" in str(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(tensors, path, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", full_disk)
    err = _one_line_exit_2(["train", "--resume", str(run), "--steps", "4"], capsys, "No space left", "MB free")
    assert "step_00000002" in err and f"augdiff train --resume {run}" in err
    ckpts = run / "checkpoints"
    assert (ckpts / "latest").read_text().strip() == "step_00000002" and (ckpts / "step_00000002").is_dir()
    assert not list(ckpts.glob(".step_*")), "the partial checkpoint folder was left behind"


def test_stale_temporary_folders_of_dead_processes_go_and_a_live_ones_stay(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = tmp_path / f".step_00000004.tmp-{dead.pid}"
        busy = tmp_path / f".step_00000004.tmp-{live.pid}"
        other = tmp_path / ".step_00000002.notes"  # not ours: never touched
        for folder in (stale, busy, other):
            folder.mkdir()
        assert remove_stale_temporaries(tmp_path) == [stale]
        assert not stale.exists() and busy.exists() and other.exists()
    finally:
        live.kill()
        live.wait()


def test_a_resume_removes_what_a_killed_save_left(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*_TRAIN, "--steps", "2", "--out", str(run), *_QUIET]) == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = run / "checkpoints" / f".step_00000004.tmp-{dead.pid}"
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"\0" * 1024)
    assert main(["train", "--resume", str(run), "--steps", "4"]) == 0
    assert not leftover.exists()


def test_latest_must_name_a_checkpoint_of_its_own_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*_TRAIN, "--steps", "2", "--out", str(run), *_QUIET]) == 0
    other = tmp_path / "other"
    assert main([*_TRAIN, "--steps", "2", "--out", str(other), *_QUIET]) == 0
    (run / "checkpoints" / "latest").write_text(str(other / "checkpoints" / "step_00000002") + "\n")
    _one_line_exit_2(
        ["sample", str(run), "--num", "2", "--steps", "2", "--out", str(tmp_path / "s.npy")],
        capsys,
        "not a checkpoint of this run",
    )
    (run / "checkpoints" / "latest").write_text("../../other/checkpoints/step_00000002\n")
    _one_line_exit_2(["eval", str(run), "--data", "sawtooth"], capsys, "not a checkpoint of this run")


def test_resuming_a_run_killed_before_its_first_checkpoint_says_to_rerun_it(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("method: mdlm\n")
    _one_line_exit_2(["train", "--resume", str(run)], capsys, "before its first checkpoint", "rerun")


def test_init_from_a_missing_run_does_not_suggest_training_into_it(tmp_path, capsys):
    missing = tmp_path / "nonexistent"
    err = _one_line_exit_2(
        [*_TRAIN, "--steps", "2", "--out", str(tmp_path / "run"), "--init-from", str(missing)], capsys, str(missing)
    )
    assert "augdiff train --out" not in err


@pytest.mark.parametrize("low,needle", [(-3, "cannot be negative"), (0, "raise vocab_size to at least 12")])
def test_bad_token_ids_name_the_actual_fix(tmp_path, capsys, low, needle):
    ids = np.full((40, 8), 5, dtype=np.int64)
    ids[0, 0], ids[1, 1] = low, 11
    path = tmp_path / "ids.npy"
    np.save(path, ids)
    args = ["train", "--data", f"tokens:{path}", "--model-size", "xxs", "--steps", "1", "--out", str(tmp_path / "r")]
    err = _one_line_exit_2([*args, "vocab_size=8", *_QUIET], capsys, needle)
    assert ("raise vocab_size" in err) == (low >= 0)


def _history(path, steps):
    path.write_text("".join(f'{{"step": {s}, "loss": {s / 10}}}\n' for s in steps))


def test_a_resume_appends_to_the_metrics_and_a_kill_while_trimming_them_loses_nothing(tmp_path, monkeypatch):
    import augdiff.train.logging as logging

    path = tmp_path / "metrics.jsonl"
    _history(path, [1, 2, 3, 4])
    inode = path.stat().st_ino
    logging.MetricsLogger(tmp_path, tensorboard=False, resume_step=4).close()  # nothing to drop: no rewrite
    assert path.stat().st_ino == inode and len(path.read_text().splitlines()) == 4

    _history(path, [1, 2, 3, 4, 5, 6])
    before = path.read_text()

    def killed(target, text):  # the process dies while the trimmed copy is being written
        (target.parent / f".{target.name}.tmp-1").write_text(text[: len(text) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(logging, "write_text_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        logging.MetricsLogger(tmp_path, tensorboard=False, resume_step=4)
    assert path.read_text() == before  # the history is whole
    monkeypatch.undo()
    logging.MetricsLogger(tmp_path, tensorboard=False, resume_step=4).close()
    assert [int(line.split(",")[0].split(":")[1]) for line in path.read_text().splitlines()] == [1, 2, 3, 4]


def test_ctrl_c_while_the_command_line_starts_is_one_line_and_exit_130(monkeypatch, capsys):
    import augdiff.cli.main as cli

    def interrupted():  # Ctrl-C while the subcommands (and torch) are still being imported
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["train", "--help"]) == 130
    assert capsys.readouterr().err.strip() == "augdiff: interrupted"


def test_weights_moved_into_another_methods_run_are_refused(tmp_path, capsys):
    import shutil

    runs = {}
    for method in ("mdlm", "cadd"):
        runs[method] = tmp_path / method
        assert main([*_TRAIN, "--method", method, "--steps", "2", "--out", str(runs[method]), *_QUIET]) == 0
    for name in ("model.safetensors", "ema.safetensors"):  # same shapes: only the record tells them apart
        shutil.copy(
            runs["mdlm"] / "checkpoints/step_00000002" / name, runs["cadd"] / "checkpoints/step_00000002" / name
        )
    err = _one_line_exit_2(["eval", str(runs["cadd"]), "--data", "sawtooth"], capsys, "weights written by a 'mdlm' run")
    assert "'cadd' run's" in err


def test_a_full_disk_while_writing_samples_or_results_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    import augdiff.cli.sample as sample_cli
    from augdiff.errors import AugdiffError
    from augdiff.files import write_text_atomic

    run = tmp_path / "run"
    assert main([*_TRAIN, "--steps", "2", "--out", str(run), *_QUIET]) == 0

    def full(tmp, *args):
        tmp.write_bytes(b"\0" * 10)  # a partial file, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(sample_cli, "_write_to", full)
    out = tmp_path / "samples.npy"
    capsys.readouterr()
    assert main(["sample", str(run), "--num", "2", "--steps", "2", "--out", str(out)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar: the one line
    assert last.startswith("augdiff: ") and "No space left" in last and "KB free" in last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # neither the output nor its temporary file

    monkeypatch.setattr("pathlib.Path.write_text", lambda self, text, **kw: full(self))
    with pytest.raises(AugdiffError, match="No space left"):
        write_text_atomic(tmp_path / "results.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_the_log_line_whose_window_spans_a_kill_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    import json

    from augdiff.config import build_config
    from augdiff.train import Trainer

    def config():
        settings = {"data": "sawtooth", "model_size": "xxs", "steps": 6, "batch_size": 4, "seq_len": 16}
        return build_config({**settings, "log_every": 4, "ckpt_every": 3, "progress": False, "tensorboard": False})

    def losses(run):
        return [
            (r["step"], r["loss"], r["nll"]) for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
        ]

    Trainer(config(), tmp_path / "whole").fit()
    real_step = Trainer.train_step

    def killed_at_5(self):  # a hard kill: no save on the way out
        if self.step == 4:
            raise SystemExit("killed")
        return real_step(self)

    monkeypatch.setattr(Trainer, "train_step", killed_at_5)
    with pytest.raises(SystemExit):
        Trainer(config(), tmp_path / "killed").fit()
    monkeypatch.setattr(Trainer, "train_step", real_step)
    Trainer.resume(tmp_path / "killed").fit()  # from the step-3 checkpoint, inside the window of steps 1–4
    assert losses(tmp_path / "killed") == losses(tmp_path / "whole")


def test_figures_are_written_whole_or_not_at_all(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from augdiff.errors import AugdiffError
    from augdiff.files import save_figure

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    save_figure(fig, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plt.close(fig)

    class FullDisk:
        def savefig(self, path, dpi):
            path.write_bytes(b"\x89PNG partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(AugdiffError, match="other.png: cannot write .No space left"):
        save_figure(FullDisk(), tmp_path / "other.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png"]
