"""Uncertainty multi-task loss (MOS paper Eq. 7): its value, its learning, its logging."""
import csv
import math

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("scipy")

import torch  # noqa: E402

from mos_ros.train.config import TrainConfig  # noqa: E402
from mos_ros.train.loop import train  # noqa: E402
from mos_ros.train.loss import LossConfig, MultiTaskLoss  # noqa: E402
from mos_ros.train.uncertainty import UncertaintyWeighting  # noqa: E402

HEURISTIC = (2.0, 1.0, 1.0, 0.25)


def _random_batch(anchors=200, seed=0):
    rng = torch.Generator().manual_seed(seed)
    outputs = (torch.randn(1, anchors, 4, generator=rng),
               torch.randn(1, anchors, 2, generator=rng),
               torch.randn(1, anchors, 10, generator=rng),
               *(torch.randn(1, anchors, 66, generator=rng) for _ in range(3)))
    labels = torch.zeros(1, anchors, dtype=torch.long)
    labels[0, :10] = 1
    targets = {"labels": labels, "loc": torch.randn(1, anchors, 4, generator=rng),
               "landmarks": torch.randn(1, anchors, 10, generator=rng),
               "landmark_mask": labels > 0, "pose_mask": labels > 0,
               "pose_bins": torch.randint(0, 66, (1, anchors, 3), generator=rng),
               "pose_degrees": torch.rand(1, anchors, 3, generator=rng) * 60 - 30}
    return outputs, targets


def test_eq7_total_is_weighted_terms_plus_log_of_temperature_and_noises():
    outputs, targets = _random_batch()
    criterion = MultiTaskLoss(config=LossConfig(weighting="uncertainty"))
    with torch.no_grad():
        criterion.weighting.log_scales.copy_(torch.tensor([0.3, -0.2, 0.1, 0.5]))
    parts = criterion(outputs, targets)
    temperature, s1, s2, s3 = (math.exp(v) for v in (0.3, -0.2, 0.1, 0.5))
    expected = (parts.cls / temperature ** 2 + parts.box / (2 * s1 ** 2)
                + parts.landmarks / (2 * s2 ** 2) + parts.pose / (2 * s3 ** 2)
                + math.log(temperature * s1 * s2 * s3))
    assert float(parts.total.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    assert float(parts.extras["temperature"]) == pytest.approx(temperature)
    assert float(parts.extras["sigma_pose"]) == pytest.approx(s3)


def test_uncertainty_starts_at_the_heuristic_weights_and_heuristic_is_unchanged():
    outputs, targets = _random_batch()
    fixed = MultiTaskLoss(config=LossConfig())(outputs, targets)
    learned = MultiTaskLoss(config=LossConfig(weighting="uncertainty"))(outputs, targets)
    weights = [float(learned.extras[f"weight_{t}"]) for t in ("cls", "box", "landmarks", "pose")]
    np.testing.assert_allclose(weights, HEURISTIC, rtol=1e-6)
    manual = 2 * fixed.cls + fixed.box + fixed.landmarks + 0.25 * fixed.pose
    assert float(fixed.total) == float(manual)
    log_term = math.log(math.sqrt(0.5) * math.sqrt(0.5) * math.sqrt(0.5) * math.sqrt(2.0))
    assert float(learned.total) == pytest.approx(float(manual) + log_term, rel=1e-5)


def _learn(terms, steps=400, lr=0.05):
    weighting = UncertaintyWeighting(HEURISTIC)
    optimizer = torch.optim.SGD(weighting.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        weighting(*terms).backward()
        optimizer.step()
    return weighting.weights().detach(), torch.exp(weighting.log_scales.detach())


def test_a_task_whose_loss_is_scaled_up_learns_a_larger_sigma_and_a_smaller_weight():
    outputs, targets = _random_batch()
    parts = MultiTaskLoss(config=LossConfig(weighting="uncertainty"))(outputs, targets)
    terms = [parts.cls.detach(), parts.box.detach(), parts.landmarks.detach(),
             parts.pose.detach()]
    base_weights, base_scales = _learn(terms)
    scaled = list(terms)
    scaled[1] = terms[1] * 10.0
    weights, scales = _learn(scaled)
    assert scales[1] > 2.0 * base_scales[1] and weights[1] < 0.2 * base_weights[1]
    for other in (0, 2, 3):  # the other tasks' parameters see the same gradients as before
        assert scales[other] == pytest.approx(float(base_scales[other]), rel=1e-6)
    # Eq. 7's optimum for a constant loss L: effective weight 1 / (2 L).
    np.testing.assert_allclose(weights.numpy(), [0.5 / float(t) for t in scaled], rtol=0.02)


def test_uncertainty_needs_positive_starting_weights_and_a_known_name():
    with pytest.raises(ValueError, match="weighting must be one of"):
        LossConfig(weighting="magic")
    with pytest.raises(ValueError, match="must then be > 0"):
        LossConfig(weighting="uncertainty", pose_weight=0.0)


def test_training_learns_and_logs_the_weights_and_saves_them(tmp_path):
    config = TrainConfig.from_dict(dict(
        variant="mos-s-0.5", input_size=96, batch_size=2, iterations=3, lr=0.05,
        warmup_iterations=1, lr_steps=[1.0], workers=0, torch_threads=1, log_every=1,
        checkpoint_every=1000, validation_images=0, device="cpu", output_dir=str(tmp_path),
        synthetic={"width": 96, "height": 96, "face_px_range": [20.0, 60.0]},
        loss={"weighting": "uncertainty"}))
    train(config)
    with open(tmp_path / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and {"weight_box", "temperature", "sigma_pose"} <= set(rows[0])
    # Logged with each step's loss, i.e. before that step's update: row 1 is the start.
    assert float(rows[0]["sigma_box"]) == pytest.approx(math.sqrt(0.5), rel=1e-6)
    assert float(rows[-1]["sigma_box"]) != pytest.approx(math.sqrt(0.5), rel=1e-6)
    state = torch.load(tmp_path / "state_00000003.pt", weights_only=False)
    scales = torch.exp(state["criterion"]["weighting.log_scales"])
    assert float(scales[1]) != pytest.approx(float(rows[-1]["sigma_box"]), rel=1e-7)
