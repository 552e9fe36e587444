"""Landmark NME is normalised by sqrt(w*h) of the face box; CED and AUC have known values."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("scipy")


from mos_ros.evaluate.landmarks import evaluate_landmarks  # noqa: E402
from mos_ros.evaluate.report import main  # noqa: E402
from mos_ros.evaluate.widerface_io import EvaluationDataError  # noqa: E402

# A 100 x 64 box: sqrt(w * h) = 80 pixels.
BOX = np.array([[20.0, 30.0, 120.0, 94.0]])
TRUTH = np.array([[[40, 50], [90, 50], [65, 65], [45, 80], [85, 80]]], dtype=np.float64)


def test_nme_per_landmark_is_distance_over_sqrt_of_box_area():
    # Landmark i is off by a (3, 4) * i step: distance 5 i pixels, NME 5 i / 80.
    predicted = TRUTH + (np.arange(5)[:, None] * [3.0, 4.0])[None]
    result = evaluate_landmarks(predicted, TRUTH, BOX)
    np.testing.assert_allclose(result.nme_per_landmark, 5 * np.arange(5) / 80)
    assert result.nme == pytest.approx(np.mean(5 * np.arange(5) / 80))


def test_ced_and_auc_of_two_samples_with_known_errors():
    # Sample A exact, sample B off by 4 px (NME 0.05): the CED is 1/2 below 0.05 and 1 from
    # there to the 0.1 threshold, so the AUC is (0.5 * 0.05 + 1 * 0.05) / 0.1 = 0.75.
    truth = np.concatenate([TRUTH, TRUTH])
    predicted = truth + np.array([[[0.0, 0.0]], [[0.0, 4.0]]])
    result = evaluate_landmarks(predicted, truth, np.concatenate([BOX, BOX]), threshold=0.1)
    np.testing.assert_allclose(result.per_sample, [0.0, 0.05])
    assert result.auc == pytest.approx(0.75, abs=2e-3)
    assert result.failure_rate == 0.0
    assert evaluate_landmarks(predicted, truth, np.concatenate([BOX, BOX]),
                              threshold=0.04).failure_rate == 0.5


def test_points_without_annotation_are_left_out():
    truth = TRUTH.copy()
    truth[0, 4] = np.nan
    predicted = TRUTH.copy()
    predicted[0, 4] += 100.0  # would dominate the error if it were counted
    result = evaluate_landmarks(predicted, truth, BOX)
    assert result.nme == 0.0 and np.isnan(result.nme_per_landmark[4])


@pytest.mark.parametrize("boxes, predicted, message", [
    (np.array([[0.0, 0, 0, 10]]), TRUTH, "face box of sample 0 has no area"),
    (BOX, TRUTH[:, :3], r"must be \(n, k, 2\) alike"),
    (BOX, np.where(np.arange(5)[None, :, None] == 2, np.nan, TRUTH),
     "predicted landmark 2 of sample 0 is NaN"),
])
def test_bad_input_is_rejected_with_the_reason(boxes, predicted, message):
    with pytest.raises(EvaluationDataError, match=message):
        evaluate_landmarks(predicted, TRUTH, boxes)


def test_report_reads_csv_and_json_prints_the_json_figures_and_draws_the_ced(tmp_path, capsys):
    gt = tmp_path / "gt.csv"
    header = "name,box_x1,box_y1,box_x2,box_y2," + ",".join(
        f"lm{i}_x,lm{i}_y" for i in range(5))
    rows = [f"face{k}," + ",".join(str(v) for v in BOX[0]) + "," +
            ",".join(str(v) for v in TRUTH[0].reshape(-1)) for k in range(4)]
    gt.write_text("\n".join([header, *rows]) + "\n")
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps([{"name": f"face{k}", "landmarks": (TRUTH[0] + [0, k]).tolist()}
                                for k in range(4)]))
    out = tmp_path / "out"
    assert main(["landmarks", "--pred", str(pred), "--gt", str(gt), "-o", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    figures = json.loads((out / "landmarks.json").read_text())
    mean_line = next(line for line in printed if line.startswith("mean"))
    assert float(mean_line.split()[1]) == pytest.approx(100 * figures["nme"], abs=1e-3)
    assert figures["nme"] == pytest.approx(np.mean([0, 1, 2, 3]) / 80)
    per_landmark = [float(line.split()[1]) for line in printed if line[:1].isdigit()]
    assert per_landmark == pytest.approx([100 * v for v in figures["nme_per_landmark"]],
                                         abs=1e-3)
    png = (out / "landmarks_ced.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
