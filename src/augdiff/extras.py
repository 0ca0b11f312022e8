"""Optional dependencies: a feature that needs a package the install lacks says so in one line, before any work."""

from __future__ import annotations

from importlib.util import find_spec

from augdiff.errors import AugdiffError

__all__ = ["missing", "require"]


def missing(module: str) -> bool:
    """Whether ``module`` cannot be imported here."""
    try:
        return find_spec(module) is None
    except (ImportError, ValueError):
        return True


def require(module: str, extra: str, what: str) -> None:
    """Raise one line naming ``what`` needs ``module`` and the extra that installs it."""
    if missing(module):
        raise AugdiffError(f"{what} needs the {module} package: pip install 'augdiff[{extra}]'")
