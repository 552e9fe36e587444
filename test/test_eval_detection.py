"""Test-time augmentation and the WIDER runner, on a network stand-in that sees drawn faces.

:class:`DrawnFaceNetwork` is a tiny classical detector behind the backend protocol: it finds
grey face rectangles in the network input, reads eyes (blue), nose (green) and mouth corners
(red) off them, derives a head pose from those points and writes everything into the raw
output tensors at the best anchor. Like a real network it only sees faces within a size
range and it is not mirror-invariant in its scores, so what flip and multi-scale add can be
checked exactly against the drawings.
"""
from __future__ import annotations

from functools import partial

import cv2
import numpy as np
import pytest

pytest.importorskip("scipy")


from mos_ros.core.anchors import generate_anchors  # noqa: E402
from mos_ros.core.codec import encode_boxes, encode_landmarks  # noqa: E402
from mos_ros.core.config import ModelMeta  # noqa: E402
from mos_ros.core.nms import iou_matrix  # noqa: E402
from mos_ros.core.postprocess import DecodeSettings, decode_candidates  # noqa: E402
from mos_ros.core.preprocess import prepare  # noqa: E402
from mos_ros.core.types import RawOutputs  # noqa: E402
from mos_ros.detector import FaceDetector  # noqa: E402
from mos_ros.evaluate.runner import run_widerface  # noqa: E402
from mos_ros.evaluate.tta import (
    TTASettings, detect_tta, mirror_candidates, pass_long_sides)  # noqa: E402
from mos_ros.evaluate.widerface import evaluate_widerface  # noqa: E402
from mos_ros.evaluate.widerface_io import load_ground_truth, read_predictions  # noqa: E402
from test_eval_widerface import write_official_ground_truth  # noqa: E402

META = ModelMeta()
GREY, BLUE, GREEN, RED = (200, 200, 200), (255, 0, 0), (0, 255, 0), (0, 0, 255)
#: Offsets (x, y) of left eye, right eye, nose, left and right mouth corner in a face box.
POINTS = np.array([(35, 50), (85, 56), (68, 85), (40, 115), (82, 118)])
FACE_SIZE = (120, 150)


def pose_from_points(points: np.ndarray) -> np.ndarray:
    """Yaw from the nose's sideways offset, pitch from its height, roll from the eye line."""
    eye_mid, mouth_mid = points[:2].mean(axis=0), points[3:].mean(axis=0)
    eye_line = points[1] - points[0]
    yaw = 100.0 * (points[2, 0] - eye_mid[0]) / np.linalg.norm(eye_line)
    pitch = 100.0 * ((points[2, 1] - eye_mid[1]) / (mouth_mid[1] - eye_mid[1]) - 0.5)
    roll = np.degrees(np.arctan2(eye_line[1], eye_line[0]))
    return np.array([yaw, pitch, roll])


def angle_logits(angle: float) -> np.ndarray:
    """Bin logits whose softmax expectation is ``angle`` (mass split over two bins)."""
    bins = META.pose_bins
    position = (angle - bins.offset_deg) / bins.width_deg
    low, frac = int(np.floor(position)), position - np.floor(position)
    logits = np.full(bins.num_bins, -60.0)
    logits[low] = np.log(max(1.0 - frac, 1e-26))
    logits[low + 1] = np.log(max(frac, 1e-26))
    return logits


def blob_centres(mask: np.ndarray, count: int) -> np.ndarray | None:
    """Centres (pixel-centre convention) of the ``count`` largest blobs, left to right."""
    found, _, stats, centres = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
    if found - 1 < count:
        return None
    largest = 1 + np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:count]
    chosen = centres[largest] + 0.5
    return chosen[np.argsort(chosen[:, 0])]


class DrawnFaceNetwork:
    """Backend protocol: finds drawn faces of ``min_side``..``max_side`` input pixels."""

    name, device = "drawn-faces", "cpu"

    def __init__(self, min_side: int = 16, max_side: int = 300) -> None:
        self.meta = META
        self.min_side, self.max_side = min_side, max_side

    def infer(self, batch: np.ndarray) -> RawOutputs:
        image = batch[0].transpose(1, 2, 0) + np.asarray(META.input_mean, np.float32)
        height, width = image.shape[:2]
        anchors = generate_anchors(META.priors, height, width)
        outputs = {"loc": np.zeros((len(anchors), 4)), "landms": np.zeros((len(anchors), 10)),
                   "conf": np.tile([[4.0, -4.0]], (len(anchors), 1))}
        outputs.update({a: np.full((len(anchors), 66), -60.0) for a in ("yaw", "pitch", "roll")})
        found, labels, stats, _ = cv2.connectedComponentsWithStats(
            (image.max(axis=2) > 150).astype(np.uint8))  # not black, not the mean-colour padding
        for x, y, w, h, _ in stats[1:]:
            if self.min_side <= min(w, h) and max(w, h) <= self.max_side:
                self._write_face(outputs, anchors, image, (x, y, x + w, y + h), (width, height))
        return RawOutputs.from_sequence([outputs[n][None] for n in
                                         ("loc", "conf", "landms", "yaw", "pitch", "roll")])

    def _write_face(self, outputs, anchors, image, box, size) -> None:
        x1, y1, x2, y2 = box
        region = image[y1:y2, x1:x2]
        b, g, r = region[..., 0], region[..., 1], region[..., 2]
        eyes = blob_centres((b > 150) & (g < 100) & (r < 100), 2)
        nose = blob_centres((g > 150) & (b < 100) & (r < 100), 1)
        mouth = blob_centres((r > 150) & (b < 100) & (g < 100), 2)
        if eyes is None or nose is None or mouth is None:
            points = np.tile([(x2 - x1) / 2, (y2 - y1) / 2], (5, 1))
            angles = np.zeros(3)
        else:
            points = np.concatenate([eyes, nose, mouth])
            angles = pose_from_points(points)
        points = points + (x1, y1)
        scale = np.array(size * 2, dtype=np.float64)
        norm = np.array(box, dtype=np.float64) / scale
        corners = np.concatenate([anchors[:, :2] - anchors[:, 2:] / 2,
                                  anchors[:, :2] + anchors[:, 2:] / 2], axis=1)
        best = int(np.argmax(iou_matrix(norm[None], corners)[0]))
        # Faces further right and bigger score higher: the network is not mirror-symmetric.
        logit = 1.0 + 3.0 * (x1 + x2) / 2 / size[0] + (x2 - x1) / 400.0
        outputs["conf"][best] = (0.0, logit)
        variances = META.priors.variances
        outputs["loc"][best] = encode_boxes(norm[None], anchors[best:best + 1], variances)
        outputs["landms"][best] = encode_landmarks((points / scale[:2]).reshape(1, 10),
                                                   anchors[best:best + 1], variances)
        for name, angle in zip(("yaw", "pitch", "roll"), angles):
            outputs[name][best] = angle_logits(angle)


def draw_face(image: np.ndarray, x: int, y: int, size=FACE_SIZE, features=True) -> dict:
    """Draw a cartoon face with its top-left corner at (x, y); return its true geometry."""
    w, h = size
    cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), GREY, -1)
    points = POINTS * np.array([w, h]) / np.array(FACE_SIZE) + (x, y)
    if features:
        for (px, py), colour in zip(points.astype(int), (BLUE, BLUE, GREEN, RED, RED)):
            cv2.circle(image, (int(px), int(py)), 5, colour, -1)
    centres = points.astype(int) + 0.5
    return {"box": (x, y, x + w, y + h), "landmarks": centres,
            "pose": pose_from_points(centres)}


def detector(**settings) -> FaceDetector:
    return FaceDetector(DrawnFaceNetwork(), DecodeSettings(**settings), input_size=None)


# --- flip -----------------------------------------------------------------------------------

def test_mirrored_pass_maps_back_with_swapped_sides_and_negated_yaw_and_roll():
    image = np.zeros((240, 400, 3), np.uint8)
    truth = draw_face(image, 30, 40)
    assert abs(truth["pose"][0]) > 5 and abs(truth["pose"][2]) > 5  # signs matter here
    mirrored = np.ascontiguousarray(image[:, ::-1])
    batch, letterbox = prepare(mirrored, None, META.input_mean)
    raw = DrawnFaceNetwork().infer(batch)
    found = mirror_candidates(decode_candidates(raw, META, letterbox, DecodeSettings()), 400)
    assert len(found) == 1
    np.testing.assert_allclose(found.boxes[0], truth["box"], atol=1e-3)
    np.testing.assert_allclose(found.landmarks[0], truth["landmarks"], atol=0.05)
    np.testing.assert_allclose(found.angles[0], truth["pose"], atol=0.05)


def test_flip_tta_pools_both_passes_and_the_better_mirrored_one_wins():
    image = np.zeros((240, 400, 3), np.uint8)
    truth = draw_face(image, 30, 40)  # left half: the network scores its mirror image higher
    plain = detector().detect(image)
    faces = detect_tta(detector(), image, TTASettings(scales=(1.0,), flip=True))
    assert len(plain) == len(faces) == 1
    assert faces[0].score > plain[0].score
    np.testing.assert_allclose(faces[0].box, truth["box"], atol=1e-3)
    np.testing.assert_allclose(faces[0].landmarks, truth["landmarks"], atol=0.05)
    np.testing.assert_allclose([faces[0].pose.yaw, faces[0].pose.pitch, faces[0].pose.roll],
                               truth["pose"], atol=0.05)


# --- multi-scale ----------------------------------------------------------------------------

def test_scales_find_faces_that_no_single_pass_sees():
    image = np.zeros((400, 400, 3), np.uint8)
    big = draw_face(image, 30, 30, size=(320, 320))
    small = draw_face(image, 375, 375, size=(10, 10), features=False)
    assert detector().detect(image) == []  # 320 px is too big and 10 px too small
    faces = detect_tta(detector(), image, TTASettings(scales=(0.5, 2.0), flip=False))
    assert len(faces) == 2
    np.testing.assert_allclose(sorted(f.box for f in faces), [big["box"], small["box"]],
                               atol=2.0)


def _pass_score(image: np.ndarray, long_side: int, mirror: bool) -> float:
    """Best candidate score of one network pass, run by hand from the public pieces."""
    image = np.ascontiguousarray(image[:, ::-1]) if mirror else image
    batch, letterbox = prepare(image, long_side, META.input_mean)
    raw = DrawnFaceNetwork().infer(batch)
    return float(decode_candidates(raw, META, letterbox, DecodeSettings()).scores.max())


def test_a_face_seen_at_several_scales_is_reported_once_from_its_best_pass():
    image = np.zeros((240, 400, 3), np.uint8)
    truth = draw_face(image, 200, 40)
    faces = detect_tta(detector(), image, TTASettings(scales=(0.5, 1.0), flip=True))
    assert len(faces) == 1
    scores = {(side, mirror): _pass_score(image, side, mirror)
              for side in (200, 400) for mirror in (False, True)}
    # Four candidates of one face were pooled; NMS kept the best: the full-size unmirrored
    # pass (bigger face, right of centre).
    assert faces[0].score == pytest.approx(max(scores.values()))
    assert max(scores, key=scores.get) == (400, False)
    np.testing.assert_allclose(faces[0].box, truth["box"], atol=1e-3)


def test_scales_are_capped_and_deduplicated():
    assert pass_long_sides((480, 640), TTASettings(scales=(1.0, 1.0, 10.0), max_side=1024)) == [
        640, 1024]
    with pytest.raises(ValueError, match="scales must be positive"):
        TTASettings(scales=(0.0,))


# --- the WIDER runner, end to end -----------------------------------------------------------

def _wider_folder(root) -> dict:
    """A WIDER-layout image folder of drawn faces and its ground truth for the .mat files."""
    layout = {"0--Parade": [("0_Parade_1", [(20, 30)]), ("0_Parade_2", [(10, 20), (200, 60)])],
              "7--Cheering": [("7_Cheering_3", [(150, 50)])]}
    events = {}
    for event, images in layout.items():
        (root / "images" / event).mkdir(parents=True)
        events[event] = []
        for name, corners in images:
            image = np.zeros((240, 360, 3), np.uint8)
            boxes = [draw_face(image, x, y)["box"] for x, y in corners]
            cv2.imwrite(str(root / "images" / event / f"{name}.jpg"), image,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            events[event].append((name, [(x1, y1, x2 - x1, y2 - y1)
                                         for x1, y1, x2, y2 in boxes], {}))
    return events


@pytest.mark.parametrize("use_tta", [False, True])
def test_runner_writes_predictions_that_evaluate_to_ap_one(tmp_path, use_tta):
    events = _wider_folder(tmp_path / "WIDER_val")
    write_official_ground_truth(tmp_path / "gt", events)
    (tmp_path / "WIDER_val" / "images" / "7--Cheering" / "7_Cheering_9.jpg").write_bytes(b"no")
    found = detector()
    detect = (partial(detect_tta, found, tta=TTASettings(scales=(1.0,), flip=True))
              if use_tta else found.detect)
    summary = run_widerface(detect, tmp_path / "WIDER_val", tmp_path / "pred", progress=False)
    assert summary.images == 3 and summary.faces == 4
    assert list(summary.errors) == ["7--Cheering/7_Cheering_9.jpg"]
    gt = load_ground_truth(tmp_path / "gt")
    result = evaluate_widerface(gt, read_predictions(tmp_path / "pred", gt))
    assert result.ap() == pytest.approx({"easy": 1.0, "medium": 1.0, "hard": 1.0})
