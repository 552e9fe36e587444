"""The one scene composer: procedural sets are its empty-bank case, and its placement,
crowd and source rules hold for procedural and photo faces alike."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("scipy")


from mos_ros.scenes.bank import FaceBank  # noqa: E402
from mos_ros.scenes.composer import ProceduralScenes, compose  # noqa: E402
from mos_ros.scenes.config import SceneConfig, SyntheticConfig  # noqa: E402
from mos_ros.scenes.rotation import visible_fraction  # noqa: E402
from mos_ros.scenes.sampling import overlap_fraction, seeded_rng  # noqa: E402

PROCEDURAL = SyntheticConfig(width=256, height=256, faces_range=(4, 8),
                             face_px_range=(20.0, 120.0), augment_probability=0.0)
#: Photo and procedural faces on procedural backgrounds, nothing else in the way.
MIXED = SceneConfig(width=256, height=256, faces_range=(3, 6), face_px_range=(20.0, 120.0),
                    crowd_probability=0.0, empty_probability=0.0, photo_scene_probability=0.0,
                    procedural_fraction=0.5, occlusion_probability=0.0,
                    augment_probability=0.0)


def _head(box: np.ndarray, config: SceneConfig) -> np.ndarray:
    """The head region the composer keeps clear of earlier faces, from a face's box."""
    side = float(np.max(box[2:] - box[:2]))
    below = [config.head_margin * side, config.neck_margin * side]
    return np.concatenate([box[:2] - config.head_margin * side, box[2:] + below])


def _assert_placed_as_the_rules_say(boxes: np.ndarray, config: SceneConfig) -> None:
    for index, box in enumerate(boxes):
        # Photo faces land on whole pixels: a rounding step of half a pixel at most.
        visible = visible_fraction(box, config.width, config.height)
        assert visible >= 1.0 - config.max_outside - 0.03
        earlier = list(boxes[:index])
        assert overlap_fraction(_head(box, config), earlier) <= config.max_overlap + 0.03


def test_a_procedural_set_is_the_empty_bank_case_of_the_one_composer():
    scenes = ProceduralScenes(PROCEDURAL)
    for index in range(3):
        image, labels = scenes(seeded_rng(4, index))
        again, labels_again = compose(seeded_rng(4, index), SceneConfig.procedural_only(PROCEDURAL),
                                      FaceBank())
        np.testing.assert_array_equal(image, again)
        np.testing.assert_array_equal(labels.boxes, labels_again.boxes)


def test_procedural_only_keeps_what_faces_and_backgrounds_are_drawn_from():
    synthetic = dataclasses.replace(PROCEDURAL, distance_range=(3.0, 5.0), head_probability=0.2,
                                    negatives_range=(1, 2), clutter_range=(5, 6))
    scene = SceneConfig.procedural_only(synthetic)
    for name in ("width", "height", "face_px_range", "distance_range", "head_probability",
                 "negatives_range", "clutter_range", "yaw_limit_deg", "pitch_limit_deg",
                 "roll_limit_deg"):
        assert getattr(scene.procedural, name) == getattr(synthetic, name), name
    assert scene.max_overlap == synthetic.max_occlusion and scene.max_outside == 0.0


def test_procedural_faces_lie_inside_and_their_heads_keep_clear_of_earlier_faces():
    config = SceneConfig.procedural_only(PROCEDURAL)
    faces = 0
    for index in range(12):
        _, labels = compose(seeded_rng(8, index), config)
        _assert_placed_as_the_rules_say(labels.boxes, config)
        assert np.all(labels.boxes[:, :2] >= 0) and np.all(labels.boxes[:, 2:] <= 256)
        faces += len(labels)
    assert faces >= 40


def test_photo_and_procedural_faces_follow_the_same_placement(obama_sources):
    bank = FaceBank(faces=(obama_sources,))
    with_pose, faces = 0, 0
    for index in range(12):
        _, labels = compose(seeded_rng(9, index), MIXED, bank)
        _assert_placed_as_the_rules_say(labels.boxes, MIXED)
        faces += len(labels)
        with_pose += int(labels.has_pose.sum())
    assert faces >= 30 and with_pose == faces
    cut = [visible_fraction(box, 256, 256) < 0.999
           for index in range(12) for box in compose(seeded_rng(9, index), MIXED, bank)[1].boxes]
    assert any(cut), "max_outside lets some faces leave the picture in part"


def test_a_face_larger_than_any_bank_face_may_grow_to_is_procedural(obama_sources):
    from mos_ros.scenes import composer
    from mos_ros.scenes.faces import PhotoFace, ProceduralFace
    bank = FaceBank(faces=(obama_sources,))
    native = obama_sources[0].face_px
    capped = dataclasses.replace(MIXED, max_enlargement=1.5, procedural_beyond_deg=0.0)
    for face_px, kind in ((native * 1.4, PhotoFace), (native * 1.6, ProceduralFace)):
        face = composer._photo_face(seeded_rng(12, 0), capped, bank, face_px)
        assert isinstance(face, kind)
        assert max(face.size) == pytest.approx(face_px, rel=0.02)
    unlimited = dataclasses.replace(capped, max_enlargement=0.0)
    assert isinstance(composer._photo_face(seeded_rng(12, 0), unlimited, bank, native * 3),
                      PhotoFace)


def test_crowds_are_many_small_faces(obama_sources):
    config = dataclasses.replace(MIXED, crowd_probability=1.0, crowd_range=(10, 14),
                                 face_px_range=(12.0, 200.0))
    for index in range(3):
        _, labels = compose(seeded_rng(10, index), config, FaceBank(faces=(obama_sources,)))
        sides = np.max(labels.boxes[:, 2:] - labels.boxes[:, :2], axis=1)
        assert 6 <= len(labels) <= 14
        assert sides.max() <= 60.0 + 1.0


@pytest.mark.parametrize("setting", ["max_outside", "head_probability"])
def test_shares_outside_zero_to_one_are_refused_by_name(setting):
    with pytest.raises(ValueError, match=setting):
        SceneConfig(**{setting: 1.5})
