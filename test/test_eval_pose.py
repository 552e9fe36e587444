"""AFLW2000 head-pose MAE follows the Hopenet protocol, with the +-99 degree filter counted."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("scipy")


from mos_ros.evaluate.pose import evaluate_pose  # noqa: E402
from mos_ros.evaluate.report import main  # noqa: E402
from mos_ros.evaluate.tables import angle_array, load_records, pair_names  # noqa: E402
from mos_ros.evaluate.widerface_io import EvaluationDataError  # noqa: E402

TRUTH = np.array([[10.0, -20.0, 5.0], [-45.0, 30.0, 0.0], [99.0, 0.0, -99.0]])
OFFSET = np.array([2.0, -4.0, 6.0])


def test_mae_per_angle_and_their_mean():
    result = evaluate_pose(TRUTH + OFFSET, TRUTH)
    assert result.mae == pytest.approx({"yaw": 2.0, "pitch": 4.0, "roll": 6.0, "mean": 4.0})
    assert result.evaluated == 3 and result.excluded == 0  # exactly +-99 is inside


def test_samples_beyond_99_degrees_are_left_out_and_counted():
    beyond = np.array([[120.0, 0.0, 0.0], [0.0, -99.5, 0.0]])
    truth = np.vstack([TRUTH, beyond])
    predicted = np.vstack([TRUTH + OFFSET, beyond + 50.0])
    result = evaluate_pose(predicted, truth)
    assert result.excluded == 2 and result.evaluated == 3
    assert result.mae["mean"] == pytest.approx(4.0)
    assert evaluate_pose(predicted, truth, limit_deg=180.0).mae["mean"] > 4.0


def test_angles_are_not_wrapped():
    # Hopenet compares raw angles: 170 vs -170 is an error of 340, not 20 (kept: limit 180).
    result = evaluate_pose(np.array([[170.0, 0, 0]]), np.array([[-170.0, 0, 0]]), 180.0)
    assert result.mae["yaw"] == pytest.approx(340.0)


@pytest.mark.parametrize("predicted, message", [
    (np.zeros((3, 2)), r"predicted angles must be \(n, 3\)"),
    (np.zeros((2, 3)), "2 predictions for 3 ground-truth poses"),
    (np.array([[0, 0, np.nan]] * 3), "sample 0 are not finite"),
])
def test_bad_arrays_are_rejected_with_the_reason(predicted, message):
    with pytest.raises(EvaluationDataError, match=message):
        evaluate_pose(predicted, TRUTH)


def _write_tables(tmp_path):
    names = ["image00002", "image00004", "image00006"]
    gt = tmp_path / "gt.csv"
    gt.write_text("name,yaw,pitch,roll\n" + "".join(
        f"{n},{y},{p},{r}\n" for n, (y, p, r) in zip(names, TRUTH)) + "image09999,150,0,0\n")
    predicted = {n: {"yaw": y, "pitch": p, "roll": r}
                 for n, (y, p, r) in zip(names, (TRUTH + OFFSET).tolist())}
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({"frames": {n: [dict(v, score=0.9, box=[0, 0, 1, 1])]
                                           for n, v in predicted.items()}}))
    return pred, gt


def test_tables_pair_predictions_with_ground_truth_by_name(tmp_path):
    pred, gt = _write_tables(tmp_path)
    predicted, truth = load_records(pred), load_records(gt)
    names, missing, extra = pair_names(predicted, truth)
    assert missing == ["image09999"] and extra == 0 and len(names) == 3
    np.testing.assert_allclose(angle_array(predicted, names, "p") - angle_array(truth, names, "g"),
                               np.tile(OFFSET, (3, 1)))


def test_bad_tables_name_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,yaw,pitch,roll\na,1,2,3\nb,1,x,3\n")
    with pytest.raises(EvaluationDataError, match=r"bad.csv:3: column 'pitch' is not a number"):
        load_records(bad)
    bad.write_text("name,yaw,pitch,roll\na,1,2\n")
    with pytest.raises(EvaluationDataError, match=r"bad.csv:2: the number of fields differs"):
        load_records(bad)
    (tmp_path / "p.txt").write_text("")
    with pytest.raises(EvaluationDataError, match=r"expected a \.csv or \.json table"):
        load_records(tmp_path / "p.txt")


def test_report_prints_the_json_figures_and_draws_histograms(tmp_path, capsys):
    pred, gt = _write_tables(tmp_path)
    out = tmp_path / "out"
    assert main(["aflw2000", "--pred", str(pred), "--gt", str(gt), "-o", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    printed = {line.split()[0]: float(line.split()[1]) for line in lines
               if line.split() and line.split()[0] in ("yaw", "pitch", "roll", "mean")}
    figures = json.loads((out / "aflw2000.json").read_text())
    assert printed == pytest.approx(figures["mae_deg"], abs=1e-4)
    assert figures["mae_deg"] == pytest.approx({"yaw": 2, "pitch": 4, "roll": 6, "mean": 4})
    assert figures["excluded_beyond_limit"] == 0 and figures["without_prediction"] == 1
    assert any("evaluated 3, excluded beyond limit 0, without prediction 1" in ln for ln in lines)
    png = (out / "aflw2000_pose_errors.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
