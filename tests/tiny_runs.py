"""Tiny trained runs for command-line tests: an MDLM and an AR run of 2 steps on one text file."""

from pathlib import Path

from augdiff.cli.main import main


def train_text_runs(root: Path, text: str, seq_len: int) -> Path:
    """Write ``text`` to ``root/corpus.txt`` and train ``root/mdlm`` and ``root/ar`` on it (xxs, batch 8)."""
    corpus = root / "corpus.txt"
    corpus.write_text(text)
    tiny = ["--model-size", "xxs", "--batch-size", "8", "progress=false", "tensorboard=false", f"seq_len={seq_len}"]
    for method in ("mdlm", "ar"):
        out = root / method
        assert (
            main(["train", "--method", method, "--data", f"text:{corpus}", "--steps", "2", "--out", str(out), *tiny])
            == 0
        )
        assert (out / "checkpoints").is_dir()
    return corpus
