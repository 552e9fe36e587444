"""Online feedback sampling (MOS paper 3.3): stitching decisions, mosaics, hard images."""
import csv

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("scipy")

import torch  # noqa: E402

from mos_ros.core.anchors import generate_anchors  # noqa: E402
from mos_ros.core.config import PoseBins, PriorConfig  # noqa: E402
from mos_ros.core.label_file import LabelledImage, write_label_file  # noqa: E402
from mos_ros.core.labels import FaceLabels  # noqa: E402
from mos_ros.core.types import Face, HeadPose  # noqa: E402
from mos_ros.model import build_model  # noqa: E402
from mos_ros.train.config import TrainConfig  # noqa: E402
from mos_ros.train.dataset import LabelFileSource, SampleConfig, collate  # noqa: E402
from mos_ros.train.feedback import (
    FeedbackBatchSampler, FeedbackConfig, FeedbackLoop, FeedbackTrainingSet, HardSet, SampleKey,
    StitchSwitch, count_errors, mosaic, small_face_box_loss)  # noqa: E402
from mos_ros.train.loop import train  # noqa: E402
from mos_ros.train.targets import build_targets  # noqa: E402

SIZE = 96


def _labels(boxes):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    landmarks = np.array([[b[:2] + (b[2:] - b[:2]) * f for f in (0.3, 0.4, 0.5, 0.6, 0.7)]
                          for b in boxes], np.float32).reshape(-1, 5, 2)
    return FaceLabels.complete(boxes, landmarks, np.zeros((len(boxes), 3)))


def test_stitch_switch_follows_the_small_face_share_of_the_box_loss():
    switch = StitchSwitch(threshold=0.35)
    assert switch.update(small_loss=0.2, box_loss=1.0) is True
    assert switch.update(small_loss=0.5, box_loss=1.0) is False
    assert switch.update(small_loss=0.0, box_loss=0.0) is False  # no faces, no evidence


def test_next_batch_is_stitched_only_after_a_ratio_below_threshold():
    switch = StitchSwitch(0.35)
    sampler = iter(FeedbackBatchSampler(0, 3, 4, seed=0, switch=switch, hard_set=None))
    assert not any(key.stitched for key in next(sampler))
    switch.update(0.1, 1.0)
    stitched = next(sampler)
    assert all(key.stitched for key in stitched) and [k.index for k in stitched] == [4, 5, 6, 7]
    switch.update(0.9, 1.0)
    assert not any(key.stitched for key in next(sampler))
    assert switch.stitched_fraction() == pytest.approx(1 / 3)


def test_small_face_box_loss_counts_only_anchors_of_faces_up_to_25_px():
    dataset_config = SampleConfig(input_size=SIZE)
    anchors = generate_anchors(PriorConfig(), SIZE, SIZE)
    labels = _labels([[10, 10, 30, 30], [40, 40, 90, 90]])  # 20 px (small) and 50 px
    targets = {k: torch.from_numpy(v)[None] for k, v in build_targets(
        labels, (SIZE, SIZE), anchors, PriorConfig(), PoseBins(), dataset_config.match)
        .as_dict().items()}
    loc = torch.zeros(1, len(anchors), 4)
    small, total = small_face_box_loss(loc, targets, anchors, PriorConfig().variances, SIZE,
                                       25.0).tolist()
    only_large = {**targets, "labels": targets["labels"].clone()}
    positives = targets["labels"][0].nonzero()[:, 0].numpy()
    centres = anchors[positives, :2] * SIZE
    only_large["labels"][0, positives[centres[:, 0] < 35]] = 0
    _, large = small_face_box_loss(loc, only_large, anchors, PriorConfig().variances, SIZE,
                                   25.0).tolist()
    assert 0 < small < total and small == pytest.approx(total - large, rel=1e-9)


def test_mosaic_moves_each_tile_into_its_quadrant_exactly():
    tiles = []
    for j in range(4):
        image = np.full((SIZE, SIZE, 3), 40 * (j + 1), np.uint8)
        tiles.append((image, _labels([[8 + j, 16, 48 + j, 64]])))
    image, labels = mosaic(tiles)
    half = SIZE // 2
    for j, (x0, y0) in enumerate([(0, 0), (half, 0), (0, half), (half, half)]):
        assert np.all(image[y0:y0 + half, x0:x0 + half] == 40 * (j + 1))
        np.testing.assert_allclose(labels.boxes[j], np.array([8 + j, 16, 48 + j, 64]) / 2
                                   + [x0, y0, x0, y0])
        np.testing.assert_allclose(labels.landmarks[j], tiles[j][1].landmarks[0] / 2 + [x0, y0])
    assert len(mosaic(tiles, min_face_px=30.0)[1]) == 0  # 20 px after halving: dropped


def _face(box, score=0.9):
    return Face(box=tuple(float(v) for v in box), score=score,
                landmarks=np.zeros((5, 2), np.float32), pose=HeadPose(0.0, 0.0, 0.0))


def test_count_errors_counts_false_positives_and_misses():
    truth = _labels([[10, 10, 50, 50], [60, 60, 90, 90], [0, 0, 4, 4]])  # last: ignored
    assert count_errors([_face([10, 10, 50, 50]), _face([60, 60, 90, 90])], truth, 0.5, 10) == 0
    assert count_errors([_face([10, 10, 50, 50])], truth, 0.5, 10) == 1  # a miss
    assert count_errors([_face([10, 10, 50, 50]), _face([60, 60, 90, 90]),
                         _face([10, 60, 40, 90])], truth, 0.5, 10) == 1  # a false positive
    assert count_errors([_face([10, 10, 50, 50]), _face([11, 10, 50, 50], 0.8),
                         _face([60, 60, 90, 90])], truth, 0.5, 10) == 1  # a duplicate
    assert count_errors([_face([0, 0, 4, 4])], _labels([[0, 0, 4, 4]]), 0.5, 10) == 0


def _set_with_faces(folder, with_faces):
    items = []
    for index, has_face in enumerate(with_faces):
        name = f"{index}.jpg"
        (folder / "images").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / "images" / name), np.full((SIZE, SIZE, 3), 120, np.uint8))
        boxes = [[20, 20, 70, 70]] if has_face else np.zeros((0, 4))
        items.append(LabelledImage(name, _labels(boxes)))
    return write_label_file(folder / "label.txt", items)


def test_images_with_planted_misses_enter_s_and_are_drawn_more_often(tmp_path):
    label_file = _set_with_faces(tmp_path, [True, False, True, False])
    torch.manual_seed(0)
    model = build_model("mos-s-0.5")
    dataset = FeedbackTrainingSet(LabelFileSource(label_file, 0), SampleConfig(input_size=SIZE),
                                  0, model.meta.priors, model.meta.pose_bins)
    # Nothing scores above 1: every labelled face is missed, empty images are error-free.
    loop = FeedbackLoop(FeedbackConfig(hard_mining=True, score_threshold=1.0), dataset, 2, 0)
    loop.after_epoch(model, torch.device("cpu"), 1, 0, 1, lambda t: t)
    np.testing.assert_array_equal(loop.hard_set.copies, [2, 1, 2, 1])
    draws = np.concatenate([k.items for b in range(200) for k in
                            loop.batch_sampler(b, b + 1).keys(b)])
    counts = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(counts, [1 / 3, 1 / 6, 1 / 3, 1 / 6], atol=0.04)
    # Everything scores above 0: the empty images now hold false positives.
    loop = FeedbackLoop(FeedbackConfig(hard_mining=True, score_threshold=0.0), dataset, 2, 0)
    loop.after_epoch(model, torch.device("cpu"), 1, 0, 1, lambda t: t)
    assert loop.hard_set.copies[1] > 1 and loop.hard_set.copies[3] > 1


def test_hard_set_draws_follow_the_copy_counts():
    hard = HardSet(3, max_extra_copies=4)
    hard.update(np.array([0, 9, 1]))
    np.testing.assert_array_equal(hard.copies, [1, 5, 2])
    assert hard.size == 8 and hard.hard_images == 2
    draws = hard.draw(np.random.default_rng(0), 8000)
    np.testing.assert_allclose(np.bincount(draws) / 8000, [1 / 8, 5 / 8, 2 / 8], atol=0.02)


def test_keyed_samples_build_stitched_and_drawn_images(tmp_path):
    label_file = _set_with_faces(tmp_path, [True, True, True, True])
    dataset = FeedbackTrainingSet(LabelFileSource(label_file, 0),
                                  SampleConfig(input_size=SIZE, flip_probability=0.0,
                                               photometric_probability=0.0), 0)
    image, labels = dataset.sample_key(SampleKey(0, (0, 1, 2, 3), stitched=True))
    assert image.shape == (SIZE, SIZE, 3) and len(labels) == 4
    quadrant = (labels.boxes[:, :2] // (SIZE // 2)).astype(int).tolist()
    assert sorted(map(tuple, quadrant)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    images, targets = collate([dataset[SampleKey(1, (2,))], dataset[SampleKey(2)]])
    assert images.shape == (2, SIZE, SIZE, 3) and targets["labels"].shape[0] == 2


def test_training_with_feedback_logs_its_statistics_and_saves_its_state(tmp_path):
    label_file = _set_with_faces(tmp_path / "set", [True, False, True, True])
    train(TrainConfig.from_dict(dict(
        variant="mos-s-0.5", input_size=SIZE, batch_size=2, iterations=3, lr=0.01,
        warmup_iterations=1, lr_steps=[1.0], workers=0, torch_threads=1, log_every=1,
        checkpoint_every=1000, validation_images=0, device="cpu",
        output_dir=str(tmp_path / "run"), train_label_file=str(label_file),
        feedback={"stitch": True, "stitch_threshold": 1.0, "hard_mining": True,
                  "epoch_iterations": 2, "score_threshold": 1.0})))
    with open(tmp_path / "run" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    # Threshold 1: every batch after the first is stitched; mining after iteration 2
    # finds the three missed faces.
    assert [float(r["stitched_fraction"]) for r in rows] == [0.0, 1.0, 1.0]
    assert [int(float(r["hard_images"])) for r in rows] == [0, 3, 3]
    state = torch.load(tmp_path / "run" / "state_00000003.pt", weights_only=False)
    np.testing.assert_array_equal(state["feedback"]["hard_set"]["copies"], [2, 1, 2, 2])


def test_the_hard_set_survives_a_state_file_loaded_with_weights_only(tmp_path):
    from mos_ros.train.feedback import HardSet
    hard = HardSet(6, max_extra_copies=3)
    hard.copies = np.array([0, 2, 0, 3, 1, 0], np.int64)
    torch.save({"hard_set": hard.state_dict()}, tmp_path / "state.pt")
    restored = HardSet(6, max_extra_copies=3)
    restored.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True)["hard_set"])
    assert np.array_equal(restored.copies, hard.copies)
