"""``mos eval widerface|aflw2000|landmarks|real|consistency|curve|head3d``: tables, plots, JSON.

Each subcommand is an entry of :data:`EVAL_COMMANDS`: how to add its arguments, and a run
that returns a :class:`Report`. The table printed and the JSON written come from the same
figures, so they always agree.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from functools import partial
from pathlib import Path

from mos_ros.core.errors import MosError
from mos_ros.core.postprocess import DecodeSettings
from mos_ros.detector import FaceDetector
from mos_ros.evaluate.command import EvalCommand, Report
from mos_ros.evaluate import head3d, tables
from mos_ros.evaluate.consistency import ROTATIONS, evaluate_consistency
from mos_ros.evaluate.curve import learning_curve, markdown, write_csv
from mos_ros.evaluate.landmarks import CED_THRESHOLD, evaluate_landmarks
from mos_ros.evaluate.plots import (
    plot_ced, plot_learning_curve, plot_pose_errors, plot_pr_curves)
from mos_ros.evaluate.pose import ANGLES, POSE_LIMIT_DEG, evaluate_pose
from mos_ros.evaluate.real_photos import evaluate_real_photos, write_drawings
from mos_ros.evaluate.runner import run_widerface
from mos_ros.evaluate.tta import TTASettings, detect_tta
from mos_ros.evaluate.widerface import IOU_THRESHOLD, THRESHOLD_COUNT, evaluate_widerface
from mos_ros.evaluate.widerface_io import load_ground_truth, read_predictions
from mos_ros.resources import default_model_path

log = logging.getLogger(__name__)
#: Score threshold for writing WIDER predictions: low, so the PR curve reaches high recall.
WIDER_SCORE_THRESHOLD = 0.02


# --- WIDER FACE ---------------------------------------------------------------------------

def _configure_widerface(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", type=Path, required=True,
                        help="folder with wider_face_val.mat and wider_{easy,medium,hard}_val.mat")
    parser.add_argument("--pred", type=Path, required=True,
                        help="prediction folder <event>/<image>.txt (written first with --images)")
    parser.add_argument("--images", type=Path, default=None,
                        help="WIDER_val image folder: run the detector and write --pred first")
    parser.add_argument("--model", type=Path, default=None, help="model (default: shipped)")
    parser.add_argument("--backend", default=None, help="torch | onnxruntime | ncnn")
    parser.add_argument("--device", default=None, help="torch device (cpu, cuda, auto)")
    parser.add_argument("--score", type=float, default=WIDER_SCORE_THRESHOLD,
                        help="score threshold of written detections")
    parser.add_argument("--nms", type=float, default=0.4, help="NMS IoU threshold")
    parser.add_argument("--input-size", type=int, default=None,
                        help="network input long side (default: each image's own size)")
    parser.add_argument("--scales", type=float, nargs="+", default=None,
                        help="test-time scales of the image size, e.g. 0.5 1 1.5 (TTA)")
    parser.add_argument("--flip", action="store_true", help="add mirrored passes (TTA)")
    parser.add_argument("--iou", type=float, default=IOU_THRESHOLD, help="match IoU")


def _detect_function(args: argparse.Namespace):
    """``detect(image)`` of the requested model, plain or with test-time augmentation."""
    options = {"device": args.device} if args.device else {}
    model = args.model or default_model_path(args.device or "", args.backend or "")
    detector = FaceDetector.open(model, args.backend, options,
                                 settings=DecodeSettings(score_threshold=args.score,
                                                         nms_threshold=args.nms),
                                 input_size=args.input_size)
    if args.scales is None and not args.flip:
        return detector.detect
    tta = TTASettings(scales=tuple(args.scales or (1.0,)), flip=args.flip)
    return partial(detect_tta, detector, tta=tta)


def _run_widerface(args: argparse.Namespace) -> Report:
    if args.images is not None:
        summary = run_widerface(_detect_function(args), args.images, args.pred,
                                progress=args.progress)
        log.info("wrote predictions of %d images (%d faces) to %s", summary.images,
                 summary.faces, args.pred)
    gt = load_ground_truth(args.gt)
    result = evaluate_widerface(gt, read_predictions(args.pred, gt), args.iou,
                                progress=args.progress)
    figures = result.to_dict()
    figures["iou_threshold"] = args.iou
    plot = plot_pr_curves(result, args.out / "widerface_pr.png")
    return Report(widerface_table(figures), figures, [plot])


def widerface_table(figures: dict) -> list[str]:
    """Table lines of :func:`_run_widerface`'s figures."""
    lines = [f"WIDER FACE AP (IoU {figures['iou_threshold']:g}, {THRESHOLD_COUNT} thresholds)",
             f"{'setting':<10}{'AP (%)':>10}{'faces':>10}"]
    lines += [f"{name:<10}{100 * ap:>10.2f}{figures['faces'][name]:>10d}"
              for name, ap in figures["ap"].items()]
    lines.append(f"images {figures['images']}, predictions {figures['predictions']}, "
                 f"missing prediction files {figures['missing_prediction_files']}")
    return lines


# --- AFLW2000 head pose -------------------------------------------------------------------

def _configure_aflw2000(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pred", type=Path, required=True,
                        help="predicted yaw/pitch/roll per image (.csv or .json)")
    parser.add_argument("--gt", type=Path, required=True,
                        help="ground-truth yaw/pitch/roll per image (.csv or .json)")
    parser.add_argument("--limit", type=float, default=POSE_LIMIT_DEG,
                        help="leave out samples with any |angle| above this (degrees)")


def _run_aflw2000(args: argparse.Namespace) -> Report:
    predicted, truth = tables.load_records(args.pred), tables.load_records(args.gt)
    names, missing, extra = tables.pair_names(predicted, truth)
    result = evaluate_pose(tables.angle_array(predicted, names, str(args.pred)),
                           tables.angle_array(truth, names, str(args.gt)), args.limit)
    figures = result.to_dict()
    figures.update(without_prediction=len(missing), unmatched_predictions=extra)
    plot = plot_pose_errors(result, args.out / "aflw2000_pose_errors.png")
    return Report(pose_table(figures), figures, [plot])


def pose_table(figures: dict) -> list[str]:
    """Table lines of :func:`_run_aflw2000`'s figures."""
    lines = [f"AFLW2000 head pose MAE (Hopenet protocol, |angle| <= {figures['limit_deg']:g} deg)",
             f"{'angle':<10}{'MAE (deg)':>12}"]
    lines += [f"{name:<10}{figures['mae_deg'][name]:>12.4f}" for name in (*ANGLES, "mean")]
    lines.append(f"evaluated {figures['evaluated']}, excluded beyond limit "
                 f"{figures['excluded_beyond_limit']}, without prediction "
                 f"{figures['without_prediction']}")
    return lines


# --- landmarks ----------------------------------------------------------------------------

def _configure_landmarks(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pred", type=Path, required=True,
                        help="predicted landmarks per image (.csv or .json)")
    parser.add_argument("--gt", type=Path, required=True,
                        help="ground-truth landmarks and face box per image (.csv or .json)")
    parser.add_argument("--threshold", type=float, default=CED_THRESHOLD,
                        help="NME up to which the CED is drawn and its AUC taken")


def _run_landmarks(args: argparse.Namespace) -> Report:
    predicted, truth = tables.load_records(args.pred), tables.load_records(args.gt)
    names, missing, extra = tables.pair_names(predicted, truth)
    result = evaluate_landmarks(tables.landmark_array(predicted, names, str(args.pred)),
                                tables.landmark_array(truth, names, str(args.gt)),
                                tables.box_array(truth, names, str(args.gt)), args.threshold)
    figures = result.to_dict()
    figures.update(without_prediction=len(missing), unmatched_predictions=extra)
    plot = plot_ced(result, args.out / "landmarks_ced.png")
    return Report(landmark_table(figures), figures, [plot])


def landmark_table(figures: dict) -> list[str]:
    """Table lines of :func:`_run_landmarks`'s figures."""
    lines = ["Landmark NME (normalised by sqrt(w*h) of the face box)",
             f"{'landmark':<10}{'NME (%)':>10}"]
    lines += [f"{index:<10}{'n/a' if v is None else f'{100 * v:.3f}':>10}"
              for index, v in enumerate(figures["nme_per_landmark"])]
    lines.append(f"{'mean':<10}{100 * figures['nme']:>10.3f}")
    lines.append(f"AUC@{figures['threshold']:g} {figures['auc']:.4f}, failure rate "
                 f"{100 * figures['failure_rate']:.2f}%, samples {figures['samples']}, "
                 f"without prediction {figures['without_prediction']}")
    return lines


# --- held-out real photos ----------------------------------------------------------------

def _configure_real(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None, help="model (default: shipped)")
    parser.add_argument("--root", type=Path, default=None,
                        help="data root with the photos (default: $MOS_DATA_ROOT or "
                             "~/.cache/mos_ros/data); the ground truth is cached there")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the figures to this JSON file")
    parser.add_argument("--draw", type=Path, default=None,
                        help="folder for each image with ground truth (green) and our "
                             "detections (red)")


def _run_real(args: argparse.Namespace) -> Report:
    result = evaluate_real_photos(args.model, args.root)
    figures = result.as_dict()
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    drawings = write_drawings(result, args.draw) if args.draw is not None else []
    return Report(result.markdown().splitlines(), figures, drawings)


# --- label-free consistency on real photos ------------------------------------------------

def _configure_consistency(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None, help="model (default: shipped)")
    parser.add_argument("--root", type=Path, default=None,
                        help="data root with the held-out photos (as for `mos eval real`)")
    parser.add_argument("--rotations", type=float, nargs="+", default=None,
                        help="in-plane rotations in degrees, OpenCV sign (default: "
                             "-45 -30 -15 15 30 45)")


def _run_consistency(args: argparse.Namespace) -> Report:
    result = evaluate_consistency(args.model, args.root,
                                  rotations=tuple(args.rotations or ROTATIONS))
    return Report(result.markdown(), result.as_dict(), [])


# --- a training run's learning curve ------------------------------------------------------

def _configure_curve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="training output folder (state_*.pt files)")
    parser.add_argument("--start", type=Path, default=None,
                        help="the model the run started from, shown as iteration 0")
    parser.add_argument("--every", type=int, default=1,
                        help="check every n-th state file (and always the last)")
    parser.add_argument("--root", type=Path, default=None,
                        help="data root with the held-out photos (as for `mos eval real`)")


def _run_curve(args: argparse.Namespace) -> Report:
    if args.every < 1:
        raise ValueError(f"--every must be >= 1, got {args.every}")
    points = learning_curve(args.run, args.start, args.every, args.root)
    args.out.mkdir(parents=True, exist_ok=True)
    plots = [write_csv(points, args.out / "curve.csv"),
             plot_learning_curve(points, args.out / "curve.png")]
    return Report(markdown(points), {"points": [p.row() for p in points],
                                     "constant": points[-1].row("constant")}, plots)


EVAL_COMMANDS: dict[str, EvalCommand] = {
    "widerface": EvalCommand("WIDER FACE val AP (easy/medium/hard), official protocol",
                             _configure_widerface, _run_widerface),
    "aflw2000": EvalCommand("AFLW2000 head-pose MAE (Hopenet protocol)", _configure_aflw2000,
                            _run_aflw2000),
    "landmarks": EvalCommand("landmark NME, CED curve and AUC", _configure_landmarks,
                             _run_landmarks),
    "real": EvalCommand("held-out real photos: our model beside the teachers (recall, FP, "
                        "NME, pose MAE)", _configure_real, _run_real),
    "consistency": EvalCommand("held-out real photos, no labels needed: pose and landmarks "
                               "under rotation and mirroring, beside a constant predictor",
                               _configure_consistency, _run_consistency),
    "curve": EvalCommand("a training run's learning curve: the consistency checks on every "
                         "state file, beside a constant", _configure_curve, _run_curve),
    "head3d": EvalCommand("faces in 3-D: depth and angle errors on rendered faces of known "
                          "distance, beside baselines", head3d.configure, head3d.run),
}


def build_parser() -> argparse.ArgumentParser:
    """Parser of ``mos eval`` with one sub-parser per entry of :data:`EVAL_COMMANDS`."""
    parser = argparse.ArgumentParser(prog="mos eval", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="benchmark", required=True)
    for name, command in EVAL_COMMANDS.items():
        child = sub.add_parser(name, help=command.help, description=command.help)
        command.configure(child)
        child.add_argument("-o", "--out", type=Path, default=Path("out/eval") / name,
                           help="folder for the PNG plots and the JSON of the figures")
        child.add_argument("--no-progress", dest="progress", action="store_false",
                           help="no progress bars")
    return parser


def write_report(report: Report, out_dir: Path, name: str) -> Path:
    """Write the figures as ``<out_dir>/<name>.json``; returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(report.figures, indent=2, sort_keys=True) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    """Run one evaluation; print its table, write plots and JSON. Bad input: exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        report = EVAL_COMMANDS[args.benchmark].run(args)
        json_path = write_report(report, args.out, args.benchmark)
    except (MosError, ValueError, FileNotFoundError) as exc:
        print(f"mos eval {args.benchmark}: error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report.table))
    print(f"figures: {json_path}; plots: {', '.join(str(p) for p in report.plots)}")
    return 0
