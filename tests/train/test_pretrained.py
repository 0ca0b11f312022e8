"""Model folders (augdiff export) and the hub (hub:owner/name, augdiff push), offline."""

import json

import huggingface_hub
import pytest
import torch

from augdiff.cli.main import main
from augdiff.runs import load_run
from augdiff.sampling import generate
from augdiff.train.pretrained import is_pretrained

TINY = ["--model-size", "xxs", "--batch-size", "4", "--steps", "3", "seq_len=16", "progress=false", "tensorboard=false"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrained") / "run"
    assert main(["train", "--method", "mdlm", "--data", "sawtooth", "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture(scope="module")
def folder(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("exported") / "model"
    assert main(["export", str(run), str(out)]) == 0
    return out


def _samples(path):
    loaded = load_run(path)
    return generate(loaded.model, loaded.model.schedule, 4, 16, 4, seed=3)


def test_an_exported_folder_is_the_runs_model(run, folder):
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert is_pretrained(folder) and not is_pretrained(run)
    a, b = load_run(run), load_run(folder)
    assert a.config == b.config and a.data == b.data and a.step == b.step
    for key, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[key]), key
    assert torch.equal(_samples(run), _samples(folder))
    assert "mdlm" in (folder / "README.md").read_text()


def test_a_folder_starts_a_fine_tune(folder, tmp_path):
    args = ["train", "--method", "cadd", "--data", "sawtooth", "--init-from", str(folder), "--out", str(tmp_path / "c")]
    assert main([*args, *TINY]) == 0


def test_export_into_a_folder_with_files_is_refused(run, tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["export", str(run), str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not an empty folder" in err[0]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_a_folder_whose_config_was_edited_is_refused(folder, tmp_path, capsys):
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in folder.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    config = json.loads((copy / "config.json").read_text())
    config["config"]["method"] = "cadd"
    (copy / "config.json").write_text(json.dumps(config))
    assert main(["sample", str(copy), "--num", "1", "--out", str(tmp_path / "s.npy")]) == 2
    assert "weights written by a 'mdlm' run" in capsys.readouterr().err


def test_hub_names_download_once_and_offline_is_one_line(folder, tmp_path, capsys, monkeypatch):
    def offline(repo, revision=None):
        raise huggingface_hub.errors.LocalEntryNotFoundError("offline")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    assert main(["sample", "hub:someone/model", "--num", "1", "--out", str(tmp_path / "s.npy")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "hub:someone/model" in err[0] and "network" in err[0]

    asked = []
    monkeypatch.setattr(
        huggingface_hub, "snapshot_download", lambda repo, revision=None: asked.append((repo, revision)) or str(folder)
    )
    assert main(["sample", "hub:someone/model@v1", "--num", "2", "--steps", "2", "--out", str(tmp_path / "s.npy")]) == 0
    assert asked == [("someone/model", "v1")]


def test_push_uploads_the_model_folder(run, monkeypatch, capsys):
    uploaded = {}

    class FakeApi:
        def create_repo(self, repo, private=False, exist_ok=False):
            uploaded["repo"] = (repo, private)

        def upload_folder(self, folder_path, repo_id):
            from pathlib import Path

            uploaded["files"] = sorted(p.name for p in Path(folder_path).iterdir())

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    assert main(["push", str(run), "me/tiny-mdlm", "--private"]) == 0
    assert uploaded == {"repo": ("me/tiny-mdlm", True), "files": ["README.md", "config.json", "model.safetensors"]}
    assert "hub:me/tiny-mdlm" in capsys.readouterr().out
