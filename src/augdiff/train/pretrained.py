"""Self-contained model folders (``save_pretrained``) and the Hugging Face hub (``hub:owner/name``).

A pretrained folder holds what sampling, evaluation and ``init_from`` need and nothing of the training state:

- ``model.safetensors``: the weights (the EMA by default), tagged with the method and configuration hash as a
  checkpoint's are;
- ``config.json``: ``{"format", "augdiff_version", "step", "config", "data"}`` — the run's configuration and its
  data description, which carries the tokenizer (characters, or the BPE ``tokenizer.json``);
- ``README.md``: a model card (method, paper, data, how to load it).

The hub accepts such a folder as a model repository: ``augdiff push RUN owner/name`` uploads one through
``huggingface_hub``, and every command that reads a run also reads ``hub:owner/name[@revision]`` (downloaded
once into the hub's cache) or a local pretrained folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from augdiff.errors import AugdiffError
from augdiff.files import fsync_tree
from augdiff.specs import method_spec
from augdiff.train.checkpoint import Checkpoint, load_checkpoint, read_weights, weights_tag

__all__ = [
    "PRETRAINED_FORMAT",
    "HUB_PREFIX",
    "save_pretrained",
    "write_pretrained",
    "is_pretrained",
    "load_any",
    "push_to_hub",
]

PRETRAINED_FORMAT = "augdiff-pretrained-1"
HUB_PREFIX = "hub:"


def is_pretrained(path: str | Path) -> bool:
    """Whether ``path`` is a folder written by :func:`save_pretrained`."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("format") == PRETRAINED_FORMAT
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False


def _card(meta: dict[str, Any], step: int) -> str:
    cfg, data = meta["config"], meta["data"]
    spec = method_spec(cfg["method"])
    return "\n".join(
        [
            "---",
            "library_name: augdiff",
            "tags: [masked-diffusion, augdiff]",
            "---",
            f"# {cfg['method']} ({spec.paper})",
            "",
            f"An augdiff model: method `{cfg['method']}`, model size `{cfg['model_size']}`, trained {step} steps on "
            f"`{data.get('spec')}` (vocabulary {data.get('vocab_size')}, rows of {data.get('seq_len')}).",
            "",
            "```bash",
            "augdiff sample hub:OWNER/NAME --num 8 --steps 64 --out samples.txt   # or a local copy of this folder",
            "```",
            "",
        ]
    )


def _check_new(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise AugdiffError(f"{folder}: exists and is not an empty folder (choose a new path)")


def save_pretrained(run: str | Path, folder: str | Path, *, weights: str = "ema") -> Path:
    """Write the latest checkpoint of ``run`` (or one checkpoint) as a pretrained ``folder``, atomically (a
    temporary folder renamed into place). ``weights``: ``ema`` or ``raw``. An existing non-empty folder is refused."""
    if weights not in ("ema", "raw"):
        raise AugdiffError(f"--weights {weights!r} is not known (use ema or raw)")
    _check_new(Path(folder))
    ckpt = load_any(run)
    meta = {"config": ckpt.meta["config"], "data": ckpt.meta["data"]}
    return write_pretrained(folder, meta, ckpt.ema if weights == "ema" else ckpt.model, ckpt.step)


def write_pretrained(folder: str | Path, meta: dict[str, Any], state: dict[str, Any], step: int) -> Path:
    """The folder itself: weights tagged as a checkpoint's, ``config.json`` with ``meta`` (``config``,
    ``data``), the model card; through a temporary folder renamed into place."""
    from augdiff import __version__

    folder = Path(folder)
    _check_new(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    except OSError as exc:
        raise AugdiffError(f"{folder}: cannot write the pretrained folder ({exc.strerror or exc})") from None
    try:
        tensors = {k: v.contiguous() for k, v in state.items()}
        save_file(tensors, tmp / "model.safetensors", metadata={"format": PRETRAINED_FORMAT, **weights_tag(meta)})
        config = {"format": PRETRAINED_FORMAT, "augdiff_version": __version__, "step": step, **meta}
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        (tmp / "README.md").write_text(_card(meta, step))
        fsync_tree(tmp)
        if folder.exists():
            folder.rmdir()
        os.replace(tmp, folder)
    except OSError as exc:
        raise AugdiffError(f"{folder}: cannot write the pretrained folder ({exc.strerror or exc})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _read_pretrained(folder: Path, weights: bool = True) -> Checkpoint:
    config = json.loads((folder / "config.json").read_text())
    if not all(isinstance(config.get(k), dict) for k in ("config", "data")):
        raise AugdiffError(f"{folder}/config.json lacks the run's config or data description (a damaged model folder)")
    meta = {"format": config["format"], "step": config.get("step", 0), **{k: config[k] for k in ("config", "data")}}
    state = read_weights(folder / "model.safetensors", meta) if weights else {}
    return Checkpoint(path=folder, meta=meta, model=state, ema=state, trainer_state=None)


def _download(name: str) -> Path:
    """``owner/name[@revision]`` from the hub (cached by ``huggingface_hub``); offline or unknown: one line."""
    repo, _, revision = name.partition("@")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo, revision=revision or None))
    except Exception as exc:  # network, authentication, a missing repository: all end the same way for a user
        raise AugdiffError(
            f"{HUB_PREFIX}{name}: cannot download from the Hugging Face hub ({type(exc).__name__}); check the name "
            "and the network, or give a local folder"
        ) from None


def load_any(path: str | Path, *, weights: bool = True) -> Checkpoint:
    """A run directory, a checkpoint directory, a pretrained folder or ``hub:owner/name`` → its weights and
    metadata (never executing code from them); ``weights=False``: the metadata alone."""
    text = str(path)
    if text.startswith(HUB_PREFIX):
        path = _download(text[len(HUB_PREFIX) :])
        if not is_pretrained(path):
            raise AugdiffError(f"{text}: not an augdiff model (no config.json of format {PRETRAINED_FORMAT})")
    if is_pretrained(path):
        return _read_pretrained(Path(path), weights)
    return load_checkpoint(path, weights=weights)


def push_to_hub(run: str | Path, repo: str, *, private: bool = False, weights: str = "ema") -> str:
    """Upload ``run`` as a pretrained folder to the hub repository ``repo`` (created if missing); returns its URL."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_pretrained(run, Path(tmp) / "model", weights=weights)
        try:
            from huggingface_hub import HfApi

            api = HfApi()
            api.create_repo(repo, private=private, exist_ok=True)
            api.upload_folder(folder_path=str(folder), repo_id=repo)
        except Exception as exc:
            raise AugdiffError(
                f"{repo}: cannot upload to the Hugging Face hub ({type(exc).__name__}: {str(exc)[:80]}); check the "
                "network and `huggingface-cli login`"
            ) from None
    return f"https://huggingface.co/{repo}"
