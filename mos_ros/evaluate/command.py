"""What ``mos eval`` subcommands hand back: the shape of an evaluation and of its report."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Report:
    """What an evaluation produced: the table lines, the JSON figures and the plots written."""

    table: list[str]
    figures: dict
    plots: list[Path]


@dataclass(frozen=True)
class EvalCommand:
    """An evaluation: its help line, how to add its arguments, and what it runs."""

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], Report]
