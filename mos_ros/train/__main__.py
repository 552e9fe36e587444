"""Command line: ``python -m mos_ros.train train CONFIG`` or ``... render OUT --count N``."""
from __future__ import annotations

import argparse
import logging
import sys

from mos_ros.train.synthetic import write_synthetic_set
from mos_ros.train.trainer import TrainConfig, train


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mos_ros.train",
                                     description="Train MOS or write a synthetic face set.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("train", help="train from a YAML config")
    run.add_argument("config", help="YAML file, e.g. config/train_synth.yaml")
    run.add_argument("--resume", default=None,
                     help="state file to continue from, or 'latest' in the output folder")
    render = commands.add_parser("render", help="write synthetic scenes and label.txt")
    render.add_argument("out_dir")
    render.add_argument("--count", type=int, required=True)
    render.add_argument("--seed", type=int, default=0)
    render.add_argument("--workers", type=int, default=1)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.command == "train":
        path = train(TrainConfig.from_yaml(args.config), resume=args.resume)
    else:
        path = write_synthetic_set(args.out_dir, args.count, args.seed, workers=args.workers)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
