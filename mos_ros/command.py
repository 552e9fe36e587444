"""Command-line plumbing shared by ``mos`` and the tools behind it (``mos data`` ...).

A tool is a table of :class:`Command` entries; :func:`build_parser` makes one sub-parser per
entry and :func:`run_command` runs the chosen one, turning an error the user can fix (bad
input, a missing file, an optional dependency that is not installed) into one line and exit
status 2.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mos_ros.core.errors import MosError
from mos_ros.extras import missing_dependency

#: Exit status of a command refused for its input.
USAGE_ERROR = 2


def configure_passthrough(parser: argparse.ArgumentParser) -> None:
    """The tool parses its own arguments, --help included (they arrive as ``args.rest``)."""
    parser.set_defaults(passthrough=True)


@dataclass(frozen=True)
class Command:
    """A subcommand: its one-line help, how to add its arguments and what it runs."""

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]

    @property
    def passthrough(self) -> bool:
        """Whether the tool behind the command parses its own arguments."""
        return self.configure is configure_passthrough


def build_parser(prog: str, description: str, commands: Mapping[str, Command],
                 parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """A parser (``parser`` or a new one) with one sub-parser per entry of ``commands``."""
    parser = parser or argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in commands.items():
        command.configure(sub.add_parser(name, help=command.help, description=command.help,
                                         add_help=not command.passthrough))
    return parser


def run_command(prog: str, commands: Mapping[str, Command], args: argparse.Namespace) -> int:
    """Run ``args.command``; errors the user can fix become one line on stderr and status 2."""
    try:
        return commands[args.command].run(args)
    except (MosError, FileNotFoundError, ValueError) as exc:
        print(f"{prog} {args.command}: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except ModuleNotFoundError as exc:
        line = missing_dependency(exc, f"{prog} {args.command}")
        if line is None:
            raise
        print(f"{prog} {args.command}: error: {line}", file=sys.stderr)
        return USAGE_ERROR
