"""``mos eval head3d``: the rendered set's truth is consistent, and the real detector's faces
are placed in 3-D better than the baselines."""
import numpy as np
import pytest

pytest.importorskip("scipy")


from mos_ros.core.head3d import fit_translation  # noqa: E402
from mos_ros.core.image_io import read_image  # noqa: E402
from mos_ros.scenes.reface import face_sources  # noqa: E402
from mos_ros.data.sources import photos  # noqa: E402
from mos_ros.data.mesh_fit import fit_face_mesh  # noqa: E402
from mos_ros.data.teachers import open_teacher  # noqa: E402
from mos_ros.detector import FaceDetector  # noqa: E402
from mos_ros.evaluate.head3d import (CONSTANT, FLOOR, Head3DSetConfig, evaluate_head3d,
                                     rendered_set, table)  # noqa: E402
from mos_ros.resources import default_model_path  # noqa: E402

OURS = "landmarks + MOS pose"


@pytest.fixture(scope="module")
def sources_and_backgrounds():
    """One held-out photo face (and its mirror) lifted to 3-D, and two background photos."""
    (path,) = [p for p in photos("heldout") if p.name == "grace_hopper.jpg"]
    image = read_image(path)
    (face,) = open_teacher("yuface").detect(image)
    fit = fit_face_mesh(image, face.box)
    assert fit is not None
    backgrounds = [read_image(p) for p in photos("background")[:2]]
    return [face_sources(image, fit.points, "grace_hopper")], backgrounds


def test_rendered_faces_lie_in_the_image_at_the_size_their_depth_gives(sources_and_backgrounds):
    config = Head3DSetConfig(distances_m=(0.5, 2.0), faces_per_distance=3, size_spread=0.0)
    heads = list(rendered_set(config, *sources_and_backgrounds))
    assert [h.distance_m for h in heads] == [0.5] * 3 + [2.0] * 3
    for head in heads:
        assert head.image.shape == (480, 640, 3) and head.position[2] == head.distance_m
        x1, y1, x2, y2 = head.box
        assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480
        eyes = np.linalg.norm(head.landmarks[0] - head.landmarks[1])
        # About 63 mm apart (people differ), fewer pixels when the head is turned.
        assert 5 < eyes <= 1.2 * config.camera.fx * 0.063 / head.distance_m
        depth = fit_translation(head.landmarks, head.rotation, config.camera)[0][2]
        assert depth == pytest.approx(head.distance_m, rel=0.1)


def test_the_detector_places_faces_nearer_the_truth_than_the_baselines(sources_and_backgrounds):
    config = Head3DSetConfig(distances_m=(1.0, 2.0), faces_per_distance=4, size_spread=0.0)
    detector = FaceDetector.open(default_model_path())
    figures = evaluate_head3d(config, detector.detect, *sources_and_backgrounds)
    for row in figures["rows"]:
        assert row["detected"] >= 3
        errors = row["median_depth_error_pct"]
        assert errors[OURS] < 15.0
        assert errors[OURS] < errors[CONSTANT]
        assert errors[FLOOR] < 8.0
        angles = row["median_angle_error_deg"]
        assert angles["MOS along the ray"] < angles["frontal, facing the camera"]
    assert table(figures)[0].startswith("| distance (m) | detected |")
