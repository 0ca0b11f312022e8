"""Output paths that cannot be written are refused before any work: one line, exit 2, nothing lost."""

import sys
from pathlib import Path

import pytest

import augdiff.files as files
from augdiff.cli.main import main

TINY = ["--model-size", "xxs", "--batch-size", "4", "--steps", "2", "progress=false", "tensorboard=false"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("unwritable") / "run"
    assert main(["train", "--method", "mdlm", "--data", "sawtooth", "--out", str(out), "seq_len=16", *TINY]) == 0
    return out


@pytest.fixture
def locked(tmp_path, monkeypatch):
    """A folder the process may not write in (a root process ignores permission bits, so refuse its probe)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    real = files.tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve() == folder.resolve():
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(files.tempfile, "mkstemp", mkstemp)
    return folder


def _refused(capsys, needle):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "cannot write" in err[0], err


def test_sample_to_a_folder_it_cannot_write_is_refused_before_sampling(run, locked, capsys, monkeypatch):
    import augdiff.cli.sample as sample

    monkeypatch.setattr(sample, "generate", lambda *a, **k: pytest.fail("sampled before checking --out"))
    assert main(["sample", str(run), "--num", "2", "--steps", "2", "--out", str(locked / "s.npy")]) == 2
    _refused(capsys, "--out")
    assert list(locked.iterdir()) == []


def test_eval_json_to_a_folder_it_cannot_write_is_refused_before_evaluating(run, locked, capsys):
    args = ["eval", str(run), "--data", "sawtooth", "--out-json", str(locked / "e.json")]
    assert main(args) == 2
    _refused(capsys, "--out-json")


def test_training_into_a_folder_it_cannot_write_is_refused(locked, capsys):
    args = ["train", "--method", "mdlm", "--data", "sawtooth", "--out", str(locked), "seq_len=16", *TINY]
    assert main(args) == 2
    _refused(capsys, str(locked))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc exists on Linux only")
def test_a_folder_the_system_refuses_even_to_root(run, capsys):
    assert main(["sample", str(run), "--num", "2", "--steps", "2", "--out", "/proc/augdiff-samples.npy"]) == 2
    _refused(capsys, "--out")
