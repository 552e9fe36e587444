"""Mirror pairs: samples that show a scene and its mirror, and the loss term that makes the
network's pose readings of the two agree."""
import dataclasses

import numpy as np
import pytest

pytest.importorskip("torch")

import torch  # noqa: E402

from mos_ros.core.anchors import mirrored_anchor_order  # noqa: E402
from mos_ros.core.config import PoseBins, PriorConfig  # noqa: E402
from mos_ros.core.pose import bin_centres, mirror_poses  # noqa: E402
from mos_ros.scenes.config import SyntheticConfig  # noqa: E402
from mos_ros.train.config import TrainConfig  # noqa: E402
from mos_ros.train.dataset import FaceTrainingSet, SampleConfig, SyntheticSource  # noqa: E402
from mos_ros.train.loss import LossConfig, MultiTaskLoss, expected_angle  # noqa: E402

SIZE = 160
BINS = PoseBins()
PRIORS = PriorConfig()
SCENES = SyntheticConfig(width=SIZE, height=SIZE, face_px_range=(30.0, 80.0), faces_range=(1, 3),
                         augment_probability=0.0)


def _paired_set(seed=3):
    config = SampleConfig(input_size=SIZE, mirror_pairs=True, photometric_probability=0.0)
    return FaceTrainingSet(SyntheticSource(SCENES, seed), config, seed, PRIORS, BINS)


def test_an_odd_sample_is_the_mirror_image_of_the_even_one_with_mirrored_labels():
    dataset = _paired_set()
    for pair in range(3):
        image, labels = dataset.sample(2 * pair)
        mirror, mirrored = dataset.sample(2 * pair + 1)
        np.testing.assert_array_equal(mirror, image[:, ::-1])
        assert len(labels) == len(mirrored) > 0
        np.testing.assert_allclose(mirrored.boxes[:, 0], SIZE - labels.boxes[:, 2], atol=1e-4)
        np.testing.assert_allclose(mirrored.poses, mirror_poses(labels.poses), atol=1e-6)
    assert not np.array_equal(dataset.sample(0)[0], dataset.sample(2)[0])


def test_the_mirror_anchor_of_every_positive_is_positive_in_the_mirror_image():
    dataset = _paired_set()
    order = mirrored_anchor_order(PRIORS, SIZE, SIZE)
    _, first = dataset[4]
    _, second = dataset[5]
    assert first["pose_mask"].any()
    np.testing.assert_array_equal(first["pose_mask"], second["pose_mask"][order])
    np.testing.assert_array_equal(first["labels"], second["labels"][order])


def _pair_outputs(order, count, seed=0):
    """Outputs of an image pair whose pose logits agree exactly under the mirror, as leaves."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [(2, count, 4), (2, count, 2), (2, count, 10)]
    outputs = [torch.randn(s, generator=gen) for s in shapes]
    # Bin k stands for 3k - 99 degrees: its mirror is bin 66 - k; bin 0 (-99) has none and
    # gets no weight.
    flipped = torch.as_tensor([0, *range(BINS.num_bins - 1, 0, -1)])
    for sign in (-1, 1, -1):
        first = torch.randn(1, count, BINS.num_bins, generator=gen)
        first[..., 0] = -40.0
        mirror = first[:, order]
        if sign < 0:  # yaw and roll: the distribution mirrored about 0 degrees
            mirror = mirror[..., flipped]
        outputs.append(torch.cat([first, mirror]))
    return [o.requires_grad_(True) for o in outputs]


def _pair_targets(count, positives):
    labels = torch.zeros(2, count, dtype=torch.long)
    labels[:, positives] = 1
    mask = labels > 0
    return {"labels": labels, "loc": torch.zeros(2, count, 4),
            "landmarks": torch.zeros(2, count, 10), "landmark_mask": mask,
            "pose_bins": torch.full((2, count, 3), 33, dtype=torch.long),
            "pose_degrees": torch.zeros(2, count, 3), "pose_mask": mask}


def test_mirror_term_is_zero_for_readings_that_agree_and_pulls_disagreeing_ones_together():
    assert np.allclose(bin_centres(BINS)[1:], -bin_centres(BINS)[:0:-1])
    order = mirrored_anchor_order(PRIORS, SIZE, SIZE)
    count = len(order)
    config = LossConfig(mirror_weight=0.1)
    criterion = MultiTaskLoss(BINS, config, mirror_order=order)
    targets = _pair_targets(count, [5, 40, 300])
    agreeing = criterion(tuple(_pair_outputs(order, count)), targets)
    assert float(agreeing.extras["mirror"]) == pytest.approx(0.0, abs=1e-4)
    outputs = _pair_outputs(order, count)
    outputs[3] = (outputs[3].detach() + torch.randn(outputs[3].shape)).requires_grad_(True)
    parts = criterion(tuple(outputs), targets)
    assert float(parts.extras["mirror"]) > 0.5
    plain = MultiTaskLoss(BINS, LossConfig(), mirror_order=order)(tuple(outputs), targets)
    assert float((parts.total - plain.total).detach()) == pytest.approx(
        0.1 * float(parts.extras["mirror"]), rel=1e-5)
    mirror_only = criterion._mirror(outputs[3:], targets["pose_mask"])
    mirror_only.backward()
    grad = outputs[3].grad
    assert torch.any(grad[0, 5] != 0) and torch.any(grad[1, order[5]] != 0)
    assert torch.all(grad[0, 6] == 0)  # not pose-labelled: untouched
    centres = torch.as_tensor(bin_centres(BINS), dtype=torch.float32)
    before = expected_angle(outputs[3], centres)
    after = expected_angle(outputs[3] - 0.05 * grad, centres)
    gap = lambda yaw: (yaw[0, 5] + yaw[1, order[5]]).abs()  # noqa: E731
    assert float(gap(after).detach()) < float(gap(before).detach())


def test_mirror_settings_that_cannot_train_are_named():
    with pytest.raises(ValueError, match="mirror order"):
        MultiTaskLoss(BINS, LossConfig(mirror_weight=0.1))
    with pytest.raises(ValueError, match="mirror_weight"):
        TrainConfig.from_dict({"loss": {"mirror_weight": 0.1}})
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig.from_dict({"batch_size": 7, "sample": {"mirror_pairs": True}})
    with pytest.raises(ValueError, match="feedback"):
        TrainConfig.from_dict({"sample": {"mirror_pairs": True},
                               "feedback": {"hard_mining": True}})
    config = TrainConfig.from_dict({"sample": {"mirror_pairs": True},
                                    "loss": {"mirror_weight": 0.1}})
    assert config.metric_fields[-1] == "mirror"


def test_a_run_on_mirror_pairs_logs_the_mirror_term_and_lowers_it(tmp_path):
    import csv

    from mos_ros.train.loop import train

    torch.manual_seed(0)
    config = TrainConfig.from_dict(dict(
        variant="mos-s-0.5", input_size=SIZE, batch_size=4, iterations=60, lr=0.02,
        warmup_iterations=5, lr_steps=[1.0], workers=0, torch_threads=1,
        output_dir=str(tmp_path / "run"), log_every=1, checkpoint_every=1000,
        validation_images=0, device="cpu", synthetic=dataclasses.asdict(SCENES),
        sample={"mirror_pairs": True, "photometric_probability": 0.0,
                "crop": {"scales": [1.0]}},
        loss={"mirror_weight": 0.1}))
    train(config)
    with open(tmp_path / "run" / "metrics.csv") as handle:
        mirror = [float(row["mirror"]) for row in csv.DictReader(handle)]
    assert len(mirror) == 60 and all(np.isfinite(mirror))
    assert np.mean(mirror[-15:]) < 0.7 * np.mean(mirror[:15])
