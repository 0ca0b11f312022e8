"""augdiff command line: train, sample, eval, run, bench, probe, flops.

Every user error is one line on stderr and exit code 2; flags, YAML keys and Python fields share names.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from augdiff.errors import AugdiffError

__all__ = ["main", "console", "build_parser", "Parser"]


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors, exit code 2, and defaults shown in --help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> Parser:
    # Imported here, inside main's handlers: a Ctrl-C while torch loads is one line too.
    from augdiff.cli import bench, evaluate, flops, hub, probe, run, sample, train

    parser = Parser(prog="augdiff", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in (train, sample, evaluate, run, bench, probe, flops, hub):
        module.add_parser(sub)
    return parser


def parse(parser: Parser, argv: list[str] | None) -> argparse.Namespace:
    """Parse, letting ``key=value`` overrides stand anywhere among the flags of commands that take them."""
    args, rest = parser.parse_known_args(argv)
    overrides = [a for a in rest if "=" in a and not a.startswith("-")]
    unknown = [a for a in rest if a not in overrides]
    if unknown or (overrides and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(unknown or overrides)}")
    if overrides:
        args.overrides = [*args.overrides, *overrides]
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse(build_parser(), argv)
        return int(args.func(args) or 0)
    except AugdiffError as exc:
        print(f"augdiff: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("augdiff: interrupted", file=sys.stderr)
        return 130


def console() -> None:
    """The ``augdiff`` program (and ``python -m augdiff``, which torchrun launches): ``main`` and the exit."""
    code = main()
    from augdiff.train.distributed import exit_process

    exit_process(code)


if __name__ == "__main__":
    console()
