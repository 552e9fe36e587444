"""Label-free consistency checks (mos_ros.evaluate.consistency): the maths on constructed faces,
the whole check on a drawn face read by an exact and by a rigid reader, and the acceptance
limits of head pose on real photos for the default int8 model."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("scipy")


from mos_ros.core.labels import LabelledFace  # noqa: E402
from mos_ros.core.pose import in_plane_matrix, rotate_in_plane  # noqa: E402
from mos_ros.evaluate import consistency as C  # noqa: E402
from mos_ros.evaluate.real_photos import HeldOutImage  # noqa: E402
from mos_ros.evaluate.report import build_parser  # noqa: E402

POINTS = np.array([[40, 40], [60, 40], [50, 50], [42, 60], [58, 60.0]])
BOX = np.array([30, 25, 70, 75.0])


def _face(pose, landmarks=POINTS, box=BOX, score=0.9) -> LabelledFace:
    return LabelledFace(np.asarray(box, np.float64), np.asarray(landmarks, np.float64),
                        tuple(float(v) for v in pose), score)


def test_angles_wrap_and_the_eye_line_turns_clockwise_like_roll():
    assert C.wrap_deg([179.0, 181.0, -181.0, 360.0]) == pytest.approx([179, -179, 179, 0])
    assert C.eye_line_deg(POINTS) == pytest.approx(0.0)
    tilted = POINTS.copy()
    tilted[1] = [60, 50]          # right eye lower on screen: clockwise, like roll > 0
    assert C.eye_line_deg(tilted) == pytest.approx(np.degrees(np.arctan2(10, 20)))


@pytest.mark.parametrize("theta", [-45.0, 15.0, 30.0])
def test_a_reading_that_turns_with_the_picture_scores_zero(theta):
    upright = _face((20.0, -10.0, 5.0))
    moved = rotate_in_plane(theta, (50, 50), BOX[None], POINTS[None], [upright.pose])
    turned = _face(moved.poses[0], moved.landmarks[0], moved.boxes[0])
    errors = C.rotation_errors(upright, turned, theta)
    for key in ("roll", "eye_line", "yaw", "pitch"):
        assert errors[key] == pytest.approx(0.0, abs=1e-9)
    # A turned face's yaw, pitch and roll do not simply stay or move by -theta; the plain
    # changes show it.
    assert errors["yaw_change"] > 0.5 and errors["pitch_change"] > 0.5
    assert errors["roll_change"] > 0.1


@pytest.mark.parametrize("theta", [-45.0, 15.0, 30.0])
def test_a_reading_that_ignores_the_turn_scores_like_the_constant(theta):
    upright = _face((0.0, -8.0, 2.0))
    rigid = _face(upright.pose, POINTS + 7.0)        # same answer, template moved along
    errors = C.rotation_errors(upright, rigid, theta)
    assert errors["roll_change"] == pytest.approx(abs(theta))
    assert errors["eye_line"] == pytest.approx(abs(theta))
    assert errors["roll"] == pytest.approx(abs(theta), abs=0.5)   # nearly frontal
    constant = C.constant_rotation_errors(upright.pose, theta)
    for key in ("roll", "eye_line", "yaw", "pitch"):
        assert errors[key] == pytest.approx(constant[key], abs=1e-9)


def test_a_roll_that_wraps_around_is_a_small_error():
    upright = _face((0.0, 0.0, 170.0))
    turned = _face((0.0, 0.0, -165.0))                # 170 - (-25) = 195 = -165
    assert C.rotation_errors(upright, turned, -25.0)["roll"] == pytest.approx(0.0, abs=1e-9)


def test_mirror_errors_by_hand():
    errors = C.mirror_errors(_face((20.0, -6.0, 4.0)), _face((-17.0, -5.0, -5.0)))
    assert errors == pytest.approx({"yaw": 3.0, "roll": 1.0, "pitch": 1.0})
    assert C.constant_mirror_errors((7.0, -10.0, -3.0)) == {"yaw": 14.0, "roll": 6.0,
                                                            "pitch": 0.0}


def test_follow_finds_each_face_on_its_expected_box_or_loses_it():
    references = [_face((0, 0, 0), box=[0, 0, 40, 40]), _face((0, 0, 0), box=[100, 0, 140, 40])]
    expected = np.array([[10, 10, 50, 50], [110, 0, 150, 40.0]])
    found = [_face((1, 1, 1), box=[12, 10, 52, 50], score=0.6),
             _face((2, 2, 2), box=[300, 0, 340, 40], score=0.9)]
    followed = C.follow(references, expected, found)
    assert followed[0] is found[0] and followed[1] is None


# --- the whole check on a drawn face ------------------------------------------------------

COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255.0]])


def _drawn_face() -> HeldOutImage:
    image = np.full((160, 200, 3), 128, np.uint8)
    landmarks = POINTS * 1.5 + [30, 10]           # a 60 px face box: also compared to truth
    for (x, y), colour in zip(landmarks, COLOURS):
        cv2.circle(image, (int(x), int(y)), 4, tuple(int(c) for c in colour), -1)
    box = np.concatenate([landmarks.min(axis=0) - 15, landmarks.max(axis=0) + 15])
    return HeldOutImage("drawn", image, (LabelledFace(box, landmarks, (0.0, 0.0, 0.0)),))


def _dots(image: np.ndarray) -> np.ndarray:
    distance = np.linalg.norm(image[None].astype(np.float64) - COLOURS[:, None, None], axis=3)
    return np.array([np.argwhere(d < 60)[:, ::-1].mean(axis=0) for d in distance])


def exact_reader(image: np.ndarray) -> list[LabelledFace]:
    """Reads the five dots, image-left eye and mouth corner first as the network's order is
    (so a mirror swaps them); roll is the eye line, the box spans the dots."""
    points = _dots(image)
    if points[1, 0] < points[0, 0]:
        points = points[[1, 0, 2, 4, 3]]
    box = np.concatenate([points.min(axis=0) - 15, points.max(axis=0) + 15])
    return [_face((0.0, 0.0, C.eye_line_deg(points)), points, box)]


def rigid_reader(image: np.ndarray) -> list[LabelledFace]:
    """Finds the face where the dots are but answers upright: template and roll 0."""
    centre = _dots(image).mean(axis=0)
    template = POINTS - POINTS.mean(axis=0) + centre
    box = np.concatenate([centre - 25, centre + 25])
    return [_face((0.0, 0.0, 0.0), template, box)]


def test_the_exact_reader_is_consistent_and_the_rigid_one_scores_the_turn():
    images = [_drawn_face()]
    exact = C.evaluate_consistency(images=images, detect=exact_reader)
    rigid = C.evaluate_consistency(images=images, detect=rigid_reader)
    for size, row in exact.rotation_summary().items():
        assert row["kept"] == 1.0
        assert row["median"]["roll"] < 1.0 and row["median"]["eye_line"] < 1.0
        assert rigid.rotation_summary()[size]["median"]["roll"] == pytest.approx(size)
        assert rigid.rotation_summary()[size]["median"]["eye_line"] == pytest.approx(size, abs=1)
    mirror = exact.mirror_summary()
    assert mirror["kept"] == 1.0 and mirror["median"]["roll"] < 1.0
    mesh = exact.facemesh_summary()
    assert mesh["faces"] == 1 and mesh["mae"]["roll"] < 1.0
    assert abs(mesh["bias"]["roll"]) < 1.0 and len(mesh["pairs"]) == 1
    upright = rigid.facemesh_summary()
    (pair,) = upright["pairs"]
    assert pair["predicted"]["roll"] == 0.0
    assert upright["bias"]["roll"] == pytest.approx(-pair["facemesh"]["roll"])
    assert "±45°" in "\n".join(exact.markdown())


def test_a_photo_at_several_scales_counts_its_faces_once_as_distinct():
    drawn = _drawn_face()
    images = [HeldOutImage(name, drawn.image, drawn.faces)
              for name in ("drawn@1", "drawn@0.5", "other@1")]
    report = C.evaluate_consistency(images=images, detect=exact_reader, rotations=(15.0,))
    assert C.face_id("drawn@0.5", 3) == "drawn#3"
    assert report.reference_summary() == {"faces": 3, "min_px": C.REFERENCE_MIN_PX,
                                          "distinct_faces": 2}
    mesh = report.facemesh_summary()
    assert (mesh["faces"], mesh["distinct_faces"]) == (3, 2)
    figures = report.as_dict()
    assert figures["references"]["distinct_faces"] == 2
    assert figures["facemesh"]["distinct_faces"] == 2 and figures["facemesh"]["faces"] == 3
    text = "\n".join(report.markdown())
    assert "3 reference faces ≥ 40 px, 2 distinct" in text and "(n=3, 2 distinct)" in text


def test_turned_pictures_keep_the_face_and_the_map_is_the_rotation():
    image = _drawn_face().image
    turned, matrix = C.rotate_picture(image, 30.0)
    linear = in_plane_matrix(30.0, (0, 0))[:, :2]
    assert matrix[:, :2] == pytest.approx(linear)
    assert _dots(turned) == pytest.approx(_dots(image) @ linear.T + matrix[:, 2], abs=0.5)


def test_cli_consistency_is_registered():
    args = build_parser().parse_args(["consistency", "--rotations", "10", "-20"])
    assert args.rotations == [10.0, -20.0]


# --- acceptance on real photos (the default int8 model) -----------------------------------


@pytest.fixture(scope="module")
def shipped() -> C.ConsistencyReport:
    for module in ("yuface", "mediapipe", "onnxruntime"):
        pytest.importorskip(module, reason="the teachers that label the held-out photos")
    from mos_ros.data.sources import SourceError
    try:
        return C.evaluate_consistency()
    except SourceError as exc:
        pytest.skip(f"held-out photos not available: {exc}")


NOT_YET = ("the default model, trained by the CPU pose recipe (config/data_engine_pose_cpu.yaml), "
           "reads roll, pitch and turned landmarks but not yet this closely "
           "(models/README.md, 'Head pose on real photos')")


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=NOT_YET)
def test_roll_and_eye_line_follow_a_turned_photo(shipped):
    rows = shipped.rotation_summary()
    for size, limit in ((15, 3.0), (30, 3.0), (45, 5.0)):
        assert rows[size]["median"]["roll"] <= limit
        assert rows[size]["median"]["eye_line"] <= limit


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=NOT_YET)
def test_yaw_and_pitch_stay_with_the_head_when_the_photo_turns(shipped):
    for row in shipped.rotation_summary().values():
        assert row["median"]["yaw"] <= 3.0 and row["median"]["pitch"] <= 3.0


def test_turned_faces_are_still_found(shipped):
    rows = shipped.rotation_summary()
    assert rows[30]["kept"] >= 0.95 and rows[45]["kept"] >= 0.90


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=NOT_YET)
def test_mirrored_faces_mirror_yaw_and_roll(shipped):
    mirror = shipped.mirror_summary()["median"]
    assert mirror["yaw"] <= 2.0 and mirror["roll"] <= 2.0


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="the default model's pitch moves with the head now, and by 2.7 deg "
                          "(median) between a face and its mirror image; the model before it "
                          "met this only because its pitch hardly moved at all")
def test_mirrored_faces_keep_their_pitch(shipped):
    assert shipped.mirror_summary()["median"]["pitch"] <= 1.5


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=NOT_YET)
def test_pose_agrees_with_facemesh_better_than_a_constant(shipped):
    mesh = shipped.facemesh_summary()
    for angle, limit in (("yaw", 4.5), ("pitch", 6.0), ("roll", 4.5)):
        assert mesh["mae"][angle] <= limit
        assert mesh["mae"][angle] <= mesh["constant_mae"][angle] / 2
