"""``mos bench`` on the command line: time the backends, or compare model files side by side."""
from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from mos_ros.bench.compare import compare_models, format_compare
from mos_ros.bench.report import format_report
from mos_ros.bench.run import (
    ALL_BACKENDS, BASELINE_FACE_COUNTS, BASELINE_INPUT_HW, DEFAULT_BASELINE_REPEATS,
    DEFAULT_REPEATS, DEFAULT_ROUNDS, DEFAULT_SIZES, DEFAULT_WARMUP, MODEL_FORMATS,
    run_benchmark)
from mos_ros.core.errors import ImageError
from mos_ros.resources import default_model_path

DESCRIPTION = "MOS latency per backend and input size, against the sequential baseline."


def parse_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` (e.g. 640x480) -> (height, width)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, got {text!r}") from None
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return height, width


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``mos bench``."""
    parser = argparse.ArgumentParser(prog="mos bench", description=DESCRIPTION)
    parser.add_argument("--model", type=Path, default=None,
                        help="checkpoint (.pt), .onnx or .ncnn; default: the shipped model")
    parser.add_argument("--backends", nargs="+", default=list(ALL_BACKENDS),
                        choices=list(MODEL_FORMATS), help="backends to time")
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=None,
                        help="network inputs, WIDTHxHEIGHT (default: 640x480 and 640x640; "
                             "640x480 with --compare)")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS,
                        help="timed frames per backend and size")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, help="untimed frames")
    parser.add_argument("--threads", type=int, default=None,
                        help="inference threads (default: usable cores)")
    parser.add_argument("--baseline-repeats", type=int, default=DEFAULT_BASELINE_REPEATS,
                        help="repeats of the MOS vs sequential comparison")
    parser.add_argument("--faces", nargs="+", type=int, default=list(BASELINE_FACE_COUNTS),
                        help="face counts for the sequential baseline")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the sequential-pipeline comparison")
    parser.add_argument("--compare", nargs="+", type=Path, default=None, metavar="MODEL",
                        help="time these files side by side with --model (or the first of "
                             "them), as ratios per round; each with the backend of its suffix")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS,
                        help="rounds of --compare")
    parser.add_argument("--image", type=Path, default=None,
                        help="BGR image to time on (default: a synthetic 640x480 frame)")
    return parser


def _read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(f"{path}: cannot read as an image")
    return image


def _run_compare(args: argparse.Namespace, image: Optional[np.ndarray]) -> int:
    """``mos bench --compare``: one side-by-side report per input size."""
    models = ([args.model] if args.model else []) + list(args.compare)
    for input_hw in args.sizes or [BASELINE_INPUT_HW]:
        try:
            report = compare_models(models, input_hw, rounds=args.rounds, repeats=args.repeats,
                                    warmup=args.warmup, threads=args.threads, image=image,
                                    frame_name=args.image.name if args.image else "")
        except ValueError as exc:
            raise SystemExit(f"mos bench --compare: {exc}") from None
        print(format_compare(report) + "\n")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``mos bench`` and print its report; returns the exit status."""
    argv = list(argv) if argv is not None else None
    if argv and argv[0] == "--":
        # Passed through by a parent command (``mos bench -- --model ...``).
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    image = _read_image(args.image) if args.image else None
    if args.compare:
        return _run_compare(args, image)
    if args.model is None:
        args.model = default_model_path()
    if min(args.repeats, args.baseline_repeats, *args.faces) < 1 or args.warmup < 0:
        raise SystemExit("mos bench: repeats and face counts must be >= 1, warmup >= 0")
    args.sizes = args.sizes or list(DEFAULT_SIZES)
    report = run_benchmark(args.model, args.backends, args.sizes, args.repeats, args.warmup,
                           args.threads, image=image,
                           frame_name=args.image.name if args.image else "",
                           baseline=not args.no_baseline, baseline_repeats=args.baseline_repeats,
                           face_counts=args.faces)
    print(format_report(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
