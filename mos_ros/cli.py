"""The mos command line: detect, bag, export, bench, eval, train, data, demo.

Each subcommand is a (configure, run) pair in :data:`COMMANDS`; heavy libraries are imported
only by the command that needs them (``mos --help`` stays quick, and a command's optional
dependencies are needed only when it runs), hence the imports inside the run functions.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mos_ros.command import (
    Command, build_parser as build_command_parser, configure_passthrough, run_command)

log = logging.getLogger("mos")


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None,
                        help="model file: .pt, .onnx or a .ncnn folder (default: shipped model)")
    parser.add_argument("--backend", default=None,
                        help="torch | onnxruntime | ncnn (default: from the model's suffix)")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda, cuda:N, auto (torch); providers, e.g. tensorrt,cuda,cpu "
                             "(onnxruntime); vulkan (ncnn)")
    parser.add_argument("--threads", type=int, default=None, help="inference threads")


def _open_detector(args: argparse.Namespace, **settings):
    from mos_ros.backends import device_options
    from mos_ros.core.postprocess import DecodeSettings
    from mos_ros.detector import FaceDetector, backend_for_path
    from mos_ros.resources import default_model_path

    model = args.model or default_model_path(args.device or "", args.backend or "")
    backend = args.backend or backend_for_path(model)
    options = device_options(backend, args.device or "", args.threads)
    return FaceDetector.open(model, backend, options, settings=DecodeSettings(**settings),
                             input_size=getattr(args, "input_size", 640))


def _add_detection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--score", type=float, default=0.5, help="face score threshold")
    parser.add_argument("--nms", type=float, default=0.4, help="NMS IoU threshold")
    parser.add_argument("--min-size", type=float, default=0.0, help="smallest face side (px)")
    parser.add_argument("--input-size", type=int, default=640,
                        help="long side of the network input in pixels")
    _add_model_arguments(parser)


def _open_configured_detector(args: argparse.Namespace):
    return _open_detector(args, score_threshold=args.score, nms_threshold=args.nms,
                          min_face_size=args.min_size)


def _configure_detect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path,
                        help="image file, folder of images, video or rosbag2 (.mcap, .db3, "
                             "bag folder)")
    parser.add_argument("-o", "--out", type=Path, default=Path("out/detect"),
                        help="folder for drawn images and detections.json")
    _add_detection_arguments(parser)


def _run_detect(args: argparse.Namespace) -> int:
    from mos_ros.offline import detect_files

    results = detect_files(_open_configured_detector(args), args.source, args.out)
    faces = sum(len(f) for f in results["frames"].values())
    print(f"{len(results['frames'])} image(s), {faces} face(s) -> {args.out}")
    for name, error in results["errors"].items():
        print(f"skipped {name}: {error}")
    return 0


def _configure_bag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="rosbag2 to read: bag folder, .mcap or .db3")
    parser.add_argument("-o", "--out", type=Path, required=True,
                        help="new bag to write (a folder; must not exist)")
    parser.add_argument("--topic", action="append", default=[],
                        help="image topic to process (repeatable; default: every "
                             "sensor_msgs/Image and CompressedImage topic)")
    parser.add_argument("--select", action="store_true",
                        help="also run the face selector: <topic>/faces/tracked and "
                             "<topic>/faces/selected")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default=None,
                        help="storage of the new bag (default: as the input)")
    _add_detection_arguments(parser)


def _run_bag(args: argparse.Namespace) -> int:
    from mos_ros.bags import process_bag

    summary = process_bag(args.source, args.out, _open_configured_detector(args), args.topic,
                          args.select, args.storage or "")
    for topic, frames in sorted(summary.frames.items()):
        print(f"{topic}: {frames} frame(s), {summary.faces[topic]} face(s) -> "
              f"{topic}/faces")
    for reason, count in sorted(summary.skipped.items()):
        print(f"skipped {count} frame(s): {reason}")
    if args.select:
        print(f"{summary.selected} selected shot(s)")
    print(f"wrote {args.out}")
    if summary.error:
        print(f"mos bag: error: {summary.error} (what was read before it is in {args.out})",
              file=sys.stderr)
        return 2
    return 0


def _configure_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="mos_ros checkpoint (.pt)")
    from mos_ros.export import EXPORTERS

    parser.add_argument("--format", required=True, choices=sorted(EXPORTERS))
    parser.add_argument("-o", "--out", type=Path, default=None,
                        help="output file (.onnx, .int8.onnx) or folder (.ncnn, .int8.ncnn); "
                             "default beside the input")
    parser.add_argument("--calibration", type=Path, default=None,
                        help="int8 formats: folder of images like the deployment's (at least "
                             "32), to calibrate and check the int8 model on")


def _run_export(args: argparse.Namespace) -> int:
    from mos_ros.export import CALIBRATED_FORMATS, export_model

    options = {"calibration": args.calibration} if args.format in CALIBRATED_FORMATS else {}
    print(export_model(args.checkpoint, args.format, args.out, **options))
    return 0


def _run_bench(args: argparse.Namespace) -> int:
    from mos_ros.bench.command import main as bench_main

    return bench_main(args.rest)


def _run_eval(args: argparse.Namespace) -> int:
    from mos_ros.evaluate.report import main as evaluate_main

    return evaluate_main(args.rest)


def _run_train(args: argparse.Namespace) -> int:
    from mos_ros.train.__main__ import main as train_main

    return train_main(["train", *args.rest])


def _run_data(args: argparse.Namespace) -> int:
    from mos_ros.data.__main__ import main as data_main

    return data_main(args.rest)


def _configure_demo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=Path, default=None,
                        help="image folder or video played as the camera (default: bundled)")
    parser.add_argument("-o", "--out", type=Path, default=Path("out/demo"),
                        help="folder for the annotated frames (and selected face crops)")
    parser.add_argument("--frames", type=int, default=12, help="stop after this many frames")
    parser.add_argument("--model", type=Path, default=None,
                        help="model file (default: the shipped model)")
    parser.add_argument("--offline", action="store_true",
                        help="run the detector on the images directly, without ROS 2")


def _run_demo(args: argparse.Namespace) -> int:
    from mos_ros.resources import default_model_path, find_shared_file

    images = args.images or find_shared_file("models/demo")
    model = args.model or default_model_path()
    print(f"demo: {images} -> {args.out} with {model}")
    if args.offline:
        from mos_ros.detector import FaceDetector
        from mos_ros.offline import detect_files

        results = detect_files(FaceDetector.open(model), images, args.out, progress=False)
        counts = [len(faces) for faces in results["frames"].values()]
    else:
        from mos_ros.ros.bringup import run_demo

        counts = run_demo(images, args.out, model, args.frames).faces_per_frame
    print(f"{len(counts)} frame(s), {sum(counts)} face(s); annotated frames in {args.out}")
    return 0 if counts else 1


COMMANDS: dict[str, Command] = {
    "detect": Command("detect faces in an image, folder or video", _configure_detect,
                      _run_detect),
    "bag": Command("detect faces in a rosbag2's images and write them to a new bag",
                   _configure_bag, _run_bag),
    "export": Command("export a checkpoint to ONNX or ncnn", _configure_export, _run_export),
    "bench": Command("latency per backend and versus a sequential pipeline",
                     configure_passthrough, _run_bench),
    "eval": Command("WIDER FACE AP, AFLW2000 pose MAE, landmark NME", configure_passthrough,
                    _run_eval),
    "train": Command("train a model: mos train CONFIG [--resume latest]",
                     configure_passthrough, _run_train),
    "data": Command("real photos for the data engine: mos data fetch | sources",
                    configure_passthrough, _run_data),
    "demo": Command("ROS 2 demo: bundled images as a camera -> mos_detector -> face_selector",
                    _configure_demo, _run_demo),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mos`` with one sub-parser per entry of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="mos", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return build_command_parser("mos", "", COMMANDS, parser)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mos`` console script; errors, and optional dependencies that are
    not installed, become one line and exit code 2."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    return run_command("mos", COMMANDS, args)


if __name__ == "__main__":
    sys.exit(main())
