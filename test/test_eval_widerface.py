"""The WIDER FACE evaluation reproduces the official protocol on cases with known AP."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("scipy")

from scipy.io import loadmat, savemat  # noqa: E402

from mos_ros.core.types import Face, HeadPose  # noqa: E402
from mos_ros.evaluate.metrics import average_precision  # noqa: E402
from mos_ros.evaluate.report import main  # noqa: E402
from mos_ros.evaluate.widerface import evaluate_widerface, inclusive_corners  # noqa: E402
from mos_ros.evaluate.widerface_io import (
    SETTINGS, EvaluationDataError, GroundTruthImage, WiderGroundTruth, load_ground_truth,
    read_prediction_file, read_predictions, write_predictions)  # noqa: E402


# --- fixtures: the official .mat layout, written the way MATLAB stores cell arrays ----------

def _cell(items) -> np.ndarray:
    """An N x 1 MATLAB cell array (savemat writes object arrays as cells)."""
    cell = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        cell[i, 0] = item
    return cell


def write_official_ground_truth(gt_dir, events: dict) -> None:
    """Write the four official .mat files for ``events``.

    ``events`` maps an event name to a list of (image name, x y w h boxes, {setting: 1-based
    indices}); a setting missing from the dict keeps every face.
    """
    gt_dir.mkdir(parents=True, exist_ok=True)
    names = list(events)
    files = _cell([_cell([name for name, _, _ in events[e]]) for e in names])
    boxes = _cell([_cell([np.asarray(b, dtype=np.float64).reshape(-1, 4)
                          for _, b, _ in events[e]]) for e in names])
    common = {"event_list": _cell(names), "file_list": files, "face_bbx_list": boxes}
    savemat(str(gt_dir / "wider_face_val.mat"), common)
    for setting in SETTINGS:
        lists = _cell([_cell([np.asarray(keep.get(setting, range(1, len(b) + 1)),
                                         dtype=np.float64).reshape(-1, 1)
                              for _, b, keep in events[e]]) for e in names])
        savemat(str(gt_dir / f"wider_{setting}_val.mat"), {**common, "gt_list": lists})


def ground_truth(*images, keep=None) -> WiderGroundTruth:
    """In-memory ground truth: one image per (m, 4) box array, every face kept by default."""
    built = []
    for i, boxes in enumerate(images):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        masks = {s: np.ones(len(boxes), dtype=bool) for s in SETTINGS}
        masks.update((keep or {}).get(i, {}))
        built.append(GroundTruthImage("0--Event", f"img_{i}", boxes, masks))
    return WiderGroundTruth(tuple(built))


def preds(*rows) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64).reshape(-1, 5)


FACES = [[10, 10, 40, 40], [100, 10, 40, 40], [10, 100, 40, 40], [100, 100, 40, 40]]
MISS = [300, 300, 20, 20]


def ap_of(gt, predictions) -> dict:
    return evaluate_widerface(gt, predictions).ap()


# --- the protocol on constructed cases ------------------------------------------------------

def test_perfect_predictions_give_ap_one_in_every_setting():
    gt = ground_truth(FACES, FACES[:2])
    result = ap_of(gt, [preds(*[f + [0.9 - 0.1 * i] for i, f in enumerate(FACES)]),
                        preds(FACES[0] + [0.5], FACES[1] + [0.6])])
    assert result == pytest.approx({"easy": 1.0, "medium": 1.0, "hard": 1.0})


def test_half_the_faces_found_at_the_top_scores_gives_ap_one_half():
    # Two true positives rank first (precision 1 up to recall 1/2), then two misses:
    # the envelope is 1 on [0, 1/2] and 0 after, so AP = 1/2.
    gt = ground_truth(FACES)
    found = preds(FACES[0] + [0.9], FACES[1] + [0.8], MISS + [0.3], [400, 10, 20, 20, 0.2])
    assert ap_of(gt, [found])["hard"] == pytest.approx(0.5)


def test_interleaved_hits_and_misses_give_the_hand_derived_ap():
    # Ranked TP, FP, TP, FP over four faces: PR points (1/4, 1), (1/4, 1/2), (1/2, 2/3),
    # (1/2, 1/2); AP = 1/4 * 1 + 1/4 * 2/3 = 5/12.
    gt = ground_truth(FACES)
    found = preds(FACES[0] + [0.9], MISS + [0.8], FACES[1] + [0.7], [400, 10, 20, 20, 0.6])
    assert ap_of(gt, [found])["hard"] == pytest.approx(5 / 12)


def test_duplicates_of_a_found_face_are_false_positives():
    # A, duplicate of A, B over two faces: (1/2, 1), (1/2, 1/2), (1, 2/3) -> AP 1/2 + 1/3.
    gt = ground_truth(FACES[:2])
    found = preds(FACES[0] + [0.9], [11, 11, 40, 40, 0.8], FACES[1] + [0.7])
    assert ap_of(gt, [found])["hard"] == pytest.approx(0.5 + 1 / 3)


def test_faces_outside_the_setting_are_neither_hits_nor_false_positives():
    # Face B is in the hard setting only; the top prediction finds B.
    keep = {0: {"easy": np.array([True, False]), "medium": np.array([True, False])}}
    gt = ground_truth(FACES[:2], keep=keep)
    found = preds(FACES[1] + [0.9], FACES[0] + [0.5], MISS + [0.1])
    result = evaluate_widerface(gt, [found])
    # Counted as a false positive, B's prediction would halve easy's AP; it is not counted.
    assert result.ap()["easy"] == pytest.approx(1.0)
    assert result.curves["easy"].faces == 1 and result.curves["hard"].faces == 2
    # Nor does finding only B count as finding anything in easy.
    assert ap_of(gt, [preds(FACES[1] + [0.9])])["easy"] == pytest.approx(0.0)
    assert ap_of(gt, [preds(FACES[1] + [0.9])])["hard"] == pytest.approx(0.5)


def test_scores_are_normalised_over_the_whole_set_not_per_image():
    # Image 1: a hit at 0.9. Image 2: a miss at 0.6 and a hit at 0.3. Globally ranked:
    # hit, miss, hit -> (1/2, 1), (1/2, 1/2), (1, 2/3): AP 1/2 + 1/3. Per-image scaling would
    # rank image 2's miss level with image 1's hit and give a different AP.
    gt = ground_truth([FACES[0]], [FACES[1]])
    result = ap_of(gt, [preds(FACES[0] + [0.9]), preds(MISS + [0.6], FACES[1] + [0.3])])
    assert result["hard"] == pytest.approx(0.5 + 1 / 3)


def test_predictions_in_images_without_faces_are_not_counted():
    gt = ground_truth(FACES[:1], np.zeros((0, 4)))
    result = ap_of(gt, [preds(FACES[0] + [0.5]), preds(MISS + [0.9])])
    assert result["hard"] == pytest.approx(1.0)


def test_overlap_uses_the_inclusive_pixel_convention_of_the_tools():
    # x y w h = 0 0 9 9 covers 10 x 10 pixels; 0 0 4 9 covers 5 x 10: IoU exactly 0.5 (a hit),
    # whereas continuous 9 x 9 and 4 x 9 boxes would overlap only 4/9.
    assert inclusive_corners(np.array([[0, 0, 9, 9]])).tolist() == [[0, 0, 10, 10]]
    gt = ground_truth([[0, 0, 9, 9]])
    assert ap_of(gt, [preds([0, 0, 4, 9, 0.7])])["hard"] == pytest.approx(1.0)
    assert ap_of(gt, [preds([0, 0, 3, 9, 0.7])])["hard"] == pytest.approx(0.0)


def test_pr_curve_has_one_point_per_threshold_and_ends_at_the_full_set():
    gt = ground_truth(FACES)
    found = preds(FACES[0] + [0.9], MISS + [0.8], FACES[1] + [0.7])
    curve = evaluate_widerface(gt, [found]).curves["hard"]
    assert len(curve.thresholds) == len(curve.precision) == 1000
    assert curve.thresholds[0] == pytest.approx(0.999) and curve.thresholds[-1] == 0.0
    assert curve.recall[-1] == pytest.approx(0.5) and curve.precision[-1] == pytest.approx(2 / 3)
    assert np.all(np.diff(curve.recall) >= 0)


def test_predictions_must_align_with_the_images():
    with pytest.raises(EvaluationDataError, match="2 ground-truth images"):
        evaluate_widerface(ground_truth(FACES, FACES), [preds(FACES[0] + [1.0])])


# --- the official file formats --------------------------------------------------------------

EVENTS = {
    "0--Parade": [("0_Parade_1", FACES, {"easy": [1, 2], "medium": [1, 2, 3]}),
                  ("0_Parade_2", FACES[:1], {"easy": []})],
    "1--Handshaking": [("1_Handshaking_7", FACES[2:], {})],
}


def test_written_mat_files_have_the_official_nesting(tmp_path):
    write_official_ground_truth(tmp_path, EVENTS)
    mat = loadmat(str(tmp_path / "wider_face_val.mat"))
    # The official files load as: E x 1 object arrays; a name is a 1-element str array; each
    # event's images an N x 1 object array of those; boxes M x 4 doubles; gt_list K x 1.
    assert mat["event_list"].shape == (2, 1) and mat["event_list"].dtype == object
    assert mat["event_list"][0][0][0] == "0--Parade"
    assert mat["file_list"][0][0].shape == (2, 1) and mat["file_list"][0][0].dtype == object
    assert mat["file_list"][0][0][1][0][0] == "0_Parade_2"
    assert mat["face_bbx_list"][0][0][0][0].shape == (4, 4)
    hard = loadmat(str(tmp_path / "wider_hard_val.mat"))
    assert hard["gt_list"][0][0][0][0].shape == (4, 1)
    assert hard["gt_list"][0][0][0][0][:, 0].tolist() == [1, 2, 3, 4]


def test_ground_truth_loads_with_setting_masks(tmp_path):
    write_official_ground_truth(tmp_path, EVENTS)
    gt = load_ground_truth(tmp_path)
    assert [(i.event, i.name) for i in gt.images] == [
        ("0--Parade", "0_Parade_1"), ("0--Parade", "0_Parade_2"),
        ("1--Handshaking", "1_Handshaking_7")]
    assert gt.images[0].keep["medium"].tolist() == [True, True, True, False]
    assert gt.face_counts() == {"easy": 4, "medium": 6, "hard": 7}
    np.testing.assert_array_equal(gt.images[2].boxes, FACES[2:])


def test_bad_ground_truth_names_the_file_and_image(tmp_path):
    write_official_ground_truth(tmp_path, {"0--Parade": [("a", FACES[:2], {"hard": [1, 3]})]})
    with pytest.raises(EvaluationDataError, match=r"wider_hard_val.mat: gt_list of 0--Parade/a"):
        load_ground_truth(tmp_path)
    with pytest.raises(EvaluationDataError, match="no such ground-truth file"):
        load_ground_truth(tmp_path / "elsewhere")


def _face(box, score) -> Face:
    return Face(box=tuple(float(v) for v in box), score=score,
                landmarks=np.zeros((5, 2), np.float32), pose=HeadPose(0.0, 0.0, 0.0))


def test_written_predictions_read_back_best_first(tmp_path):
    faces = [_face((10, 20, 50, 70), 0.3), _face((5, 5, 15, 25), 0.9)]
    path = write_predictions(tmp_path, "0--Parade", "0_Parade_1.jpg", faces)
    assert path == tmp_path / "0--Parade" / "0_Parade_1.txt"
    lines = path.read_text().splitlines()
    assert lines[:2] == ["0_Parade_1", "2"]
    np.testing.assert_allclose(read_prediction_file(path), [[5, 5, 10, 20, 0.9],
                                                            [10, 20, 40, 50, 0.3]])


@pytest.mark.parametrize("text, message", [
    ("img\n2\n1 2 3 4 0.5\n", r":2: the count line says 2 face\(s\) but 1"),
    ("img\nx\n", r":2: expected the number of faces"),
    ("img\n1\n1 2 3 0.5\n", r":3: expected 'x y w h score'"),
    ("img\n2\n1 2 3 4 0.5\n1 2 3 four 0.5\n", r":4: not numbers"),
    ("img\n", r": expected an image-name line and a count line"),
])
def test_malformed_prediction_files_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(EvaluationDataError, match=str(path).replace(".", r"\.") + message):
        read_prediction_file(path)


def test_missing_prediction_files_count_as_images_without_detections(tmp_path):
    write_official_ground_truth(tmp_path / "gt", EVENTS)
    gt = load_ground_truth(tmp_path / "gt")
    write_predictions(tmp_path / "pred", "0--Parade", "0_Parade_1",
                      [_face((x, y, x + w, y + h), 0.9) for x, y, w, h in FACES])
    predictions = read_predictions(tmp_path / "pred", gt)
    assert predictions.missing == ("0--Parade/0_Parade_2", "1--Handshaking/1_Handshaking_7")
    result = evaluate_widerface(gt, predictions)
    assert result.ap()["hard"] == pytest.approx(4 / 7)


# --- the report -----------------------------------------------------------------------------

def test_report_prints_the_table_the_json_holds_and_draws_the_pr_plot(tmp_path, capsys):
    write_official_ground_truth(tmp_path / "gt", EVENTS)
    for event, images in EVENTS.items():
        for name, boxes, _ in images:
            # Every face found, plus one miss per image ranked in the middle.
            faces = [_face((x, y, x + w, y + h), 0.9 - 0.1 * i)
                     for i, (x, y, w, h) in enumerate(boxes)] + [_face((300, 300, 320, 320), 0.65)]
            write_predictions(tmp_path / "pred", event, name, faces)
    out = tmp_path / "report"
    code = main(["widerface", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"),
                 "-o", str(out), "--no-progress"])
    assert code == 0
    printed = {line.split()[0]: float(line.split()[1]) for line in capsys.readouterr().out
               .splitlines() if line.split() and line.split()[0] in SETTINGS}
    figures = json.loads((out / "widerface.json").read_text())
    assert printed == pytest.approx({k: round(100 * v, 2) for k, v in figures["ap"].items()})
    assert 0.5 < figures["ap"]["hard"] < 1.0 and figures["images"] == 3
    png = (out / "widerface_pr.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_report_turns_bad_input_into_one_error_line(tmp_path, capsys):
    code = main(["widerface", "--gt", str(tmp_path), "--pred", str(tmp_path), "-o",
                 str(tmp_path / "o")])
    assert code == 2
    assert "wider_face_val.mat: no such ground-truth file" in capsys.readouterr().err


# --- the vectorised evaluator agrees with a literal, loop-by-loop reading of the protocol ----

def _reference_ap(gt: WiderGroundTruth, predictions: list, setting: str) -> float:
    """The protocol written as plain loops: one prediction, one threshold at a time."""
    scores = np.concatenate([p[:, 4] for p in predictions if len(p)])
    low, high = scores.min(), scores.max()
    thresholds = [1 - (t + 1) / 1000 for t in range(1000)]
    proposed, found, faces = np.zeros(1000), np.zeros(1000), 0
    for image, pred in zip(gt.images, predictions):
        keep = image.keep[setting]
        faces += int(keep.sum())
        if len(image.boxes) == 0 or len(pred) == 0:
            continue
        pred = pred[np.argsort(-pred[:, 4], kind="stable")].copy()
        pred[:, 4] = (pred[:, 4] - low) / (high - low)
        recalled = [0] * len(image.boxes)
        is_proposal, recall_so_far = [], []
        for x, y, w, h, _ in pred:
            best, best_iou = 0, -1.0
            for g, (gx, gy, gw, gh) in enumerate(image.boxes):
                iw = min(x + w, gx + gw) - max(x, gx) + 1
                ih = min(y + h, gy + gh) - max(y, gy) + 1
                inter = iw * ih if iw > 0 and ih > 0 else 0.0
                iou = inter / ((w + 1) * (h + 1) + (gw + 1) * (gh + 1) - inter)
                if iou > best_iou:
                    best, best_iou = g, iou
            proposal = True
            if best_iou >= 0.5:
                if not keep[best]:
                    recalled[best], proposal = -1, False
                elif recalled[best] == 0:
                    recalled[best] = 1
            is_proposal.append(proposal)
            recall_so_far.append(recalled.count(1))
        for t, threshold in enumerate(thresholds):
            above = [i for i, s in enumerate(pred[:, 4]) if s >= threshold]
            if above:
                proposed[t] += sum(is_proposal[:above[-1] + 1])
                found[t] += recall_so_far[above[-1]]
    precision = [f / p if p else 0.0 for f, p in zip(found, proposed)]
    return average_precision(found / faces, np.array(precision))


def test_vectorised_evaluation_matches_the_loop_reference_on_random_sets():
    rng = np.random.default_rng(7)
    images, predictions = [], []
    for i in range(25):
        count = int(rng.integers(0, 6))
        boxes = np.column_stack([rng.uniform(0, 300, (count, 2)), rng.uniform(8, 80, (count, 2))])
        keep = {"easy": rng.random(count) < 0.4, "medium": rng.random(count) < 0.7,
                "hard": rng.random(count) < 0.95}
        images.append(GroundTruthImage("e", f"i{i}", boxes, keep))
        near = boxes[rng.random(count) < 0.8]
        near = np.concatenate([near, near[rng.random(len(near)) < 0.3]])  # duplicates
        near = near + rng.normal(0, 4, near.shape)
        far = np.column_stack([rng.uniform(0, 300, (3, 2)), rng.uniform(8, 80, (3, 2))])
        rows = np.concatenate([near, far])
        predictions.append(np.column_stack([rows, rng.random(len(rows))]))
    gt = WiderGroundTruth(tuple(images))
    result = evaluate_widerface(gt, predictions)
    for setting in SETTINGS:
        assert result.ap()[setting] == pytest.approx(_reference_ap(gt, predictions, setting),
                                                     abs=1e-12)
