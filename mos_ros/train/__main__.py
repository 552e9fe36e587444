"""Command line of training: train a model, write a synthetic set, or score a model.

    python -m mos_ros.train train CONFIG [--resume latest]      (also: mos train CONFIG)
    python -m mos_ros.train render OUT --count N [--seed S]
    python -m mos_ros.train scorecard MODEL [--scenes N]         (the model card's figures)

Training and the scorecard need torch, rendering the scene renderer: each is imported inside the
command that runs it, so that no command loads what it does not run.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from mos_ros.core.postprocess import DecodeSettings
from mos_ros.detector import FaceDetector


def _train(args: argparse.Namespace) -> str:
    from mos_ros.train.config import TrainConfig
    from mos_ros.train.loop import train

    return str(train(TrainConfig.from_yaml(args.config), resume=args.resume))


def _render(args: argparse.Namespace) -> str:
    from mos_ros.scenes.composer import write_synthetic_set

    return str(write_synthetic_set(args.out_dir, args.count, args.seed, workers=args.workers))


def _scorecard(args: argparse.Namespace) -> str:
    from mos_ros.train.scorecard import held_out_scenes, score

    detector = FaceDetector.open(args.model, settings=DecodeSettings(score_threshold=0.02))
    card = score(detector.detect, held_out_scenes(args.scenes), threshold=args.threshold)
    return json.dumps(card.as_dict(), indent=1)


COMMANDS = {"train": _train, "render": _render, "scorecard": _scorecard}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mos_ros.train",
                                     description="Train MOS, write a synthetic face set, or "
                                                 "score a model on held-out scenes.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("train", help="train from a YAML config")
    run.add_argument("config", help="YAML file, e.g. config/train_synth_cpu.yaml")
    run.add_argument("--resume", default=None,
                     help="state file to continue from, or 'latest' in the output folder")
    render = commands.add_parser("render", help="write synthetic scenes and label.txt")
    render.add_argument("out_dir")
    render.add_argument("--count", type=int, required=True)
    render.add_argument("--seed", type=int, default=0)
    render.add_argument("--workers", type=int, default=1)
    card = commands.add_parser("scorecard", help="AP, recall, false positives, pose MAE of a "
                                                 "model on held-out synthetic scenes")
    card.add_argument("model", help="model file (.pt, .onnx or .ncnn folder)")
    card.add_argument("--scenes", type=int, default=200)
    card.add_argument("--threshold", type=float, default=0.5, help="operating score threshold")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    print(COMMANDS[args.command](args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
