"""Teacher detectors, their consensus and the FaceMesh pose fit (mos_ros.data.teachers).

Pose signs are checked twice: on renders of the canonical mesh at known poses, and on a real
photo mirrored (yaw and roll flip, pitch stays) and rotated in-plane (roll grows clockwise).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mos_ros.core.align import fit_similarity
from mos_ros.core.nms import iou_matrix
from mos_ros.core.pose import euler_to_matrix, matrix_to_euler
from mos_ros.data import mesh_fit as M, teachers as T
from mos_ros.scenes import procedural

pytest.importorskip("yuface", reason="the yuface teacher is not installed")
pytest.importorskip("mediapipe", reason="the blazeface teacher and FaceMesh need mediapipe")
pytest.importorskip("onnxruntime", reason="the centerface teacher needs onnxruntime")

#: Where the development photos live when mos_ros.data.sources does not provide them.
_FALLBACK_PHOTOS = {
    "obama.jpg": Path("/tmp/src/face_recognition-1.3.0/tests/test_images/obama.jpg"),
    "t1.jpg": Path("/tmp/src/insightface-2.1/insightface/data/images/t1.jpg"),
}
TEACHER_NAMES = ("yuface", "centerface", "blazeface")
RENDER_POSES = [(0.0, 0.0, 0.0), (30.0, 0.0, 0.0), (-30.0, 0.0, 0.0), (0.0, 15.0, 0.0),
                (0.0, -15.0, 0.0), (0.0, 0.0, 20.0), (0.0, 0.0, -20.0)]


def _photo(name: str) -> np.ndarray:
    """A development photo by file name, from mos_ros.data.sources if it has it."""
    candidates = []
    try:
        from mos_ros.data.sources import photos
        candidates = [Path(p) for role in ("train", "heldout") for p in photos(role)]
    except (ImportError, AttributeError):
        pass
    found = [p for p in candidates if p.name == name and p.is_file()]
    path = found[0] if found else _FALLBACK_PHOTOS[name]
    if not path.is_file():
        pytest.skip(f"development photo {name} is not available (looked for {path})")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"{path} is not a readable image"
    return image


@pytest.fixture(scope="module")
def teachers() -> dict[str, T.Teacher]:
    return {name: T.open_teacher(name) for name in TEACHER_NAMES}


@pytest.fixture(scope="module")
def obama() -> np.ndarray:
    return _photo("obama.jpg")


@pytest.fixture(scope="module")
def obama_consensus(obama, teachers) -> list[T.ConsensusFace]:
    return T.consensus(obama, list(teachers.values()))


@pytest.fixture(scope="module")
def obama_fit(obama_consensus, obama) -> M.MeshFit:
    assert len(obama_consensus) == 1
    fit = M.fit_face_mesh(obama, obama_consensus[0].box)
    assert fit is not None, "FaceMesh found no face on obama.jpg"
    return fit


def _render_face(yaw: float, pitch: float, roll: float, face_px: float = 220.0,
                 size: int = 480) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic face at a known pose, centred on a plain background, and its box."""
    geometry = procedural.pose_face(yaw, pitch, roll, 8.0)
    light = np.float32([0.3, -0.4, -1.0])
    look = procedural.Look(skin=procedural.SKIN_TONES[1].copy(),
                           hair=procedural.HAIR_TONES[1].copy(), hair_style=1,
                           light=light / np.linalg.norm(light), ambient=0.5,
                           tint=np.ones(3, np.float32), has_head=True)
    albedo = procedural.random_albedo(np.random.default_rng(0), look)
    scene = np.full((size, size, 3), (150, 170, 160), np.uint8)
    scale = face_px / geometry.box_side
    centre = (geometry.box[:2] + geometry.box[2:]) / 2
    offset = (np.float32([size / 2, size / 2]) - centre * scale).astype(np.float32)
    procedural.draw_face_patch(scene, geometry, look, albedo, scale, offset)
    return scene, geometry.box * scale + np.tile(offset, 2)


# --------------------------------------------------------------------------------------------
# The fit itself, without MediaPipe


def test_similarity_fit_recovers_a_known_scale_rotation_and_translation():
    rng = np.random.default_rng(1)
    source = rng.normal(size=(50, 3))
    rotation = euler_to_matrix(25.0, -10.0, 40.0)
    target = 3.5 * source @ rotation.T + [10.0, -4.0, 2.0]
    scale, fitted, translation = fit_similarity(source, target)
    assert scale == pytest.approx(3.5)
    np.testing.assert_allclose(fitted, rotation, atol=1e-9)
    np.testing.assert_allclose(translation, [10.0, -4.0, 2.0], atol=1e-9)


def test_mesh_fit_of_posed_canonical_vertices_gives_their_pose_box_and_landmarks():
    from mos_ros.scenes.face_mesh import load_face_mesh
    mesh = load_face_mesh()
    points = 12.0 * mesh.vertices @ euler_to_matrix(30.0, -12.0, 18.0).T + [320.0, 240.0, 900.0]
    fit = M.mesh_fit_from_points(points)
    assert fit.pose == pytest.approx((30.0, -12.0, 18.0), abs=1e-3)
    assert fit.scale == pytest.approx(12.0, rel=1e-5)
    assert fit.residual < 1e-5
    np.testing.assert_allclose(fit.box, [*points[:, :2].min(0), *points[:, :2].max(0)],
                               rtol=1e-6)
    np.testing.assert_allclose(fit.landmarks, 12.0 * mesh.landmarks @ euler_to_matrix(
        30.0, -12.0, 18.0)[:2].T + [320.0, 240.0], atol=1e-3)


def test_depth_mirrored_points_fit_badly():
    from mos_ros.scenes.face_mesh import load_face_mesh
    points = 10.0 * load_face_mesh().vertices @ euler_to_matrix(20.0, 5.0, 0.0).T
    points[:, 2] *= -1
    assert M.mesh_fit_from_points(points).residual > T.MAX_MESH_RESIDUAL


def test_centerface_decoding_of_one_peak():
    heatmap = np.zeros((1, 1, 8, 8), np.float32)
    heatmap[0, 0, 3, 5] = 0.9
    scale = np.zeros((1, 2, 8, 8), np.float32)
    scale[0, :, 3, 5] = np.log([10.0, 6.0])          # height 40 px, width 24 px
    offset = np.zeros((1, 2, 8, 8), np.float32)
    offset[0, :, 3, 5] = [0.25, -0.5]                # dy, dx in cells
    marks = np.zeros((1, 10, 8, 8), np.float32)
    marks[0, :, 3, 5] = [0.25, 0.5] * 5              # (y, x) in box units
    boxes, scores, points = T.decode_centerface(heatmap, scale, offset, marks, 0.5)
    # centre x = (5 - 0.5 + 0.5) * 4 = 20, centre y = (3 + 0.25 + 0.5) * 4 = 15
    np.testing.assert_allclose(boxes, [[8.0, -5.0, 32.0, 35.0]], atol=1e-5)
    assert scores.tolist() == pytest.approx([0.9])
    np.testing.assert_allclose(points[0], [[20.0, 5.0]] * 5, atol=1e-5)


def test_box_convention_measures_back_what_it_converts():
    convention = T.BoxConvention(dx=0.02, dy=0.06, sx=0.9, sy=0.85)
    boxes = np.array([[10, 20, 110, 140], [300, 50, 360, 120]], np.float64)
    measured = T.BoxConvention.measure(boxes, convention.to_mesh(boxes))
    assert (measured.dx, measured.dy, measured.sx, measured.sy) == pytest.approx(
        (0.02, 0.06, 0.9, 0.85))


# --------------------------------------------------------------------------------------------
# Pose signs and accuracy on renders and on a real photo


@pytest.mark.parametrize("pose", RENDER_POSES, ids=lambda p: "y%+.0f_p%+.0f_r%+.0f" % p)
def test_face_mesh_fit_recovers_the_pose_of_a_render(pose):
    image, box = _render_face(*pose)
    fit = M.fit_face_mesh(image, box)
    assert fit is not None, f"FaceMesh found no face in the render at {pose}"
    # Measured errors: at most 5 degrees (pitch reads ~3.5 degrees low on these renders).
    assert fit.pose == pytest.approx(pose, abs=6.0)
    assert fit.residual < T.MAX_MESH_RESIDUAL
    assert iou_matrix(fit.box, box)[0, 0] > 0.8


def test_mirroring_a_photo_flips_yaw_and_roll_and_keeps_pitch(obama, obama_fit):
    mirrored = np.ascontiguousarray(obama[:, ::-1])
    width = obama.shape[1]
    box = obama_fit.box
    fit = M.fit_face_mesh(mirrored, [width - box[2], box[1], width - box[0], box[3]])
    assert fit is not None
    assert (fit.yaw, fit.pitch, fit.roll) == pytest.approx(
        (-obama_fit.yaw, obama_fit.pitch, -obama_fit.roll), abs=3.0)
    # The mirrored image-left eye is the original image-right eye, moved across the image.
    assert fit.landmarks[0, 0] == pytest.approx(width - obama_fit.landmarks[1, 0], abs=3.0)


def test_rotating_a_photo_clockwise_adds_positive_roll(obama, obama_fit):
    centre = tuple(float(v) for v in (obama_fit.box[:2] + obama_fit.box[2:]) / 2)
    # cv2 angles are counter-clockwise; -20 turns the image 20 degrees clockwise.
    matrix = cv2.getRotationMatrix2D(centre, -20.0, 1.0)
    rotated = cv2.warpAffine(obama, matrix, obama.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
    moved = obama_fit.points[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    fit = M.fit_face_mesh(rotated, np.concatenate([moved.min(0), moved.max(0)]))
    assert fit is not None
    assert fit.roll - obama_fit.roll == pytest.approx(20.0, abs=3.0)
    c, s = np.cos(np.radians(20.0)), np.sin(np.radians(20.0))
    about_camera_z = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    expected = matrix_to_euler(about_camera_z @ obama_fit.rotation)
    assert fit.pose == pytest.approx((expected.yaw, expected.pitch, expected.roll), abs=3.0)


# --------------------------------------------------------------------------------------------
# Teachers and consensus on real photos


def _landmarks_in_retinaface_order(points: np.ndarray, frontal: bool = True) -> bool:
    """Eyes left to right above the mouth corners left to right; on a frontal face the nose
    lies between the eyes and below them (a face turned 45 degrees moves it past an eye)."""
    left_eye, right_eye, nose, left_mouth, right_mouth = points
    ordered = bool(left_eye[0] < right_eye[0] and left_mouth[0] < right_mouth[0]
                   and max(left_eye[1], right_eye[1]) < min(left_mouth[1], right_mouth[1]))
    nose_between = bool(left_eye[0] < nose[0] < right_eye[0]
                        and max(left_eye[1], right_eye[1]) < nose[1])
    return ordered and (nose_between or not frontal)


def test_consensus_on_a_portrait_is_one_face_with_all_votes_pose_and_ordered_landmarks(
        obama_consensus):
    assert len(obama_consensus) == 1
    face = obama_consensus[0]
    assert face.votes == 3 and face.teachers == tuple(sorted(TEACHER_NAMES))
    assert face.pose is not None and _landmarks_in_retinaface_order(face.landmarks)
    assert 0.5 <= face.score <= 1.0


@pytest.mark.parametrize("name", TEACHER_NAMES)
def test_each_teacher_finds_the_portrait_face_with_ordered_landmarks(name, teachers, obama,
                                                                     obama_consensus):
    faces = teachers[name].detect(obama)
    assert len(faces) == 1, f"{name} found {len(faces)} faces on obama.jpg"
    face = faces[0]
    assert face.source == name and face.box.dtype == np.float32 and face.box.shape == (4,)
    assert iou_matrix(T.to_mesh_box(face), obama_consensus[0].box)[0, 0] >= 0.5
    assert iou_matrix(face.box, obama_consensus[0].box)[0, 0] >= 0.5
    if name == "blazeface":
        assert face.landmarks is None
    else:
        assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
        assert _landmarks_in_retinaface_order(face.landmarks)


def test_consensus_finds_the_six_faces_of_the_group_photo(teachers):
    image = _photo("t1.jpg")
    faces = T.consensus(image, list(teachers.values()))
    assert len(faces) == 6
    boxes = np.stack([face.box for face in faces])
    overlap = iou_matrix(boxes, boxes) - np.eye(len(faces))
    assert overlap.max() < 0.1, "two consensus faces cover the same person"
    for face in faces:
        assert face.votes >= 2 and face.pose is not None
        assert 60 < face.box[3] - face.box[1] < 200  # measured 101..129 px
        assert _landmarks_in_retinaface_order(face.landmarks, frontal=abs(face.pose[0]) < 30)


def test_min_votes_above_the_number_of_teachers_finds_nothing(teachers, obama):
    assert T.consensus(obama, [teachers["yuface"]], min_votes=2) == []


# --------------------------------------------------------------------------------------------
# Bad input


BAD_IMAGES = [
    (np.zeros((64, 64, 3), np.float32), "uint8"),
    (np.zeros((64, 64), np.uint8), "(H, W, 3)"),
    (np.zeros((64, 64, 4), np.uint8), "(H, W, 3)"),
]


@pytest.mark.parametrize("image, problem", BAD_IMAGES, ids=["float", "2-D", "BGRA"])
def test_bad_images_are_refused_naming_the_problem(image, problem, teachers):
    for teacher in teachers.values():
        with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
            teacher.detect(image)
    with pytest.raises(ValueError, match="uint8|H, W, 3"):
        M.fit_face_mesh(image, [0, 0, 32, 32])
    with pytest.raises(ValueError, match="uint8|H, W, 3"):
        T.consensus(image, list(teachers.values()))


def test_unknown_teacher_lists_the_known_ones():
    with pytest.raises(ValueError,
                       match="unknown teacher 'retina'.*blazeface, centerface, yuface"):
        T.open_teacher("retina")


def test_unknown_teacher_option_lists_the_accepted_ones():
    with pytest.raises(ValueError, match="threshold.*accepts: score_threshold"):
        T.open_teacher("yuface", threshold=0.3)


def test_bad_box_is_refused(obama):
    with pytest.raises(ValueError, match="no area"):
        M.fit_face_mesh(obama, [10, 10, 10, 50])
    with pytest.raises(ValueError, match="outside"):
        M.fit_face_mesh(obama, [5000, 5000, 5100, 5100])


def test_every_registered_teacher_satisfies_the_protocol(teachers):
    assert sorted(T.TEACHERS) == sorted(TEACHER_NAMES)
    for name, teacher in teachers.items():
        assert isinstance(teacher, T.Teacher) and teacher.name == name
