"""Writing files safely: atomic replacement, durable directories, and user-facing errors for bad paths."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

from augdiff.errors import AugdiffError

__all__ = ["ensure_dir", "write_text_atomic", "save_figure", "write_failed", "fsync_tree", "check_output_file"]


def ensure_dir(path: str | Path, what: str) -> Path:
    """Create directory ``path`` (and parents); a path that cannot be a directory is a user error."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise AugdiffError(f"{what} {path}: exists and is not a directory (choose another path)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AugdiffError(
            f"{what} {path}: cannot create the directory ({exc.strerror}; choose another path)"
        ) from None
    check_writable(path, what, path)
    return path


def check_writable(directory: Path, what: str, path: Path) -> None:
    """Create and remove a probe file in ``directory``: permissions, a read-only mount or an exhausted inode
    table show up now, as one line, not after the work whose output they would lose."""
    try:
        fd, name = tempfile.mkstemp(prefix=".augdiff-probe-", dir=directory)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise AugdiffError(
            f"{what} {path}: cannot write in {directory} ({exc.strerror}; choose another path or make it writable)"
        ) from None


def check_output_file(path: str | Path, what: str) -> Path:
    """Refuse an output path that is a directory or sits under a file, before any work is done."""
    path = Path(path)
    if path.is_dir():
        raise AugdiffError(f"{what} {path}: is a directory (give a file name)")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise AugdiffError(f"{what} {path}: {parent} is a file, not a directory")
            check_writable(parent, what, path)
            break
    return path


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename; a full disk or an unwritable folder is
    one line naming the path (:func:`write_failed`), and leaves neither a partial file nor a temporary one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise write_failed(path, exc, len(text.encode())) from None
    finally:
        tmp.unlink(missing_ok=True)


def save_figure(fig: Any, path: Path, dpi: int = 120) -> None:
    """A matplotlib figure as a PNG at ``path``, through a temporary file and a rename (errors as
    :func:`write_text_atomic`)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.png")
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    except OSError as exc:
        raise write_failed(path, exc, tmp.stat().st_size if tmp.exists() else 0) from None
    finally:
        tmp.unlink(missing_ok=True)


def write_failed(path: Path, exc: OSError, size: int) -> AugdiffError:
    """The one-line error of a failed write of ``size`` bytes to ``path``."""
    amount = f"{size / 2**20:,.1f} MB" if size >= 2**20 else f"{max(size, 1) / 2**10:,.1f} KB"
    return AugdiffError(
        f"{path}: cannot write ({exc.strerror or exc}); it needs {amount} free there "
        "(free space or choose another path)"
    )


def fsync_tree(directory: Path) -> None:
    """Flush every file in ``directory`` and the directory entry itself to disk (before a rename)."""
    for file in directory.iterdir():
        if file.is_file():
            with file.open("rb") as f:
                os.fsync(f.fileno())
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def json_safe(value: Any) -> Any:
    """NaN/inf are not JSON: report them as null (recursively through dicts and lists)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
