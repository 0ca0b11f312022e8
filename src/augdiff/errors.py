"""The one exception type that carries a user-facing message.

The CLI turns an :class:`AugdiffError` into a single line on stderr and exit code 2; every other exception is
a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["AugdiffError"]


class AugdiffError(Exception):
    """Bad input from the user: the message names the problem and the fix, in one line."""
