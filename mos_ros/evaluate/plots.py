"""PNG plots of the evaluation figures, drawn with matplotlib's Agg canvas (no display needed).

Figures are built on :class:`matplotlib.figure.Figure` with an explicit Agg canvas, so no
global pyplot state or interactive backend is touched. matplotlib (optional, extra [train]) is
imported on first use.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mos_ros.evaluate.curve import DETECTION_KEYS, SIZES, CurvePoint
from mos_ros.evaluate.landmarks import LandmarkResult
from mos_ros.evaluate.pose import ANGLES, PoseResult
from mos_ros.evaluate.widerface import WiderResult

#: Histogram bin width of the pose errors, degrees.
POSE_BIN_DEG = 1.0
DPI = 100


def _figure(width: float, height: float):
    """A figure with its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(str(path), format="png")
    return path


def plot_pr_curves(result: WiderResult, path: str | Path) -> Path:
    """The precision-recall curves of all settings in one figure, AP in the legend."""
    figure = _figure(6.0, 5.0)
    axes = figure.add_subplot(1, 1, 1)
    for name, curve in result.curves.items():
        # Thresholds above every score have no detections: (0, 0) is no operating point.
        points = (curve.recall > 0) | (curve.precision > 0)
        axes.plot(curve.recall[points], curve.precision[points], linewidth=2,
                  label=f"{name}: AP {100 * curve.ap:.1f}%")
    axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01),
             title="WIDER FACE validation")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower left")
    return _save(figure, path)


def plot_pose_errors(result: PoseResult, path: str | Path) -> Path:
    """One histogram of absolute errors per angle, MAE in each title."""
    figure = _figure(12.0, 3.8)
    top = max(POSE_BIN_DEG, float(np.ceil(result.errors.max())) if result.errors.size else 1.0)
    bins = np.arange(0.0, top + POSE_BIN_DEG, POSE_BIN_DEG)
    for column, name in enumerate(ANGLES):
        axes = figure.add_subplot(1, len(ANGLES), column + 1)
        axes.hist(result.errors[:, column], bins=bins, color=f"C{column}")
        axes.set(xlabel="absolute error (degrees)", ylabel="samples",
                 title=f"{name}: MAE {result.mae[name]:.2f}")
    return _save(figure, path)


def plot_ced(result: LandmarkResult, path: str | Path) -> Path:
    """The cumulative error distribution of the per-sample NME, AUC in the legend."""
    figure = _figure(6.0, 5.0)
    axes = figure.add_subplot(1, 1, 1)
    axes.plot(result.ced_errors, result.ced_fraction, linewidth=2,
              label=f"NME {100 * result.nme:.2f}%, AUC@{result.threshold:g} {result.auc:.3f}")
    axes.set(xlabel="NME (fraction of sqrt(w*h))", ylabel="fraction of samples",
             xlim=(0, result.threshold), ylim=(0, 1.01), title="Landmarks: CED")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right")
    return _save(figure, path)


def _curve_unit(key: str) -> str:
    if key.startswith("kept"):
        return "share"
    return "share / per image" if key in DETECTION_KEYS else "degrees (median)"


def plot_learning_curve(points: list[CurvePoint], path: str | Path) -> Path:
    """A run's curve on held-out photos: roll and eye-line error under rotation, faces kept,
    the MAE against FaceMesh and detection (recall, false positives per image), each against
    iterations, the constant predictor dashed."""
    rows = [p.row() for p in points]
    constant = points[-1].row("constant")
    iterations = [row["iteration"] for row in rows]
    figure = _figure(20.0, 4.0)
    panels = [("roll error under rotation", [f"roll_{s}" for s in SIZES]),
              ("eye-line error under rotation", [f"eye_line_{s}" for s in SIZES]),
              ("MAE against FaceMesh (faces >= 60 px)", [f"facemesh_{a}" for a in ANGLES]),
              ("faces kept", [f"kept_{s}" for s in SIZES]),
              ("detection", list(DETECTION_KEYS))]
    for column, (title, keys) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), column + 1)
        for colour, key in enumerate(keys):
            values = [np.nan if row[key] is None else row[key] for row in rows]
            axes.plot(iterations, values, marker="o", color=f"C{colour}", label=key)
            if constant.get(key) is not None:
                axes.axhline(constant[key], color=f"C{colour}", linestyle="--", linewidth=1)
        axes.set(xlabel="iteration", title=title,
                 ylabel=_curve_unit(keys[0]))
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=7)
    return _save(figure, path)
